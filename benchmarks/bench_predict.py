"""Prediction throughput of ``predict_images`` against a bare torchvision loop, in one run.

Both loops use the same model, images, batch size and device, and both include what a user
waits for: decoding each image file, the forward pass under ``torch.inference_mode`` and
bringing the detections back to the CPU. The engine also names the classes and builds
:class:`~napari_detlab.core.model.predict.Prediction` objects, and on a GPU decodes the next batch
in a background thread; the goal is a ratio of at least 0.95.

After one warm-up pass of each, passes alternate in ABBA order (engine, bare, bare, engine,
...) and rates are total images over total time, so a neighbour's burst of CPU load on a
shared machine hurts both alike. The rate per CPU-second of this process is reported too:
on a busy machine it is the steadier comparison.

Usage::

    .venv/bin/python benchmarks/bench_predict.py            # 16 images of 512 px, fast preset
    .venv/bin/python benchmarks/bench_predict.py --quick    # seconds, for CI
    .venv/bin/python benchmarks/bench_predict.py --images ../shared/data/heads/input --device cuda
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from napari_detlab.core.annotations.sample_data import SAMPLE_CLASSES, write_synthetic_dataset
from napari_detlab.core.images import list_images, read_image, to_float_rgb
from napari_detlab.core.model.builder import build_model
from napari_detlab.core.model.config import preset
from napari_detlab.core.model.device import resolve_device
from napari_detlab.core.model.predict import predict_images

GOAL = 0.95


def bare_loop(
    model: torch.nn.Module, paths: list[Path], batch_size: int, device: torch.device, amp: bool
) -> int:
    """The loop a torchvision tutorial would write: decode, stack in a list, forward, to CPU."""
    count = 0
    for start in range(0, len(paths), batch_size):
        batch = [
            torch.from_numpy(to_float_rgb(read_image(p))).permute(2, 0, 1).to(device)
            for p in paths[start : start + batch_size]
        ]
        with torch.inference_mode(), torch.autocast(device.type, enabled=amp):
            outputs = model(batch)
        outputs = [{key: value.cpu() for key, value in out.items()} for out in outputs]
        count += len(outputs)
    return count


def engine_loop(model, config, paths, batch_size, device, amp: bool, channels_last: bool) -> int:
    predictions = predict_images(
        model, config, paths, batch_size=batch_size, device=device, amp=amp,
        channels_last=channels_last,
    )  # fmt: skip
    return sum(1 for _ in predictions)


def timed(fn, device: torch.device) -> tuple[int, float, float]:
    """``(images, wall seconds, process CPU seconds)`` of one pass."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    count = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return count, time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 small images, 2 repeats")
    parser.add_argument("--images", type=Path, help="a folder of images (default: synthetic)")
    parser.add_argument("--count", type=int, default=16, help="synthetic images")
    parser.add_argument("--size", type=int, default=512, help="synthetic image side, pixels")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--preset", default="fast", choices=("fast", "accurate"))
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--repeats", type=int, default=6, help="timed passes of each loop")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    parser.add_argument("--amp", choices=("on", "off"), default="off", help="mixed precision")
    parser.add_argument("--channels-last", choices=("on", "off"), default="off")
    args = parser.parse_args(argv)
    amp, channels_last = args.amp == "on", args.channels_last == "on"
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.count, args.size, args.repeats = 4, 128, 2

    device = resolve_device(args.device)
    torch.manual_seed(0)
    config = preset(args.preset, list(SAMPLE_CLASSES)).replace(pretrained="none")
    if args.quick:
        config = config.replace(min_size=128, max_size=128)
    model = build_model(config, load_weights=False).eval().to(device)
    if channels_last:  # both loops run the same model, so both get its memory order
        model = model.to(memory_format=torch.channels_last)

    with tempfile.TemporaryDirectory() as tmp:
        if args.images is not None:
            paths = list_images(args.images)[: args.count if args.quick else None]
        else:
            folder = write_synthetic_dataset(Path(tmp), args.count, size=(args.size, args.size))
            paths = list_images(folder)
        if not paths:
            print(f"no images in {args.images}", file=sys.stderr)
            return 2
        runs = {
            "engine": lambda: engine_loop(
                model, config, paths, args.batch_size, device, amp, channels_last
            ),
            "bare": lambda: bare_loop(model, paths, args.batch_size, device, amp),
        }
        for fn in runs.values():  # warm-up: allocator, cuDNN autotuning, page cache
            fn()
        passes: dict[str, list[tuple[int, float, float]]] = {name: [] for name in runs}
        for repeat in range(args.repeats):
            # engine-bare, bare-engine, ...: neither always runs in the other's wake.
            for name in list(runs)[:: 1 if repeat % 2 == 0 else -1]:
                passes[name].append(timed(runs[name], device))

    def rate(name: str, column: int) -> float:
        return sum(p[0] for p in passes[name]) / sum(p[column] for p in passes[name])

    engine, bare = rate("engine", 1), rate("bare", 1)
    engine_cpu, bare_cpu = rate("engine", 2), rate("bare", 2)
    result = {
        "benchmark": "predict",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "cpu_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "torch": str(torch.__version__),
        "preset": args.preset,
        "backbone": config.backbone,
        "min_size": config.min_size,
        "images": len(paths),
        "image_source": str(args.images) if args.images else f"synthetic {args.size}x{args.size}",
        "batch_size": args.batch_size,
        "amp": amp,
        "channels_last": channels_last,
        "repeats": args.repeats,
        "engine_images_per_s": round(engine, 3),
        "bare_images_per_s": round(bare, 3),
        "ratio": round(engine / bare, 3),
        "goal_ratio": GOAL,
        "meets_goal": engine / bare >= GOAL,
        # Images per CPU-second of this process: robust to other processes' load on a shared
        # machine, where wall-clock passes vary by 2x from one minute to the next.
        "engine_images_per_cpu_s": round(engine_cpu, 3),
        "bare_images_per_cpu_s": round(bare_cpu, 3),
        "cpu_time_ratio": round(engine_cpu / bare_cpu, 3),
        "engine_pass_images_per_s": [round(n / w, 3) for n, w, _ in passes["engine"]],
        "bare_pass_images_per_s": [round(n / w, 3) for n, w, _ in passes["bare"]],
        "quick": args.quick,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
