"""A crash between an edit and the next navigation loses at most the last second.

A child process opens a real viewer with the Annotator, draws a box, keeps the event loop
running for 1.2 s, draws a second box and kills itself with SIGKILL: no close handler, no
``atexit``, no flush can run. The first box must be on disk anyway; only the second, drawn
in the last instant, may be lost.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")

CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    import numpy as np
    import napari
    from qtpy.QtWidgets import QApplication
    from napari_detlab._qt.annotator import AnnotatorWidget
    from napari_detlab.core.boxes import xyxy_to_napari

    viewer = napari.Viewer(show=False)
    widget = AnnotatorWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.open_folder(sys.argv[1])
    layer = viewer.layers["boxes: object"]
    layer.add_rectangles(xyxy_to_napari(np.array([[5.0, 6.0, 25.0, 30.0]])))
    deadline = time.monotonic() + 1.2
    while time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.01)
    layer.add_rectangles(xyxy_to_napari(np.array([[30.0, 2.0, 50.0, 12.0]])))
    print("killing", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_box_survives_a_kill_one_second_after_drawing(image_folder: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(image_folder)],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )
    assert "killing" in result.stdout, result.stderr[-2000:]
    assert result.returncode == -signal.SIGKILL
    data = torch.load(image_folder / "annotations" / "img1.pt", weights_only=True)
    assert data["labels"][0] == "object"
    np.testing.assert_allclose(data["boxes"][0].numpy(), [5, 6, 25, 30])
    # no temporary file left half-written next to it
    assert not [p for p in (image_folder / "annotations").iterdir() if p.suffix == ".tmp"]
