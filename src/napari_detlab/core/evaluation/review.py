"""The Review rules: score and NMS filtering, matching to ground truth, counts and their text.

The review panel keeps every raw prediction the model wrote (a low score floor, a loose model
NMS) and re-filters them on each slider move, so the score threshold and the NMS IoU act
together on the same raw set instead of one replacing the other's result. Everything here is
numpy in and numpy out, Qt-free and fast: filtering 1,000 predictions takes well under a
millisecond, so a slider can call it on every drag event.

Matching follows COCO's rule at one IoU: predictions are taken by descending score and each
claims the unclaimed ground-truth box of its own class it overlaps most, if that overlap
reaches the threshold. A prediction that claims a box is a true positive, one that does not
is a false positive, and a ground-truth box nobody claims is missed.

The four settings a reviewer tunes travel together as one :class:`ReviewThresholds`; one
image's review is in :mod:`.image_review`, a dataset's in :mod:`.dataset_review`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real

import numpy as np
import torch
from torchvision.ops import batched_nms, nms

from napari_detlab.core.boxes import as_boxes, box_iou
from napari_detlab.core.evaluation.metrics import COCO_MAX_DETECTIONS

__all__ = [
    "Counts",
    "Match",
    "ReviewThresholds",
    "filter_predictions",
    "fraction_text",
    "label_ids",
    "map_text",
    "match_predictions",
]


@dataclass(frozen=True)
class ReviewThresholds:
    """What a reviewer tunes, as one value: the dock's controls, a script or a test make one.

    Frozen, so a worker thread scoring the dataset at these settings cannot see them change
    under it while the user drags on.

    Attributes
    ----------
    score_threshold
        Predictions scoring below it are dropped.
    nms_iou
        Non-maximum suppression removes a box overlapping a better kept one by more than
        this; ``1.0`` turns it off.
    class_agnostic
        Boxes of any class suppress each other (one object guessed as two classes keeps only
        its best guess); otherwise only boxes of the same class do.
    match_iou
        A kept prediction is a true positive when it claims a ground-truth box of its class
        at least this much.
    """

    score_threshold: float = 0.5
    nms_iou: float = 0.5
    class_agnostic: bool = False
    match_iou: float = 0.5


def fraction_text(value: float) -> str:
    """Two decimals, or an en dash for a figure with nothing to divide by (not a zero)."""
    return "–" if math.isnan(value) else f"{value:.2f}"


def map_text(metrics: Mapping[str, object]) -> str:
    """The two mAP figures a reviewer reads: at IoU .5 and COCO's .5:.95 average."""

    def figure(key: str) -> str:
        value = metrics.get(key)
        return fraction_text(float(value) if isinstance(value, Real) else float("nan"))

    text = f"mAP@.5 {figure('map_50')}, mAP@[.5:.95] {figure('map')}"
    counted = metrics.get("max_detections")
    if isinstance(counted, int) and counted > COCO_MAX_DETECTIONS:  # a dense dataset
        text += f" (counting {counted} detections per image and class)"
    return text


def label_ids(labels: Sequence[object] | np.ndarray) -> np.ndarray:
    """Integer ids for class labels (names or numbers), equal ids for equal labels.

    ``batched_nms`` and the matcher compare integers; the ids mean nothing outside one call.
    """
    array = np.asarray(labels)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype.kind in "iu":
        return array.astype(np.int64, copy=False)
    return np.unique(array, return_inverse=True)[1].astype(np.int64).reshape(-1)


def _as_label_array(labels: Sequence[object] | np.ndarray) -> np.ndarray:
    """Labels as one numpy array (names as strings), so two label lists can be joined."""
    array = np.asarray(labels)
    return array if array.dtype.kind in "iu" else array.astype(str)


def _by_score(scores: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """``indices`` ordered by descending score, ties by index: one order for every caller."""
    return indices[np.lexsort((indices, -scores[indices]))]


def filter_predictions(
    boxes: object,
    scores: object,
    labels: Sequence[object] | np.ndarray,
    *,
    score_threshold: float,
    nms_iou: float,
    class_agnostic: bool = False,
) -> np.ndarray:
    """Indices of the predictions kept at a score threshold and an NMS IoU, best first.

    Both filters act together on the raw predictions: boxes scoring below
    ``score_threshold`` are dropped first, then non-maximum suppression removes every
    remaining box that overlaps a higher-scoring kept box by more than ``nms_iou``. NMS is
    run per class unless ``class_agnostic``, when boxes of any class suppress each other (one
    object predicted as two classes keeps only its best guess).

    This is the numeric kernel, with plain arguments so it can be checked against a reference
    NMS; the Review rules call it through
    :func:`~napari_detlab.core.evaluation.image_review.review_image` with a
    :class:`ReviewThresholds`.

    Parameters
    ----------
    boxes
        ``(N, 4)`` xyxy boxes (numpy, tensor or list).
    scores
        ``(N,)`` confidences.
    labels
        ``N`` class names or ids.
    score_threshold
        Keep scores ``>= score_threshold``.
    nms_iou
        Suppress overlaps ``> nms_iou``; ``1.0`` (or more) disables suppression.
    class_agnostic
        Suppress across classes instead of within each class.

    Returns
    -------
    numpy.ndarray
        ``int64`` indices into the inputs, by descending score (ties by index).
    """
    b = as_boxes(boxes, np.float32)
    s = np.asarray(scores.detach().cpu() if hasattr(scores, "detach") else scores, np.float32)
    s = s.reshape(-1)
    if len(s) != len(b):
        raise ValueError(f"{len(b)} boxes but {len(s)} scores")
    candidates = np.flatnonzero(s >= score_threshold)
    if candidates.size == 0 or nms_iou >= 1.0:
        return _by_score(s, candidates)
    tb = torch.from_numpy(np.ascontiguousarray(b[candidates]))
    ts = torch.from_numpy(np.ascontiguousarray(s[candidates]))
    if class_agnostic:
        kept = nms(tb, ts, float(nms_iou))
    else:
        ids = label_ids(labels)
        if len(ids) != len(b):
            raise ValueError(f"{len(b)} boxes but {len(ids)} labels")
        kept = batched_nms(tb, ts, torch.from_numpy(ids[candidates]), float(nms_iou))
    return _by_score(s, candidates[kept.numpy()])


@dataclass
class Counts:
    """True positives, false positives and missed ground truth, summable over images."""

    tp: int = 0
    fp: int = 0
    missed: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.missed + other.missed)

    @property
    def predictions(self) -> int:
        return self.tp + self.fp

    @property
    def ground_truth(self) -> int:
        return self.tp + self.missed

    @property
    def precision(self) -> float:
        """TP / predictions; ``nan`` when nothing is predicted (undefined, not perfect)."""
        return self.tp / self.predictions if self.predictions else float("nan")

    @property
    def recall(self) -> float:
        """TP / ground-truth boxes; ``nan`` when the image has no objects."""
        return self.tp / self.ground_truth if self.ground_truth else float("nan")

    def summary(self) -> str:
        """One line for the panel: the counts, then precision and recall ("–" if undefined)."""
        return (
            f"{self.tp} TP · {self.fp} FP · {self.missed} missed — "
            f"precision {fraction_text(self.precision)}, recall {fraction_text(self.recall)}"
        )


@dataclass
class Match:
    """How predictions meet the ground truth at one IoU threshold.

    Attributes
    ----------
    is_tp
        ``bool (P,)``, per prediction in the caller's order: it claimed a ground-truth box.
    matched_gt
        ``int (P,)``: the ground-truth index each prediction claimed, ``-1`` for false positives.
    iou
        ``float (P,)``: the IoU with the claimed box (``0`` for false positives).
    missed_gt
        Indices of ground-truth boxes no prediction claimed.
    """

    is_tp: np.ndarray
    matched_gt: np.ndarray
    iou: np.ndarray
    missed_gt: np.ndarray

    @property
    def counts(self) -> Counts:
        tp = int(self.is_tp.sum())
        return Counts(tp=tp, fp=len(self.is_tp) - tp, missed=len(self.missed_gt))


def match_predictions(
    pred_boxes: object,
    pred_labels: Sequence[object] | np.ndarray,
    pred_scores: object,
    gt_boxes: object,
    gt_labels: Sequence[object] | np.ndarray,
    *,
    iou_threshold: float = 0.5,
) -> Match:
    """Match predictions to ground truth greedily by score, within each class.

    Each prediction, best score first, claims the still-unclaimed ground-truth box of the
    same class with the highest IoU, if that IoU is at least ``iou_threshold``. Labels are
    compared as given (class names on both sides, or ids on both sides).
    """
    pb, gb = as_boxes(pred_boxes), as_boxes(gt_boxes)
    ps = np.asarray(pred_scores, np.float64).reshape(-1)
    if not (len(pb) == len(ps) == len(pred_labels)) or len(gb) != len(gt_labels):
        raise ValueError("boxes, labels and scores must have the same length")
    matched = np.full(len(pb), -1, dtype=np.int64)
    best_iou = np.zeros(len(pb))
    if len(pb) and len(gb):
        ids = label_ids(np.concatenate([_as_label_array(pred_labels), _as_label_array(gt_labels)]))
        iou = box_iou(pb, gb)
        iou[ids[: len(pb), None] != ids[None, len(pb) :]] = -1.0  # other classes never match
        order = _by_score(ps, np.arange(len(pb)))
        # Only predictions overlapping some box enough can match; the rest are false
        # positives whatever their rank, so the Python loop runs over few rows.
        claimed = np.zeros(len(gb), dtype=bool)
        for p in order[(iou[order] >= iou_threshold).any(axis=1)]:
            row = np.where(claimed, -1.0, iou[p])
            g = int(row.argmax())
            if row[g] >= iou_threshold:
                claimed[g], matched[p], best_iou[p] = True, g, row[g]
    is_tp = matched >= 0
    missed = np.setdiff1d(np.arange(len(gb)), matched[is_tp])
    return Match(is_tp=is_tp, matched_gt=matched, iou=best_iou, missed_gt=missed)
