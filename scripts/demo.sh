#!/usr/bin/env bash
# Set up (scripts/setup.sh) and open napari with the built-in sample dataset and the docks.
# Extra arguments go to `detlab demo` (for example a folder to write the sample data to).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/detlab demo "$@"
