#!/usr/bin/env bash
# One prepared check of napari-detlab's CUDA paths, for a machine with a CUDA GPU and no
# network (the `device` tool's GPU machine: torch and torchvision preinstalled, in another
# version than constraints.txt pins). It runs, with a time limit per step and 7 minutes in all:
#   1. bench_train on CUDA with AMP and channels_last each on and off (engine vs bare loop);
#   2. bench_predict likewise;
#   3. a detlab train / predict / evaluate round trip on the built-in sample dataset;
#   4. a one-process torchrun of detlab train (DDP over NCCL).
# Everything is summed up in $OUT/gpu_check.json (one JSON object; a step that failed says so
# with the end of its log) and the full logs in $OUT/gpu_check.log. Nothing is installed
# except wheels carried in .whl/ (pycocotools, psygnal: see README, "The GPU path").
#
#   bash scripts/gpu_check.sh                                  # on the GPU machine
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_QUICK=1 bash scripts/gpu_check.sh   # a dry run of the script
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check-output}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
QUICK=${GPU_CHECK_QUICK:-0}
BUDGET_S=${GPU_CHECK_BUDGET_S:-420}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
work=$(mktemp -d)
started=$(date +%s)
log="$OUT/gpu_check.log"
: > "$log"

if compgen -G ".whl/*.whl" > /dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$work/site" .whl/*.whl >> "$log" 2>&1 || echo "wheel install failed" >> "$log"
  export PYTHONPATH="$work/site"
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

# step NAME TIMEOUT_S COMMAND...: stdout to $work/NAME.out, stderr to the log, status recorded.
step() {
  local name=$1 limit=$2; shift 2
  local now; now=$(date +%s)
  if (( now - started > BUDGET_S )); then
    echo "{\"step\": \"$name\", \"status\": \"skipped: time budget spent\"}" >> "$work/steps.jsonl"
    return
  fi
  echo "=== $name: $*" >> "$log"
  local status=ok
  timeout "$limit" "$@" > "$work/$name.out" 2>> "$log" || status="failed (exit $?)"
  echo "{\"step\": \"$name\", \"status\": \"$status\", \"seconds\": $(( $(date +%s) - now ))}" \
    >> "$work/steps.jsonl"
}

if [ "$QUICK" = 1 ]; then quick=(--quick); else quick=(); fi
step environment 60 "$PY" - "$DEVICE" <<'PY'
import json, platform, sys
import torch, torchvision
device = sys.argv[1]
info = {"python": platform.python_version(), "torch": torch.__version__,
        "torchvision": torchvision.__version__, "cuda_available": torch.cuda.is_available()}
if device == "cuda":
    props = torch.cuda.get_device_properties(0)
    info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                cuda=torch.version.cuda, nccl=".".join(map(str, torch.cuda.nccl.version())))
print(json.dumps(info))
PY

for amp in on off; do
  for cl in on off; do
    step "train_amp-${amp}_cl-${cl}" 90 "$PY" benchmarks/bench_train.py --device "$DEVICE" \
      --amp "$amp" --channels-last "$cl" --warmup 3 --iterations 12 --repeats 1 "${quick[@]}"
    step "predict_amp-${amp}_cl-${cl}" 60 "$PY" benchmarks/bench_predict.py --device "$DEVICE" \
      --amp "$amp" --channels-last "$cl" --count 32 --batch-size 8 --repeats 3 "${quick[@]}"
  done
done

data="$work/sample"
step sample_data 60 "$PY" -c "from napari_detlab.core.annotations.sample_data import write_sample_dataset as w; print(w('$data'))"
epochs=3; [ "$QUICK" = 1 ] && epochs=1
step round_trip_train 150 "$PY" -m napari_detlab.cli.main train "$data" --output "$work/run" \
  --preset fast --epochs "$epochs" --device "$DEVICE" --json-events
step round_trip_predict 60 "$PY" -m napari_detlab.cli.main predict "$work/run/best.pt" "$data" \
  --output "$data/predictions" --device "$DEVICE"
step round_trip_evaluate 60 "$PY" -m napari_detlab.cli.main evaluate "$data/predictions" "$data" \
  --json
step torchrun_one_process 120 "$PY" -m torch.distributed.run --standalone --nproc_per_node 1 \
  -m napari_detlab.cli.main train "$data" --output "$work/ddp" --preset fast \
  --max-iterations 10 --device "$DEVICE" --json-events

"$PY" - "$work" "$OUT/gpu_check.json" "$log" "$(( $(date +%s) - started ))" <<'PY'
import json, sys
from pathlib import Path
work, target, log, seconds = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])

def parsed(name):
    text = (work / f"{name}.out").read_text() if (work / f"{name}.out").is_file() else ""
    events = [json.loads(l) for l in text.splitlines() if l.startswith("{") and l.endswith("}")]
    try:
        return json.loads(text)
    except ValueError:
        return events or text[-2000:]

steps = [json.loads(line) for line in (work / "steps.jsonl").read_text().splitlines()]
summary = {"seconds": seconds, "steps": steps}
for step in steps:
    result = parsed(step["step"])
    name = step["step"]
    if name.startswith(("train_", "predict_")) and isinstance(result, dict):
        keep = ("device", "torch", "amp", "channels_last", "engine_images_per_s",
                "bare_images_per_s", "ratio", "engine_runs", "bare_runs", "preset", "batch_size")
        result = {k: result[k] for k in keep if k in result}
    elif name in ("round_trip_train", "torchrun_one_process") and isinstance(result, list):
        first, last = result[0], result[-1]
        result = {"device": first.get("device"), "status": last.get("status"),
                  "best_metric": last.get("best_metric"), "message": last.get("message")}
    summary[name] = result
summary["ok"] = all(s["status"] == "ok" for s in steps)
target.write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps({"ok": summary["ok"], "seconds": seconds, "out": str(target)}))
PY
rm -rf "$work"
