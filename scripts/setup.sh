#!/usr/bin/env bash
# Set up everything napari-detlab needs on a fresh Debian/Ubuntu machine, idempotently:
#   - Xvfb + Mesa + the X/Qt libraries napari needs (apt, only those missing);
#   - .venv with what requirements/dev.txt names (the package and its test tools), pinned by
#     constraints.txt (torch 2.14.1 / torchvision 0.29.1: never the CPU-only torch 2.13 wheel).
# Re-running is cheap: pip runs again only when one of those files or pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(xvfb libgl1-mesa-dri libglx-mesa0 libegl1 libxkbcommon-x11-0 libxcb-cursor0
  libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0
  libxcb-xinerama0 libxcb-xinput0 libdbus-1-3 libfontconfig1)

if command -v dpkg >/dev/null 2>&1; then
  missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
stamp=.venv/.detlab-setup-stamp
want=$(cat pyproject.toml requirements/dev.txt constraints.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # torch with CUDA and its libraries take about 6 GB: say so before pip runs out of room.
  free_mb=$(df -Pm .venv | awk 'NR == 2 {print $4}')
  if [ "${free_mb:-0}" -lt 8000 ]; then
    echo "setup: only ${free_mb} MB free beside .venv; torch with CUDA needs about 6 GB" >&2
  fi
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements/dev.txt
  echo "$want" > "$stamp"
fi
# Fail early and clearly if the torch build cannot run torchvision's compiled ops.
.venv/bin/python - <<'PY'
import torch, torchvision
from torchvision.ops import nms
nms(torch.zeros((1, 4)), torch.zeros(1), 0.5)
print(f"setup: torch {torch.__version__}, torchvision {torchvision.__version__}, "
      f"CUDA {'available' if torch.cuda.is_available() else 'not available'}")
PY
