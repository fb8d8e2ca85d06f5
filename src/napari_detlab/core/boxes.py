"""Box formats and the one conversion between the core's xyxy and napari's corners.

Everywhere in the core a box is ``(x1, y1, x2, y2)`` in pixels of the original image as it
is shown (a photo's EXIF orientation applied, :mod:`~napari_detlab.core.orientation`), as a
float array of shape ``(N, 4)``. napari's Shapes layer stores each rectangle as four vertices
in ``(row, col)`` order, possibly with leading plane coordinates and possibly rotated or
dragged into a non-rectangle: :func:`napari_to_xyxy` turns any such shape into its axis-aligned
hull, and :func:`xyxy_to_napari` is its inverse for rectangles (:func:`box_segments` gives
the same corners as the edge vectors the Review dock draws). Nothing else in the project
touches ``(row, col)``.

The overlaps live here too (:func:`box_iou`, :func:`paired_iou_f32`, :func:`shape_iou`), and
:class:`BoxRecord`, the shape shared by every record of one image's labelled boxes: the
annotation a person made and the prediction a model made (which adds scores).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "SIZE_BUCKETS",
    "BoxRecord",
    "as_boxes",
    "box_area",
    "box_iou",
    "box_segments",
    "clip_xyxy",
    "cxcywh_to_xyxy",
    "napari_to_xyxy",
    "nonempty_mask",
    "nudged_boxes",
    "paired_iou_f32",
    "shape_iou",
    "xywh_to_xyxy",
    "xyxy_to_cxcywh",
    "xyxy_to_napari",
    "xyxy_to_xywh",
]

# COCO's area buckets (pixels squared): small < 32², medium < 96², large otherwise. The anchor
# figures apply them in the resized image, the dataset statistics in the image as shown.
SIZE_BUCKETS = (("small", 0.0, 32.0**2), ("medium", 32.0**2, 96.0**2), ("large", 96.0**2, np.inf))


def as_boxes(boxes: object, dtype: type = np.float64) -> np.ndarray:
    """Return ``boxes`` as an ``(N, 4)`` array, accepting lists, tensors and empty input.

    An empty list has no shape to infer, so it becomes ``(0, 4)`` rather than ``(0,)``: every
    function here can then rely on two dimensions.
    """
    if hasattr(boxes, "detach"):  # a torch tensor, without importing torch here
        boxes = boxes.detach().cpu().numpy()
    array = np.asarray(boxes, dtype=dtype)
    if array.size == 0:
        return np.zeros((0, 4), dtype=dtype)
    if array.ndim == 1 and array.shape[0] == 4:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"expected boxes of shape (N, 4), got {array.shape}")
    return array


def xyxy_to_xywh(boxes: object) -> np.ndarray:
    """Corners to top-left plus size (COCO's ``bbox``)."""
    b = as_boxes(boxes)
    return np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)


def xywh_to_xyxy(boxes: object) -> np.ndarray:
    """Top-left plus size to corners."""
    b = as_boxes(boxes)
    return np.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], axis=1)


def xyxy_to_cxcywh(boxes: object) -> np.ndarray:
    """Corners to centre plus size (YOLO's layout, before normalising)."""
    b = as_boxes(boxes)
    return np.stack(
        [(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]],
        axis=1,
    )


def cxcywh_to_xyxy(boxes: object) -> np.ndarray:
    """Centre plus size to corners."""
    b = as_boxes(boxes)
    half_w, half_h = b[:, 2] / 2, b[:, 3] / 2
    return np.stack(
        [b[:, 0] - half_w, b[:, 1] - half_h, b[:, 0] + half_w, b[:, 1] + half_h], axis=1
    )


def xyxy_to_napari(boxes: object, plane: Sequence[float] = ()) -> np.ndarray:
    """Rectangles as napari vertices: an ``(N, 4, D)`` array of ``(..., row, col)`` corners.

    The order is top-left, top-right, bottom-right, bottom-left, a closed path napari accepts
    as ``shape_type="rectangle"``. One vectorised array (not a list of small arrays) keeps the
    conversion cheap when a layer is refilled with thousands of predictions.

    Parameters
    ----------
    boxes
        ``(N, 4)`` xyxy.
    plane
        Leading coordinates (for example the slice index of an image stack) repeated on every
        vertex, so ``D = len(plane) + 2``; empty for 2-D images.
    """
    b = as_boxes(boxes)
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    rows = np.stack([y1, y1, y2, y2], axis=1)
    cols = np.stack([x1, x2, x2, x1], axis=1)
    corners = np.stack([rows, cols], axis=2)
    if len(plane) == 0:
        return corners
    leading = np.broadcast_to(np.asarray(plane, np.float64), (len(b), 4, len(plane)))
    return np.concatenate([leading, corners], axis=2)


def napari_to_xyxy(shapes: Sequence[object] | np.ndarray) -> np.ndarray:
    """The axis-aligned hull of each napari shape, as ``(N, 4)`` xyxy.

    Any shape a user can make (a rotated rectangle, a dragged vertex, a polygon, an ellipse's
    bounding vertices, a line) is reduced to the min/max of its vertices over the last two
    axes, so leading plane coordinates of image stacks are ignored. ``shapes`` is a list of
    ``(V, D)`` vertex arrays (napari's ``layer.data``), one ``(N, V, D)`` array, or a single
    ``(V, D)`` array. A shape with no vertices raises ``ValueError``; a single point or a line
    gives a zero-width box, which :func:`nonempty_mask` then flags.
    """
    if isinstance(shapes, np.ndarray) and shapes.ndim == 2:
        shapes = shapes[None]
    if isinstance(shapes, np.ndarray) and shapes.ndim == 3:
        if shapes.shape[0] and (shapes.shape[1] == 0 or shapes.shape[2] < 2):
            raise ValueError(f"expected shapes of (row, col) vertices, got {shapes.shape}")
        rows, cols = shapes[:, :, -2], shapes[:, :, -1]
        return np.stack(
            [cols.min(axis=1), rows.min(axis=1), cols.max(axis=1), rows.max(axis=1)], axis=1
        ).astype(np.float64)
    hulls = np.zeros((len(shapes), 4), dtype=np.float64)
    for i, vertices in enumerate(shapes):
        v = np.asarray(vertices, dtype=np.float64)
        if v.ndim != 2 or v.shape[0] == 0 or v.shape[1] < 2:
            raise ValueError(f"shape {i}: expected (V, D) vertices with D >= 2, got {v.shape}")
        rows, cols = v[:, -2], v[:, -1]
        hulls[i] = (cols.min(), rows.min(), cols.max(), rows.max())
    return hulls


def clip_xyxy(boxes: object, width: float, height: float) -> np.ndarray:
    """Clip boxes to the image ``[0, width] x [0, height]`` (pixel edges, not centres)."""
    b = as_boxes(boxes).copy()
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, width)
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, height)
    return b


def nudged_boxes(
    boxes: object,
    move: tuple[float, float] = (0.0, 0.0),
    grow: tuple[float, float] = (0.0, 0.0),
    image_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Boxes moved by ``move = (dx, dy)`` and resized by ``grow = (dw, dh)``, as arrow keys do.

    Moving keeps each box's size and stops it at the border of an image of ``image_size``
    (``(height, width)``), so a box held against an edge does not shrink; resizing moves the
    right and bottom edges, never past the border and never to less than a pixel.
    """
    b = as_boxes(boxes).copy()
    width, height = (np.inf, np.inf) if image_size is None else (image_size[1], image_size[0])
    for axis, (shift, limit) in enumerate(((move[0], width), (move[1], height))):
        low, high = b[:, axis], b[:, axis + 2]
        step = np.clip(shift, -low, np.maximum(limit - high, 0.0))
        b[:, axis] += step
        b[:, axis + 2] += step
    for axis, (change, limit) in enumerate(((grow[0], width), (grow[1], height))):
        b[:, axis + 2] = np.clip(b[:, axis + 2] + change, b[:, axis] + 1.0, limit)
    return b


def box_area(boxes: object) -> np.ndarray:
    """Area of each box; negative extents count as zero."""
    b = as_boxes(boxes)
    return (b[:, 2] - b[:, 0]).clip(0) * (b[:, 3] - b[:, 1]).clip(0)


def nonempty_mask(boxes: object, min_size: float = 1.0) -> np.ndarray:
    """Boxes at least ``min_size`` pixels wide and high: the ones a detector can learn from."""
    b = as_boxes(boxes)
    return ((b[:, 2] - b[:, 0]) >= min_size) & ((b[:, 3] - b[:, 1]) >= min_size)


def box_segments(boxes: object) -> np.ndarray:
    """The four edges of each box as napari vectors: ``(4 N, 2, 2)`` of (start, direction).

    Built from :func:`xyxy_to_napari`'s corners, each corner joined to the next; a Vectors
    layer draws thousands of these in one array assignment, where a Shapes layer would
    triangulate every rectangle in Python.
    """
    corners = xyxy_to_napari(boxes)  # (N, 4, 2): TL, TR, BR, BL
    directions = np.roll(corners, -1, axis=1) - corners
    return np.stack([corners, directions], axis=2).reshape(-1, 2, 2)


def box_iou(a: object, b: object) -> np.ndarray:
    """Pairwise IoU of two box sets, ``(len(a), len(b))``; zero-area boxes overlap nothing.

    Plain numpy on purpose: torch would split this small product over its intra-op threads,
    which on a busy CPU (training in the background) costs far more than the arithmetic.
    """
    a, b = as_boxes(a, np.float32), as_boxes(b, np.float32)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    width = np.minimum(a[:, None, 2], b[None, :, 2])
    width -= np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum(a[:, None, 3], b[None, :, 3])
    height -= np.maximum(a[:, None, 1], b[None, :, 1])
    np.maximum(width, 0, out=width)
    np.maximum(height, 0, out=height)
    inter = np.multiply(width, height, out=width)
    area_a = (a[:, 2] - a[:, 0]).clip(0) * (a[:, 3] - a[:, 1]).clip(0)
    area_b = (b[:, 2] - b[:, 0]).clip(0) * (b[:, 3] - b[:, 1]).clip(0)
    union = area_a[:, None] + area_b[None, :]
    union -= inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def paired_iou_f32(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of ``a[i]`` with ``b[i]`` in torchvision ``box_iou``'s float32 operations,
    in its order.

    Every step is one IEEE operation on float32, so the values (and hence ties) are bitwise
    those of the RPN's IoU matrix: the anchor coverage reports exactly what training matches.
    """
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    width = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    height = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    inter = np.maximum(width, np.float32(0)) * np.maximum(height, np.float32(0))
    union = (area_a + area_b) - inter
    return inter / union


def shape_iou(wh: np.ndarray, anchors_wh: np.ndarray) -> np.ndarray:
    """IoU of zero-centred shapes: ``(N, 2)`` widths and heights against ``(K, 2)`` gives
    ``(N, K)``; what anchor fitting compares, position aside."""
    wh = np.asarray(wh, np.float64)[:, None, :]
    anchors_wh = np.asarray(anchors_wh, np.float64)[None, :, :]
    inter = np.minimum(wh[..., 0], anchors_wh[..., 0]) * np.minimum(wh[..., 1], anchors_wh[..., 1])
    union = wh[..., 0] * wh[..., 1] + anchors_wh[..., 0] * anchors_wh[..., 1] - inter
    return inter / union


@dataclass
class BoxRecord:
    """One image's labelled boxes: what an annotation and a prediction have in common.

    Subclasses add their own fields after these two (``ImageAnnotation``: reviewed flag,
    image size, other tools' keys; ``Prediction``: scores and how the model made them), so
    both are built, normalised and measured the same way.

    Attributes
    ----------
    boxes
        ``float32 (N, 4)`` xyxy in pixels of the original image.
    labels
        One class name per box.
    """

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    labels: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.boxes = as_boxes(self.boxes, np.float32)
        self.labels = [str(label) for label in self.labels]
        size = getattr(self, "image_size", None)
        if size is not None:
            self.image_size = (int(size[0]), int(size[1]))

    def __len__(self) -> int:
        return len(self.labels)

    def boxes_of(self, label: str) -> np.ndarray:
        """The boxes labelled ``label``, in record order."""
        return self.boxes[np.asarray(self.labels, dtype=object) == label]
