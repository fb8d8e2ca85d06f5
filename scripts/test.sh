#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole suite headless: pytest-xvfb starts a virtual
# X server with Mesa for the napari tests; the napari-facing tests run first on the oldest
# napari claimed (scripts/test_oldest_napari.sh). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check src tests benchmarks scripts docs
# The napari-facing tests on the oldest napari the plugin claims (napari>=0.9), then the
# whole suite on the pinned one (its summary is the last line).
bash scripts/test_oldest_napari.sh -q "$@"
.venv/bin/python -m pytest "$@"
