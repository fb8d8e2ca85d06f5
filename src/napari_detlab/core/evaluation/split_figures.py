"""The evaluation figures of each split apart: counts, per-class AP, PR curves, confusion.

One :class:`SplitFigures` per group of :data:`~.split_groups.SPLIT_GROUPS` that has images,
so that the validation images' figures are never averaged with those of the images the model
learnt from. The Review dock shows them (:mod:`napari_detlab._qt.widgets.split_figures_panel`)
and ``detlab evaluate`` prints them; both build them here, from the same rules:

* each image's predictions pass the Review's NMS at no score threshold: the candidates the
  PR curves run over (:mod:`.pr_curve`);
* those at or above the score threshold are the kept predictions, whose
  :mod:`.confusion` matrix gives the counts (TP = its diagonal);
* the per-class AP and AP50 are pycocotools' (:func:`~.metrics.coco_metrics`) of the
  predictions the caller scores: the dock's kept boxes (as its mAP line), the CLI's raw ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.evaluation.confusion import ConfusionMatrix, image_confusion
from napari_detlab.core.evaluation.metrics import coco_metrics
from napari_detlab.core.evaluation.pr_curve import PrCurve, ScoredImage, pr_curves
from napari_detlab.core.evaluation.review import Counts, ReviewThresholds, filter_predictions
from napari_detlab.core.evaluation.split_groups import SPLIT_GROUPS
from napari_detlab.core.model.predict import Prediction
from napari_detlab.core.wording import counted

__all__ = [
    "EvaluationFigures",
    "ImageFigures",
    "SplitFigures",
    "evaluation_figures",
    "image_figures",
]


@dataclass(frozen=True)
class ImageFigures:
    """What one image adds to its split's figures at one :class:`ReviewThresholds`."""

    candidates: ScoredImage
    confusion: ConfusionMatrix


def image_figures(
    prediction: Prediction,
    truth: ImageAnnotation,
    classes: Sequence[str],
    thresholds: ReviewThresholds,
) -> ImageFigures:
    """One image's NMS-filtered candidates and the confusion matrix of the kept ones."""
    labels = np.asarray(prediction.labels, dtype=str)
    candidates = filter_predictions(
        prediction.boxes, prediction.scores, labels, score_threshold=0.0,
        nms_iou=thresholds.nms_iou, class_agnostic=thresholds.class_agnostic,
    )  # fmt: skip
    kept = candidates[prediction.scores[candidates] >= thresholds.score_threshold]
    confusion = image_confusion(
        prediction.boxes[kept], labels[kept], prediction.scores[kept], truth.boxes,
        list(truth.labels), classes, iou_threshold=thresholds.match_iou,
    )  # fmt: skip
    scored = ScoredImage(
        prediction.boxes[candidates], labels[candidates].tolist(),
        prediction.scores[candidates], truth.boxes, list(truth.labels),
    )  # fmt: skip
    return ImageFigures(scored, confusion)


@dataclass
class SplitFigures:
    """The figures of one group of images.

    Attributes
    ----------
    group
        One of :data:`~.split_groups.SPLIT_GROUPS`.
    images
        How many images it holds.
    confusion
        Its kept predictions' confusion matrix.
    curves
        A precision-recall curve per class.
    metrics
        pycocotools' metrics (``per_class`` AP, ``per_class_50`` AP50, ``map``, ...).
    """

    group: str
    images: int
    confusion: ConfusionMatrix
    curves: dict[str, PrCurve] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        """``"validation (12 images)"``."""
        return f"{self.group} ({counted(self.images, 'image')})"

    @property
    def counts(self) -> Counts:
        """TP / FP / missed as the Review counts them (a cross-class mistake is one of each)."""
        matrix = self.confusion.counts
        tp = int(np.trace(matrix))
        return Counts(tp, int(matrix[:, :-1].sum()) - tp, int(matrix[:-1, :].sum()) - tp)

    def ap_rows(self) -> list[tuple[str, float, float, int]]:
        """``(class, AP, AP50, ground-truth boxes)`` per class; NaN where undefined."""
        per_class = self.metrics.get("per_class") or {}
        per_class_50 = self.metrics.get("per_class_50") or {}
        nan = float("nan")
        return [
            (name, per_class.get(name, nan), per_class_50.get(name, nan), curve.ground_truth)
            for name, curve in self.curves.items()
        ]

    def as_dict(self) -> dict[str, object]:
        counts = self.counts
        return {
            "images": self.images,
            "counts": {"tp": counts.tp, "fp": counts.fp, "missed": counts.missed},
            "metrics": _json_numbers(self.metrics),
            "per_class": [
                {"class": name, "ap": _number(ap), "ap50": _number(ap50), "ground_truth": n}
                for name, ap, ap50, n in self.ap_rows()
            ],
            "confusion": self.confusion.as_dict(),
            "pr_curves": {name: curve.as_dict() for name, curve in self.curves.items()},
        }


@dataclass
class EvaluationFigures:
    """Every group's figures, at one setting.

    Attributes
    ----------
    splits
        ``{group: figures}`` of the groups that have images, in :data:`SPLIT_GROUPS` order.
    sources
        Where the splits were read (checkpoints or ``split.json`` files).
    thresholds
        The setting the counts, confusion and operating points are at.
    """

    splits: dict[str, SplitFigures]
    sources: list[str]
    thresholds: ReviewThresholds

    def summary(self) -> str:
        """``"validation (3 images) · training (9 images)"``."""
        return " · ".join(figures.title for figures in self.splits.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "split_sources": list(self.sources),
            "thresholds": {
                "score_threshold": self.thresholds.score_threshold,
                "nms_iou": self.thresholds.nms_iou,
                "class_agnostic": self.thresholds.class_agnostic,
                "match_iou": self.thresholds.match_iou,
            },
            "splits": {group: figures.as_dict() for group, figures in self.splits.items()},
        }

    def text(self) -> str:
        """Plain text for terminals: per split, its counts, AP table and confusion matrix."""
        t = self.thresholds
        lines = [
            f"By split: {self.summary()}",
            "split from: " + (", ".join(self.sources) or "nowhere (no checkpoint records one)"),
            f"counts and confusion at score >= {t.score_threshold:g}, NMS IoU {t.nms_iou:g}, "
            f"match IoU {t.match_iou:g}",
        ]
        for figures in self.splits.values():
            width = max(12, *(len(name) for name in figures.curves)) + 2
            lines += [
                "",
                f"== {figures.title}: {figures.counts.summary()}",
                f"{'class':<{width}}{'AP':>7}{'AP50':>7}{'objects':>9}",
            ]
            for name, ap, ap50, n in figures.ap_rows():
                lines.append(f"{name:<{width}}{_text(ap):>7}{_text(ap50):>7}{n:>9}")
            lines += ["", figures.confusion.text()]
        return "\n".join(lines)


def evaluation_figures(
    predictions: Mapping[str, Prediction],
    truths: Mapping[str, ImageAnnotation],
    classes: Sequence[str],
    thresholds: ReviewThresholds,
    groups: Mapping[str, str],
    *,
    scored: Mapping[str, Prediction] | None = None,
    sources: Sequence[str] = (),
    per_image: Callable[[str], ImageFigures] | None = None,
) -> EvaluationFigures:
    """The figures of each group of the images in both ``predictions`` and ``truths``.

    Parameters
    ----------
    predictions, truths
        ``{stem: ...}``; only stems in both count.
    classes
        Every class name either side uses.
    thresholds
        The setting of the counts and the confusion matrix; its NMS also filters the curves.
    groups
        ``{stem: group}`` (:func:`~.split_groups.group_stems`); a stem missing is "unknown".
    scored
        The predictions pycocotools scores for the AP table (default: ``predictions``).
    sources
        Where the splits came from, for the caption.
    per_image
        ``per_image(stem)`` in place of :func:`image_figures` (the dock keeps each image's
        answer while its files and the thresholds are unchanged).
    """
    classes = list(classes)
    scored = predictions if scored is None else scored
    members: dict[str, list[str]] = {group: [] for group in SPLIT_GROUPS}
    for stem in predictions:
        if stem in truths:
            members[groups.get(stem, "unknown")].append(stem)
    splits = {}
    for group, stems in members.items():
        if not stems:
            continue
        images = [
            per_image(stem) if per_image is not None
            else image_figures(predictions[stem], truths[stem], classes, thresholds)
            for stem in stems
        ]  # fmt: skip
        confusion = ConfusionMatrix.empty(classes)
        for image in images:
            confusion = confusion + image.confusion
        curves = pr_curves((image.candidates for image in images), classes, thresholds.match_iou)
        metrics = coco_metrics(
            {stem: scored[stem] for stem in stems if stem in scored},
            {stem: truths[stem] for stem in stems},
            classes,
        )
        splits[group] = SplitFigures(group, len(stems), confusion, curves, metrics)
    return EvaluationFigures(splits, list(sources), thresholds)


def _number(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 6)


def _text(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


def _json_numbers(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: _json_numbers(value) if isinstance(value, Mapping) else _number(value)
        for key, value in metrics.items()
    }
