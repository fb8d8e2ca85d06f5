"""Bright squares on a dark image, and a fake detector that finds them as a model would see them.

The fake detector resizes what it is given as torchvision's Faster R-CNN does
(:func:`~napari_detlab.core.model.tiling.resize_scale`) and finds every bright square that is
at least ``min_side`` pixels in that view, so tiled prediction versus whole-image resizing
has a known answer: a square too small after the resize is lost, the same square in a tile
at full resolution is found, with its exact box.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from napari_detlab.core.model.tiling import resize_scale

__all__ = ["SquareFinder", "square_boxes", "squares_image"]


def square_boxes(height: int, width: int, side: int, count: int, seed: int = 0) -> np.ndarray:
    """``count`` squares of ``side`` pixels at random places, at least ``side`` apart."""
    rng = np.random.default_rng(seed)
    boxes: list[list[int]] = []
    while len(boxes) < count:
        x, y = int(rng.integers(0, width - side)), int(rng.integers(0, height - side))
        if all(abs(x - b[0]) >= 2 * side or abs(y - b[1]) >= 2 * side for b in boxes):
            boxes.append([x, y, x + side, y + side])
    return np.asarray(boxes, np.float32)


def squares_image(height: int, width: int, boxes: np.ndarray) -> np.ndarray:
    """``uint8 H x W x 3``: black, with each box filled white."""
    pixels = np.zeros((height, width, 3), np.uint8)
    for x0, y0, x1, y1 in boxes.astype(int):
        pixels[y0:y1, x0:x1] = 255
    return pixels


def _components(mask: torch.Tensor) -> torch.Tensor:
    """xyxy boxes (end exclusive) of the 8-connected components of a 2-D bool mask."""
    height, width = mask.shape
    ids = torch.arange(1, height * width + 1, dtype=torch.float64).reshape(height, width) * mask
    while True:
        grown = F.max_pool2d(ids[None, None], 3, 1, 1)[0, 0] * mask
        if torch.equal(grown, ids):
            break
        ids = grown
    boxes = []
    for value in ids[mask].unique().tolist():
        ys, xs = (ids == value).nonzero(as_tuple=True)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)


class SquareFinder(nn.Module):
    """Finds bright squares of at least ``min_side`` pixels in the model's resized view."""

    def __init__(self, min_size: int, max_size: int, min_side: int = 6) -> None:
        super().__init__()
        self.min_size, self.max_size, self.min_side = min_size, max_size, min_side
        self.roi_heads = SimpleNamespace(score_thresh=0.01, nms_thresh=0.5)
        self.inputs: list[tuple[int, int]] = []

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        return [self._find(image) for image in images]

    def _find(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        height, width = image.shape[-2:]
        self.inputs.append((height, width))
        scale = resize_scale(height, width, self.min_size, self.max_size)
        view = F.interpolate(
            image[None].float(), scale_factor=scale, mode="bilinear", recompute_scale_factor=True
        )[0]
        boxes = _components(view.mean(0) > 0.5)
        sides = torch.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        boxes = boxes[sides >= self.min_side] / scale
        return {
            "boxes": boxes,
            "scores": torch.full((len(boxes),), 0.9),
            "labels": torch.ones(len(boxes), dtype=torch.int64),
        }
