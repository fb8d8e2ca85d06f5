"""The figures anchor coverage is told in: typed records, and the text the dock and CLI show.

The RPN's two thresholds come from the config (``rpn_bg_iou_thresh``, ``rpn_fg_iou_thresh``),
so the fields here are named for what they count (``recall`` at the foreground threshold, the
``share_between`` the two, the ``share_below`` the background one), not for 0.3 and 0.7.
Only the JSON that ``detlab anchors --json`` prints keeps the names users' scripts already
read (``recall_07``, ``share_03_07``, ``share_below_03``): :meth:`CoverageFigures.to_dict`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "UNCAUGHT_COLUMNS",
    "ZONE_COLORS",
    "CoverageFigures",
    "ShapeFigures",
    "UncaughtBox",
    "format_percent",
    "zone_color",
]

# Best-IoU zones, coloured alike on the canvas and in the histogram: below the background
# threshold, between the two, at or above the foreground threshold.
ZONE_COLORS = {"low": "#e6194b", "mid": "#f58231", "high": "#3cb44b"}

# What the dock's table of uncaught boxes shows, one column per entry of UncaughtBox.cells().
UNCAUGHT_COLUMNS = ("Image", "Box", "Class", "Best IoU", "Why")


def zone_color(iou: float, bg: float = 0.3, fg: float = 0.7) -> str:
    """Red below ``bg``, orange below ``fg``, green from ``fg`` on."""
    if iou >= fg:
        return ZONE_COLORS["high"]
    return ZONE_COLORS["mid"] if iou >= bg else ZONE_COLORS["low"]


def format_percent(value: float | None) -> str:
    """A fraction as ``"87.5%"``; ``"n/a"`` when there is none (a group without boxes)."""
    return "n/a" if value is None else f"{100 * float(value):.1f}%"


@dataclass(frozen=True)
class CoverageFigures:
    """How well anchors catch a group of boxes (a dataset, a class, a size bucket).

    The fractions are ``None`` for a group without boxes.

    Attributes
    ----------
    boxes
        How many boxes the group holds.
    recall
        Share of boxes whose best anchor IoU reaches the foreground threshold.
    share_between
        Share whose best IoU lies in ``[bg, fg)``: only ignored anchors, and a low-quality
        match if no neighbour takes it.
    share_below
        Share whose best IoU is under the background threshold.
    no_positive
        Boxes the RPN's matcher gives no positive anchor at all.
    mean_placed_iou
        Mean best IoU with anchors where the grid places them.
    """

    boxes: int = 0
    recall: float | None = None
    share_between: float | None = None
    share_below: float | None = None
    no_positive: int = 0
    mean_placed_iou: float | None = None

    def to_dict(self) -> dict[str, float | int | None]:
        """The JSON form, under the key names ``detlab anchors --json`` has always printed."""
        return {
            "boxes": self.boxes,
            "recall_07": self.recall,
            "share_03_07": self.share_between,
            "share_below_03": self.share_below,
            "no_positive": self.no_positive,
            "mean_placed_iou": self.mean_placed_iou,
        }


@dataclass(frozen=True)
class ShapeFigures:
    """Shape-only yardsticks that ignore where anchors sit (``None`` without boxes).

    Attributes
    ----------
    bpr
        YOLOv5's best possible recall: share of boxes whose width and height are both within
        ``anchor_t`` times some anchor's.
    anchors_per_target
        How many anchors pass that test per box.
    mean_best_iou
        MMDetection's mean over boxes of the best IoU with a zero-centred anchor shape.
    """

    bpr: float | None = None
    anchors_per_target: float | None = None
    mean_best_iou: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return asdict(self)


@dataclass(frozen=True)
class UncaughtBox:
    """A box no anchor catches at the foreground threshold, or left with no positive anchor.

    Attributes
    ----------
    image, image_index
        Its image (as the coverage's input named it) and that image's position in the input.
    box_index
        Its position in its image's boxes (the annotation file's order).
    label
        Its class.
    best_iou
        Its best anchor IoU, rounded to 4 places.
    num_positive
        Anchors the RPN labels positive for it.
    best_level
        Feature-map level of its best anchor.
    box
        Original-pixel xyxy, rounded to 2 places.
    reason
        ``below_bg`` (best IoU under the background threshold: only a low-quality match, if
        any), ``below_fg`` (between the thresholds) or ``no_positive`` (its anchors went to a
        neighbour).
    """

    image: str
    image_index: int
    box_index: int
    label: str
    best_iou: float
    num_positive: int
    best_level: int
    box: list[float]
    reason: str

    def to_dict(self) -> dict[str, object]:
        """The JSON form (one entry of ``detlab anchors --json``'s ``uncaught`` list)."""
        return asdict(self)

    def cells(self) -> tuple[str, str, str, str, str]:
        """The row of the dock's table, under :data:`UNCAUGHT_COLUMNS`."""
        return (Path(self.image).name, str(self.box_index), self.label,
                f"{self.best_iou:.3f}", self.reason)  # fmt: skip
