"""Drawing in the Annotator's class layers as the drawing tool does, and reading the files back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from napari_detlab.core.boxes import xyxy_to_napari


def draw(layer, *xyxy: tuple[float, float, float, float]) -> None:
    """Add rectangles the way the drawing tool does: one data event on the layer."""
    layer.add_rectangles(xyxy_to_napari(np.array(xyxy, dtype=float)))


def saved(folder: Path, stem: str) -> dict:
    """The annotation file as anyone would read it."""
    return torch.load(folder / "annotations" / f"{stem}.pt", weights_only=True)
