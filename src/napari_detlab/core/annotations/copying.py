"""Copying boxes from one image onto another: the previous image's boxes as a starting point.

Labelling tools (labelImg, CVAT, X-AnyLabeling) all offer it, because consecutive images of a
series (frames, tiles, planes) mostly hold the same objects: copying them and moving the few
that moved is far quicker than drawing them all again.
"""

from __future__ import annotations

import numpy as np

from napari_detlab.core.annotations.annotation import ImageAnnotation, sanitize_boxes
from napari_detlab.core.boxes import box_iou

__all__ = ["SAME_BOX_IOU", "boxes_not_yet_in"]

# A copied box this close to a box of the same class already there is that box: copying
# twice, or onto an image whose boxes were already copied and nudged, adds nothing.
SAME_BOX_IOU = 0.9


def boxes_not_yet_in(
    target: ImageAnnotation, source: ImageAnnotation, image_size: tuple[int, int] | None
) -> ImageAnnotation:
    """The boxes of ``source`` that ``target`` lacks, clipped to an image of ``image_size``.

    Boxes left under a pixel by the clipping (they lay outside this image) are dropped; so is
    a box that overlaps one of the same class in ``target`` by :data:`SAME_BOX_IOU` or more.
    Only boxes and labels are filled in.
    """
    boxes, keep = sanitize_boxes(source.boxes, image_size)
    labels = np.asarray(source.labels, dtype=object)
    boxes, labels = boxes[keep], labels[keep]
    if len(boxes) and len(target):
        overlap = box_iou(boxes, target.boxes)
        same_class = labels[:, None] == np.asarray(target.labels, dtype=object)[None, :]
        keep = ~((overlap >= SAME_BOX_IOU) & same_class).any(axis=1)
        boxes, labels = boxes[keep], labels[keep]
    return ImageAnnotation(boxes=boxes, labels=[str(label) for label in labels])
