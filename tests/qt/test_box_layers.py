"""Class layers filled with many boxes: rectangles built from the template draw and behave as
napari's own, and the fast path is still taken on this napari."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest

from napari_detlab._qt import box_layers
from napari_detlab._qt.box_layers import (
    THUMBNAIL_BOXES,
    add_class_layer,
    layer_boxes,
    set_layer_boxes,
)
from napari_detlab._qt.napari_internals import (
    RectangleFill,
    rectangles_from_template,
    shapes_thumbnail_limit,
)
from napari_detlab.core.annotations.store import ClassSpec
from napari_detlab.core.boxes import xyxy_to_napari


@pytest.fixture
def boxes() -> np.ndarray:
    """60 boxes of many sizes (1 to 40 pixels a side, fractional corners) on a 200 x 300 image."""
    rng = np.random.default_rng(3)
    corner = rng.uniform(0, 250, (60, 2))
    return np.c_[corner, corner + rng.uniform(1, 40, (60, 2))]


@pytest.fixture
def fills(monkeypatch) -> list[RectangleFill]:
    """Every template fill set_layer_boxes makes, with how many rectangles it built."""
    seen: list[RectangleFill] = []

    @contextmanager
    def recorded(corners: np.ndarray, edge_width: float | None = None):
        with rectangles_from_template(corners, edge_width) as fill:
            seen.append(fill)
            yield fill

    monkeypatch.setattr(box_layers, "rectangles_from_template", recorded)
    return seen


def test_boxes_filled_through_the_template_look_and_read_back_as_napari_draws_them(
    make_napari_viewer, boxes, fills
):
    viewer = make_napari_viewer(show=True)  # a hidden canvas renders black
    viewer.add_image(np.full((200, 300, 3), 128, np.uint8))
    layer = viewer.add_shapes(
        None, ndim=2, shape_type="rectangle", edge_color="red", face_color="transparent"
    )
    layer.current_edge_color = "red"
    layer.current_edge_width = 2

    set_layer_boxes(layer, boxes)
    # 0 would mean napari's shape internals changed: the boxes still draw, 10x slower
    assert [fill.built for fill in fills] == [len(boxes)]
    assert fills[0].meshes_at_once  # False: napari's mesh internals changed (10 ms per n)
    ours = viewer.screenshot(canvas_only=True, flash=False)
    np.testing.assert_allclose(layer_boxes(layer), boxes, atol=1e-4)  # float32 vertices
    layer.edge_width = 5  # napari moves each outline along the offsets the template gave
    layer.refresh()
    ours_wide = viewer.screenshot(canvas_only=True, flash=False)

    layer.data = [(corners, "rectangle") for corners in xyxy_to_napari(boxes)]  # napari's way
    layer.edge_width = 2
    theirs = viewer.screenshot(canvas_only=True, flash=False)
    layer.edge_width = 5
    layer.refresh()
    theirs_wide = viewer.screenshot(canvas_only=True, flash=False)

    assert np.sum(ours[..., 0].astype(int) - ours[..., 2] > 100) > 1000  # red outlines drawn
    np.testing.assert_array_equal(ours, theirs)
    assert not np.array_equal(ours, ours_wide)
    np.testing.assert_array_equal(ours_wide, theirs_wide)


def test_boxes_filled_through_the_template_can_be_deleted_and_added_to(make_napari_viewer, boxes):
    viewer = make_napari_viewer()
    layer = viewer.add_shapes(None, ndim=2, shape_type="rectangle")
    set_layer_boxes(layer, boxes)

    layer.selected_data = {0}
    layer.remove_selected()
    layer.add_rectangles(xyxy_to_napari(np.array([[5.0, 6.0, 25.0, 16.0]])))  # napari's own
    layer.add_polygons([np.array([[0, 0], [10, 0], [5, 8]], float)])  # other shapes untouched

    read = layer_boxes(layer)
    assert len(read) == len(boxes) + 1
    np.testing.assert_allclose(read[: len(boxes) - 1], boxes[1:], atol=1e-4)
    np.testing.assert_allclose(read[len(boxes) - 1], [5, 6, 25, 16])
    np.testing.assert_allclose(read[-1], [0, 0, 8, 10])


def test_a_degenerate_box_from_a_file_is_left_to_napari(make_napari_viewer, boxes, fills):
    viewer = make_napari_viewer()
    layer = viewer.add_shapes(None, ndim=2, shape_type="rectangle")
    flat = np.r_[boxes[:3], [[5.0, 5.0, 5.0, 9.0]]]  # zero width: another outline mesh
    set_layer_boxes(layer, flat)
    assert fills == []  # napari built every one
    np.testing.assert_allclose(layer_boxes(layer), flat, atol=1e-4)


def test_a_class_layer_thumbnail_draws_only_a_few_boxes(make_napari_viewer):
    viewer = make_napari_viewer()
    layer = add_class_layer(viewer, ClassSpec("cell", "#ff0000"))
    # None or 100 would mean napari's setting moved: every edit among hundreds pays 7 ms more
    assert shapes_thumbnail_limit(layer) == THUMBNAIL_BOXES
