#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole suite headless: pytest-xvfb starts a virtual
# X server with Mesa for the napari tests. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check src tests benchmarks
.venv/bin/python -m pytest "$@"
