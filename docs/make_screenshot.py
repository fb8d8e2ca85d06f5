"""Make ``docs/screenshot.png``: the four docks, each in front once, on the sample dataset.

The sample dataset is written to a temporary folder, a ``fast`` model is trained on it for a
few epochs with ``detlab train`` and predicts it, so that the Review dock shows real
predictions; then napari opens with every dock (as ``detlab demo`` does), each dock's tab is
brought to the front in turn, and the four window grabs are put side by side, 2 x 2.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/make_screenshot.py [BEST_PT]

Training takes about 9 minutes on a 2-core CPU (30 epochs from scratch: mAP@.5 about 0.9 on
the sample's validation images); ``BEST_PT``, a checkpoint of such a run, skips it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import napari  # noqa: F401  (first: napari_detlab then keeps Triton out of the viewer)
import numpy as np
from PIL import Image
from qtpy.QtWidgets import QApplication, QDockWidget

from napari_detlab.cli.demo import build_demo
from napari_detlab.core.annotations.sample_data import write_sample_dataset

HERE = Path(__file__).resolve().parent
DETLAB = [sys.executable, "-m", "napari_detlab.cli.main"]
TABS = ("Annotator", "Anchor viewer", "Train / predict", "Review predictions")


def trained(folder: Path, checkpoint: Path | None) -> Path:
    """A checkpoint of a run on ``folder`` (unless given), and its predictions beside it."""
    if checkpoint is None:
        run = folder / "runs" / "screenshot"
        subprocess.run(
            [*DETLAB, "train", str(folder), "--output", str(run), "--preset", "fast",
             "--epochs", "30", "--device", "cpu"],
            check=True,
        )  # fmt: skip
        checkpoint = run / "best.pt"
    subprocess.run(
        [*DETLAB, "predict", str(checkpoint), str(folder), "--output", str(folder / "predictions")],
        check=True,
    )
    return checkpoint


def grab_each_tab(folder: Path, checkpoint: Path) -> list[np.ndarray]:
    viewer, annotator = build_demo(folder)
    from napari_detlab._qt.session import session_for

    session_for(viewer).set_checkpoint(checkpoint)
    viewer.window.resize(1400, 900)
    app = QApplication.instance()
    for _ in range(20):
        app.processEvents()
    annotator.next_image()
    docks = viewer.window.dock_widgets  # name -> the widget napari put in a QDockWidget
    shots = []
    for name in TABS:
        widget = next(w for title, w in docks.items() if name.lower() in title.lower())
        dock = widget.parent()
        while dock is not None and not isinstance(dock, QDockWidget):
            dock = dock.parent()
        dock.raise_()
        for _ in range(40):
            app.processEvents()
        shots.append(viewer.screenshot(canvas_only=False, flash=False))
    viewer.close()
    return shots


def main(argv: list[str]) -> int:
    given = Path(argv[0]).resolve() if argv else None
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_sample_dataset(Path(tmp) / "sample")
        checkpoint = trained(folder, given)
        shots = grab_each_tab(folder, checkpoint)
    height = min(s.shape[0] for s in shots)
    width = min(s.shape[1] for s in shots)
    tiles = [s[:height, :width, :3] for s in shots]
    grid = np.concatenate(
        [np.concatenate(tiles[:2], axis=1), np.concatenate(tiles[2:], axis=1)], axis=0
    )
    image = Image.fromarray(grid)
    image.thumbnail((2000, 2000))
    image.save(HERE / "screenshot.png", optimize=True)
    print(HERE / "screenshot.png", image.size)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
