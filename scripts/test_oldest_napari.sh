#!/usr/bin/env bash
# Run the napari-facing tests (real viewers, the plugin manifest) against the oldest napari
# this plugin claims to support (requirements/oldest-napari.txt), everything else as
# constraints.txt pins it. The older napari and vispy are installed into a folder inside
# .venv that is put first on the path, so the main environment stays as it is.
# Call after scripts/setup.sh; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
overlay=.venv/oldest-napari/site-packages
want=$(sha256sum requirements/oldest-napari.txt | cut -d' ' -f1)
if [ "$(cat "$overlay/.stamp" 2>/dev/null)" != "$want" ]; then
  rm -rf "$overlay"
  .venv/bin/python -m pip install -q --no-deps --target "$overlay" -r requirements/oldest-napari.txt
  echo "$want" > "$overlay/.stamp"
fi
expected=$(grep -E '^napari==' requirements/oldest-napari.txt | cut -d= -f3)
PYTHONPATH="$PWD/$overlay${PYTHONPATH:+:$PYTHONPATH}" DETLAB_EXPECT_NAPARI="$expected" \
  .venv/bin/python -m pytest -p no:cacheprovider tests/qt tests/test_packaging.py "$@"
