#!/usr/bin/env bash
# Fetch, here (where pip reaches PyPI), the wheels scripts/gpu_check.sh needs on the GPU
# machine, which has Python 3.12 with torch and torchvision but no network and neither
# pycocotools nor psygnal. They go to .whl/ (ignored by git), which the device tool carries.
set -euo pipefail
cd "$(dirname "$0")/.."
pin() { grep -E "^$1==" constraints.txt | head -n 1; }
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
  "$(pin pycocotools)" "$(pin psygnal)"
ls .whl
