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
image's review is in :mod:`.image_review`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torchvision.ops import batched_nms, nms

from napari_detlab.core.boxes import as_boxes, box_iou
from napari_detlab.core.errors import DetlabError

if TYPE_CHECKING:
    from napari_detlab.core.annotations.file_cache import FileCache
    from napari_detlab.core.annotations.store import AnnotationStore

COCO_MAX_DETECTIONS = 100  # pycocotools' default maxDets[-1]

__all__ = [
    "Counts",
    "DatasetReview",
    "FolderReview",
    "Match",
    "ReviewThresholds",
    "filter_predictions",
    "fraction_text",
    "label_ids",
    "map_text",
    "match_predictions",
    "precision_recall",
    "review_dataset",
    "review_prediction_folder",
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

    return f"mAP@.5 {figure('map_50')}, mAP@[.5:.95] {figure('map')}"


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


def precision_recall(
    pred_boxes: object,
    pred_labels: Sequence[object] | np.ndarray,
    pred_scores: object,
    gt_boxes: object,
    gt_labels: Sequence[object] | np.ndarray,
    *,
    iou_threshold: float = 0.5,
) -> Counts:
    """TP/FP/missed counts of one image (their ``precision`` and ``recall`` properties)."""
    return match_predictions(
        pred_boxes, pred_labels, pred_scores, gt_boxes, gt_labels, iou_threshold=iou_threshold
    ).counts


@dataclass
class DatasetReview:
    """Dataset figures at the current thresholds.

    Attributes
    ----------
    counts
        TP/FP/missed summed over every image with both predictions and ground truth.
    per_image
        The counts of each image (by stem).
    metrics
        COCO metrics (``map``, ``map_50``, ...) of the *filtered* predictions, or empty when
        there was nothing to evaluate.
    """

    counts: Counts = field(default_factory=Counts)
    per_image: dict[str, Counts] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


def review_dataset(
    predictions: Mapping[str, Any],
    ground_truth: Mapping[str, Any],
    classes: Sequence[str],
    *,
    score_threshold: float,
    nms_iou: float,
    class_agnostic: bool = False,
    iou_threshold: float = 0.5,
    with_map: bool = True,
) -> DatasetReview:
    """Filter every image's predictions at the current thresholds and score the dataset.

    Parameters
    ----------
    predictions
        ``{stem: prediction}`` where a prediction has ``boxes``, ``scores`` and ``labels``
        (class names) as attributes or keys (a ``core.predict.Prediction`` or a loaded dict).
    ground_truth
        ``{stem: ImageAnnotation}``; only stems present in both mappings count.
    classes
        The class names, for COCO's category ids.
    with_map
        Also compute COCO mAP through :func:`napari_detlab.core.evaluation.metrics.coco_metrics`
        (tens of milliseconds per call, so the panel debounces it).
    """
    review = DatasetReview()
    filtered: dict[str, dict[str, Any]] = {}
    stems = [stem for stem in predictions if stem in ground_truth]
    for stem in stems:
        boxes, scores, labels = _fields(predictions[stem])
        keep = filter_predictions(
            boxes, scores, labels, score_threshold=score_threshold, nms_iou=nms_iou,
            class_agnostic=class_agnostic,
        )  # fmt: skip
        kept_labels = [labels[i] for i in keep]
        truth = ground_truth[stem]
        counts = precision_recall(
            boxes[keep], kept_labels, scores[keep], truth.boxes, truth.labels,
            iou_threshold=iou_threshold,
        )  # fmt: skip
        review.per_image[stem] = counts
        review.counts = review.counts + counts
        if with_map:
            top = _top_per_class(keep, labels, COCO_MAX_DETECTIONS)
            filtered[stem] = {
                "boxes": boxes[top],
                "scores": scores[top],
                "labels": [labels[i] for i in top],
            }
    if with_map and filtered:
        from napari_detlab.core.evaluation.metrics import coco_metrics

        review.metrics = dict(
            coco_metrics(filtered, {stem: ground_truth[stem] for stem in filtered}, list(classes))
        )
    return review


@dataclass
class FolderReview:
    """A prediction folder scored against the annotations, at one set of thresholds.

    Attributes
    ----------
    images
        Annotated images that have predictions (the only ones scored).
    dataset
        Their figures together; None when there are none.
    image
        The figures of the image on screen alone, when it is one of them.
    """

    images: int = 0
    dataset: DatasetReview | None = None
    image: DatasetReview | None = None


def review_prediction_folder(
    predictions_dir: Path,
    store: AnnotationStore,
    cache: FileCache,
    *,
    current_stem: str | None = None,
    score_threshold: float,
    nms_iou: float,
    class_agnostic: bool = False,
    iou_threshold: float = 0.5,
) -> FolderReview:
    """Score every ``<stem>.pt`` of ``predictions_dir`` that has an annotation in ``store``.

    Files are read through ``cache``, so only the ones rewritten since the last call are
    read again. A file that cannot be read is left out (the panel reports it when its image
    is opened): one bad file must not hide the figures of the others. Runs in a worker
    thread: COCO evaluation of a few hundred images takes about a second.
    """
    from napari_detlab.core.model.predict import load_prediction

    predictions: dict[str, Any] = {}
    truths: dict[str, Any] = {}
    for path in sorted(Path(predictions_dir).glob("*.pt")):
        try:
            truth = cache.get(store.path_for(path.stem), lambda p: store.load(p.stem))
            prediction = None if truth is None else cache.get(path, load_prediction)
        except DetlabError:
            continue
        if prediction is not None:
            predictions[path.stem], truths[path.stem] = prediction, truth
    if not predictions:
        return FolderReview()
    # Category ids only need to be consistent within this call: the labels in use are
    # enough (the store's class list would re-read every annotation file).
    classes = list(
        dict.fromkeys(
            label for item in (*predictions.values(), *truths.values()) for label in item.labels
        )
    ) or ["object"]
    settings = {
        "score_threshold": score_threshold,
        "nms_iou": nms_iou,
        "class_agnostic": class_agnostic,
        "iou_threshold": iou_threshold,
    }
    image = None
    if current_stem in predictions:
        image = review_dataset(
            {current_stem: predictions[current_stem]}, truths, classes, **settings
        )
    return FolderReview(
        len(predictions), review_dataset(predictions, truths, classes, **settings), image
    )


def _top_per_class(keep: np.ndarray, labels: list[str], limit: int) -> np.ndarray:
    """The first ``limit`` of ``keep`` (best first) in each class.

    COCO evaluation looks at no more than its largest ``maxDets`` (100) detections per image
    and class, so dropping the rest changes no figure and saves most of pycocotools' time.
    """
    seen: dict[str, int] = {}
    top = []
    for index in keep:
        label = labels[index]
        if seen.get(label, 0) < limit:
            seen[label] = seen.get(label, 0) + 1
            top.append(index)
    return np.asarray(top, dtype=np.int64)


def _fields(prediction: Any) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``boxes``, ``scores`` and ``labels`` of a prediction object or dict, as numpy / list."""

    def get(name: str) -> Any:
        return prediction[name] if isinstance(prediction, Mapping) else getattr(prediction, name)

    boxes = as_boxes(get("boxes"), np.float32)
    scores = get("scores")
    scores = np.asarray(scores.detach().cpu() if hasattr(scores, "detach") else scores, np.float32)
    return boxes, scores.reshape(-1), [str(label) for label in get("labels")]
