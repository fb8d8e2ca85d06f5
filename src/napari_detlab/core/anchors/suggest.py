"""Anchor sizes and ratios fitted to a dataset, and the shape-only figures beside them.

Two families of numbers live here:

* **shape-only** figures that ignore where anchors sit (YOLOv5's best possible recall with
  ``anchor_t = 4`` and anchors per target; MMDetection's mean best IoU of zero-centred
  shapes). They are the published yardsticks, but they overstate a two-stage detector's
  coverage because the RPN's anchors sit on a grid (see :mod:`~napari_detlab.core.anchors.
  coverage` for the real figures).
* :func:`suggest_anchors`: k-means with distance ``1 - IoU`` fitted in the RESIZED space the
  anchors live in, factored the way torchvision builds anchors (every level takes all
  combinations of its sizes and ratios, and every level needs the same count because one RPN
  head is shared): ratios from IoU k-means on unit-area shapes (shared by all levels), sizes
  from IoU k-means on equal-area squares, sorted and dealt to levels in order of log2 size
  (on the window of levels that the real coverage prefers, octaves outside it), then
  optionally refined by a small multiplicative search on the real, grid-aware coverage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from napari_detlab.core.anchors.coverage import BoxCoverage, ImageBoxes, measure_coverage
from napari_detlab.core.anchors.figures import CoverageFigures, ShapeFigures, format_percent
from napari_detlab.core.anchors.layout import anchor_shapes
from napari_detlab.core.boxes import shape_iou
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.model.config import ModelConfig

__all__ = [
    "AnchorFitError",
    "AnchorSuggestion",
    "config_anchor_wh",
    "iou_kmeans",
    "resized_shapes",
    "shape_metrics",
    "suggest_anchors",
]

YOLO_ANCHOR_T = 4.0  # YOLOv5's hyp['anchor_t']: width and height each within 4x of the anchor's
TINY_BOX = 3.0  # YOLOv5 warns below 3 px: few pixels for any backbone to see
DEGENERATE_BOX = 2.0  # and drops below 2 px from the fit


class AnchorFitError(DetlabError, ValueError):
    """No anchors can be fitted to these boxes (none at all, or all under 2 px)."""


def config_anchor_wh(config: ModelConfig) -> np.ndarray:
    """``(K, 2)`` widths and heights of every anchor shape of the config (all levels)."""
    cells = np.concatenate(anchor_shapes(config)).astype(np.float64)
    return np.stack([cells[:, 2] - cells[:, 0], cells[:, 3] - cells[:, 1]], axis=1)


def shape_metrics(
    wh: np.ndarray, anchors_wh: np.ndarray, thr: float = YOLO_ANCHOR_T
) -> ShapeFigures:
    """YOLOv5's BPR and anchors per target, and MMDetection's mean best shape IoU.

    ``bpr``: share of boxes whose width and height are both within ``thr``x of some anchor's;
    ``anchors_per_target``: how many anchors pass that test per box; ``mean_best_iou``: mean
    over boxes of the best IoU with a zero-centred anchor shape.
    """
    wh = np.asarray(wh, np.float64).reshape(-1, 2)
    if len(wh) == 0:
        return ShapeFigures()
    ratio = wh[:, None, :] / np.asarray(anchors_wh, np.float64)[None, :, :]
    fit = np.minimum(ratio, 1 / ratio).min(axis=2)
    return ShapeFigures(
        bpr=float(np.mean(fit.max(axis=1) > 1 / thr)),
        anchors_per_target=float(np.mean((fit > 1 / thr).sum(axis=1))),
        mean_best_iou=float(shape_iou(wh, anchors_wh).max(axis=1).mean()),
    )


def resized_shapes(result: BoxCoverage) -> np.ndarray:
    """``(N, 2)`` widths and heights of the covered boxes in the resized space anchors live in."""
    b = result.resized_boxes.astype(np.float64)
    return np.stack([b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)


def iou_kmeans(wh: np.ndarray, k: int, *, iterations: int = 50, seed: int = 0) -> np.ndarray:
    """k-means on shapes with distance ``1 - IoU`` (YOLO9000's anchor clustering).

    Starts from area quantiles (deterministic, spread over the range); each centre is the
    mean shape of its members; an empty cluster is re-seeded at the worst-fitting shape.
    Returns ``(k, 2)`` centres sorted by area.
    """
    wh = np.asarray(wh, np.float64).reshape(-1, 2)
    if len(wh) == 0:
        raise AnchorFitError("no boxes to fit anchors to")
    order = np.argsort(wh[:, 0] * wh[:, 1], kind="stable")
    picks = order[np.clip(((np.arange(k) + 0.5) / k * len(wh)).astype(int), 0, len(wh) - 1)]
    centres = wh[picks].copy()
    rng = np.random.default_rng(seed)
    for _ in range(iterations):
        iou = shape_iou(wh, centres)
        assign = iou.argmax(axis=1)
        updated = centres.copy()
        for c in range(k):
            members = wh[assign == c]
            if len(members):
                updated[c] = members.mean(axis=0)
            else:  # re-seed at a badly covered box (random among the worst tenth)
                worst = np.argsort(iou.max(axis=1))[: max(1, len(wh) // 10)]
                updated[c] = wh[rng.choice(worst)]
        if np.allclose(updated, centres):
            break
        centres = updated
    return centres[np.argsort(centres[:, 0] * centres[:, 1], kind="stable")]


def _fit_ratios(wh: np.ndarray, count: int) -> list[float]:
    # Unit-area shapes: IoU between them depends on the aspect ratio alone.
    unit = wh / np.sqrt(wh[:, :1] * wh[:, 1:])
    centres = iou_kmeans(unit, count)
    ratios = sorted(float(h / w) for w, h in centres)
    return [round(r, 3) for r in ratios]


def _deal(sizes: list[float], levels: int, per_level: int) -> list[list[float]]:
    """Sorted sizes dealt to levels in order: level 0 gets the smallest ``per_level``."""
    ordered = sorted(sizes)
    return [
        [round(s, 1) for s in ordered[lev * per_level : (lev + 1) * per_level]]
        for lev in range(levels)
    ]


def _fit_sizes(wh: np.ndarray, levels: int, per_level: int) -> list[list[list[float]]]:
    """Candidate per-level sizes: k-means clusters on a window of levels, octaves outside it.

    IoU k-means on equal-area squares (their IoU depends on the size alone) gives
    ``used * per_level`` sizes for every count ``used`` of levels the objects may occupy;
    they fill levels ``first .. first + used - 1`` in order of log2 size, and the levels
    outside the window continue the pyramid by octaves (halving below, doubling above).
    Packing all the clusters into the data's range is not always best: a size on a coarse
    level sits on a coarse grid, so which window wins is left to the real coverage.
    """
    side = np.sqrt(wh[:, 0] * wh[:, 1])
    squares = np.stack([side, side], axis=1)
    candidates = []
    for used in range(1, levels + 1):
        centres = sorted(float(w) for w, _ in iou_kmeans(squares, used * per_level))
        groups = [centres[i * per_level : (i + 1) * per_level] for i in range(used)]
        for first in range(levels - used + 1):
            sizes: list[float] = []
            for lev in range(levels):
                if lev < first:
                    sizes += [v / 2 ** (first - lev) for v in groups[0]]
                elif lev >= first + used:
                    sizes += [v * 2 ** (lev - first - used + 1) for v in groups[-1]]
                else:
                    sizes += groups[lev - first]
            candidates.append(_deal(sizes, levels, per_level))
    return candidates


def _score(figures: CoverageFigures) -> float:
    return (figures.recall or 0.0) + 0.25 * (figures.mean_placed_iou or 0.0)


@dataclass
class AnchorSuggestion:
    """A fitted config with the figures that justify it.

    Attributes
    ----------
    config
        The input config with new ``anchor_sizes`` and ``aspect_ratios`` (same counts).
    before, after
        Coverage figures (:meth:`BoxCoverage.figures`) of the old and new anchors.
    shape_before, shape_after
        :func:`shape_metrics` of the old and new anchor shapes.
    improved
        Whether the new anchors score higher (recall at the foreground threshold, then mean
        best IoU).
    warnings
        Things a user should know (tiny boxes, pretrained RPN weights that no longer fit).
    """

    config: ModelConfig
    before: CoverageFigures
    after: CoverageFigures
    shape_before: ShapeFigures
    shape_after: ShapeFigures
    improved: bool
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """The JSON form (``detlab anchors --suggest --json``'s ``suggestion``)."""
        return {
            "anchor_sizes": self.config.anchor_sizes,
            "aspect_ratios": self.config.aspect_ratios,
            "improved": self.improved,
            "before": _headline(self.before, self.shape_before),
            "after": _headline(self.after, self.shape_after),
            "warnings": list(self.warnings),
        }

    def summary(self) -> str:
        """Before -> after in a few words, then whether it helps and the warnings."""
        fg, bg = self.config.rpn_fg_iou_thresh, self.config.rpn_bg_iou_thresh
        before, after = self.before, self.after
        return (
            f"recall@{fg:g} {format_percent(before.recall)} -> {format_percent(after.recall)}; "
            f"< {bg:g} {format_percent(before.share_below)} -> "
            f"{format_percent(after.share_below)}; mean best IoU "
            f"{self.shape_before.mean_best_iou:.3f} -> {self.shape_after.mean_best_iou:.3f}"
            + ("" if self.improved else "\n(no better than the current anchors)")
            + "".join(f"\n{w}" for w in self.warnings)
        )


def _headline(figures: CoverageFigures, shape: ShapeFigures) -> dict[str, object]:
    coverage_figures = {k: v for k, v in figures.to_dict().items() if k != "boxes"}
    return {**coverage_figures, **shape.to_dict()}


def _subsample(items: list[ImageBoxes], max_boxes: int, seed: int) -> list[ImageBoxes]:
    total = sum(len(item.boxes) for item in items)
    if total <= max_boxes:
        return items
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(items))
    picked, count = [], 0
    for i in order:
        picked.append(items[i])
        count += len(items[i].boxes)
        if count >= max_boxes:
            break
    return picked


def suggest_anchors(
    config: ModelConfig,
    items: Sequence[ImageBoxes],
    *,
    refine: bool = True,
    refine_boxes: int = 3000,
    seed: int = 0,
    base: BoxCoverage | None = None,
) -> AnchorSuggestion:
    """Fit anchor sizes and ratios to ``items`` and compare the coverage before and after.

    The counts of sizes and of ratios per level are kept (so the RPN head keeps its shape);
    only their values change. ``refine`` then tries a few multiplicative tweaks of the sizes
    (all together, then level by level) on up to ``refine_boxes`` boxes and keeps those that
    raise recall at 0.7 (then mean best IoU) under the real grid-aware matching.
    """
    items = [item for item in items if len(item.boxes)]
    base = base if base is not None else measure_coverage(config, items)
    if len(base) == 0:
        raise AnchorFitError("the dataset has no boxes: annotate some before fitting anchors")
    wh = resized_shapes(base)
    warnings: list[str] = []
    tiny = int(np.sum(wh.min(axis=1) < TINY_BOX))
    if tiny:
        warnings.append(
            f"{tiny} box(es) are under {TINY_BOX:g} px on a side after resizing: raise min_size "
            "or check them; boxes under 2 px are left out of the fit"
        )
    usable = wh[wh.min(axis=1) >= DEGENERATE_BOX]
    if len(usable) == 0:
        raise AnchorFitError("every box is under 2 px after resizing; raise min_size")
    levels = config.num_levels
    per_level_sizes, ratio_count = len(config.anchor_sizes[0]), len(config.aspect_ratios[0])
    ratios = _fit_ratios(usable, ratio_count)
    sample = _subsample(list(items), refine_boxes, seed)
    candidates = [
        config.replace(anchor_sizes=sizes, aspect_ratios=[list(ratios)] * levels)
        for sizes in _fit_sizes(usable, levels, per_level_sizes)
    ]
    if len(candidates) > 1:
        scores = [_score(measure_coverage(candidate, sample).figures()) for candidate in candidates]
        fitted = candidates[int(np.argmax(scores))]
    else:
        fitted = candidates[0]
    if refine:
        fitted = _refine(fitted, sample)
    after = measure_coverage(fitted, items)
    before_fig, after_fig = base.figures(), after.figures()
    if config.pretrained == "coco":
        warnings.append(
            "the COCO-pretrained RPN was trained for the old anchors; new shapes will need "
            "more training before proposals are good"
        )
    return AnchorSuggestion(
        config=fitted,
        before=before_fig,
        after=after_fig,
        shape_before=shape_metrics(wh, config_anchor_wh(config)),
        shape_after=shape_metrics(wh, config_anchor_wh(fitted)),
        improved=_score(after_fig) > _score(before_fig),
        warnings=warnings,
    )


def _refine(config: ModelConfig, items: list[ImageBoxes]) -> ModelConfig:
    """Greedy multiplicative search on the sizes, judged by the real coverage."""

    def score_of(candidate: ModelConfig) -> float:
        return _score(measure_coverage(candidate, items).figures())

    def scaled(candidate: ModelConfig, factor: float, level: int | None) -> ModelConfig:
        sizes = [
            [round(s * factor, 1) if level is None or lev == level else s for s in level_sizes]
            for lev, level_sizes in enumerate(candidate.anchor_sizes)
        ]
        return candidate.replace(anchor_sizes=sizes)

    best, best_score = config, score_of(config)
    for factor in (0.8, 0.9, 1.1, 1.25):
        candidate = scaled(config, factor, None)
        score = score_of(candidate)
        if score > best_score:
            best, best_score = candidate, score
    for level in range(config.num_levels):
        for factor in (0.85, 1.15):
            candidate = scaled(best, factor, level)
            flat = [s for level_sizes in candidate.anchor_sizes for s in level_sizes]
            if flat != sorted(flat):  # keep sizes growing with the level (log2-size order)
                continue
            score = score_of(candidate)
            if score > best_score:
                best, best_score = candidate, score
    return best
