"""A small untrained detector in a checkpoint, and noise images to run it on.

Untrained on purpose: its scores sit around 0.4, far above the default score floor of 0.01,
so every image gets its full quota of boxes and a comparison of two ways of running the
model has something to compare, in seconds on a CPU. :func:`small_detector` with
``confident=True`` is one that calls every proposal a cell, as on a dense field of cells.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.models.detection import FasterRCNN

from napari_detlab.core.model.builder import build_model
from napari_detlab.core.model.checkpoint import save_checkpoint
from napari_detlab.core.model.config import ModelConfig, preset


def small_detector(cap: int, *, confident: bool) -> tuple[FasterRCNN, ModelConfig]:
    """The fast preset at 96 px keeping ``cap`` detections per image from ``2 * cap``
    proposals, in eval mode.

    ``confident``: its box classifier calls every proposal a ``cell`` with a score near 1 (a
    model that sees objects everywhere); otherwise, untrained, its scores sit around 0.4.
    """
    torch.manual_seed(0)
    config = preset("fast", ["cell", "crystal"]).replace(
        min_size=96, max_size=128, rpn_pre_nms_top_n_test=2 * cap,
        rpn_post_nms_top_n_test=2 * cap, box_detections_per_img=cap,
    )  # fmt: skip
    model = build_model(config, load_weights=False).eval()
    if confident:
        classifier = model.roi_heads.box_predictor.cls_score
        with torch.no_grad():
            classifier.weight.zero_()
            classifier.bias.copy_(torch.tensor([0.0, 12.0, 0.0]))
    return model, config


def tiny_checkpoint(
    path: Path, *, min_size: int = 96, max_size: int = 128, boxes: int = 60, epoch: int = 1
) -> Path:
    """The fast preset (classes ``cell``, ``crystal``) at ``min_size`` px, seed 0, saved."""
    torch.manual_seed(0)
    config = preset("fast", ["cell", "crystal"]).replace(
        min_size=min_size, max_size=max_size, rpn_post_nms_top_n_test=boxes,
        box_detections_per_img=boxes,
    )  # fmt: skip
    model = build_model(config, load_weights=False)
    return save_checkpoint(path, model=model, config=config, epoch=epoch, metrics={"map": 0.5})


def noise_images(folder: Path, sizes: Sequence[tuple[int, int]], seed: int = 0) -> list[Path]:
    """``im0.png``, ``im1.png``... of uniform RGB noise, one per ``(height, width)``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for index, (h, w) in enumerate(sizes):
        path = folder / f"im{index}.png"
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths
