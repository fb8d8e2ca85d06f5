"""Box conversions: every round trip, and the hull of any shape a user can draw in napari."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from napari_detlab.core.boxes import (
    BoxRecord,
    as_boxes,
    box_area,
    box_iou,
    box_segments,
    clip_xyxy,
    cxcywh_to_xyxy,
    napari_to_xyxy,
    nonempty_mask,
    paired_iou_f32,
    shape_iou,
    xywh_to_xyxy,
    xyxy_to_cxcywh,
    xyxy_to_napari,
    xyxy_to_xywh,
)

coordinate = st.floats(-5000, 5000, allow_nan=False, allow_infinity=False)
extent = st.floats(0, 3000, allow_nan=False, allow_infinity=False)


@st.composite
def xyxy_boxes(draw: st.DrawFn, max_boxes: int = 20) -> np.ndarray:
    """Valid boxes (x1 <= x2, y1 <= y2), zero-size ones included; possibly none at all."""
    n = draw(st.integers(0, max_boxes))
    corner = draw(arrays(np.float64, (n, 2), elements=coordinate))
    size = draw(arrays(np.float64, (n, 2), elements=extent))
    return np.concatenate([corner, corner + size], axis=1)


def _close(a: np.ndarray, b: np.ndarray) -> None:
    # Coordinates up to ~8000 px: a few ulps of float64 is far below a pixel.
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)


@given(xyxy_boxes())
def test_xywh_round_trip(boxes: np.ndarray) -> None:
    xywh = xyxy_to_xywh(boxes)
    assert xywh.shape == boxes.shape
    _close(xywh[:, 2:], boxes[:, 2:] - boxes[:, :2])
    _close(xywh_to_xyxy(xywh), boxes)


@given(xyxy_boxes())
def test_cxcywh_round_trip(boxes: np.ndarray) -> None:
    centre_size = xyxy_to_cxcywh(boxes)
    _close(centre_size[:, :2], (boxes[:, :2] + boxes[:, 2:]) / 2)
    _close(cxcywh_to_xyxy(centre_size), boxes)


@given(xyxy_boxes())
def test_xywh_and_cxcywh_agree(boxes: np.ndarray) -> None:
    _close(xywh_to_xyxy(xyxy_to_xywh(boxes)), cxcywh_to_xyxy(xyxy_to_cxcywh(boxes)))


@given(xyxy_boxes())
def test_napari_round_trip_is_exact(boxes: np.ndarray) -> None:
    corners = xyxy_to_napari(boxes)
    assert corners.shape == (len(boxes), 4, 2)
    # Rows are y, columns are x: the one place the axes swap.
    np.testing.assert_array_equal(corners[:, 0], boxes[:, [1, 0]])
    np.testing.assert_array_equal(corners[:, 2], boxes[:, [3, 2]])
    # napari's layer.data is a list of (4, 2) arrays: both forms give the boxes back exactly.
    np.testing.assert_array_equal(napari_to_xyxy(corners), boxes)
    np.testing.assert_array_equal(napari_to_xyxy(list(corners)), boxes)


@given(xyxy_boxes(max_boxes=5), st.lists(coordinate, min_size=1, max_size=3))
def test_napari_round_trip_with_leading_plane_coordinates(
    boxes: np.ndarray, plane: list[float]
) -> None:
    corners = xyxy_to_napari(boxes, plane=plane)
    assert corners.shape == (len(boxes), 4, len(plane) + 2)
    if len(boxes):
        np.testing.assert_array_equal(
            corners[:, :, : len(plane)], np.broadcast_to(plane, (len(boxes), 4, len(plane)))
        )
    np.testing.assert_array_equal(napari_to_xyxy(corners), boxes)
    np.testing.assert_array_equal(napari_to_xyxy(list(corners)), boxes)


@given(
    cx=coordinate,
    cy=coordinate,
    width=extent,
    height=extent,
    angle=st.floats(-4 * math.pi, 4 * math.pi, allow_nan=False),
    plane=st.lists(st.integers(0, 50), max_size=2),
)
def test_rotated_rectangle_gives_minimal_hull(
    cx: float, cy: float, width: float, height: float, angle: float, plane: list[int]
) -> None:
    """A rectangle rotated in napari by any angle is saved as the smallest box holding it."""
    offsets = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [width / 2, height / 2]
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    xy = offsets @ rotation.T + [cx, cy]
    vertices = np.concatenate([np.full((4, len(plane)), plane), xy[:, ::-1]], axis=1)
    (x1, y1, x2, y2) = napari_to_xyxy([vertices])[0]
    # Contains every vertex ...
    assert np.all(xy[:, 0] >= x1) and np.all(xy[:, 0] <= x2)
    assert np.all(xy[:, 1] >= y1) and np.all(xy[:, 1] <= y2)
    # ... and is minimal: each side touches a vertex.
    assert {x1, x2} <= set(xy[:, 0]) and {y1, y2} <= set(xy[:, 1])
    # Its size is the rotated rectangle's projection on the axes.
    c, s = abs(math.cos(angle)), abs(math.sin(angle))
    assert x2 - x1 == pytest.approx(width * c + height * s, abs=1e-6)
    assert y2 - y1 == pytest.approx(width * s + height * c, abs=1e-6)


@given(
    st.lists(
        arrays(np.float64, st.tuples(st.integers(1, 12), st.just(2)), elements=coordinate),
        max_size=6,
    )
)
def test_any_polygon_hull_contains_all_vertices_and_is_minimal(polygons: list[np.ndarray]) -> None:
    """Dragged vertices, polygons, paths and lines all become their min/max box."""
    hulls = napari_to_xyxy(polygons)
    assert hulls.shape == (len(polygons), 4)
    for (x1, y1, x2, y2), vertices in zip(hulls, polygons, strict=True):
        rows, cols = vertices[:, 0], vertices[:, 1]
        assert (x1, y1, x2, y2) == (cols.min(), rows.min(), cols.max(), rows.max())


@given(coordinate, coordinate, st.integers(1, 4))
def test_single_repeated_point_is_a_zero_size_box(row: float, col: float, repeats: int) -> None:
    hull = napari_to_xyxy([np.tile([row, col], (repeats, 1))])
    np.testing.assert_array_equal(hull, [[col, row, col, row]])
    assert box_area(hull)[0] == 0
    assert not nonempty_mask(hull)[0]


def test_degenerate_shapes_are_flagged_not_lost() -> None:
    """A click (zero width and height) and a horizontal line (zero height) in rectangle mode."""
    shapes = [
        np.array([[10.0, 20.0]] * 4),
        np.array([[5.0, 1.0], [5.0, 9.0], [5.0, 9.0], [5.0, 1.0]]),
        np.array([[0.0, 0.0], [0.0, 3.0], [2.0, 3.0], [2.0, 0.0]]),
    ]
    hulls = napari_to_xyxy(shapes)
    np.testing.assert_array_equal(hulls, [[20, 10, 20, 10], [1, 5, 9, 5], [0, 0, 3, 2]])
    np.testing.assert_array_equal(nonempty_mask(hulls), [False, False, True])
    np.testing.assert_array_equal(box_area(hulls), [0, 0, 6])


@pytest.mark.parametrize("empty", [[], np.zeros((0, 4)), np.zeros((0, 4, 2)), torch.zeros(0, 4)])
def test_empty_input_everywhere(empty: object) -> None:
    if isinstance(empty, np.ndarray) and empty.ndim == 3:
        assert napari_to_xyxy(empty).shape == (0, 4)
        return
    for convert in (xyxy_to_xywh, xywh_to_xyxy, xyxy_to_cxcywh, cxcywh_to_xyxy, as_boxes):
        assert convert(empty).shape == (0, 4)
    assert xyxy_to_napari(empty).shape == (0, 4, 2)
    assert napari_to_xyxy([]).shape == (0, 4)
    assert box_area(empty).shape == (0,)
    assert clip_xyxy(empty, 10, 10).shape == (0, 4)


def test_as_boxes_accepts_one_box_lists_and_tensors_and_refuses_other_shapes() -> None:
    np.testing.assert_array_equal(as_boxes([1, 2, 3, 4]), [[1, 2, 3, 4]])
    np.testing.assert_array_equal(as_boxes(torch.tensor([[1.5, 2, 3, 4]])), [[1.5, 2, 3, 4]])
    assert as_boxes([[1, 2, 3, 4]], np.float32).dtype == np.float32
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        as_boxes([[1, 2, 3]])
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        as_boxes(np.zeros((2, 4, 1)))


def test_shape_without_vertices_is_refused_with_its_index() -> None:
    with pytest.raises(ValueError, match="shape 1"):
        napari_to_xyxy([np.zeros((4, 2)), np.zeros((0, 2))])


def test_single_vertex_array_is_one_shape() -> None:
    vertices = np.array([[1.0, 2.0], [3.0, 7.0], [2.0, 5.0]])
    np.testing.assert_array_equal(napari_to_xyxy(vertices), [[2, 1, 7, 3]])


@settings(max_examples=50)
@given(xyxy_boxes(), st.integers(1, 2000), st.integers(1, 2000))
def test_clip_keeps_boxes_inside_the_image(boxes: np.ndarray, width: int, height: int) -> None:
    clipped = clip_xyxy(boxes, width, height)
    assert np.all(clipped[:, [0, 2]] >= 0) and np.all(clipped[:, [0, 2]] <= width)
    assert np.all(clipped[:, [1, 3]] >= 0) and np.all(clipped[:, [1, 3]] <= height)
    inside = (boxes[:, :2] >= 0).all(1) & (boxes[:, 2] <= width) & (boxes[:, 3] <= height)
    np.testing.assert_array_equal(clipped[inside], boxes[inside])
    assert clipped is not boxes  # the caller's array is never changed in place


def test_box_iou_known_answers():
    a = [[0, 0, 10, 10], [0, 0, 0, 10]]  # the second has no area
    b = [[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30]]
    expected = [[50 / 150, 1.0, 0.0], [0.0, 0.0, 0.0]]
    np.testing.assert_allclose(box_iou(a, b), expected, rtol=1e-6)
    assert box_iou(a, []).shape == (2, 0)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_box_iou_agrees_with_torchvision_and_the_paired_float32_form(seed):
    from torchvision.ops import box_iou as torch_box_iou

    rng = np.random.default_rng(seed)
    corners = rng.uniform(0, 100, (6, 2, 2)).astype(np.float32)
    boxes = np.concatenate([corners.min(1), corners.max(1) + 1], axis=1)
    reference = torch_box_iou(torch.from_numpy(boxes), torch.from_numpy(boxes)).numpy()
    np.testing.assert_allclose(box_iou(boxes, boxes), reference, rtol=1e-5, atol=1e-6)
    rows, cols = np.triu_indices(6)
    paired = paired_iou_f32(boxes[rows], boxes[cols])
    np.testing.assert_array_equal(paired, reference[rows, cols])  # bitwise: the RPN's values


def test_shape_iou_compares_widths_and_heights_centred():
    np.testing.assert_allclose(shape_iou([[10, 10], [20, 5]], [[10, 10]]), [[1.0], [50 / 150]])


def test_box_segments_trace_each_box_as_four_edges_in_napari_order():
    segments = box_segments([[1, 2, 11, 22]])  # x1, y1, x2, y2
    starts, directions = segments[:, 0], segments[:, 1]
    np.testing.assert_array_equal(starts, [[2, 1], [2, 11], [22, 11], [22, 1]])  # (row, col)
    np.testing.assert_array_equal(starts + directions, np.roll(starts, -1, axis=0))


def test_a_box_record_normalises_what_it_is_given():
    record = BoxRecord(torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]]), ("cell", 7))
    assert record.boxes.dtype == np.float32 and record.boxes.shape == (2, 4)
    assert record.labels == ["cell", "7"] and len(record) == 2
    np.testing.assert_array_equal(record.boxes_of("7"), [[5, 6, 7, 8]])
    assert len(BoxRecord()) == 0 and BoxRecord().boxes.shape == (0, 4)
