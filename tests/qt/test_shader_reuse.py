"""``n`` redraws the class layers without recompiling any shader, and draws them right.

A recompile costs about 6 ms per mesh under software OpenGL, a quarter of ``n`` at 4 MP.
"""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from qtpy.QtCore import Qt
from qtpy.QtTest import QTest
from vispy.visuals.shaders.program import ModularProgram

from napari_detlab._qt.annotator import AnnotatorWidget
from napari_detlab._qt.napari_internals import viewer_canvas
from napari_detlab._qt.shader_reuse import reuse_mesh_shaders, reuses_mesh_shaders
from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore, ClassSpec
from napari_detlab.core.boxes import xyxy_to_napari


@pytest.fixture
def two_class_folder(tmp_path: Path) -> Path:
    """Two grey images: the first with a red ``cell`` box, the second with a blue ``crystal``."""
    folder = tmp_path / "grey"
    folder.mkdir()
    store = AnnotationStore(folder)
    store.save_classes([ClassSpec("cell", "#ff0000"), ClassSpec("crystal", "#0000ff")])
    for name, label in (("a.png", "cell"), ("b.png", "crystal")):
        iio.imwrite(folder / name, np.full((60, 80, 3), 128, np.uint8))
        boxes = np.array([[10, 10, 70, 50]], np.float32)
        store.save(name, ImageAnnotation(boxes, [label], True, (60, 80)))
    return folder


def coloured_pixels(screenshot: np.ndarray) -> dict[str, int]:
    """How many pixels of the canvas are clearly red and clearly blue (the class colours)."""
    red, green, blue = (screenshot[..., i].astype(int) for i in range(3))
    return {
        "red": int(np.sum((red - blue > 100) & (red - green > 100))),
        "blue": int(np.sum((blue - red > 100) & (blue - green > 100))),
    }


def record_builds(monkeypatch) -> list[ModularProgram]:
    """Every shader program vispy (re)compiles from now on, in order."""
    rebuilt: list[ModularProgram] = []
    build = ModularProgram._build

    def recording_build(program: ModularProgram) -> None:
        rebuilt.append(program)
        build(program)

    monkeypatch.setattr(ModularProgram, "_build", recording_build)
    return rebuilt


def outline(xyxy: np.ndarray) -> np.ndarray:
    """The four sides of each box as napari vectors: ``(4N, 2, 2)`` start and offset."""
    corners = xyxy_to_napari(xyxy)
    return np.stack([np.stack([c[i], c[(i + 1) % 4] - c[i]]) for c in corners for i in range(4)])


def test_n_reuses_the_class_layers_shaders_and_shows_the_new_boxes(
    make_napari_viewer, two_class_folder, monkeypatch
):
    viewer = make_napari_viewer(show=True)  # a hidden canvas renders black
    widget = AnnotatorWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Annotator")
    widget.open_folder(two_class_folder)
    before = coloured_pixels(viewer.screenshot(canvas_only=True, flash=False))
    assert before["red"] > 0 and before["blue"] == 0

    rebuilt = record_builds(monkeypatch)
    QTest.keyClick(viewer_canvas(viewer).native, Qt.Key.Key_N)
    after = coloured_pixels(viewer.screenshot(canvas_only=True, flash=False))

    assert widget.index == 1
    assert after["blue"] > 0 and after["red"] == 0  # the new image's boxes, in their colour
    # an image of the same kind and boxes in the same colours: nothing needs a new program
    assert rebuilt == []


@pytest.mark.parametrize("kind", ["shapes", "vectors"])
def test_a_layer_refilled_after_reuse_draws_its_new_data_without_recompiling(
    make_napari_viewer, monkeypatch, kind
):
    viewer = make_napari_viewer(show=True)
    viewer.add_image(np.full((60, 80, 3), 128, np.uint8))
    left, right = np.array([[10, 10, 35, 50]], float), np.array([[45, 10, 70, 50]], float)
    if kind == "shapes":
        layer = viewer.add_shapes(
            xyxy_to_napari(left), edge_color="red", face_color="transparent", edge_width=4
        )
    else:
        layer = viewer.add_vectors(outline(left), edge_color="red", edge_width=4, length=1)
    assert reuse_mesh_shaders(viewer, layer) > 0 and reuses_mesh_shaders(viewer, layer)

    def red_columns() -> np.ndarray:
        shot = viewer.screenshot(canvas_only=True, flash=False)
        red = (shot[..., 0].astype(int) - shot[..., 2] > 100).any(axis=0)
        return np.flatnonzero(red) / shot.shape[1]  # where the red is, across the canvas

    assert red_columns().max() < 0.5
    rebuilt = record_builds(monkeypatch)
    layer.data = xyxy_to_napari(right) if kind == "shapes" else outline(right)
    assert red_columns().min() > 0.5  # the new data, on the right half
    assert rebuilt == []
