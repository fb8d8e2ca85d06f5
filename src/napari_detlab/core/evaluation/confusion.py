"""The confusion matrix of a detector: which class it called each object, and what it invented.

Counting a prediction of the wrong class on an object as one false positive plus one miss
hides the commonest mistake of a detector of look-alike classes ("predicted crystal, was
cell"). Here each image's kept predictions are matched in two passes at the Review's match
IoU:

1. within each class, exactly as the Review's counts do
   (:func:`~napari_detlab.core.evaluation.review.match_predictions`): the diagonal;
2. the predictions still unmatched, best score first, each claim the still-unclaimed
   ground-truth box *of another class* they overlap most, at the match IoU or more: a
   cross-class confusion, counted once in the row of the object's class and the column of
   the class predicted.

What is left is a false positive (a prediction on no object: the last row) or a miss (an
object nobody predicted anything on: the last column). A wrong-class box on an object that a
right-class box already found stays a false positive: the object was found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from napari_detlab.core.boxes import as_boxes, box_iou
from napari_detlab.core.evaluation.review import match_predictions

__all__ = ["FALSE_POSITIVE_ROW", "MISSED_COLUMN", "ConfusionMatrix", "image_confusion"]

FALSE_POSITIVE_ROW = "false positive"  # no object under the prediction
MISSED_COLUMN = "missed"  # nothing predicted on the object


@dataclass
class ConfusionMatrix:
    """Counts of ground-truth class (rows) against predicted class (columns).

    Attributes
    ----------
    classes
        The ``K`` class names, in row and column order.
    counts
        ``int64 (K + 1, K + 1)``: ``counts[t, p]`` objects of class ``t`` predicted as ``p``;
        the last row holds the false positives of each predicted class, the last column the
        missed objects of each class (the corner is always 0).
    """

    classes: list[str]
    counts: np.ndarray

    @classmethod
    def empty(cls, classes: Sequence[str]) -> ConfusionMatrix:
        size = len(classes) + 1
        return cls(list(classes), np.zeros((size, size), dtype=np.int64))

    def __add__(self, other: ConfusionMatrix) -> ConfusionMatrix:
        if self.classes != other.classes:
            raise ValueError(f"classes differ: {self.classes} and {other.classes}")
        return ConfusionMatrix(self.classes, self.counts + other.counts)

    @property
    def rows(self) -> list[str]:
        """Row names: the ground-truth classes, then :data:`FALSE_POSITIVE_ROW`."""
        return [*self.classes, FALSE_POSITIVE_ROW]

    @property
    def columns(self) -> list[str]:
        """Column names: the predicted classes, then :data:`MISSED_COLUMN`."""
        return [*self.classes, MISSED_COLUMN]

    def count(self, truth: str, predicted: str) -> int:
        """One cell, by its row and column names."""
        return int(self.counts[self.rows.index(truth), self.columns.index(predicted)])

    def cross_class(self) -> list[tuple[str, str, int]]:
        """``(truth, predicted, count)`` of every cross-class mistake made, most first."""
        k = len(self.classes)
        found = [
            (self.classes[t], self.classes[p], int(self.counts[t, p]))
            for t in range(k)
            for p in range(k)
            if t != p and self.counts[t, p]
        ]
        return sorted(found, key=lambda item: -item[2])

    def as_dict(self) -> dict[str, object]:
        """Rows, columns and counts as plain lists, for JSON."""
        return {
            "rows": self.rows,
            "columns": self.columns,
            "counts": self.counts.tolist(),
            "cross_class": [
                {"truth": t, "predicted": p, "count": n} for t, p, n in self.cross_class()
            ],
        }

    def text(self) -> str:
        """A plain-text table for terminals: rows truth, columns predicted."""
        corner = "truth \\ predicted"
        first = max(len(corner), *(len(name) for name in self.rows)) + 2
        widths = [max(7, len(name) + 2) for name in self.columns]
        head = "".join(f"{n:>{w}}" for n, w in zip(self.columns, widths, strict=True))
        lines = [f"{corner:<{first}}{head}"]
        last = len(self.classes)
        for r, name in enumerate(self.rows):
            cells = [
                "-" if r == last and c == last else str(int(self.counts[r, c]))
                for c in range(last + 1)
            ]
            lines.append(
                f"{name:<{first}}"
                + "".join(f"{v:>{w}}" for v, w in zip(cells, widths, strict=True))
            )
        return "\n".join(lines)


def image_confusion(
    boxes: object,
    labels: Sequence[str],
    scores: object,
    gt_boxes: object,
    gt_labels: Sequence[str],
    classes: Sequence[str],
    *,
    iou_threshold: float,
) -> ConfusionMatrix:
    """One image's :class:`ConfusionMatrix` of its kept predictions (see the module's rule).

    Labels must be names in ``classes`` (a ``ValueError`` names one that is not).
    """
    matrix = ConfusionMatrix.empty(classes)
    index = {name: i for i, name in enumerate(classes)}
    pred_labels, truth_labels = np.asarray(labels, dtype=str), np.asarray(gt_labels, dtype=str)
    for name in {*pred_labels.tolist(), *truth_labels.tolist()} - set(index):
        raise ValueError(f"class {name!r} is not one of {list(classes)}")
    pb, gb = as_boxes(boxes), as_boxes(gt_boxes)
    ps = np.asarray(scores, dtype=np.float64).reshape(-1)
    match = match_predictions(pb, pred_labels, ps, gb, truth_labels, iou_threshold=iou_threshold)
    pred_ids = np.array([index[n] for n in pred_labels], dtype=np.int64)
    truth_ids = np.array([index[n] for n in truth_labels], dtype=np.int64)
    for p in np.flatnonzero(match.is_tp):
        matrix.counts[truth_ids[match.matched_gt[p]], pred_ids[p]] += 1
    free = np.zeros(len(gb), dtype=bool)
    free[match.missed_gt] = True
    leftover = np.flatnonzero(~match.is_tp)
    leftover = leftover[np.lexsort((leftover, -ps[leftover]))]  # best score first
    if len(leftover) and free.any():
        iou = box_iou(pb[leftover], gb)
        iou[pred_ids[leftover][:, None] == truth_ids[None, :]] = -1.0  # pass 1 had those
    for row, p in enumerate(leftover):
        g = -1
        if free.any():
            overlaps = np.where(free, iou[row], -1.0)
            best = int(overlaps.argmax())
            g = best if overlaps[best] >= iou_threshold else -1
        if g >= 0:
            free[g] = False
            matrix.counts[truth_ids[g], pred_ids[p]] += 1
        else:
            matrix.counts[len(classes), pred_ids[p]] += 1
    for g in np.flatnonzero(free):
        matrix.counts[truth_ids[g], len(classes)] += 1
    return matrix
