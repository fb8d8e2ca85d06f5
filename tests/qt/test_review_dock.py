"""The Review dock in a real viewer, with the Annotator docked: sliders, colours, accepting."""

from __future__ import annotations

import warnings

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from layer_readers import drawn_boxes, edge_colors
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QDockWidget

from napari_detlab._layers import REVIEW_CAPTIONS_LAYER, REVIEW_OUTLINES_LAYER
from napari_detlab._qt.annotator import AnnotatorWidget
from napari_detlab._qt.napari_internals import vectors_thumbnail_limit
from napari_detlab._qt.review import ReviewWidget
from napari_detlab._qt.shader_reuse import reuses_mesh_shaders
from napari_detlab._qt.widgets.threshold_controls import ThresholdControls
from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore, ClassSpec
from napari_detlab.core.evaluation.review import ReviewThresholds, filter_predictions
from napari_detlab.core.model.predict import Prediction, write_prediction
from oriented_photos import SHOWN, save_version_1, write_photo

# -- review, on hand-made predictions with a known answer -------------------------------------
GT_BOXES = np.array([[10, 10, 40, 40], [60, 10, 90, 40], [10, 60, 40, 90]], np.float32)
GT_LABELS = ["cell", "cell", "crystal"]
GT_CLASSES = ("cell", "crystal")
PRED_BOXES = np.array(
    [
        [10, 10, 40, 40],  # 0: cell on gt 0 (TP)
        [10, 10, 40, 37],  # 1: cell, duplicate of 0 (IoU 0.9): NMS removes it
        [10, 60, 40, 90],  # 2: crystal on gt 2 (TP)
        [10, 60, 40, 90],  # 3: cell on the crystal: FP; class-agnostic NMS keeps it over 2
        [70, 70, 95, 95],  # 4: cell on nothing, low score
    ],
    np.float32,
)
PRED_LABELS = ["cell", "cell", "crystal", "cell", "cell"]
PRED_SCORES = np.array([0.9, 0.8, 0.6, 0.7, 0.3], np.float32)


@pytest.fixture
def review_setup(make_napari_viewer, tmp_path):
    """A factory, so that the test (not pytest's fixture cache) holds the viewer's widgets:
    napari's leak check runs while fixture values are still cached.

    ``review_setup(via_plugin=True)`` opens the docks as napari's Plugins menu does, handing
    them the viewer proxy that napari gives plugins.
    """
    return lambda via_plugin=False, tabbed=False: _review_setup(
        make_napari_viewer, tmp_path, via_plugin, tabbed
    )


def _review_setup(make_napari_viewer, tmp_path, via_plugin: bool = False, tabbed: bool = False):
    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        iio.imwrite(folder / name, rng.integers(0, 255, (100, 100, 3), dtype=np.uint8))
    store = AnnotationStore(folder)
    store.save_classes([ClassSpec("cell", "#ff0000"), ClassSpec("crystal", "#00ffff")])
    store.save("a.png", ImageAnnotation(GT_BOXES, GT_LABELS, reviewed=True, image_size=(100, 100)))
    write_prediction(
        folder / "predictions", "a", Prediction(PRED_BOXES, PRED_LABELS, PRED_SCORES, (100, 100))
    )
    viewer = make_napari_viewer(show=tabbed)  # tabs switch only in a shown window
    if via_plugin:
        annotator = viewer.window.add_plugin_dock_widget("napari-detlab", "Annotator")[1]
        review = viewer.window.add_plugin_dock_widget("napari-detlab", "Review predictions")[1]
    else:
        annotator = AnnotatorWidget(viewer)
        viewer.window.add_dock_widget(annotator, name="Annotator")
        review = ReviewWidget(viewer)
        viewer.window.add_dock_widget(review, name="Review predictions", tabify=tabbed)
    annotator.open_folder(folder)
    annotator.go_to(0)
    return viewer, annotator, review, folder


def test_sliders_act_together_and_the_layers_show_exactly_the_filtered_predictions(review_setup):
    viewer, _annotator, review, _folder = review_setup()
    boxes_layer, labels_layer = (
        viewer.layers[REVIEW_OUTLINES_LAYER],
        viewer.layers[REVIEW_CAPTIONS_LAYER],
    )
    assert reuses_mesh_shaders(viewer, boxes_layer)  # no shader recompile per slider step

    for score, nms, agnostic in [
        (0.5, 0.5, False),
        (0.2, 0.5, False),  # score slider moves; NMS stays in force
        (0.2, 1.0, False),  # NMS slider moves; the score cut stays in force
        (0.5, 0.5, True),
        (0.95, 0.5, False),
    ]:
        review.score_slider.setValue(score)
        review.nms_slider.setValue(nms)
        review.controls.class_agnostic_check.setChecked(agnostic)
        expected = filter_predictions(
            PRED_BOXES, PRED_SCORES, PRED_LABELS, score_threshold=score, nms_iou=nms,
            class_agnostic=agnostic,
        )  # fmt: skip
        assert review.kept.tolist() == expected.tolist()
        shown = drawn_boxes(boxes_layer)[: len(expected)]
        np.testing.assert_allclose(shown, PRED_BOXES[expected])
        captions = list(labels_layer.features["caption"])
        assert captions == [f"{PRED_LABELS[i]} {PRED_SCORES[i]:.2f}" for i in expected]
        np.testing.assert_allclose(labels_layer.data, PRED_BOXES[expected][:, [1, 0]])

    review.score_slider.setValue(0.5)
    review.nms_slider.setValue(0.5)
    review.controls.class_agnostic_check.setChecked(False)
    assert review.kept.tolist() == [0, 3, 2]
    assert review.match.is_tp.tolist() == [True, False, True]
    assert review.match.missed_gt.tolist() == [1]
    # three predictions then the missed box, each in its status colour
    np.testing.assert_allclose(drawn_boxes(boxes_layer)[3], GT_BOXES[1])
    colors = edge_colors(boxes_layer)
    assert colors[0].tolist() == colors[2].tolist() != colors[1].tolist()  # TP, FP, TP
    assert colors[3].tolist() not in (colors[0].tolist(), colors[1].tolist())  # missed
    assert "2 TP · 1 FP · 1 missed" in review.image_label.text()

    review.controls.class_agnostic_check.setChecked(True)  # the cell on the crystal now wins
    assert review.kept.tolist() == [0, 3]
    assert review.match.missed_gt.tolist() == [1, 2]


def test_docks_opened_by_napari_keep_their_fast_paths_and_print_no_warning(review_setup):
    """napari hands plugins a viewer proxy that warns on private access (and may refuse it)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        viewer, annotator, review, _folder = review_setup(via_plugin=True)
        review.score_slider.setValue(0.5)
        annotator.next_image()
        annotator.previous_image()
    assert [str(w.message) for w in caught if "Private attribute" in str(w.message)] == []
    outlines = viewer.layers[REVIEW_OUTLINES_LAYER]
    assert len(review.kept) > 0
    np.testing.assert_allclose(
        drawn_boxes(outlines)[: len(review.kept)], PRED_BOXES[review.kept]
    )  # the kept predictions, then the ground truth they miss
    # the fast paths of napari_internals are still taken through the proxy
    assert reuses_mesh_shaders(viewer, outlines)
    assert all(reuses_mesh_shaders(viewer, viewer.layers[f"boxes: {c}"]) for c in GT_CLASSES)
    assert vectors_thumbnail_limit(outlines) == 32


def test_settings_survive_n_and_b_and_follow_the_image(review_setup, press):
    viewer, annotator, review, _folder = review_setup()
    review.score_slider.setValue(0.2)
    review.nms_slider.setValue(1.0)
    assert len(review.kept) == 5

    press(viewer, Qt.Key.Key_N)
    assert annotator.index == 1
    assert review.image_path.name == "b.png"
    assert len(review.kept) == 0 and len(viewer.layers[REVIEW_OUTLINES_LAYER].data) == 0

    press(viewer, Qt.Key.Key_B)
    assert annotator.index == 0
    assert (review.thresholds.score_threshold, review.thresholds.nms_iou) == (0.2, 1.0)
    assert review.kept.tolist() == [0, 1, 3, 2, 4]


def test_dataset_precision_recall_and_map_at_the_current_thresholds(review_setup, qtbot):
    _viewer, _annotator, review, _folder = review_setup()
    review.score_slider.setValue(0.5)
    review.nms_slider.setValue(0.5)
    review.refresh_dataset_metrics()  # scored in a worker thread
    qtbot.waitUntil(lambda: not review.busy, timeout=10_000)
    counts = review.dataset_review.counts
    assert (counts.tp, counts.fp, counts.missed) == (2, 1, 1)
    assert "mAP@.5" in review.dataset_label.text()
    assert 0 < review.dataset_review.metrics["map_50"] < 1
    assert review.image_map_label.text().startswith("mAP@.5 ")  # the one image is the dataset
    assert review.image_map_label.text() in review.dataset_label.text()


def test_old_predictions_of_a_phone_photo_are_reviewed_on_its_objects(make_napari_viewer, tmp_path):
    """An orientation-6 photo whose prediction and annotation the previous version wrote on
    its stored pixels: the dock draws the predictions on the objects shown, and both match."""
    folder = tmp_path / "photos"
    write_photo(folder / "photo.jpg", 6)
    save_version_1(folder / "annotations" / "photo.pt", reviewed=True)
    save_version_1(folder / "predictions" / "photo.pt", scores=[0.9, 0.8])
    viewer = make_napari_viewer()
    annotator, review = AnnotatorWidget(viewer), ReviewWidget(viewer)
    viewer.window.add_dock_widget(annotator, name="Annotator")
    viewer.window.add_dock_widget(review, name="Review predictions")
    annotator.open_folder(folder)
    annotator.go_to(0)
    review.score_slider.setValue(0.5)
    assert review.kept.tolist() == [0, 1] and review.match.is_tp.tolist() == [True, True]
    np.testing.assert_allclose(drawn_boxes(viewer.layers[REVIEW_OUTLINES_LAYER]), SHOWN[6][1:])


def dock_of(widget) -> QDockWidget:
    dock = widget.parent()
    while not isinstance(dock, QDockWidget):
        dock = dock.parent()
    return dock


def test_behind_another_tab_the_overlay_hides_and_figures_wait_until_chosen(review_setup, qtbot):
    viewer, annotator, review, _folder = review_setup(tabbed=True)
    qtbot.waitUntil(lambda: not review.busy and review.dataset_review is not None, timeout=10_000)
    outlines = viewer.layers[REVIEW_OUTLINES_LAYER]
    shown_boxes = drawn_boxes(outlines)
    dock_of(annotator).raise_()  # the Annotator's tab in front, as in the demo
    qtbot.waitUntil(lambda: not outlines.visible, timeout=5000)  # Qt tells docks a turn later
    assert not viewer.layers[REVIEW_CAPTIONS_LAYER].visible
    figures = review.dataset_review
    review.score_slider.setValue(0.2)
    annotator.next_image()  # b.png: no predictions
    qtbot.wait(600)  # past the debounce: nothing is redrawn or measured for nobody
    assert not review.busy and review.dataset_review is figures
    np.testing.assert_array_equal(drawn_boxes(outlines), shown_boxes)

    dock_of(review).raise_()  # the user picks the Review tab: everything catches up
    qtbot.waitUntil(lambda: outlines.visible and not review.busy, timeout=10_000)
    assert len(outlines.data) == 0  # b.png's (no) predictions
    annotator.previous_image()
    expected = filter_predictions(
        PRED_BOXES, PRED_SCORES, PRED_LABELS, score_threshold=0.2, nms_iou=0.5
    )
    np.testing.assert_allclose(drawn_boxes(outlines)[: len(expected)], PRED_BOXES[expected])
    qtbot.waitUntil(lambda: not review.busy, timeout=10_000)
    assert review.dataset_review.counts.fp > figures.counts.fp  # at the new threshold

    caught_up = review.dataset_review
    review.refresh_dataset_metrics()
    assert review.busy and review.dataset_review is caught_up  # returned before scoring
    qtbot.waitUntil(lambda: not review.busy, timeout=10_000)
    assert review.dataset_review is not caught_up


def test_accept_selected_and_all_write_the_store_and_the_annotator_reloads(review_setup):
    viewer, annotator, review, folder = review_setup()
    review.score_slider.setValue(0.2)
    review.nms_slider.setValue(0.5)
    assert review.kept.tolist() == [0, 3, 2, 4]
    cell_layer = viewer.layers["boxes: cell"]
    assert cell_layer.nshapes == 2

    viewer.layers[REVIEW_CAPTIONS_LAYER].selected_data = {3}  # row 3 = prediction 4
    assert review.accept_selected() == 1
    saved = torch.load(folder / "annotations" / "a.pt", weights_only=True)
    assert saved["reviewed"] is True
    assert saved["labels"] == [*GT_LABELS, "cell"]
    np.testing.assert_allclose(saved["boxes"][-1].numpy(), PRED_BOXES[4])
    assert cell_layer.nshapes == 3  # the Annotator reloaded the image
    assert review.match.is_tp.tolist() == [True, False, True, True]

    # Accepting everything adds only what is new: 0, 2 and 4 are already there.
    assert review.accept_all() == 1
    saved = torch.load(folder / "annotations" / "a.pt", weights_only=True)
    assert sorted(saved["labels"]) == ["cell"] * 4 + ["crystal"]
    stored = {tuple(box) for box in saved["boxes"].numpy().round(3).tolist()}
    assert stored == {tuple(box) for box in np.concatenate([GT_BOXES, PRED_BOXES[[3, 4]]]).tolist()}
    assert annotator.current_annotation().labels.count("cell") == 4


def test_an_annotation_rewritten_on_disk_is_read_again_and_a_broken_one_reported_once(
    review_setup, monkeypatch
):
    _viewer, _annotator, review, folder = review_setup()
    assert review.match.missed_gt.tolist() == [1]
    store = AnnotationStore(folder)
    store.save("a.png", ImageAnnotation(GT_BOXES[[0, 2]], ["cell", "crystal"], True, (100, 100)))
    review.score_slider.setValue(0.51)  # nobody signalled: the file's stamp changed
    assert review.match.missed_gt.tolist() == []

    errors: list[str] = []
    monkeypatch.setattr("napari_detlab._qt.review.show_error", errors.append)
    (folder / "annotations" / "a.pt").write_bytes(b"not an annotation")
    review.score_slider.setValue(0.52)
    review.score_slider.setValue(0.53)  # the same broken file: not reported again
    assert len(errors) == 1 and "a.pt" in errors[0]
    assert review.match is None and review.review.status.tolist() == ["unchecked"] * 3


def test_threshold_controls_read_as_one_setting_and_tell_drags_from_releases(qtbot):
    controls = ThresholdControls(ReviewThresholds(0.3, 0.7, True, 0.6))
    qtbot.addWidget(controls)
    assert controls.thresholds == ReviewThresholds(0.3, 0.7, True, 0.6)
    changes, releases = [], []
    controls.changed.connect(lambda: changes.append(controls.thresholds))
    controls.released.connect(lambda: releases.append(True))
    controls.score_slider.setSliderDown(True)  # held, as under the mouse
    assert controls.dragging
    controls.score_slider.setValue(0.4)
    controls.nms_slider.setValue(1.0)
    controls.class_agnostic_check.setChecked(False)
    controls.match_iou_spin.setValue(0.75)
    assert changes == [
        ReviewThresholds(0.4, 0.7, True, 0.6),
        ReviewThresholds(0.4, 1.0, True, 0.6),
        ReviewThresholds(0.4, 1.0, False, 0.6),
        ReviewThresholds(0.4, 1.0, False, 0.75),
    ]
    assert releases == []
    controls.score_slider.setSliderDown(False)
    assert not controls.dragging and releases == [True]
