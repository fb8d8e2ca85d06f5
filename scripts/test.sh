#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole suite headless: pytest-xvfb starts a virtual
# X server with Mesa for the napari tests, then the napari-facing tests once more on the
# oldest napari claimed (scripts/test_oldest_napari.sh). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check src tests benchmarks
.venv/bin/python -m pytest "$@"
# The napari-facing tests again, on the oldest napari the plugin claims (napari>=0.9).
bash scripts/test_oldest_napari.sh -q "$@"
