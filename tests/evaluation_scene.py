"""A dataset whose evaluation figures are known by hand, split into validation, training, new.

Classes ``cell`` and ``crystal``; a checkpoint trained on ``t1`` and validated on ``v1``;
``n1`` annotated after it. At the default Review setting (score 0.5, NMS 0.5, match 0.5):

``v1`` (validation): cells A, B and crystal C. Predictions: cell on A 0.9 (TP), crystal on B
0.8 (a cell called crystal: cross-class), cell on nothing 0.7 (FP), crystal on C 0.3 (below
the threshold: on the PR curve only).

* confusion: cell->cell 1, cell->crystal 1, crystal missed 1, false-positive cell 1;
  counts TP 1, FP 2 (the cross-class box and the FP), missed 2 (B and C);
* PR points, cell: (recall .5, precision 1), (.5, .5): area AP 0.5;
  crystal: (0, 0), (1, .5): area AP 0.5;
* pycocotools on every prediction: cell AP = AP50 = 51/101 (precision 1 up to recall .5 of
  101 points, every IoU exact), crystal 0.5; on the kept ones (the dock), crystal 0.

``t1`` (training): one cell found exactly, 0.95. ``n1`` (new): one crystal found, 0.9.
"""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore, ClassSpec
from napari_detlab.core.model.checkpoint import save_checkpoint
from napari_detlab.core.model.config import ModelConfig
from napari_detlab.core.model.predict import Prediction, write_prediction

CLASSES = ["cell", "crystal"]
COCO_CELL_AP = 51 / 101
TRUTHS = {
    "v1": ImageAnnotation(
        np.array([[0, 0, 10, 10], [20, 0, 30, 10], [0, 20, 10, 30]], np.float32),
        ["cell", "cell", "crystal"], reviewed=True, image_size=(64, 64),
    ),
    "t1": ImageAnnotation(np.array([[0, 0, 10, 10]], np.float32), ["cell"], reviewed=True,
                          image_size=(64, 64)),
    "n1": ImageAnnotation(np.array([[30, 30, 40, 40]], np.float32), ["crystal"], reviewed=True,
                          image_size=(64, 64)),
}  # fmt: skip
PREDICTIONS = {
    "v1": Prediction(
        np.array([[0, 0, 10, 10], [20, 0, 30, 10], [50, 50, 60, 60], [0, 20, 10, 30]], np.float32),
        ["cell", "crystal", "cell", "crystal"], np.array([0.9, 0.8, 0.7, 0.3], np.float32),
        (64, 64),
    ),
    "t1": Prediction(np.array([[0, 0, 10, 10]], np.float32), ["cell"], np.array([0.95]), (64, 64)),
    "n1": Prediction(np.array([[30, 30, 40, 40]], np.float32), ["crystal"], np.array([0.9]),
                     (64, 64)),
}  # fmt: skip
SPLIT = {"train": ["t1"], "val": ["v1"]}


def write_checkpoint(path: Path, *, with_split: bool = True) -> Path:
    """A real checkpoint file (a stand-in network: only its split is read here)."""
    return save_checkpoint(
        path, model=torch.nn.Linear(1, 1), config=ModelConfig(classes=CLASSES), epoch=1,
        metrics=None, split=SPLIT if with_split else None,
    )  # fmt: skip


def write_scene(folder: Path) -> tuple[AnnotationStore, Path]:
    """Images, annotations, a checkpoint under ``folder/run`` and its predictions.

    Returns the store and the prediction folder.
    """
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = write_checkpoint(folder / "run" / "best.pt")
    rng = np.random.default_rng(0)
    store = AnnotationStore(folder)
    store.save_classes([ClassSpec("cell", "#ff0000"), ClassSpec("crystal", "#00ffff")])
    for stem, truth in TRUTHS.items():
        iio.imwrite(folder / f"{stem}.png", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
        store.save(f"{stem}.png", truth)
        write_prediction(folder / "predictions", stem, PREDICTIONS[stem], checkpoint=checkpoint)
    return store, folder / "predictions"
