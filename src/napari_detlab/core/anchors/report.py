"""Everything measured about a config's anchors on a dataset, as one record: :class:`AnchorReport`.

``detlab anchors`` prints it (as text, or as JSON for scripts) and the AnchorViewer dock shows
it (figures, histogram, table of uncaught boxes); both read its fields, and the words the dock
shows are written here (:meth:`AnchorReport.summary`), beside the figures they describe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from napari_detlab.core.anchors.coverage import BoxCoverage, ImageBoxes, measure_coverage
from napari_detlab.core.anchors.figures import (
    CoverageFigures,
    ShapeFigures,
    UncaughtBox,
    format_percent,
)
from napari_detlab.core.anchors.suggest import (
    TINY_BOX,
    AnchorSuggestion,
    config_anchor_wh,
    resized_shapes,
    shape_metrics,
    suggest_anchors,
)
from napari_detlab.core.model.config import ModelConfig
from napari_detlab.core.wording import counted

__all__ = ["AnchorReport", "anchor_report"]


@dataclass(eq=False)
class AnchorReport:
    """How a config's anchors catch a dataset's boxes under the RPN's matching rules.

    Attributes
    ----------
    figures
        The figures of every box.
    images
        How many images the boxes come from.
    fg_thresh, bg_thresh
        The config's RPN thresholds the figures are measured at.
    mean_positives
        Positive anchors per box, on average.
    per_class, per_size
        The figures of each class, and of each COCO size bucket (in the resized image).
    per_level
        How many boxes have their best anchor on each feature-map level.
    shape
        The shape-only yardsticks (position ignored).
    tiny_boxes
        Boxes under 3 px on a side after resizing.
    uncaught_total, uncaught
        How many boxes no anchor catches, and the worst of them (up to the limit asked).
    anchor_sizes, aspect_ratios
        The anchors measured.
    best_iou
        Every box's best anchor IoU, for a histogram (not part of :meth:`to_dict`).
    suggestion
        Anchors fitted to the boxes, when asked for.
    """

    figures: CoverageFigures
    images: int
    fg_thresh: float
    bg_thresh: float
    mean_positives: float | None
    per_class: dict[str, CoverageFigures]
    per_size: dict[str, CoverageFigures]
    per_level: list[int]
    shape: ShapeFigures
    tiny_boxes: int
    uncaught_total: int
    uncaught: list[UncaughtBox]
    anchor_sizes: list[list[float]]
    aspect_ratios: list[list[float]]
    best_iou: np.ndarray
    suggestion: AnchorSuggestion | None = None

    def to_dict(self) -> dict[str, object]:
        """The JSON form ``detlab anchors --json`` prints: its keys and order are what users'
        scripts read, so they stay as they were when the report was a dict (``recall_07``,
        ``share_03_07``, ``share_below_03``, whatever the thresholds)."""
        data: dict[str, object] = {
            **self.figures.to_dict(),
            "images": self.images,
            "fg_thresh": self.fg_thresh,
            "bg_thresh": self.bg_thresh,
            "mean_positives": self.mean_positives,
            "per_class": {name: f.to_dict() for name, f in self.per_class.items()},
            "per_size": {name: f.to_dict() for name, f in self.per_size.items()},
            "per_level": list(self.per_level),
            **self.shape.to_dict(),
            "tiny_boxes": self.tiny_boxes,
            "uncaught_total": self.uncaught_total,
            "uncaught": [row.to_dict() for row in self.uncaught],
            "anchor_sizes": self.anchor_sizes,
            "aspect_ratios": self.aspect_ratios,
        }
        if self.suggestion is not None:
            data["suggestion"] = self.suggestion.to_dict()
        return data

    def summary(self) -> str:
        """The figures in a few lines: overall, per class, per (non-empty) size, shape-only."""
        fg, bg, f = self.fg_thresh, self.bg_thresh, self.figures
        per_class = ", ".join(
            f"{name} {format_percent(c.recall)}" for name, c in self.per_class.items()
        )
        per_size = ", ".join(
            f"{name} {format_percent(s.recall)}" for name, s in self.per_size.items() if s.boxes
        )
        text = (
            f"{counted(f.boxes, 'box', 'boxes')} in {counted(self.images, 'image')}: "
            f"recall@{fg:g} {format_percent(f.recall)}, "
            f"[{bg:g}, {fg:g}) {format_percent(f.share_between)}, < {bg:g} "
            f"{format_percent(f.share_below)}, {f.no_positive} with no positive anchor\n"
            f"per class: {per_class}\nper size: {per_size}\n"
            f"shape-only: BPR {format_percent(self.shape.bpr)}, mean best IoU "
            f"{self.shape.mean_best_iou:.3f}"
        )
        if self.tiny_boxes:
            text += f"\n{self.tiny_boxes} box(es) under {TINY_BOX:g} px after resizing"
        return text


def anchor_report(
    config: ModelConfig,
    items: Sequence[ImageBoxes],
    *,
    suggest: bool = False,
    uncaught_limit: int | None = 100,
    base: BoxCoverage | None = None,
) -> AnchorReport:
    """Measure ``config``'s anchors on ``items``: what ``detlab anchors`` prints and the
    AnchorViewer shows.

    Parameters
    ----------
    config
        The model config whose anchors (and RPN thresholds) are measured.
    items
        The dataset's boxes; images without any are left out.
    suggest
        Also fit anchors to the boxes (:func:`~.suggest.suggest_anchors`; seconds).
    uncaught_limit
        How many of the worst uncaught boxes to list (``None``: all).
    base
        A coverage of the same items already computed (it is not recomputed).
    """
    items = [item for item in items if len(item.boxes)]
    result = base if base is not None else measure_coverage(config, items)
    wh = resized_shapes(result)
    uncaught = result.uncaught()
    suggestion = None
    if suggest and len(result):
        suggestion = suggest_anchors(config, items, base=result)
    return AnchorReport(
        figures=result.figures(),
        images=len(result.images),
        fg_thresh=result.fg_thresh,
        bg_thresh=result.bg_thresh,
        mean_positives=result.mean_positives,
        per_class=result.per_class(),
        per_size=result.per_size(),
        per_level=result.per_level(),
        shape=shape_metrics(wh, config_anchor_wh(config)),
        tiny_boxes=int(np.sum(wh.min(axis=1) < TINY_BOX)) if len(wh) else 0,
        uncaught_total=len(uncaught),
        uncaught=uncaught if uncaught_limit is None else uncaught[:uncaught_limit],
        anchor_sizes=config.anchor_sizes,
        aspect_ratios=config.aspect_ratios,
        best_iou=result.best_iou,
        suggestion=suggestion,
    )
