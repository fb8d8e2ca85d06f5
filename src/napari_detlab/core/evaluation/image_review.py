"""One image under review: its predictions filtered and matched, drawn, and accepted.

The Review dock re-runs :func:`review_image` on every slider step, so what does not depend on
the thresholds is computed once per image in :class:`ImagePredictions` (class ids for NMS, and
for the overlay the four edges of every box, its top-left corner and its caption). The
overlay is plain numpy in napari's ``(row, col)`` order: :func:`review_overlay` gives the
arrays the dock assigns to its two layers, one assignment each.

Accepting predictions (:func:`merge_predictions`) turns some of them into the image's
annotation: the rule for duplicates and for the annotation's other keys lives here, so a
script accepting predictions follows the same rule as the dock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from napari_detlab.core.annotations.annotation import ImageAnnotation, sanitize_boxes
from napari_detlab.core.boxes import box_iou, box_segments, xyxy_to_napari
from napari_detlab.core.evaluation.review import (
    Counts,
    Match,
    ReviewThresholds,
    filter_predictions,
    label_ids,
    match_predictions,
)
from napari_detlab.core.model.predict import Prediction

__all__ = [
    "DUPLICATE_IOU",
    "STATUSES",
    "ImagePredictions",
    "ImageReview",
    "MergeResult",
    "ReviewOverlay",
    "merge_predictions",
    "review_image",
    "review_overlay",
]

# What the overlay says of a box: a kept prediction that claimed a ground-truth box, one that
# did not, a ground-truth box nobody claimed, and a prediction on an image nobody annotated
# (nothing to compare with).
STATUSES = ("tp", "fp", "missed", "unchecked")
# Accepting a prediction that repeats a box of its class the image already has would
# duplicate it: at this IoU or more it counts as already there.
DUPLICATE_IOU = 0.9
# The value a per-box extra key gets for an accepted box when the annotation had no boxes to
# take the type from: VOC's "difficult" flag (formats.DIFFICULT_KEY) is off for a new box.
_NEW_BOX_EXTRAS: dict[str, object] = {"difficult": False}


class ImagePredictions:
    """One image's raw predictions with what every slider step reuses, computed once.

    The class ids are needed by every review; the overlay's arrays only by the image on
    screen, so they are computed on first use (scoring a folder never builds them).

    Parameters
    ----------
    prediction
        The raw predictions, as the model wrote them.
    """

    def __init__(self, prediction: Prediction) -> None:
        self.prediction = prediction
        self.labels = np.asarray(prediction.labels, dtype=str)
        self.label_ids = label_ids(self.labels)

    @property
    def boxes(self) -> np.ndarray:
        """``float32 (N, 4)`` xyxy."""
        return self.prediction.boxes

    @property
    def scores(self) -> np.ndarray:
        """``float32 (N,)``."""
        return self.prediction.scores

    def __len__(self) -> int:
        return len(self.labels)

    @cached_property
    def segments(self) -> np.ndarray:
        """``(4 N, 2, 2)``: the four edges of box ``i`` are rows ``4 i .. 4 i + 3``."""
        return box_segments(self.boxes)

    @cached_property
    def corners(self) -> np.ndarray:
        """``(N, 2)`` top-left ``(row, col)`` of each box, where its caption goes."""
        return xyxy_to_napari(self.boxes)[:, 0, :]

    @cached_property
    def captions(self) -> np.ndarray:
        """``"label score"`` of each box (object array)."""
        return np.array(
            [f"{label} {score:.2f}" for label, score in zip(self.labels, self.scores, strict=True)],
            dtype=object,
        )

    def describe(self, image_name: str) -> str:
        """How many raw predictions there are, and the model's own floor and NMS they passed:
        nothing below those can be brought back by a slider."""
        floor, nms = self.prediction.score_floor, self.prediction.model_nms_thresh
        limits = [
            *([f"model score floor {floor:.2f}"] if floor is not None else []),
            *([f"model NMS {nms:.2f} per class"] if nms is not None else []),
        ]
        return f"{len(self)} raw predictions for {image_name}" + (
            f" ({', '.join(limits)})" if limits else ""
        )


@dataclass(frozen=True)
class ImageReview:
    """One image's predictions at one :class:`ReviewThresholds`.

    Attributes
    ----------
    kept
        ``int64`` indices into the raw predictions that pass both filters, best first.
    status
        Per kept box (object array): ``"tp"`` or ``"fp"``, or ``"unchecked"`` when the image
        has no annotation.
    missed
        ``int64`` indices of the ground-truth boxes no kept box claimed.
    match
        How the kept boxes met the ground truth; ``None`` without an annotation.
    """

    kept: np.ndarray
    status: np.ndarray
    missed: np.ndarray
    match: Match | None

    @classmethod
    def empty(cls) -> ImageReview:
        """Nothing kept, nothing matched: an image without predictions."""
        nothing = np.zeros(0, dtype=np.int64)
        return cls(nothing, np.zeros(0, dtype=object), nothing, None)

    @property
    def counts(self) -> Counts | None:
        """TP / FP / missed, or ``None`` when there was nothing to compare with."""
        return None if self.match is None else self.match.counts

    def summary(self) -> str:
        """One line for the panel: the counts, or why there are none."""
        counts = self.counts
        if counts is None:
            return f"{len(self.kept)} predictions shown; no annotation to compare with"
        return counts.summary()


def review_image(
    predictions: ImagePredictions, truth: ImageAnnotation | None, thresholds: ReviewThresholds
) -> ImageReview:
    """Filter one image's raw predictions at ``thresholds`` and match them to ``truth``.

    ``truth`` is ``None`` for an image nobody annotated: every kept box is then
    ``"unchecked"``. About a millisecond for 1,000 raw predictions and 60 annotated boxes
    (bench_review's image), a few percent of a slider step: the dock runs it on every step.
    """
    kept = filter_predictions(
        predictions.boxes, predictions.scores, predictions.label_ids,
        score_threshold=thresholds.score_threshold, nms_iou=thresholds.nms_iou,
        class_agnostic=thresholds.class_agnostic,
    )  # fmt: skip
    if truth is None:
        status = np.full(len(kept), "unchecked", dtype=object)
        return ImageReview(kept, status, np.zeros(0, dtype=np.int64), None)
    match = match_predictions(
        predictions.boxes[kept], predictions.labels[kept], predictions.scores[kept],
        truth.boxes, truth.labels, iou_threshold=thresholds.match_iou,
    )  # fmt: skip
    status = np.where(match.is_tp, "tp", "fp").astype(object)
    return ImageReview(kept, status, match.missed_gt, match)


@dataclass(frozen=True)
class ReviewOverlay:
    """What the Review dock's two layers show for one :class:`ImageReview`.

    Attributes
    ----------
    segments
        ``(4 M, 2, 2)`` napari vectors: the kept boxes' edges, then the missed ground truth's.
    status
        One of :data:`STATUSES` per outlined box (``M``), in the order of ``segments``.
    corners
        ``(C, 2)`` top-left ``(row, col)`` of the captioned boxes: the best ``C`` kept ones.
    captions
        Their ``"label score"``.
    caption_status
        Their status, for the caption's colour.
    """

    segments: np.ndarray
    status: np.ndarray
    corners: np.ndarray
    captions: list[str]
    caption_status: list[str]

    @classmethod
    def empty(cls) -> ReviewOverlay:
        """Nothing to draw: the layers are emptied."""
        return cls(np.zeros((0, 2, 2)), np.zeros(0, dtype=object), np.zeros((0, 2)), [], [])


def review_overlay(
    predictions: ImagePredictions,
    review: ImageReview,
    truth: ImageAnnotation | None,
    max_captions: int,
) -> ReviewOverlay:
    """The overlay's arrays, cut from the per-image ones by the kept indices (no per-box work
    in Python but the status list). At most ``max_captions`` captions, best boxes first:
    vispy lays text out in Python, string by string."""
    kept = review.kept
    segments = [predictions.segments[(kept[:, None] * 4 + np.arange(4)).ravel()]]
    status = review.status
    if truth is not None and len(review.missed):
        segments.append(box_segments(truth.boxes[review.missed]))
        status = np.concatenate([status, np.full(len(review.missed), "missed", dtype=object)])
    captioned = kept[:max_captions]
    return ReviewOverlay(
        segments=np.concatenate(segments),
        status=status,
        corners=predictions.corners[captioned],
        captions=list(predictions.captions[captioned]),
        caption_status=list(review.status[: len(captioned)]),
    )


@dataclass(frozen=True)
class MergeResult:
    """Accepted predictions merged into an image's annotation.

    Attributes
    ----------
    annotation
        The annotation to save: the existing boxes, then the new ones; marked reviewed.
    added
        Predictions that became boxes.
    already_there
        Valid predictions left out because the image already has them.
    """

    annotation: ImageAnnotation
    added: int
    already_there: int


def merge_predictions(
    existing: ImageAnnotation | None,
    prediction: Prediction,
    indices: np.ndarray,
    duplicate_iou: float = DUPLICATE_IOU,
) -> MergeResult:
    """Add the predictions at ``indices`` to an image's annotation, once each.

    Each box is clipped to the image (the annotation's size, else the prediction's); one less
    than a pixel wide or high is dropped, as the Annotator drops a click. A box overlapping an
    existing box of the same label at ``duplicate_iou`` or more is already there and is not
    added twice. The image becomes reviewed: a person looked at it and chose its boxes.

    The annotation's other keys are kept. A key holding one entry per existing box (a list,
    tuple or tensor as long as the boxes, such as VOC's ``difficult`` flags) stays aligned:
    each added box gets the empty value of the entries' type (``False``, ``0``, ``""``;
    zeros in a tensor). Without boxes to take the type from, ``difficult`` gets ``False``
    and any other empty list is left as it is: readers already ignore a per-box list that
    does not fit the boxes. Every other key is about the image and is kept unchanged.

    Parameters
    ----------
    existing
        The image's annotation; ``None`` (or an empty one) when it has none yet.
    prediction
        The image's raw predictions.
    indices
        Which predictions to accept.
    duplicate_iou
        The overlap from which a same-label box counts as one the image already has.
    """
    existing = existing if existing is not None else ImageAnnotation()
    size = existing.image_size or prediction.image_size
    boxes, valid = sanitize_boxes(prediction.boxes[indices], size)
    labels = np.asarray(prediction.labels, dtype=str)[indices]
    same_label = labels[:, None] == np.asarray(existing.labels, dtype=str)[None, :]
    duplicate = ((box_iou(boxes, existing.boxes) >= duplicate_iou) & same_label).any(axis=1)
    new = valid & ~duplicate
    added = int(new.sum())
    merged = ImageAnnotation(
        boxes=np.concatenate([existing.boxes, boxes[new]]).astype(np.float32),
        labels=[*existing.labels, *(str(label) for label in labels[new])],
        reviewed=True,
        image_size=size,
        extra=_extras_for_added(existing.extra, len(existing), added),
    )
    return MergeResult(merged, added, int((valid & duplicate).sum()))


def _extras_for_added(extra: Mapping[str, object], boxes: int, added: int) -> dict[str, object]:
    """``extra`` with every per-box value grown by ``added`` entries (see merge_predictions)."""
    return {key: _grown(key, value, boxes, added) for key, value in extra.items()}


def _grown(key: str, value: object, boxes: int, added: int) -> object:
    if added == 0:
        return value
    if isinstance(value, torch.Tensor) and value.ndim and value.shape[0] == boxes:
        return torch.cat([value, value.new_zeros((added, *value.shape[1:]))])
    if not isinstance(value, (list, tuple)) or len(value) != boxes:
        return value  # about the image, or already stale
    if value:
        try:
            empty = type(value[0])()
        except TypeError:  # a type without an empty value (None, a tensor per box)
            empty = None
    elif key in _NEW_BOX_EXTRAS:
        empty = _NEW_BOX_EXTRAS[key]
    else:
        return value
    return type(value)([*value, *[empty] * added])
