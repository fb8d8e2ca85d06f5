"""Images with more objects than a model keeps per image: predicted again with room for them.

torchvision's Faster R-CNN keeps at most ``box_detections_per_img`` detections per image
(300 in our presets) out of ``rpn_post_nms_top_n_test`` proposals. Training raises both for
a dataset whose densest image needs it
(:meth:`~napari_detlab.core.model.config.ModelConfig.with_room_for`), but a model trained on
sparse images and run on a field of 1,000 cells would silently return its 300 best.

Hitting the cap alone says little: an undertrained model fills it with weak boxes on any
image. An image is *crowded* when the cap is reached and even the weakest detection kept
scores at least :data:`CONFIDENT_SCORE`, so that the cut certainly took objects. Only
those images are predicted again, with twice the room each time (and twice as many
proposals), until fewer than the cap come back or :data:`MOST_DETECTIONS` is reached. The
weights are unchanged; only the caps of the model are raised for that forward pass.
Images predicted in tiles are left alone: their caps apply to each tile.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from napari_detlab.core.model.tiling import Tiling, detect

__all__ = [
    "CONFIDENT_SCORE",
    "MOST_DETECTIONS",
    "CrowdedImage",
    "detect_whole",
    "detection_caps",
    "detections_cap",
]

log = logging.getLogger(__name__)

# A detection at least this sure is taken for an object (the Review's default threshold).
CONFIDENT_SCORE = 0.5
# The most detections an image is given room for (memory grows with the proposals).
MOST_DETECTIONS = 10_000


@dataclass(frozen=True)
class CrowdedImage:
    """An image predicted again with room for its objects: what the person is told."""

    path: Path
    cap: int  # the model's own cap on detections per image, filled with confident ones
    found: int  # the detections kept with room for more

    def __str__(self) -> str:
        return (
            f"{self.path.name}: {self.cap} confident detections filled the model's cap per "
            f"image; predicted again with room for more: {self.found}"
        )


def detections_cap(model: nn.Module) -> int | None:
    """How many detections per image the model keeps; ``None`` for a model whose caps
    :func:`detection_caps` cannot raise (one without torchvision's heads and RPN)."""
    cap = getattr(getattr(model, "roi_heads", None), "detections_per_img", None)
    rpn = getattr(model, "rpn", None)
    counts = [getattr(rpn, name, None) for name in ("_pre_nms_top_n", "_post_nms_top_n")]
    if not isinstance(cap, int) or not all(isinstance(c, dict) for c in counts):
        return None
    return cap


@contextmanager
def detection_caps(model: nn.Module, detections: int) -> Iterator[None]:
    """While inside, ``model`` keeps up to ``detections`` per image when predicting, from at
    least twice as many proposals (before and after the RPN's NMS); restored on leaving.

    torchvision's RPN keeps its proposal counts in ``_pre_nms_top_n`` / ``_post_nms_top_n``
    (no public setter; the same since torchvision 0.3), read at every forward pass.
    """
    heads, rpn = model.roi_heads, model.rpn
    before = (heads.detections_per_img, dict(rpn._pre_nms_top_n), dict(rpn._post_nms_top_n))
    heads.detections_per_img = detections
    for counts in (rpn._pre_nms_top_n, rpn._post_nms_top_n):
        counts["testing"] = max(counts["testing"], 2 * detections)
    try:
        yield
    finally:
        heads.detections_per_img = before[0]
        rpn._pre_nms_top_n, rpn._post_nms_top_n = before[1], before[2]


def is_crowded(output: dict[str, torch.Tensor], cap: int) -> bool:
    """Whether the cap cut off objects: reached, with the weakest kept still confident."""
    scores = output["scores"]
    return len(scores) >= cap and float(scores.min()) >= CONFIDENT_SCORE


def detect_whole(
    model: nn.Module,
    images: Sequence[torch.Tensor],
    min_size: int,
    max_size: int,
    tiling: Tiling,
    *,
    device: torch.device,
    amp: bool = False,
    crowded: list[int] | None = None,
) -> list[dict[str, torch.Tensor]]:
    """:func:`~napari_detlab.core.model.tiling.detect`, with crowded images predicted again
    with room for their objects. Call it under ``torch.inference_mode``.

    ``crowded``, when given, receives the index of each image predicted again.
    """
    outputs = detect(model, images, min_size, max_size, tiling, device=device, amp=amp)
    cap = detections_cap(model)
    if cap is None:
        return outputs
    again = [
        index
        for index, (image, output) in enumerate(zip(images, outputs, strict=True))
        if not tiling.applies(*image.shape[-2:], min_size, max_size) and is_crowded(output, cap)
    ]
    if crowded is not None:
        crowded.extend(again)
    while again and cap < MOST_DETECTIONS:
        cap = min(2 * cap, MOST_DETECTIONS)
        with detection_caps(model, cap):
            found = detect(
                model, [images[i] for i in again], min_size, max_size, tiling,
                device=device, amp=amp,
            )  # fmt: skip
        for index, output in zip(again, found, strict=True):
            outputs[index] = output
        again = [index for index in again if is_crowded(outputs[index], cap)]
    if again:
        log.warning(
            "%d image(s) still hold %d confident detections, the most kept per image",
            len(again), MOST_DETECTIONS,
        )  # fmt: skip
    return outputs
