"""The AnchorViewer dock in a real viewer: layers, live edits, GT colours, hand-over."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import imageio.v3 as iio
import numpy as np
import pytest

from anchor_scene import EXACT, LINE
from napari_detlab._layers import (
    ANCHOR_CENTRES_LAYER,
    ANCHOR_IMAGE_LAYER,
    ANCHOR_TRUTH_LAYER,
    ANCHORS_AT_POINT_LAYER,
)
from napari_detlab._qt.anchor_viewer import HOVER_INTERVAL_S, AnchorViewerWidget
from napari_detlab._qt.session import session_for
from napari_detlab._qt.shader_reuse import reuses_mesh_shaders
from napari_detlab.core.anchors.coverage import ImageBoxes, measure_coverage
from napari_detlab.core.anchors.dataset_boxes import DatasetBoxes
from napari_detlab.core.anchors.figures import ZONE_COLORS
from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.boxes import napari_to_xyxy
from napari_detlab.core.model.config import format_levels, preset


def _dataset(folder: Path, images: int = 2) -> Path:
    folder.mkdir()
    store = AnnotationStore(folder)
    rng = np.random.default_rng(0)
    for i in range(images):
        path = folder / f"img{i}.png"
        iio.imwrite(path, rng.integers(0, 255, (256, 256, 3), dtype=np.uint8))
        store.save(
            path,
            ImageAnnotation(
                np.array([EXACT, LINE], np.float32), ["cell", "debris"], True, (256, 256)
            ),
        )
    return folder


def open_anchor_viewer(viewer, qtbot) -> AnchorViewerWidget:
    """The AnchorViewer on ``viewer``, once its first dataset figures are in."""
    widget = AnchorViewerWidget(viewer)
    qtbot.addWidget(widget)
    qtbot.waitUntil(lambda: widget.model.report is not None and not widget.busy, timeout=30000)
    return widget


@pytest.fixture
def viewer_and_widget(make_napari_viewer, qtbot, tmp_path):
    folder = _dataset(tmp_path / "data")
    viewer = make_napari_viewer()
    session = session_for(viewer)
    session.set_config(preset("fast", ["cell", "debris"]))
    session.open_dataset(folder)
    session.set_image(0, folder / "img0.png")
    widget = open_anchor_viewer(viewer, qtbot)
    assert viewer.layers[ANCHOR_TRUTH_LAYER].nshapes == 2
    yield viewer, widget, folder
    widget.teardown()


def _edge_hex(layer) -> list[str]:
    return [
        "#{:02x}{:02x}{:02x}".format(*(np.round(np.asarray(c[:3]) * 255).astype(int)))
        for c in layer.edge_color
    ]


def test_layers_have_the_layout_counts(viewer_and_widget, qtbot):
    viewer, widget, _ = viewer_and_widget
    points = viewer.layers[ANCHOR_CENTRES_LAYER]
    assert len(points.data) == 64 * 64  # level 0: stride 4 on 256 px
    widget.form.level_spin.setValue(2)
    qtbot.waitUntil(lambda: len(points.data) == 16 * 16, timeout=5000)
    # (row, col) of the first centres: the grid's top-left corners, stride 16 apart
    assert np.allclose(points.data[:2], [[0, 0], [0, 16]])
    # a click on the canvas goes through the viewer's callbacks to the anchors layer
    event = SimpleNamespace(type="mouse_press", position=(130.0, 126.0))
    for callback in list(viewer.mouse_drag_callbacks):
        callback(viewer, event)
    anchors = napari_to_xyxy(np.stack(viewer.layers[ANCHORS_AT_POINT_LAYER].data))
    assert len(anchors) == 3  # three ratios
    assert any(np.allclose(a, EXACT) for a in anchors)
    assert all(
        reuses_mesh_shaders(viewer, viewer.layers[n])
        for n in (ANCHORS_AT_POINT_LAYER, ANCHOR_TRUTH_LAYER)
    )


def square_anchor_is(layer, side: float) -> bool:
    """Whether the anchors shown include the square of ``side`` px centred at (128, 128)."""
    half = side / 2
    boxes = napari_to_xyxy(np.stack(layer.data)) if layer.nshapes else np.zeros((0, 4))
    return any(np.allclose(b, [128 - half, 128 - half, 128 + half, 128 + half]) for b in boxes)


def test_changing_a_size_updates_the_overlay_and_gt_colours(viewer_and_widget, qtbot):
    viewer, widget, _ = viewer_and_widget
    gt = viewer.layers[ANCHOR_TRUTH_LAYER]
    assert _edge_hex(gt) == [ZONE_COLORS["high"], ZONE_COLORS["low"]]
    widget.form.level_spin.setValue(2)
    widget.show_anchors_at(128, 128)
    widget.form.sizes_edit.setText("16; 32; 80; 128; 256")
    shapes = viewer.layers[ANCHORS_AT_POINT_LAYER]
    qtbot.waitUntil(lambda: square_anchor_is(shapes, 80), timeout=5000)
    # 64 px box against an 80 px anchor: IoU 0.64, orange; colours follow the core's figures
    qtbot.waitUntil(lambda: _edge_hex(gt)[0] == ZONE_COLORS["mid"], timeout=5000)
    boxes = ImageBoxes(np.array([EXACT, LINE]), ["a", "b"], image="x", image_size=(256, 256))
    expected = measure_coverage(widget.model.config, [boxes])
    assert np.array_equal(gt.features["best_iou"].to_numpy(), expected.best_iou)
    assert expected.best_iou[0] == pytest.approx(0.64)


def test_behind_another_tab_nothing_is_redrawn_until_the_tab_is_shown(viewer_and_widget, qtbot):
    viewer, widget, _ = viewer_and_widget
    widget.form.level_spin.setValue(2)
    widget.show_anchors_at(128, 128)
    shapes = viewer.layers[ANCHORS_AT_POINT_LAYER]
    qtbot.waitUntil(lambda: not widget.busy, timeout=5000)
    report = widget.model.report
    widget.set_overlay_visible(False)  # what the dock does when another tab is chosen
    widget.form.sizes_edit.setText("16; 32; 80; 128; 256")
    qtbot.wait(600)  # past both debounces
    qtbot.waitUntil(lambda: not widget.busy, timeout=5000)
    assert square_anchor_is(shapes, 64) and not shapes.visible
    assert widget.model.report is report  # no coverage measured for nobody
    widget.set_overlay_visible(True)
    assert square_anchor_is(shapes, 80) and shapes.visible
    qtbot.waitUntil(lambda: widget.model.report is not report and not widget.busy, timeout=30000)
    assert widget.model.report.figures.recall != report.figures.recall


def test_bad_sizes_show_an_error_and_keep_the_last_overlay(viewer_and_widget, qtbot):
    viewer, widget, _ = viewer_and_widget
    before = len(viewer.layers[ANCHOR_CENTRES_LAYER].data)
    widget.form.sizes_edit.setText("16; 32")
    assert "feature map" in widget.error_label.text()
    assert not widget.use_button.isEnabled()
    qtbot.wait(300)
    assert len(viewer.layers[ANCHOR_CENTRES_LAYER].data) == before


def test_dataset_figures_histogram_and_uncaught_table(viewer_and_widget, qtbot):
    viewer, widget, folder = viewer_and_widget
    assert widget.model.report.figures.recall == 0.5
    assert "recall@0.7 50.0%" in widget.figures_label.text()
    assert widget.histogram.counts.sum() == 4
    assert widget.histogram.counts[-1] == 2  # the two exact boxes in the top bin
    assert widget.table.rowCount() == 2
    assert {widget.table.item(r, 2).text() for r in range(2)} == {"debris"}
    # no Annotator docked: the row loads its image here and selects the box
    row = next(r for r in range(2) if widget.table.item(r, 0).text() == "img1.png")
    widget.table.cellClicked.emit(row, 0)
    assert ANCHOR_IMAGE_LAYER in viewer.layers
    assert widget.model.image_path == folder / "img1.png"
    assert viewer.layers[ANCHOR_TRUTH_LAYER].selected_data == {1}
    assert np.allclose(viewer.scene.camera.center[-2:], [105, 11])


def test_use_these_anchors_updates_the_session_config(viewer_and_widget, qtbot):
    viewer, widget, _ = viewer_and_widget
    session = session_for(viewer)
    received = []
    session.config_changed.connect(received.append)
    widget.form.sizes_edit.setText("20; 40; 80; 160; 320")
    widget.form.ratios_edit.setText("0.25, 1, 4")
    widget.use_button.click()
    assert session.config.anchor_sizes == [[20], [40], [80], [160], [320]]
    assert session.config.aspect_ratios == [[0.25, 1.0, 4.0]] * 5
    assert received and received[-1] is session.config
    # and a config chosen elsewhere (the train dock) shows up in the fields
    session.set_config(preset("accurate", ["cell", "debris"]))
    assert widget.form.backbone_combo.currentText() == "resnet50"
    assert widget.form.sizes_edit.text() == "32; 64; 128; 256; 512"


def test_suggest_shows_before_after_and_loads_the_fit(viewer_and_widget, qtbot):
    _, widget, _ = viewer_and_widget
    old_sizes = widget.form.sizes_edit.text()
    widget.suggest_button.click()
    qtbot.waitUntil(lambda: widget.model.suggestion is not None, timeout=60000)
    assert "->" in widget.suggestion_label.text()
    suggested = widget.model.suggestion.config.anchor_sizes
    assert widget.form.sizes_edit.text() == format_levels(suggested)
    widget.revert_button.click()
    assert widget.form.sizes_edit.text() == old_sizes


def test_uncaught_row_navigates_through_the_docked_annotator(make_napari_viewer, qtbot, tmp_path):
    from napari_detlab._qt.annotator import AnnotatorWidget

    folder = _dataset(tmp_path / "data")
    viewer = make_napari_viewer()
    annotator = AnnotatorWidget(viewer)
    viewer.window.add_dock_widget(annotator, name="Annotator")
    annotator.open_folder(folder)
    drawing_layer = viewer.layers.selection.active
    widget = open_anchor_viewer(viewer, qtbot)  # opened after the Annotator: follows its session
    assert widget.model.image_path == annotator.current_path
    assert viewer.layers.selection.active is drawing_layer  # our layers did not take over
    row = next(
        r for r in range(widget.table.rowCount()) if widget.table.item(r, 0).text() == "img1.png"
    )
    widget.table.cellClicked.emit(row, 0)
    assert annotator.index == 1
    assert ANCHOR_IMAGE_LAYER not in viewer.layers  # the Annotator showed it, not us
    assert widget.model.image_path == folder / "img1.png"
    assert viewer.layers[ANCHOR_TRUTH_LAYER].selected_data == {1}
    widget.teardown()


def test_a_box_drawn_in_the_annotator_is_coloured_once_autosaved(
    make_napari_viewer, qtbot, tmp_path
):
    from napari_detlab._qt.annotator import AnnotatorWidget

    folder = _dataset(tmp_path / "data")
    viewer = make_napari_viewer()
    annotator = AnnotatorWidget(viewer)
    annotator.open_folder(folder)
    widget = open_anchor_viewer(viewer, qtbot)
    before = viewer.layers[ANCHOR_TRUTH_LAYER].nshapes
    viewer.layers.selection.active.add_rectangles(np.array([[[4, 4], [4, 40], [40, 40], [40, 4]]]))
    qtbot.waitUntil(lambda: viewer.layers[ANCHOR_TRUTH_LAYER].nshapes == before + 1, timeout=5000)
    widget.teardown()


def test_an_autosave_rereads_that_image_only(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    from napari_detlab._qt.annotator import AnnotatorWidget

    folder = _dataset(tmp_path / "data", images=3)
    AnnotationStore(folder).path_for("img2.png").unlink()  # img2 not annotated yet
    viewer = make_napari_viewer()
    annotator = AnnotatorWidget(viewer)
    annotator.open_folder(folder)
    widget = open_anchor_viewer(viewer, qtbot)
    assert widget.model.report.figures.boxes == 4
    reloads = []
    monkeypatch.setattr(widget, "_load_dataset", lambda: reloads.append(True))

    def draw_and_wait(boxes: int) -> None:
        viewer.layers.selection.active.add_rectangles(
            np.array([[[4, 4], [4, 40], [40, 40], [40, 4]]])
        )
        qtbot.waitUntil(
            lambda: widget.model.report.figures.boxes == boxes and not widget.busy, timeout=9000
        )

    draw_and_wait(5)  # on img0, shown: autosaved after a pause
    annotator.go_to(2)
    draw_and_wait(6)  # img2 joins the dataset's figures
    annotator.go_to(0)
    viewer.layers["boxes: cell"].data = []  # img0 loses its cell boxes (the 1st and new one)
    qtbot.waitUntil(
        lambda: widget.model.report.figures.boxes == 4 and not widget.busy, timeout=9000
    )
    assert reloads == []  # never the whole dataset again
    expected = measure_coverage(
        widget.model.config, DatasetBoxes.load(AnnotationStore(folder)).items
    )
    assert widget.model.report.figures.boxes == len(expected.best_iou)
    np.testing.assert_array_equal(np.sort(widget.model.report.best_iou), np.sort(expected.best_iou))
    widget.teardown()


def test_follow_mouse_moves_the_anchors_with_the_cursor(viewer_and_widget, qtbot, send_mouse):
    from qtpy.QtCore import QEvent

    viewer, widget, _ = viewer_and_widget
    widget.form.level_spin.setValue(2)
    layer = viewer.layers[ANCHORS_AT_POINT_LAYER]

    def hover(dx: float, dy: float) -> tuple[np.ndarray, np.ndarray]:
        """Move the mouse: the anchors shown (xyxy) and the layout's anchors at the cursor."""
        qtbot.wait(int(HOVER_INTERVAL_S * 1000) + 20)  # hover redraws are rate-limited
        send_mouse(viewer, QEvent.Type.MouseMove, dx, dy)
        shown = napari_to_xyxy(np.stack(layer.data)) if layer.nshapes else np.zeros((0, 4))
        row, col = viewer.cursor.position[-2:]
        return shown, widget.model.layout.anchors_at(col, row, 2)

    shown, _ = hover(-30, -25)
    assert len(shown) == 0  # not following yet
    widget.form.follow_check.setChecked(True)
    seen = []
    for dx, dy in ((-30, -25), (30, 20)):
        shown, expected = hover(dx, dy)
        assert len(shown) == 3  # the three ratios at the grid position under the cursor
        np.testing.assert_allclose(shown, expected)
        seen.append(shown)
    assert not np.allclose(*seen)  # they moved with the mouse
    widget.form.follow_check.setChecked(False)
    shown, _ = hover(0, 0)
    np.testing.assert_allclose(shown, seen[-1])  # unchecked: the anchors stay put
