"""Precision-recall curves per class, at the Review's match IoU, one point per prediction.

Why our own curve next to pycocotools' AP: the curve a reviewer reads must be the one the
score slider moves along. Each point is what the Review would count for that class with the
score threshold set at that prediction's score: predictions are matched greedily by score
(:func:`~napari_detlab.core.evaluation.review.match_predictions`), and a greedy match of the
best ``k`` predictions is the first ``k`` of the greedy match of all of them, so one pass over
the sorted predictions gives every threshold's counts. NMS with a score cut keeps the boxes
NMS without one keeps that pass the cut, so the predictions are NMS-filtered once, at no
score threshold.

:attr:`PrCurve.ap` is the area under the curve's precision envelope (the all-point
interpolation of Pascal VOC 2010 onwards), easy to check by hand; the AP table's figures are
pycocotools' (101 recall points), which can differ from it in the second decimal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from napari_detlab.core.evaluation.review import match_predictions

__all__ = ["PrCurve", "ScoredImage", "pr_curves"]


@dataclass(frozen=True)
class ScoredImage:
    """One image's candidate predictions (NMS-filtered, any score) and its ground truth.

    Attributes
    ----------
    boxes, labels, scores
        The predictions, xyxy pixels, class names and confidences.
    gt_boxes, gt_labels
        The ground truth.
    """

    boxes: np.ndarray
    labels: Sequence[str]
    scores: np.ndarray
    gt_boxes: np.ndarray
    gt_labels: Sequence[str]
    _by_class: dict[float, dict[str, tuple[np.ndarray, np.ndarray, int]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def by_class(self, iou_threshold: float) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
        """``{class: (scores, is_tp, ground-truth boxes)}`` of the classes either side has,
        matched at ``iou_threshold``.

        Kept on the image: the Review keeps each image's figures while its files are
        unchanged and draws the curves again after every save, so only a changed image is
        matched again (matching 5,000 images took most of a second).
        """
        known = self._by_class.get(iou_threshold)
        if known is None:
            labels = np.asarray(self.labels, dtype=str)
            gt_labels = np.asarray(self.gt_labels, dtype=str)
            match = match_predictions(
                self.boxes, labels, self.scores, self.gt_boxes, gt_labels,
                iou_threshold=iou_threshold,
            )  # fmt: skip
            scores = np.asarray(self.scores)
            known = {}
            for name in dict.fromkeys([*labels.tolist(), *gt_labels.tolist()]):
                mine = labels == name
                known[name] = (scores[mine], match.is_tp[mine], int(np.sum(gt_labels == name)))
            self._by_class[iou_threshold] = known
        return known


@dataclass
class PrCurve:
    """One class's precision and recall as its score threshold falls, prediction by prediction.

    Attributes
    ----------
    name
        The class.
    ground_truth
        Its ground-truth boxes (the recall's denominator).
    scores
        ``(P,)`` the predictions' scores, best first: point ``i`` is the threshold
        ``scores[i]``.
    precision, recall
        ``(P,)`` at each point.
    """

    name: str
    ground_truth: int = 0
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    precision: np.ndarray = field(default_factory=lambda: np.zeros(0))
    recall: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def ap(self) -> float:
        """Area under the precision envelope (all-point interpolation); NaN without objects."""
        if self.ground_truth == 0:
            return float("nan")
        if len(self.recall) == 0:
            return 0.0
        envelope = np.maximum.accumulate(self.precision[::-1])[::-1]
        steps = np.diff(np.concatenate([[0.0], self.recall]))
        return float(np.sum(steps * envelope))

    def at(self, score_threshold: float) -> tuple[float, float] | None:
        """``(recall, precision)`` with the score threshold at ``score_threshold``: the point
        the Review's counts are at; ``None`` when no prediction passes it."""
        passing = np.flatnonzero(self.scores >= score_threshold)
        if passing.size == 0:
            return None
        last = int(passing[-1])
        return float(self.recall[last]), float(self.precision[last])

    def as_dict(self) -> dict[str, object]:
        """Plain lists, for JSON."""
        return {
            "ground_truth": self.ground_truth,
            "scores": [round(float(v), 6) for v in self.scores],
            "precision": [round(float(v), 6) for v in self.precision],
            "recall": [round(float(v), 6) for v in self.recall],
        }


def pr_curves(
    images: Iterable[ScoredImage], classes: Sequence[str], iou_threshold: float
) -> dict[str, PrCurve]:
    """A :class:`PrCurve` per class in ``classes`` over ``images``, matched at ``iou_threshold``.

    A class without predictions gets an empty curve (AP 0 when it has objects, NaN when not).
    """
    hits: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {name: [] for name in classes}
    objects = dict.fromkeys(classes, 0)
    for image in images:
        for name, (scores, is_tp, count) in image.by_class(iou_threshold).items():
            if name in hits:
                hits[name].append((scores, is_tp))
                objects[name] += count
    curves = {}
    for name in classes:
        scores = np.concatenate([s for s, _ in hits[name]]) if hits[name] else np.zeros(0)
        is_tp = np.concatenate([t for _, t in hits[name]]) if hits[name] else np.zeros(0, bool)
        order = np.argsort(-scores, kind="stable")
        tp = np.cumsum(is_tp[order])
        taken = np.arange(1, len(order) + 1)
        total = objects[name]
        curves[name] = PrCurve(
            name,
            total,
            scores[order].astype(np.float64),
            tp / np.maximum(taken, 1),
            tp / total if total else np.zeros(len(order)),
        )
    return curves
