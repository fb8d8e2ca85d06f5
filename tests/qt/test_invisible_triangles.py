"""A class layer's transparent box faces are not sent to vispy, and nothing on screen changes.

Under software OpenGL each repaint rasterised the faces of every box; with 1,000 boxes that
was about a third of what the boxes cost a repaint.
"""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import QEvent

from napari_detlab._qt.box_layers import add_class_layer, set_layer_boxes
from napari_detlab._qt.invisible_triangles import (
    skip_invisible_triangles,
    skips_invisible_triangles,
    visible_triangles,
)
from napari_detlab._qt.napari_internals import shapes_triangle_mesh
from napari_detlab.core.annotations.store import ClassSpec


@pytest.fixture
def boxes() -> np.ndarray:
    """80 boxes of many sizes on a 200 x 300 image, some overlapping."""
    rng = np.random.default_rng(5)
    corner = rng.uniform(0, 250, (80, 2))
    return np.c_[corner, corner + rng.uniform(3, 40, (80, 2))]


def drawn_triangles(viewer, layer) -> int:
    """How many triangles vispy holds for the layer: what each repaint rasterises."""
    mesh, _ = shapes_triangle_mesh(viewer, layer)
    return len(mesh.mesh_data.get_faces())


def shot(viewer, shown) -> np.ndarray:
    """The canvas with only ``shown`` of the Shapes layers visible (the image always)."""
    for layer in viewer.layers:
        if layer._type_string == "shapes":
            layer.visible = layer is shown
    return viewer.screenshot(canvas_only=True, flash=False)


def test_a_class_layer_draws_the_same_pixels_from_fewer_triangles(
    make_napari_viewer, boxes
) -> None:
    viewer = make_napari_viewer(show=True)  # a hidden canvas renders black
    rng = np.random.default_rng(0)
    viewer.add_image(rng.integers(0, 255, (200, 300, 3), dtype=np.uint8))
    ours = add_class_layer(viewer, ClassSpec("cell", "#ff3fd2"))
    plain = viewer.add_shapes(
        None, ndim=2, shape_type="rectangle", edge_color="#ff3fd2", face_color="transparent"
    )
    plain.current_edge_color, plain.current_edge_width = "#ff3fd2", ours.current_edge_width
    set_layer_boxes(ours, boxes)
    set_layer_boxes(plain, boxes)

    assert skips_invisible_triangles(viewer, ours) and not skips_invisible_triangles(viewer, plain)
    every, sent = drawn_triangles(viewer, plain), drawn_triangles(viewer, ours)
    assert every - sent == 2 * len(boxes)  # each box's two transparent face triangles
    ours_shot, plain_shot = shot(viewer, ours), shot(viewer, plain)
    assert np.count_nonzero(np.any(ours_shot != shot(viewer, None), axis=-1)) > 1000
    np.testing.assert_array_equal(ours_shot, plain_shot)

    # Under opaque blending a transparent face paints: every triangle is sent again.
    for layer in (ours, plain):
        layer.blending = "opaque"
    assert drawn_triangles(viewer, ours) == every
    np.testing.assert_array_equal(shot(viewer, ours), shot(viewer, plain))
    for layer in (ours, plain):
        layer.blending = "translucent"
    assert drawn_triangles(viewer, ours) == sent

    # A face the person colours is drawn.
    ours.face_color = plain.face_color = "#00ff0080"
    assert drawn_triangles(viewer, ours) == every
    np.testing.assert_array_equal(shot(viewer, ours), shot(viewer, plain))


def test_a_click_inside_a_box_still_selects_it(make_napari_viewer, send_mouse, qtbot) -> None:
    viewer = make_napari_viewer(show=True)
    viewer.add_image(np.zeros((100, 100), np.uint8))
    layer = add_class_layer(viewer, ClassSpec("cell", "#ff3fd2"))
    set_layer_boxes(layer, np.array([[20.0, 20.0, 80.0, 80.0], [0.0, 0.0, 10.0, 10.0]]))
    assert skips_invisible_triangles(viewer, layer)
    viewer.layers.selection.active = layer
    layer.mode = "select"
    qtbot.wait(50)
    send_mouse(viewer, QEvent.Type.MouseButtonPress, 0, 0)  # the canvas centre: box 0's inside
    send_mouse(viewer, QEvent.Type.MouseButtonRelease, 0, 0)
    assert layer.selected_data == {0}


def test_an_empty_or_all_transparent_mesh_keeps_one_invisible_triangle() -> None:
    faces = np.arange(12).reshape(4, 3)
    clear = np.zeros((4, 4), np.float32)
    kept, colors = visible_triangles(faces, clear)
    assert kept.tolist() == [[0, 1, 2]] and colors.tolist() == [[0, 0, 0, 0]]
    colors_half = clear.copy()
    colors_half[[1, 3], 3] = 0.5
    kept, colors = visible_triangles(faces, colors_half)
    assert kept.tolist() == [[3, 4, 5], [9, 10, 11]] and colors[:, 3].tolist() == [0.5, 0.5]
    opaque = np.ones((4, 4), np.float32)
    assert visible_triangles(faces, opaque)[0] is faces


def test_without_a_canvas_nothing_is_changed(make_napari_viewer) -> None:
    viewer = make_napari_viewer()
    layer = viewer.add_shapes(None, ndim=2)
    viewer.layers.remove(layer)  # no vispy layer any more
    assert not skip_invisible_triangles(viewer, layer)
