"""Training on crops of large images, so the model learns small objects at their own pixels.

Tiled prediction (:mod:`napari_detlab.core.model.tiling`) shows the model a large image in
tiles of its input size, at scale 1. A model trained on the same image resized whole would
have seen its objects shrunk many times, so training must show it the same view: a window
of the model's input size (a ``min_size`` square, taken at scale 1) cut from the image.

When crops are used
-------------------
The rule is tiling's (:func:`~napari_detlab.core.model.tiling.needs_tiles`): ``"auto"`` crops
an image when resizing it whole would shrink it more than 4 times on a side; ``"on"`` crops
every image, ``"off"`` none. An image smaller than the crop on one side is padded with
zeros, as a tile is.

Where crops fall
----------------
Most crops (1 - ``negative_p``) are placed around one of the image's boxes, chosen at
random, at a random position that holds the whole box (a box larger than the crop gets a
crop centred on it); the rest fall anywhere, so the model also sees the background between
objects. An image without boxes gets random crops. A large image stands for several items
per epoch, one per crop-sized area of it (at most ``max_repeats``), so a slide of a
thousand cells is not trained on one crop per epoch.

Which boxes a crop keeps
------------------------
Boxes are clipped to the crop; a box keeps its place when at least ``min_visible`` (half) of
its area is inside and it stays at least one pixel wide, and is dropped otherwise: a sliver
of an object is not something the model should be asked to find, and the model never sees
the rest of it. (Tiled prediction drops or joins such pieces for the same reason.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from napari_detlab.core.model.tiling import TILING_MODES, needs_tiles
from napari_detlab.core.training.augment import clean_boxes
from napari_detlab.core.training.options import TrainingInputError

__all__ = ["CropSampler", "crop_around", "crop_window"]


def crop_window(
    boxes: torch.Tensor,
    height: int,
    width: int,
    size: int,
    draws: tuple[float, float, float, float],
    negative_p: float = 0.2,
) -> tuple[int, int]:
    """The top-left ``(x0, y0)`` of a ``size`` crop, from four numbers in [0, 1).

    ``draws[0]`` decides between a crop around a box (``>= negative_p``) and one anywhere,
    ``draws[1]`` which box, ``draws[2:]`` the position. Plain numbers in, so the placement
    is a function a test can check for every box.
    """
    boxes = boxes.reshape(-1, 4)
    span_x, span_y = max(width - size, 0), max(height - size, 0)
    if len(boxes) == 0 or draws[0] < negative_p:
        return round(draws[2] * span_x), round(draws[3] * span_y)
    box = boxes[min(int(draws[1] * len(boxes)), len(boxes) - 1)].tolist()
    return (
        _start(box[0], box[2], span_x, size, draws[2]),
        _start(box[1], box[3], span_y, size, draws[3]),
    )


def _start(low: float, high: float, span: int, size: int, draw: float) -> int:
    """A start in ``[0, span]`` whose window ``[start, start + size]`` holds ``[low, high]``."""
    first, last = max(math.ceil(high) - size, 0), min(math.floor(low), span)
    if first > last:  # larger than the crop: centre it
        return min(max(round((low + high - size) / 2), 0), span)
    return first + round(draw * (last - first))


def crop_around(
    image: torch.Tensor,
    boxes: torch.Tensor,
    labels: torch.Tensor,
    x0: int,
    y0: int,
    size: int,
    min_visible: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``size`` square at ``(x0, y0)`` of a ``C x H x W`` image (zero-padded past the
    image), with the boxes moved into it, clipped, and dropped by the visibility rule."""
    channels, height, width = image.shape
    piece = image[:, y0 : y0 + size, x0 : x0 + size]
    if piece.shape[1] < size or piece.shape[2] < size:
        padded = piece.new_zeros((channels, size, size))
        padded[:, : piece.shape[1], : piece.shape[2]] = piece
        piece = padded
    boxes = boxes.reshape(-1, 4).float()
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    moved = boxes - torch.tensor([x0, y0, x0, y0], dtype=boxes.dtype)
    limit_x, limit_y = min(size, width - x0), min(size, height - y0)
    kept, kept_labels = clean_boxes(
        moved, labels, limit_x, limit_y, original_area=area, min_visible=min_visible
    )
    return piece.contiguous(), kept, kept_labels


@dataclass
class CropSampler:
    """Crops large training images around their boxes (see the module's notes).

    Parameters
    ----------
    size
        Side of the square crop; the model's ``min_size`` so the model takes it at scale 1.
    min_size, max_size
        The model's resize, for the ``"auto"`` rule.
    mode
        ``"auto"``, ``"on"`` or ``"off"``.
    negative_p
        Share of crops placed anywhere rather than around a box.
    min_visible
        Share of a box's area that must stay inside the crop for the box to be kept.
    max_repeats
        Most items per epoch one large image stands for.
    """

    size: int
    min_size: int
    max_size: int
    mode: str = "auto"
    negative_p: float = 0.2
    min_visible: float = 0.5
    max_repeats: int = 16

    def __post_init__(self) -> None:
        if self.mode not in TILING_MODES:
            raise TrainingInputError(
                f"crops must be one of {', '.join(TILING_MODES)}, got {self.mode!r}"
            )
        if self.size < 16:
            raise TrainingInputError(f"crop size must be at least 16 pixels, got {self.size}")

    def applies(self, height: int, width: int) -> bool:
        """Whether an image of this size is trained on crops."""
        if self.mode == "auto":
            return needs_tiles(height, width, self.min_size, self.max_size)
        return self.mode == "on"

    def repeats(self, height: int, width: int) -> int:
        """Items per epoch for an image of this size: one per crop-sized area, capped."""
        if not self.applies(height, width):
            return 1
        return max(1, min(self.max_repeats, math.ceil(height * width / self.size**2)))

    def items(self, sizes: Sequence[tuple[int, int]]) -> list[int]:
        """Item -> image index for images of these ``(height, width)``: each image's index
        repeated :meth:`repeats` times, in order."""
        return [index for index, size in enumerate(sizes) for _ in range(self.repeats(*size))]

    def __call__(
        self, image: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A random crop of ``image`` with its boxes, or the image itself when it is small."""
        _, height, width = image.shape
        if not self.applies(height, width):
            return image, boxes, labels
        draws = tuple(torch.rand(4).tolist())
        x0, y0 = crop_window(boxes, height, width, self.size, draws, self.negative_p)
        return crop_around(image, boxes, labels, x0, y0, self.size, self.min_visible)
