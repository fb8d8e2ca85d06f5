"""Training augmentation that moves the boxes with the pixels.

Faster R-CNN resizes every image so its shorter side is ``min_size`` before the backbone sees
it, so zooming a whole image in or out would be undone by the model. :class:`Augmenter`'s
scale jitter therefore keeps the canvas size and zooms the content inside it: a factor above
one crops a random window and enlarges it, below one shrinks the image onto a padded canvas.
Objects then really appear larger or smaller to the detector, which is what scale jitter is
for.

Every transform returns boxes that are clipped to the image, and boxes that end up less than
``min_box_size`` pixels wide or high (or mostly cut away) are dropped together with their
labels, so a degenerate box can never reach a training step and crash or poison its loss.

Randomness comes from one ``torch.Generator`` when a ``seed`` is given (reproducible runs and
tests) and otherwise from torch's global generator, which ``torch.manual_seed`` controls and
which PyTorch's ``DataLoader`` seeds differently in every worker process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812  (torch's own convention)

from napari_detlab.core.training.options import TrainingInputError

__all__ = ["Augmenter", "clean_boxes", "hflip", "scale_jitter", "vflip"]


def clean_boxes(
    boxes: torch.Tensor,
    labels: torch.Tensor,
    width: float,
    height: float,
    *,
    min_size: float = 1.0,
    original_area: torch.Tensor | None = None,
    min_visible: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clip boxes to a ``width x height`` image and drop those a detector cannot learn from.

    Parameters
    ----------
    boxes, labels
        ``float (N, 4)`` xyxy and ``int64 (N,)``.
    width, height
        The image the boxes must lie in.
    min_size
        Boxes narrower or lower than this many pixels after clipping are dropped: torchvision
        asserts on zero-size boxes and tiny ones only add noise to the regression loss.
    original_area, min_visible
        When given, boxes keeping less than ``min_visible`` of ``original_area`` (measured in
        the same pixel scale as ``boxes``) are dropped: an object cut down to a sliver by a
        crop is no longer recognisable and should not be asked of the model.
    """
    if boxes.numel() == 0:
        return boxes.reshape(0, 4).float(), labels.reshape(0).long()
    boxes = boxes.clone().float()
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    box_w = boxes[:, 2] - boxes[:, 0]
    box_h = boxes[:, 3] - boxes[:, 1]
    keep = (box_w >= min_size) & (box_h >= min_size)
    if original_area is not None and min_visible > 0:
        keep &= (box_w * box_h) >= min_visible * original_area
    return boxes[keep], labels[keep]


def hflip(image: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror a ``C x H x W`` image left-right and its xyxy boxes with it."""
    width = image.shape[-1]
    flipped = boxes.clone()
    flipped[:, 0] = width - boxes[:, 2]
    flipped[:, 2] = width - boxes[:, 0]
    return image.flip(-1), flipped


def vflip(image: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror a ``C x H x W`` image top-bottom and its xyxy boxes with it."""
    height = image.shape[-2]
    flipped = boxes.clone()
    flipped[:, 1] = height - boxes[:, 3]
    flipped[:, 3] = height - boxes[:, 1]
    return image.flip(-2), flipped


def scale_jitter(
    image: torch.Tensor,
    boxes: torch.Tensor,
    scale: float,
    offset: tuple[float, float],
    fill: float | torch.Tensor = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Zoom the content of an image by ``scale`` on a canvas of the same size.

    Parameters
    ----------
    image
        ``float C x H x W``.
    boxes
        ``float (N, 4)`` xyxy; returned scaled and shifted but not clipped (see
        :func:`clean_boxes`).
    scale
        Above 1 enlarges the content (a window is cropped), below 1 shrinks it onto padding.
    offset
        ``(fx, fy)`` in ``[0, 1]``: where the window (or the shrunk image) sits, as a fraction
        of the free room, so the same numbers reproduce the same result.
    fill
        Value (or per-channel tensor) of the padding when the content is shrunk.
    """
    _, height, width = image.shape
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    resized = F.interpolate(
        image[None], size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=scale < 1
    )[0]
    sx, sy = new_w / width, new_h / height
    boxes = boxes * torch.tensor([sx, sy, sx, sy], dtype=boxes.dtype)
    fx, fy = offset
    if new_w >= width and new_h >= height:
        left, top = round((new_w - width) * fx), round((new_h - height) * fy)
        out = resized[:, top : top + height, left : left + width]
        shift = torch.tensor([-left, -top, -left, -top], dtype=boxes.dtype)
    else:
        canvas = torch.empty_like(image)
        canvas[:] = fill if not torch.is_tensor(fill) else fill.reshape(-1, 1, 1)
        # Shrinking in one axis and enlarging in the other cannot happen with one scale, but a
        # rounding difference can: crop what sticks out, pad what is missing.
        crop_w, crop_h = min(new_w, width), min(new_h, height)
        src_left = round((new_w - crop_w) * fx)
        src_top = round((new_h - crop_h) * fy)
        dst_left = round((width - crop_w) * fx)
        dst_top = round((height - crop_h) * fy)
        canvas[:, dst_top : dst_top + crop_h, dst_left : dst_left + crop_w] = resized[
            :, src_top : src_top + crop_h, src_left : src_left + crop_w
        ]
        out = canvas
        dx, dy = dst_left - src_left, dst_top - src_top
        shift = torch.tensor([dx, dy, dx, dy], dtype=boxes.dtype)
    return out.contiguous(), boxes + shift


@dataclass
class Augmenter:
    """Random flips, scale jitter and mild photometric changes for detection training.

    Parameters
    ----------
    hflip_p, vflip_p
        Probability of a left-right / top-bottom mirror. Vertical flips are off by default
        because photographs have an up; microscopy users may turn them on.
    scale_range
        Zoom factors drawn uniformly (in log space) for scale jitter; ``(1, 1)`` disables it.
    scale_p
        Probability that scale jitter is applied at all.
    brightness, contrast
        Maximum additive brightness shift and multiplicative contrast change (0 disables).
    min_box_size
        Boxes smaller than this many pixels after a transform are dropped.
    min_visible
        Fraction of a box's area that must stay inside the image after a crop.
    seed
        Seed of a private generator (reproducible); ``None`` uses torch's global generator,
        which ``torch.manual_seed`` and the ``DataLoader``'s per-worker seeding control: the
        right choice for training.
    """

    hflip_p: float = 0.5
    vflip_p: float = 0.0
    scale_range: tuple[float, float] = (0.75, 1.33)
    scale_p: float = 0.5
    brightness: float = 0.1
    contrast: float = 0.1
    min_box_size: float = 1.0
    min_visible: float = 0.25
    seed: int | None = None

    def __post_init__(self) -> None:
        low, high = self.scale_range
        if not 0 < low <= high:
            raise TrainingInputError(
                f"scale_range must satisfy 0 < low <= high, got {self.scale_range}"
            )
        self._generator: torch.Generator | None = None
        self._worker_seed: int | None = None
        if self.seed is not None:
            self._generator = torch.Generator().manual_seed(int(self.seed))

    def _rng(self) -> torch.Generator | None:
        """The generator to draw from; seeded ones are re-seeded once per ``DataLoader`` worker.

        A worker holds a copy of this object; without the re-seed every worker (and, with
        non-persistent workers, every epoch) would repeat the same "random" sequence. Worker
        seeds (``torch.initial_seed()``) follow from the main process's ``torch.manual_seed``,
        so runs stay reproducible.
        """
        if self._generator is None:
            return None
        worker = torch.utils.data.get_worker_info()
        if worker is not None and self._worker_seed != worker.seed:
            self._worker_seed = worker.seed
            self._generator.manual_seed(hash((self.seed, worker.seed)) & 0x7FFF_FFFF_FFFF_FFFF)
        return self._generator

    def _uniform(self, low: float = 0.0, high: float = 1.0) -> float:
        value = torch.rand((), generator=self._rng()).item()
        return low + (high - low) * value

    def __call__(
        self, image: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Augment one ``float C x H x W`` image in ``[0, 1]`` with its boxes and labels."""
        _, height, width = image.shape
        boxes = boxes.reshape(-1, 4).float()
        low, high = self.scale_range
        if high > low and self._uniform() < self.scale_p:
            scale = math.exp(self._uniform(math.log(low), math.log(high)))
            area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) * scale * scale
            fill = image.mean(dim=(1, 2))
            image, boxes = scale_jitter(
                image, boxes, scale, (self._uniform(), self._uniform()), fill
            )
            boxes, labels = clean_boxes(
                boxes, labels, width, height, min_size=self.min_box_size,
                original_area=area, min_visible=self.min_visible,
            )  # fmt: skip
        if self._uniform() < self.hflip_p:
            image, boxes = hflip(image, boxes)
        if self._uniform() < self.vflip_p:
            image, boxes = vflip(image, boxes)
        if self.brightness > 0 or self.contrast > 0:
            gain = 1.0 + self._uniform(-self.contrast, self.contrast)
            shift = self._uniform(-self.brightness, self.brightness)
            mean = image.mean()
            image = ((image - mean) * gain + mean + shift).clamp_(0.0, 1.0)
        boxes, labels = clean_boxes(boxes, labels, width, height, min_size=self.min_box_size)
        return image, boxes, labels
