"""How well a config's anchors catch a dataset's boxes, under torchvision's RPN rules.

The RPN labels anchors with ``Matcher(fg, bg, allow_low_quality_matches=True)`` on the IoU
matrix of ground-truth boxes against every anchor, in the resized image:

* an anchor whose best IoU over the image's boxes is ``>= fg`` (0.7) is positive for its
  argmax box; below ``bg`` (0.3) it is background; in between it is ignored;
* low-quality matches: for each box, the anchors tied at that box's highest IoU become
  positive too, but for *their own* argmax box. In a crowded scene a box can therefore lose
  its best anchor to a neighbour and end with no positive anchor at all.

:func:`coverage` reproduces this exactly (same float32 IoU arithmetic, same tie rules; the
tests compare it with ``box_iou`` + torchvision's ``Matcher`` over all anchors) without
building the full matrix. Anchors lie on one regular grid per level, and ``IoU >= t`` needs
the overlap along x to be at least ``t * max(w_anchor, w_box)`` (likewise along y), which
bounds the grid cells that can matter for each box and prunes anchor shapes that cannot
reach ``t``. Each box's threshold is ``min(fg, its best IoU)``, its best IoU being bounded
from below by the anchor nearest its centre (IoU falls monotonically with the offset along
each axis). Only those few cells are compared with the boxes of their image.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision.models.detection._utils import Matcher
from torchvision.ops import box_iou

from napari_detlab.core.anchors.figures import CoverageFigures, UncaughtBox
from napari_detlab.core.anchors.layout import AnchorLayout
from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.boxes import SIZE_BUCKETS, BoxRecord, paired_iou_f32
from napari_detlab.core.images import image_size as header_size
from napari_detlab.core.model.config import ModelConfig

__all__ = [
    "SIZE_BUCKETS",
    "BoxCoverage",
    "ImageBoxes",
    "brute_force_coverage",
    "brute_force_image",
    "measure_coverage",
]

# Relative slack on the cell-window bounds, so float rounding can only make windows larger.
_SLACK = 1e-4
# Upper bound on (candidate anchor, box) pairs held at once: bounds memory on crowded images.
_PAIR_BUDGET = 250_000


@dataclass(kw_only=True)
class ImageBoxes(BoxRecord):
    """One image's labelled boxes with what places its anchors: the image and its size.

    Attributes
    ----------
    boxes, labels
        See :class:`~napari_detlab.core.boxes.BoxRecord`; without labels, each box gets ``""``.
    image
        Path (or any name) reported in the uncaught list.
    image_size
        Original ``(height, width)``: decides the resize and therefore the anchors.
    """

    image: str | Path
    image_size: tuple[int, int]

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.labels:
            self.labels = [""] * len(self.boxes)

    @classmethod
    def from_annotation(
        cls, image: str | Path, annotation: ImageAnnotation | None = None
    ) -> ImageBoxes:
        """``image``'s annotated boxes (none without an annotation) with the image's size.

        The size is the one the annotation file records, else the image header's (read
        without decoding the pixels).

        Raises
        ------
        ImageReadError
            Neither the annotation nor the image header gives the size.
        """
        record = annotation if annotation is not None else ImageAnnotation()
        size = record.image_size or header_size(image)
        return cls(record.boxes, record.labels, image=image, image_size=size)


@dataclass
class BoxCoverage:
    """Per-box coverage of a dataset, plus the figures and lists derived from it.

    Each array has one entry per box, in the order of the input images and their boxes.

    Attributes
    ----------
    image_index, box_index
        Which input image, and which box within it.
    labels
        Class name of each box.
    boxes
        Original-pixel xyxy; ``resized_boxes`` the same in the space the anchors live in.
    best_iou
        Highest IoU of the box with any anchor of its image.
    num_positive
        Anchors the RPN's matcher labels positive for this box.
    best_level
        Feature-map level of the first anchor (torchvision's order) reaching ``best_iou``.
    """

    images: list[str]
    image_index: np.ndarray
    box_index: np.ndarray
    labels: list[str]
    boxes: np.ndarray
    resized_boxes: np.ndarray
    best_iou: np.ndarray
    num_positive: np.ndarray
    best_level: np.ndarray
    fg_thresh: float = 0.7
    bg_thresh: float = 0.3
    num_levels: int = 0

    def __len__(self) -> int:
        return len(self.best_iou)

    @property
    def caught(self) -> np.ndarray:
        """Boxes with at least one anchor at ``IoU >= fg`` and a positive anchor of their own."""
        return (self.best_iou >= self.fg_thresh) & (self.num_positive > 0)

    def size_bucket(self) -> np.ndarray:
        """``small``/``medium``/``large`` of each box by its area in the resized image (where
        anchors live and where the model sees the object)."""
        b = self.resized_boxes.astype(np.float64)
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        names = np.empty(len(area), dtype=object)
        for name, low, high in SIZE_BUCKETS:
            names[(area >= low) & (area < high)] = name
        return names

    def figures(self, mask: np.ndarray | None = None) -> CoverageFigures:
        """The figures of every box, or of the boxes ``mask`` selects."""
        if mask is None:
            mask = np.ones(len(self), dtype=bool)
        best = self.best_iou[mask]
        count = int(mask.sum())
        if count == 0:
            return CoverageFigures()
        return CoverageFigures(
            boxes=count,
            recall=float(np.mean(best >= self.fg_thresh)),
            share_between=float(np.mean((best >= self.bg_thresh) & (best < self.fg_thresh))),
            share_below=float(np.mean(best < self.bg_thresh)),
            no_positive=int((self.num_positive[mask] == 0).sum()),
            mean_placed_iou=float(best.mean()),
        )

    def per_class(self) -> dict[str, CoverageFigures]:
        """The figures of each class, by name."""
        labels = np.asarray(self.labels, dtype=object)
        return {name: self.figures(labels == name) for name in sorted(set(self.labels))}

    def per_size(self) -> dict[str, CoverageFigures]:
        """The figures of each of :data:`SIZE_BUCKETS`, empty buckets included."""
        buckets = self.size_bucket()
        return {name: self.figures(buckets == name) for name, _, _ in SIZE_BUCKETS}

    def per_level(self) -> list[int]:
        """How many boxes have their best anchor on each feature-map level."""
        return [int((self.best_level == lev).sum()) for lev in range(self.num_levels)]

    @property
    def mean_positives(self) -> float | None:
        """Positive anchors per box, on average (``None`` without boxes)."""
        return float(self.num_positive.mean()) if len(self) else None

    def uncaught(self, limit: int | None = None) -> list[UncaughtBox]:
        """Boxes no anchor reaches at ``fg``, or left with no positive anchor, worst first.

        :attr:`UncaughtBox.reason` says which: ``below_bg``, ``below_fg`` or ``no_positive``.
        """
        order = np.argsort(self.best_iou, kind="stable")
        caught = self.caught  # a property over every box: computed once, not once per box
        rows = []
        for i in order:
            if caught[i]:
                continue
            if self.num_positive[i] == 0:
                reason = "no_positive"
            elif self.best_iou[i] < self.bg_thresh:
                reason = "below_bg"
            else:
                reason = "below_fg"
            rows.append(UncaughtBox(
                image=self.images[int(self.image_index[i])],
                image_index=int(self.image_index[i]),
                box_index=int(self.box_index[i]),
                label=self.labels[i],
                best_iou=round(float(self.best_iou[i]), 4),
                num_positive=int(self.num_positive[i]),
                best_level=int(self.best_level[i]),
                box=[round(float(v), 2) for v in self.boxes[i]],
                reason=reason,
            ))  # fmt: skip
            if limit is not None and len(rows) >= limit:
                break
        return rows


# -- exact reference ------------------------------------------------------------------------
def brute_force_image(
    layout: AnchorLayout, resized_boxes: np.ndarray, fg: float = 0.7, bg: float = 0.3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(best_iou, num_positive, best_anchor_index)`` of one image, the RPN's own way.

    ``box_iou`` of every box against every anchor, then torchvision's ``Matcher`` with low-
    quality matches: the reference the fast path is tested and benchmarked against, and its
    fallback for degenerate cases.
    """
    gt = torch.from_numpy(np.ascontiguousarray(resized_boxes, np.float32))
    anchors = torch.from_numpy(layout.anchors_resized())
    iou = box_iou(gt, anchors)
    matches = Matcher(fg, bg, allow_low_quality_matches=True)(iou)
    best = iou.max(dim=1).values
    index = torch.arange(iou.shape[1]).expand_as(iou)
    first = torch.where(iou == best[:, None], index, iou.shape[1]).min(dim=1).values
    positives = torch.bincount(matches[matches >= 0], minlength=len(gt))
    return best.numpy(), positives.numpy(), first.numpy()


def brute_force_coverage(
    config: ModelConfig, items: Sequence[ImageBoxes]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per box ``(best_iou, num_positive, best_level)`` by :func:`brute_force_image`, image by
    image: the reference :func:`coverage` is tested and benchmarked against."""
    best, positives, level = [], [], []
    fg, bg = config.rpn_fg_iou_thresh, config.rpn_bg_iou_thresh
    for item in items:
        layout = AnchorLayout.from_config(config, item.image_size)
        b, p, a = brute_force_image(layout, layout.to_resized(item.boxes), fg, bg)
        best.append(b)
        positives.append(p)
        level.append(layout.level_of(a))
    if not best:
        return np.zeros(0, np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(best), np.concatenate(positives), np.concatenate(level)


# -- fast path ------------------------------------------------------------------------------
class _Grid:
    """A layout's anchors as arrays indexed by (level, shape): what the fast path needs."""

    def __init__(self, layout: AnchorLayout) -> None:
        self.layout = layout
        cells = layout.cell_anchors
        self.num_shapes = np.array([len(c) for c in cells])
        # One row per (level, shape) pair.
        self.level = np.repeat(np.arange(len(cells)), self.num_shapes)
        self.shape = np.concatenate([np.arange(len(c)) for c in cells])
        self.base = np.concatenate(cells).astype(np.float32)  # (S, 4)
        self.stride = np.array(layout.strides, dtype=np.int64)[self.level]  # (S, 2) = (sy, sx)
        self.grid = np.array(layout.grid_sizes, dtype=np.int64)[self.level]  # (S, 2) = (gh, gw)
        self.offset = layout.level_offsets[self.level]
        self.per_cell = self.num_shapes[self.level]

    def anchor_index(self, s: np.ndarray, row: np.ndarray, col: np.ndarray) -> np.ndarray:
        return self.offset[s] + (row * self.grid[s, 1] + col) * self.per_cell[s] + self.shape[s]

    def decode(self, index: np.ndarray) -> np.ndarray:
        """float32 xyxy of anchors given by index, with AnchorGenerator's arithmetic."""
        level = self.layout.level_of(index)
        offsets = self.layout.level_offsets
        local = index - offsets[level]
        per_cell = self.num_shapes[level]
        cell, shape = local // per_cell, local % per_cell
        first_row_of_level = np.concatenate([[0], np.cumsum(self.num_shapes)])[level]
        s = first_row_of_level + shape
        row, col = cell // self.grid[s, 1], cell % self.grid[s, 1]
        shift_x = (col * self.stride[s, 1]).astype(np.float32)
        shift_y = (row * self.stride[s, 0]).astype(np.float32)
        shifts = np.stack([shift_x, shift_y, shift_x, shift_y], axis=1)
        return shifts + self.base[s]


def _nearest_lower_bound(grid: _Grid, gt: np.ndarray) -> np.ndarray:
    """For each box, the best IoU over shapes of the anchor nearest its centre (a lower bound
    on its best IoU, and equal to it: IoU falls monotonically with the offset on each axis)."""
    n, s_count = len(gt), len(grid.base)
    centre_x = (gt[:, 0] + gt[:, 2]).astype(np.float64) / 2
    centre_y = (gt[:, 1] + gt[:, 3]).astype(np.float64) / 2
    base = grid.base.astype(np.float64)
    base_cx, base_cy = (base[:, 0] + base[:, 2]) / 2, (base[:, 1] + base[:, 3]) / 2
    col = np.rint((centre_x[:, None] - base_cx) / grid.stride[:, 1]).astype(np.int64)
    row = np.rint((centre_y[:, None] - base_cy) / grid.stride[:, 0]).astype(np.int64)
    col = np.clip(col, 0, grid.grid[:, 1] - 1)
    row = np.clip(row, 0, grid.grid[:, 0] - 1)
    s = np.broadcast_to(np.arange(s_count), (n, s_count))
    anchors = grid.decode(grid.anchor_index(s, row, col).ravel())
    iou = paired_iou_f32(np.repeat(gt, s_count, axis=0), anchors).reshape(n, s_count)
    return iou.max(axis=1)


def _cell_windows(grid: _Grid, gt: np.ndarray, tau: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per (box, level-shape), the grid rows/cols where ``IoU >= tau`` is possible.

    Returns ``(box, shape_row, row_lo, row_count, col_lo, col_count)`` for non-empty windows.
    """
    g = gt.astype(np.float64)[:, None, :]  # (n, 1, 4)
    base = grid.base.astype(np.float64)[None, :, :]  # (1, S, 4)
    t = (tau * (1 - _SLACK))[:, None]
    limits = []
    for axis, (lo_i, hi_i) in enumerate(((0, 2), (1, 3))):
        stride = grid.stride[None, :, 1 - axis].astype(np.float64)
        cells = grid.grid[None, :, 1 - axis]
        box_w = g[..., hi_i] - g[..., lo_i]
        anchor_w = base[..., hi_i] - base[..., lo_i]
        need = t * np.maximum(box_w, anchor_w)
        # overlap >= need  <=>  anchor_hi - box_lo >= need and box_hi - anchor_lo >= need,
        # plus both widths >= need (the shape can reach tau at all).
        lo = np.ceil((g[..., lo_i] + need - base[..., hi_i]) / stride - 1e-3).astype(np.int64)
        hi = np.floor((g[..., hi_i] - need - base[..., lo_i]) / stride + 1e-3).astype(np.int64)
        lo, hi = np.maximum(lo, 0), np.minimum(hi, cells - 1)
        feasible = (box_w >= need * (1 - _SLACK)) & (anchor_w >= need * (1 - _SLACK))
        limits.append((lo, np.where(feasible, hi - lo + 1, 0).clip(0)))
    (col_lo, col_n), (row_lo, row_n) = limits
    box, shape = np.nonzero((col_n > 0) & (row_n > 0))
    return (box, shape, row_lo[box, shape], row_n[box, shape], col_lo[box, shape],
            col_n[box, shape])  # fmt: skip


def _ragged_arange(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(owner, position)`` for ``counts`` consecutive runs: the usual repeat/arange trick."""
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return owner, np.arange(int(counts.sum())) - starts[owner]


def _group_coverage(
    layout: AnchorLayout, image_of_box: np.ndarray, gt: np.ndarray, fg: float, bg: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coverage of the boxes of images sharing one layout (boxes grouped by image, in order).

    Returns per box ``(best_iou, num_positive, best_anchor_index)``.
    """
    grid = _Grid(layout)
    n = len(gt)
    images, box_start, box_count = np.unique(image_of_box, return_index=True, return_counts=True)
    local_image = np.searchsorted(images, image_of_box)
    lower = _nearest_lower_bound(grid, gt)
    degenerate = lower <= 0  # no anchor overlaps the box: let the reference decide exactly
    tau = np.minimum(np.float64(fg), lower.astype(np.float64))
    best = np.zeros(n, np.float32)
    positives = np.zeros(n, np.int64)
    best_anchor = np.full(n, np.iinfo(np.int64).max, np.int64)

    # 1. candidate anchors: the union over each image's boxes of their cell windows.
    box, shape, row_lo, row_n, col_lo, col_n = _cell_windows(grid, gt, np.where(degenerate, 1, tau))
    keep = ~degenerate[box]
    box, shape, row_lo, row_n, col_lo, col_n = (
        a[keep] for a in (box, shape, row_lo, row_n, col_lo, col_n)
    )
    owner, position = _ragged_arange(row_n * col_n)
    rows = row_lo[owner] + position // col_n[owner]
    cols = col_lo[owner] + position % col_n[owner]
    index = grid.anchor_index(shape[owner], rows, cols)
    key = local_image[box[owner]] * np.int64(layout.num_anchors) + index
    key.sort()  # sort + neighbour test: cheaper than np.unique's hashing at this size
    key = key[np.concatenate([[True], key[1:] != key[:-1]])] if len(key) else key
    cand_image = key // layout.num_anchors
    cand_index = key % layout.num_anchors
    cand_boxes = grid.decode(cand_index)

    # 2. each candidate against every box of its image, in slices of bounded size.
    pairs_per_cand = box_count[cand_image]
    cand_max = np.zeros(len(key), np.float32)
    cand_argmax = np.zeros(len(key), np.int64)
    kept_cand, kept_box, kept_iou = [], [], []
    tau32 = (tau * (1 - _SLACK)).astype(np.float32)
    cumulative = np.cumsum(pairs_per_cand)
    start = 0
    while start < len(key):
        stop = int(
            np.searchsorted(cumulative, (cumulative[start - 1] if start else 0) + _PAIR_BUDGET)
        )
        stop = max(stop, start + 1)
        cands = np.arange(start, min(stop, len(key)))
        pair_owner, pair_pos = _ragged_arange(pairs_per_cand[cands])
        cand = cands[pair_owner]
        gt_of_pair = box_start[cand_image[cand]] + pair_pos
        iou = paired_iou_f32(gt[gt_of_pair], cand_boxes[cand])
        seg = np.concatenate([[0], np.cumsum(pairs_per_cand[cands])[:-1]])
        seg_max = np.maximum.reduceat(iou, seg)
        cand_max[cands] = seg_max
        # torch's max(dim=0) returns the first box reaching the maximum.
        first = np.where(iou == seg_max[pair_owner], pair_pos, np.iinfo(np.int64).max)
        cand_argmax[cands] = box_start[cand_image[cands]] + np.minimum.reduceat(first, seg)
        near = iou >= tau32[gt_of_pair]
        kept_cand.append(cand[near])
        kept_box.append(gt_of_pair[near])
        kept_iou.append(iou[near])
        start = int(cands[-1]) + 1
    kept_cand = np.concatenate(kept_cand) if kept_cand else np.zeros(0, np.int64)
    kept_box = np.concatenate(kept_box) if kept_box else np.zeros(0, np.int64)
    kept_iou = np.concatenate(kept_iou) if kept_iou else np.zeros(0, np.float32)

    # 3. each box's best IoU, and the anchors tied at it (low-quality matches).
    box_t = torch.from_numpy(kept_box)
    best_t = torch.zeros(n, dtype=torch.float32).scatter_reduce_(
        0, box_t, torch.from_numpy(kept_iou), "amax", include_self=True
    )
    best = best_t.numpy()
    tied = kept_iou == best[kept_box]
    tied &= ~degenerate[kept_box]
    first_anchor = torch.full((n,), np.iinfo(np.int64).max, dtype=torch.int64).scatter_reduce_(
        0, box_t[torch.from_numpy(tied)], torch.from_numpy(cand_index[kept_cand[tied]]), "amin"
    )
    best_anchor = first_anchor.numpy()
    positive = cand_max >= np.float32(fg)
    positive[kept_cand[tied]] = True
    positives = np.bincount(cand_argmax[positive], minlength=n).astype(np.int64)

    # 4. boxes no anchor overlaps (or that are not boxes): the reference, image by image.
    for image in np.unique(local_image[degenerate]):
        members = np.flatnonzero(local_image == image)
        b, p, a = brute_force_image(layout, gt[members], fg, bg)
        best[members], positives[members], best_anchor[members] = b, p, a
    return best, positives, best_anchor


def measure_coverage(
    config: ModelConfig, items: Sequence[ImageBoxes] | Iterable[ImageBoxes]
) -> BoxCoverage:
    """Per-box coverage of ``items`` by ``config``'s anchors, exactly as the RPN matches them.

    Images sharing an original size share one :class:`~napari_detlab.core.anchors.layout.
    AnchorLayout`, so a dataset of same-size images costs one layout plus array work.
    """
    items = list(items)
    fg, bg = float(config.rpn_fg_iou_thresh), float(config.rpn_bg_iou_thresh)
    counts = np.array([len(item.boxes) for item in items], dtype=np.int64)
    total = int(counts.sum())
    image_index = np.repeat(np.arange(len(items)), counts)
    box_index = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    boxes = (
        np.concatenate([item.boxes for item in items]) if total else np.zeros((0, 4), np.float32)
    )
    labels = [label for item in items for label in item.labels]
    resized = np.zeros((total, 4), np.float32)
    best = np.zeros(total, np.float32)
    positives = np.zeros(total, np.int64)
    level = np.zeros(total, np.int64)
    # Anchors in the resized space depend only on the padded size, so images of different
    # original sizes that pad alike share one grid; each box is resized by its own image's ratios.
    groups: dict[tuple[int, int], list[int]] = {}
    layouts: dict[tuple[int, int], AnchorLayout] = {}
    for i, item in enumerate(items):
        if len(item.boxes) == 0:
            continue
        layout = layouts.get(item.image_size)
        if layout is None:
            layout = layouts[item.image_size] = AnchorLayout.from_config(config, item.image_size)
        groups.setdefault(layout.padded_size, []).append(i)
    box_start = np.cumsum(counts) - counts
    for members in groups.values():
        rows = np.concatenate([np.arange(box_start[i], box_start[i] + counts[i]) for i in members])
        for i in members:
            span = slice(box_start[i], box_start[i] + counts[i])
            resized[span] = layouts[items[i].image_size].to_resized(boxes[span])
        layout = layouts[items[members[0]].image_size]
        b, p, a = _group_coverage(layout, image_index[rows], resized[rows], fg, bg)
        best[rows], positives[rows], level[rows] = b, p, layout.level_of(a)
    num_levels = config.num_levels
    return BoxCoverage(
        images=[str(item.image) for item in items], image_index=image_index, box_index=box_index,
        labels=labels, boxes=boxes, resized_boxes=resized, best_iou=best, num_positive=positives,
        best_level=level, fg_thresh=fg, bg_thresh=bg, num_levels=num_levels,
    )  # fmt: skip
