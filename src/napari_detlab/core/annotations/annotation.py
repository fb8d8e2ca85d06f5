"""One image's annotation: the record, the file's dict and the rules a dict must follow.

The annotation file of an image (``annotations/<stem>.pt``, see
:mod:`~napari_detlab.core.annotations.store`) holds ``{"boxes": float32 [N, 4] xyxy,
"labels": [str] * N, "reviewed": bool, "image_size": [height, width], "version": 2}``.
:func:`validate_annotation` checks a loaded dict against the rules and turns it into an
:class:`ImageAnnotation`, so a bad file is reported with its name and what is wrong instead
of crashing training hours later. Boxes that stick out of the image by at most
:data:`CLIP_TOLERANCE` pixels are clipped; anything else is refused.

Boxes and ``image_size`` are in pixels of the image as shown, its EXIF orientation applied
(:func:`~napari_detlab.core.images.read_image`): version 2. Files of version 1 were written
before the orientation was honoured, in the stored pixels; for a photo whose orientation is
not 1 they are validated against their own size and moved onto the shown image on load, and
written as version 2 at the next save. Nothing else changes for them.

A file written by accepting the model's predictions in a batch also holds
``"model_accepted": True`` (:data:`MODEL_ACCEPTED_KEY`) until a person reviews the image; it
is kept with the other keys in ``extra`` and read through
:attr:`ImageAnnotation.model_accepted`. Files without it read as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from napari_detlab.core.boxes import BoxRecord, as_boxes, clip_xyxy, nonempty_mask
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.images import orient_stored_boxes

__all__ = [
    "CLIP_TOLERANCE",
    "FORMAT_VERSION",
    "MODEL_ACCEPTED_KEY",
    "AnnotationError",
    "ImageAnnotation",
    "sanitize_boxes",
    "validate_annotation",
    "written_on_stored_pixels",
]

FORMAT_VERSION = 2
# Files of this version hold boxes in the image's stored pixels, its orientation not applied.
STORED_PIXELS_VERSION = 1
# The key that marks an annotation accepted from the model in one batch and not yet reviewed
# by a person (core.evaluation.batch_accept writes it, the Annotator clears it). Only present
# while true: every file written without it reads as before.
MODEL_ACCEPTED_KEY = "model_accepted"
# How far (pixels) a box may overshoot the image and still be clipped rather than refused.
CLIP_TOLERANCE = 1.0

_STORE_KEYS = frozenset({"boxes", "labels", "reviewed", "image_size", "version"})


class AnnotationError(DetlabError, ValueError):
    """An annotation file or dict that breaks the store's rules; the message names both."""


@dataclass
class ImageAnnotation(BoxRecord):
    """The boxes a person drew on one image, in the core's xyxy pixel coordinates.

    Attributes
    ----------
    boxes, labels
        See :class:`~napari_detlab.core.boxes.BoxRecord`.
    reviewed
        The user has looked at the image; with no boxes it is a negative example.
    image_size
        ``(height, width)`` of the image when known; used to clip and validate boxes.
    extra
        Any other keys of the file (VOC's per-box ``difficult`` flags, keys written by newer
        versions), kept so that a load and save round trip loses nothing. Values must be
        what ``torch.load(weights_only=True)`` reads: tensors, numbers, strings, lists, dicts.
    """

    reviewed: bool = False
    image_size: tuple[int, int] | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """The on-disk dict: tensors, strings, numbers and lists, which ``weights_only`` reads."""
        data: dict[str, object] = {
            **self.extra,
            "boxes": torch.from_numpy(np.ascontiguousarray(self.boxes, dtype=np.float32)),
            "labels": list(self.labels),
            "reviewed": bool(self.reviewed),
            "version": FORMAT_VERSION,
        }
        if self.image_size is not None:
            data["image_size"] = [int(self.image_size[0]), int(self.image_size[1])]
        return data

    @property
    def model_accepted(self) -> bool:
        """Whether the boxes were accepted from the model in a batch and no person has
        reviewed the image since (the file's :data:`MODEL_ACCEPTED_KEY`)."""
        return self.extra.get(MODEL_ACCEPTED_KEY) is True

    def marked_from_model(self, marked: bool) -> ImageAnnotation:
        """A copy with the "accepted from model, not yet reviewed" mark set or cleared."""
        extra = {key: value for key, value in self.extra.items() if key != MODEL_ACCEPTED_KEY}
        if marked:
            extra[MODEL_ACCEPTED_KEY] = True
        return ImageAnnotation(
            self.boxes.copy(), list(self.labels), self.reviewed, self.image_size, extra
        )

    @property
    def trainable(self) -> bool:
        """Whether the image takes part in training: it has boxes, or was reviewed as empty.

        An image that has a file but neither (its boxes were deleted and the flag cleared)
        counts as never looked at.
        """
        return self.reviewed or len(self) > 0

    def same_as(self, other: ImageAnnotation | None, *, ordered: bool = True) -> bool:
        """Equal boxes, labels and flag: lets a write that changes nothing be skipped.

        With ``ordered=False`` the same labelled boxes in another order count as equal: the
        Annotator's layers give boxes grouped by class while a file may interleave them (the
        sample dataset, other tools), and merely showing an image must not rewrite its file.
        """
        if (
            other is None
            or self.reviewed != other.reviewed
            or self.boxes.shape != other.boxes.shape
            or len(self) != len(other)
        ):
            return False
        if ordered:
            return self.labels == other.labels and bool(np.array_equal(self.boxes, other.boxes))
        return sorted(self._labelled_rows()) == sorted(other._labelled_rows())

    def _labelled_rows(self) -> list[tuple[str, tuple[float, ...]]]:
        return list(zip(self.labels, map(tuple, self.boxes.tolist()), strict=True))


def _as_label_list(labels: object, source: str) -> list[str]:
    """Labels as a list of non-empty strings (numpy string arrays, tuples and lists accepted)."""
    if isinstance(labels, str):
        raise AnnotationError(f"{source}: 'labels' must be a list of class names, got one string")
    if hasattr(labels, "tolist"):  # numpy arrays from the tutorial's files
        labels = labels.tolist()
    if not isinstance(labels, (list, tuple)):
        raise AnnotationError(
            f"{source}: 'labels' must be a list of class-name strings, got {type(labels).__name__}"
        )
    for index, label in enumerate(labels):
        if not isinstance(label, str):
            raise AnnotationError(
                f"{source}: label {index} is {type(label).__name__} {label!r}, not a class name"
            )
        if not label.strip():
            raise AnnotationError(f"{source}: label {index} is an empty class name")
    return list(labels)


def _as_image_size(size: object, source: str) -> tuple[int, int]:
    try:
        values = size.tolist() if hasattr(size, "tolist") else list(size)  # type: ignore[call-overload]
        height, width = (int(v) for v in values)
    except (TypeError, ValueError) as error:
        raise AnnotationError(
            f"{source}: 'image_size' must be [height, width], got {size!r}"
        ) from error
    if height <= 0 or width <= 0:
        raise AnnotationError(f"{source}: 'image_size' must be positive, got {[height, width]}")
    return height, width


def _check_extents(boxes: np.ndarray, source: str) -> None:
    for axis, name in ((0, "x1 >= x2"), (1, "y1 >= y2")):
        wrong = np.flatnonzero(boxes[:, axis] >= boxes[:, axis + 2])
        if wrong.size:
            raise AnnotationError(
                f"{source}: box {int(wrong[0])} has {name}: {boxes[wrong[0]].tolist()}"
            )


def validate_annotation(
    data: object,
    source: str = "annotation",
    real_size: tuple[int, int] | None = None,
    *,
    image: str | Path | None = None,
) -> ImageAnnotation:
    """Check a loaded dict against the store's rules and return it as an :class:`ImageAnnotation`.

    Boxes that stick out of the image by at most :data:`CLIP_TOLERANCE` pixels are clipped
    (drawing tools and float rounding overshoot); anything else wrong raises
    :class:`AnnotationError` naming ``source``, the box and the problem. A dict without a
    ``"reviewed"`` key (the tutorial's targets) counts as reviewed: someone wrote it.

    Parameters
    ----------
    data
        The loaded dict.
    source
        What the messages name (the file's path).
    real_size
        ``(height, width)`` of the image itself, read from its header, for a dict that
        records no ``"image_size"``: its boxes are held to that size by the same rule (a
        file another tool wrote with a box at x = 500 in a 160 px wide image is refused, not
        exported), and the annotation's ``image_size`` is that size.
    image
        The image file the dict belongs to. A dict of :data:`STORED_PIXELS_VERSION` is
        checked against the stored size it was written for and then moved onto ``image`` as
        shown (:func:`~napari_detlab.core.images.orient_stored_boxes`). A dict without a
        version is another tool's (the tutorial's targets) and, like every format's boxes,
        already in the shown image's pixels.
    """
    if not isinstance(data, dict):
        raise AnnotationError(
            f"{source}: expected a dict with 'boxes' and 'labels', got {type(data).__name__}"
        )
    for key in ("boxes", "labels"):
        if key not in data:
            raise AnnotationError(f"{source}: missing key {key!r}")
    try:
        boxes = as_boxes(data["boxes"], np.float64)
    except (TypeError, ValueError) as error:
        raise AnnotationError(f"{source}: 'boxes' {error}") from error
    labels = _as_label_list(data["labels"], source)
    if len(labels) != len(boxes):
        raise AnnotationError(f"{source}: {len(boxes)} boxes but {len(labels)} labels")
    if not np.isfinite(boxes).all():
        bad = int(np.flatnonzero(~np.isfinite(boxes).all(axis=1))[0])
        raise AnnotationError(
            f"{source}: box {bad} has a non-finite coordinate {boxes[bad].tolist()}"
        )
    _check_extents(boxes, source)
    image_size, measured = real_size, ""
    if data.get("image_size") is not None:
        image_size = _as_image_size(data["image_size"], source)
    elif real_size is not None:
        measured = " (size read from the image: the file records none)"
    if image_size is not None:
        height, width = image_size
        outside = (
            (boxes[:, 0] < -CLIP_TOLERANCE) | (boxes[:, 1] < -CLIP_TOLERANCE)
            | (boxes[:, 2] > width + CLIP_TOLERANCE) | (boxes[:, 3] > height + CLIP_TOLERANCE)
        )  # fmt: skip
        if outside.any():
            bad = int(np.flatnonzero(outside)[0])
            raise AnnotationError(
                f"{source}: box {bad} {boxes[bad].tolist()} lies outside the {width}x{height} "
                f"image{measured}"
            )
        boxes = clip_xyxy(boxes, width, height)
        # A box lying wholly in the overshoot margin clips to nothing: still an error.
        _check_extents(boxes, source)
    reviewed = data.get("reviewed", True)
    if not isinstance(reviewed, (bool, np.bool_, int)):
        raise AnnotationError(f"{source}: 'reviewed' must be true or false, got {reviewed!r}")
    if not isinstance(data.get(MODEL_ACCEPTED_KEY, False), bool):
        raise AnnotationError(
            f"{source}: {MODEL_ACCEPTED_KEY!r} must be true or false, "
            f"got {data[MODEL_ACCEPTED_KEY]!r}"
        )
    annotation = ImageAnnotation(
        boxes=boxes.astype(np.float32),
        labels=labels,
        reviewed=bool(reviewed),
        image_size=image_size,
        extra={key: value for key, value in data.items() if key not in _STORE_KEYS},
    )
    if written_on_stored_pixels(data):
        orient_stored_boxes(annotation, image)
    return annotation


def written_on_stored_pixels(data: object) -> bool:
    """Whether a loaded annotation dict predates orientation (version 1): its boxes are on
    the image's stored pixels. Prediction files' version 1 means the same."""
    version = data.get("version") if isinstance(data, dict) else None
    return type(version) is int and version == STORED_PIXELS_VERSION


def sanitize_boxes(
    boxes: object, image_size: tuple[int, int] | None, min_size: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Clip drawn boxes to the image and find the ones too small to keep.

    Returns the clipped boxes and a boolean mask of those at least ``min_size`` pixels on
    each side. A click in rectangle mode makes a zero-size box: the widget drops it rather
    than storing something training would crash on.
    """
    b = as_boxes(boxes, np.float64)
    if image_size is not None:
        b = clip_xyxy(b, image_size[1], image_size[0])
    return b, nonempty_mask(b, min_size)
