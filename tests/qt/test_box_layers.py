"""Class layers filled with many boxes: rectangles built from the template draw and behave as
napari's own, and the fast path is still taken on this napari."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest

from napari_detlab._layers import BOX_EDGE_WIDTH
from napari_detlab._qt import box_layers
from napari_detlab._qt.box_layers import (
    THUMBNAIL_BOXES,
    ClassLayers,
    add_class_layer,
    layer_boxes,
    set_layer_boxes,
)
from napari_detlab._qt.napari_internals import (
    RectangleFill,
    held_refresh_checked,
    rectangles_from_template,
    same_layer_state,
    shapes_thumbnail_limit,
)
from napari_detlab.core.annotations.annotation import ImageAnnotation
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


def test_a_fill_held_to_one_refresh_leaves_the_layer_as_napari_does(
    make_napari_viewer, boxes, monkeypatch
):
    """The thumbnail, extent and selection highlight after set_layer_boxes equal napari's own
    assignment, and the check behind the held refresh notices a refresh left out."""
    viewer = make_napari_viewer()
    ours, theirs = (
        add_class_layer(viewer, ClassSpec(name, "#ff0000")) for name in ("ours", "theirs")
    )
    for layer in (ours, theirs):  # a first image's boxes, then this one's
        layer.data = [(corners, "rectangle") for corners in xyxy_to_napari(boxes[:7] * 2)]
    set_layer_boxes(ours, boxes)
    theirs.data = [(corners, "rectangle") for corners in xyxy_to_napari(boxes)]
    theirs.edge_width = BOX_EDGE_WIDTH
    viewer.layers.selection.update({ours, theirs})  # a highlight is drawn in both
    for layer in (ours, theirs):
        layer.selected_data = {3}
        layer.mode = "select"
    assert held_refresh_checked()  # False: napari's refresh changed, every refresh is done
    assert same_layer_state(theirs, ours)
    np.testing.assert_array_equal(ours.extent.data, theirs.extent.data)
    assert ours.thumbnail[..., 3].any() and np.array_equal(ours.thumbnail, theirs.thumbnail)

    monkeypatch.setattr(ours, "refresh", lambda *_args, **_kwargs: None)
    ours.data = [(corners, "rectangle") for corners in xyxy_to_napari(boxes[:5] + 300)]
    monkeypatch.undo()  # every refresh left out: the check must notice
    theirs.data = [(corners, "rectangle") for corners in xyxy_to_napari(boxes[:5] + 300)]
    assert not same_layer_state(theirs, ours)


def test_filling_class_layers_updates_the_viewer_dims_once_and_edits_still_do(
    make_napari_viewer, boxes
):
    """Boxes beyond the image reach into the viewer's range after a fill (its dims update
    is done once, after every class layer), and a box drawn later still widens it."""
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((100, 120), np.uint8))
    layers = ClassLayers(viewer, on_edit=lambda: None, on_release=lambda: None)
    layers.sync([ClassSpec("cell", "#ff0000"), ClassSpec("crystal", "#00ff00")])
    far = np.r_[boxes, [[400.0, 500.0, 420.0, 530.0]]]  # x up to 420, y up to 530
    labels = ["cell"] * len(boxes) + ["crystal"]
    updates: list[int] = []
    viewer.dims.events.range.connect(lambda _event: updates.append(1))
    layers.fill(ImageAnnotation(far, labels, True, (600, 600)))

    assert len(updates) == 1
    (rows, cols) = viewer.dims.range
    assert rows.stop == pytest.approx(530) and cols.stop == pytest.approx(420)
    layers.layer_for("cell").add_rectangles(xyxy_to_napari(np.array([[0.0, 0.0, 700.0, 9.0]])))
    assert viewer.dims.range[1].stop == pytest.approx(700)
