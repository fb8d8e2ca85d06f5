"""Large images with small objects: predict in overlapping tiles at full resolution.

Faster R-CNN resizes every image so that its shorter side is ``min_size`` unless its longer
side would pass ``max_size`` (:func:`resize_scale`). A 6,000 x 4,000 slide under the fast
preset (256 / 512) is shrunk 12-fold on a side, so a 20-pixel cell reaches the backbone as
under two pixels, below anything its anchors or feature maps can find. Tiling cuts the image
into overlapping tiles of the model's input size instead, predicts each at its own pixels
and maps the boxes back.

When tiles are used
-------------------
``"auto"`` tiles an image when resizing it whole would shrink it more than
:data:`AUTO_MAX_SHRINK` (4) times on a side, ``resize_scale(h, w) < 1 / 4``: 20-pixel objects
would reach the model below 5 pixels, under the smallest anchor of any preset by far. The
default tile is a ``min_size`` square, which the model takes at scale 1 (its shorter side is
``min_size`` and its longer side stays under ``max_size``), so objects are seen at their own
pixels. Training uses the same rule for its crops
(:mod:`napari_detlab.core.training.crops`), so a model trained on crops of large images sees
their objects at the size that tiled prediction shows it. ``"on"`` tiles every image,
``"off"`` none (the model's own resize, as before).

Boxes cut by a tile edge
------------------------
Tiles overlap by ``overlap`` pixels (default a quarter of the tile but at least
:data:`MIN_OVERLAP`, 32, and under half the tile), and their starts are spread evenly, so
neighbouring tiles share at least that much. A box that touches an *inner* tile edge (one
that is not the image border), within :data:`EDGE_MARGIN` pixels, is a piece of an object
the tile does not see whole. What happens to it depends on its extent across that edge:

- **narrower than** ``overlap - 2 * EDGE_MARGIN``: dropped. The piece lies wholly inside the
  neighbouring tile, at least the margin away from that tile's facing edge, so the neighbour
  sees at least as much of the object; an object that small is seen whole, away from every
  inner edge, by some tile. Dropping instead of merging keeps the box the model drew around
  the whole object, not a union of two guesses.
- **wider**: the object may be larger than the overlap, and then no tile sees it whole. Such
  pieces are kept: a piece mostly (:data:`CONTAINED`) inside a box of its class that some
  tile saw uncut is dropped as a part of it; the remaining pieces of one class from different
  tiles that overlap and agree along one axis (1-D IoU of at least :data:`JOIN_IOU`: two
  slices of one object) are joined into their union, with the higher score.

Then every box goes through per-class NMS at the model's own NMS IoU, which removes the
copies of an object seen whole by two tiles. Nothing is capped at the model's
``box_detections_per_img``: that cap is per tile, and a slide may hold thousands of cells.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.ops import batched_nms, box_area

from napari_detlab.core.errors import DetlabError

__all__ = [
    "AUTO_MAX_SHRINK",
    "CONTAINED",
    "EDGE_MARGIN",
    "JOIN_IOU",
    "MIN_OVERLAP",
    "TILING_MODES",
    "TileDetections",
    "Tiling",
    "TilingError",
    "detect",
    "merge_tiles",
    "needs_tiles",
    "resize_scale",
    "tile_grid",
    "tile_starts",
]

TILING_MODES = ("auto", "on", "off")
AUTO_MAX_SHRINK = 4.0
EDGE_MARGIN = 2.0
MIN_OVERLAP = 32
CONTAINED = 0.8
JOIN_IOU = 0.5


class TilingError(DetlabError, ValueError):
    """Tiling settings no run can use; the message names the setting and the fix."""


def resize_scale(height: int, width: int, min_size: int, max_size: int) -> float:
    """The factor torchvision's detector transform resizes a ``height x width`` image by."""
    return min(min_size / min(height, width), max_size / max(height, width))


def needs_tiles(height: int, width: int, min_size: int, max_size: int) -> bool:
    """The ``"auto"`` rule: resizing the whole image would shrink it over 4 times a side."""
    return resize_scale(height, width, min_size, max_size) < 1.0 / AUTO_MAX_SHRINK


@dataclass(frozen=True)
class Tiling:
    """How to cut images into tiles for prediction.

    Attributes
    ----------
    mode
        ``"auto"`` (tiles when :func:`needs_tiles`), ``"on"`` or ``"off"``.
    tile_size
        Side of the square tiles in image pixels; ``None``: the model's ``min_size``, which
        the model sees at scale 1.
    overlap
        Pixels shared by neighbouring tiles; ``None``: a quarter of the tile, at least 32
        (under half the tile). Objects up to ``overlap - 4`` pixels are seen whole, away from
        every inner edge, by some tile (see the module's notes).
    batch_size
        Tiles per forward pass.
    """

    mode: str = "auto"
    tile_size: int | None = None
    overlap: int | None = None
    batch_size: int = 4

    @classmethod
    def of(cls, value: Tiling | str) -> Tiling:
        """A :class:`Tiling` from itself or a mode name, validated."""
        return (value if isinstance(value, Tiling) else cls(mode=str(value))).validate()

    def validate(self) -> Tiling:
        if self.mode not in TILING_MODES:
            raise TilingError(f"tiling must be one of {', '.join(TILING_MODES)}, got {self.mode!r}")
        if self.tile_size is not None and self.tile_size < 16:
            raise TilingError(f"tile size must be at least 16 pixels, got {self.tile_size}")
        if self.overlap is not None and self.overlap < 0:
            raise TilingError(f"tile overlap must be >= 0 pixels, got {self.overlap}")
        size = self.tile_size
        if size is not None and self.overlap is not None and self.overlap >= size:
            raise TilingError(
                f"tile overlap ({self.overlap}) must be smaller than the tile size ({size})"
            )
        if self.batch_size < 1:
            raise TilingError(f"tile batch size must be at least 1, got {self.batch_size}")
        return self

    def size_for(self, min_size: int) -> int:
        return int(self.tile_size if self.tile_size is not None else min_size)

    def overlap_for(self, min_size: int) -> int:
        size = self.size_for(min_size)
        if self.overlap is not None:
            overlap = self.overlap
        else:
            overlap = min(max(size // 4, MIN_OVERLAP), (size - 1) // 2)
        if overlap >= size:
            raise TilingError(f"tile overlap ({overlap}) must be smaller than the tile ({size})")
        return int(overlap)

    def applies(self, height: int, width: int, min_size: int, max_size: int) -> bool:
        """Whether an image of this size is predicted in tiles."""
        if self.mode == "auto":
            return needs_tiles(height, width, min_size, max_size)
        return self.mode == "on"


# -- the grid ---------------------------------------------------------------------------------
def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Starts of tiles of ``tile`` pixels covering ``[0, length)``, neighbours sharing at least
    ``overlap`` pixels; the fewest such tiles, spread evenly, the last ending at ``length``.
    An axis no longer than one tile has one tile at 0."""
    if length <= tile:
        return [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def tile_grid(height: int, width: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Tiles ``(x0, y0, x1, y1)`` covering the image, row by row (clipped to the image)."""
    return [
        (x0, y0, min(x0 + tile, width), min(y0 + tile, height))
        for y0 in tile_starts(height, tile, overlap)
        for x0 in tile_starts(width, tile, overlap)
    ]


# -- merging ----------------------------------------------------------------------------------
@dataclass
class TileDetections:
    """What the model found in one tile, boxes in the tile's own pixels."""

    tile: tuple[int, int, int, int]
    boxes: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor


def _cut_sides(
    boxes: torch.Tensor, tile: tuple[int, int, int, int], height: int, width: int
) -> torch.Tensor:
    """``bool (N, 4)``: the box touches the tile's inner left, top, right, bottom edge."""
    x0, y0, x1, y1 = tile
    inner = torch.tensor([x0 > 0, y0 > 0, x1 < width, y1 < height])
    near = torch.stack(
        [
            boxes[:, 0] <= x0 + EDGE_MARGIN,
            boxes[:, 1] <= y0 + EDGE_MARGIN,
            boxes[:, 2] >= x1 - EDGE_MARGIN,
            boxes[:, 3] >= y1 - EDGE_MARGIN,
        ],
        dim=1,
    )
    return near & inner


def _interval_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1-D IoU of intervals ``a (N, 2)`` and ``b (M, 2)``: ``(N, M)``."""
    inter = (
        torch.minimum(a[:, None, 1], b[None, :, 1]) - torch.maximum(a[:, None, 0], b[None, :, 0])
    ).clamp(min=0)
    union = (a[:, None, 1] - a[:, None, 0]) + (b[None, :, 1] - b[None, :, 0]) - inter
    return inter / union.clamp(min=1e-6)


def _intersection(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    return wh[..., 0] * wh[..., 1]


def _join_pieces(
    boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, tiles: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Join pieces of one class from different tiles that overlap and agree along an axis."""
    count = len(boxes)
    if count < 2:
        return boxes, scores, labels
    agree = (_interval_iou(boxes[:, [0, 2]], boxes[:, [0, 2]]) >= JOIN_IOU) | (
        _interval_iou(boxes[:, [1, 3]], boxes[:, [1, 3]]) >= JOIN_IOU
    )
    link = (
        agree
        & (_intersection(boxes, boxes) > 0)
        & (labels[:, None] == labels[None, :])
        & (tiles[:, None] != tiles[None, :])
    )
    parent = list(range(count))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in link.nonzero().tolist():
        parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(count):
        groups.setdefault(root(i), []).append(i)
    members = list(groups.values())
    joined = torch.stack(
        [
            torch.cat([boxes[m, :2].min(dim=0).values, boxes[m, 2:].max(dim=0).values])
            for m in members
        ]
    )
    return joined, torch.stack([scores[m].max() for m in members]), labels[[m[0] for m in members]]


def merge_tiles(
    detections: Sequence[TileDetections],
    height: int,
    width: int,
    overlap: int,
    nms_iou: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Boxes of all tiles in image pixels, cut boxes handled and copies removed.

    See the module's notes for the rules. Returns ``boxes (N, 4)``, ``scores (N,)`` and
    ``labels (N,)``, by decreasing score.
    """
    whole: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    pieces: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []
    small = overlap - 2 * EDGE_MARGIN
    for index, found in enumerate(detections):
        x0, y0 = found.tile[0], found.tile[1]
        boxes = found.boxes.float().reshape(-1, 4) + torch.tensor([x0, y0, x0, y0])
        # a tile padded past the image's border may have boxes reaching into the padding
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
        scores, labels = found.scores.float().reshape(-1), found.labels.long().reshape(-1)
        cut = _cut_sides(boxes, found.tile, height, width)
        extent = torch.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, dim=1)
        dropped = (cut & (extent < small)).any(dim=1)
        is_piece = cut.any(dim=1) & ~dropped
        keep = ~cut.any(dim=1)
        whole.append((boxes[keep], scores[keep], labels[keep]))
        tile_id = torch.full((int(is_piece.sum()),), index)
        pieces.append((boxes[is_piece], scores[is_piece], labels[is_piece], tile_id))
    boxes, scores, labels = (torch.cat(part) for part in zip(*whole, strict=True))
    if pieces:
        p_boxes, p_scores, p_labels, p_tiles = (
            torch.cat(part) for part in zip(*pieces, strict=True)
        )
        if len(p_boxes) and len(boxes):
            inside = _intersection(p_boxes, boxes) / box_area(p_boxes).clamp(min=1e-6)[:, None]
            same = p_labels[:, None] == labels[None, :]
            part_of_whole = ((inside >= CONTAINED) & same).any(dim=1)
            p_boxes, p_scores = p_boxes[~part_of_whole], p_scores[~part_of_whole]
            p_labels, p_tiles = p_labels[~part_of_whole], p_tiles[~part_of_whole]
        p_boxes, p_scores, p_labels = _join_pieces(p_boxes, p_scores, p_labels, p_tiles)
        boxes = torch.cat([boxes, p_boxes])
        scores = torch.cat([scores, p_scores])
        labels = torch.cat([labels, p_labels])
    keep = batched_nms(boxes, scores, labels, nms_iou)
    return boxes[keep], scores[keep], labels[keep]


# -- running the model ------------------------------------------------------------------------
def _tiles_of(image: torch.Tensor, grid: Sequence[tuple[int, int, int, int]], tile: int):
    """Each tile's pixels, padded with zeros to a full tile on an image smaller than one (so
    the model still sees it at scale 1 rather than enlarging it)."""
    for x0, y0, x1, y1 in grid:
        piece = image[:, y0:y1, x0:x1]
        if piece.shape[1] < tile or piece.shape[2] < tile:
            padded = piece.new_zeros(
                (piece.shape[0], max(tile, piece.shape[1]), max(tile, piece.shape[2]))
            )
            padded[:, : piece.shape[1], : piece.shape[2]] = piece
            piece = padded
        yield piece


def _predict_tiled(
    model: nn.Module,
    image: torch.Tensor,
    tiling: Tiling,
    min_size: int,
    nms_iou: float,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    height, width = image.shape[-2:]
    tile, overlap = tiling.size_for(min_size), tiling.overlap_for(min_size)
    grid = tile_grid(height, width, tile, overlap)
    found: list[TileDetections] = []
    pixels = list(_tiles_of(image, grid, tile))
    for start in range(0, len(grid), tiling.batch_size):
        outputs = model([p.to(device) for p in pixels[start : start + tiling.batch_size]])
        for rect, output in zip(grid[start : start + tiling.batch_size], outputs, strict=True):
            found.append(
                TileDetections(
                    rect,
                    output["boxes"].float().cpu(),
                    output["scores"].float().cpu(),
                    output["labels"].cpu(),
                )
            )
    boxes, scores, labels = merge_tiles(found, height, width, overlap, nms_iou)
    return {"boxes": boxes, "scores": scores, "labels": labels}


def detect(
    model: nn.Module,
    images: Sequence[torch.Tensor],
    min_size: int,
    max_size: int,
    tiling: Tiling,
    *,
    device: torch.device,
    amp: bool = False,
) -> list[dict[str, torch.Tensor]]:
    """The model's output for each ``3 x H x W`` image: whole images in one batch, large ones
    (per ``tiling``) in tiles. Call it under ``torch.inference_mode``; the outputs are
    torchvision's dicts (``boxes`` in image pixels, ``scores``, ``labels``)."""
    nms_iou = float(getattr(getattr(model, "roi_heads", None), "nms_thresh", 0.5))
    tiled = [tiling.applies(*img.shape[-2:], min_size, max_size) for img in images]
    outputs: list[dict[str, torch.Tensor] | None] = [None] * len(images)
    with torch.autocast(device.type, enabled=amp):
        batch = [i for i, t in enumerate(tiled) if not t]
        if batch:
            found = model([images[i].to(device, non_blocking=True) for i in batch])
            for i, output in zip(batch, found, strict=True):
                outputs[i] = output
        for i in (i for i, t in enumerate(tiled) if t):
            outputs[i] = _predict_tiled(model, images[i], tiling, min_size, nms_iou, device)
    return [output for output in outputs if output is not None]
