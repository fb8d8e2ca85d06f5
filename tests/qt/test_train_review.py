"""The train / predict dock and the Review panel in a real viewer, with the Annotator docked."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import QDockWidget

from napari_detlab._layers import REVIEW_CAPTIONS_LAYER, REVIEW_OUTLINES_LAYER
from napari_detlab._qt.annotator import AnnotatorWidget
from napari_detlab._qt.napari_internals import vectors_thumbnail_limit
from napari_detlab._qt.review import ReviewWidget
from napari_detlab._qt.session import session_for
from napari_detlab._qt.shader_reuse import reuses_mesh_shaders
from napari_detlab._qt.train_dock import TrainDockWidget
from napari_detlab.core.annotations.store import AnnotationStore, ClassSpec, ImageAnnotation
from napari_detlab.core.evaluation.review import filter_predictions
from napari_detlab.core.model.predict import Prediction, load_prediction, write_prediction

# Small enough to train in seconds on a busy 2-core CPU, big enough to be a real detector.
TINY_CONFIG = {
    "min_size": 128,
    "max_size": 160,
    "rpn_pre_nms_top_n_train": 200,
    "rpn_post_nms_top_n_train": 100,
    "rpn_pre_nms_top_n_test": 100,
    "rpn_post_nms_top_n_test": 50,
    "box_batch_size_per_image": 32,
}


def drawn_boxes(layer) -> np.ndarray:
    """The boxes the outline layer draws, read back from its vectors (4 per box)."""
    starts = np.asarray(layer.data)[:, 0, :].reshape(-1, 4, 2)  # corners in (row, col)
    return np.stack(
        [
            starts[:, :, 1].min(1),
            starts[:, :, 0].min(1),
            starts[:, :, 1].max(1),
            starts[:, :, 0].max(1),
        ],
        axis=1,
    )


def edge_colors(layer) -> np.ndarray:
    """One RGBA per drawn box."""
    return np.asarray(layer.edge_color)[::4]


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
        review.class_agnostic_check.setChecked(agnostic)
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
    review.class_agnostic_check.setChecked(False)
    assert review.kept.tolist() == [0, 3, 2]
    assert review.match.is_tp.tolist() == [True, False, True]
    assert review.match.missed_gt.tolist() == [1]
    # three predictions then the missed box, each in its status colour
    np.testing.assert_allclose(drawn_boxes(boxes_layer)[3], GT_BOXES[1])
    colors = edge_colors(boxes_layer)
    assert colors[0].tolist() == colors[2].tolist() != colors[1].tolist()  # TP, FP, TP
    assert colors[3].tolist() not in (colors[0].tolist(), colors[1].tolist())  # missed
    assert "2 TP · 1 FP · 1 missed" in review.image_label.text()

    review.class_agnostic_check.setChecked(True)  # the cell on the crystal now wins
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
    assert (review.score_threshold, review.nms_iou) == (0.2, 1.0)
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


# -- train and predict from the dock -----------------------------------------------------------
@pytest.fixture
def sample_viewer(make_napari_viewer, tmp_path):
    """A factory (see ``review_setup``): the sample dataset, the Annotator and the dock."""
    return lambda: _sample_viewer(make_napari_viewer, tmp_path)


def _sample_viewer(make_napari_viewer, tmp_path):
    from napari_detlab.core.annotations.sample_data import write_sample_dataset

    folder = write_sample_dataset(tmp_path / "sample")
    viewer = make_napari_viewer()
    annotator = AnnotatorWidget(viewer)
    viewer.window.add_dock_widget(annotator, name="Annotator")
    annotator.open_folder(folder)
    dock = TrainDockWidget(viewer)
    viewer.window.add_dock_widget(dock, name="Train / predict")
    dock.config_combo.setCurrentText("fast")
    dock.config_overrides = dict(TINY_CONFIG)
    dock.epochs_spin.setValue(1)
    dock.batch_spin.setValue(2)
    dock.device_combo.setCurrentText("cpu")
    return viewer, annotator, dock, folder


@pytest.mark.slow
def test_train_predict_review_accept_from_napari_while_the_gui_stays_responsive(
    sample_viewer, qtbot
):
    viewer, annotator, dock, folder = sample_viewer()
    assert dock.dataset == folder  # the Annotator's dataset by default
    dock.options_overrides = {"max_iterations": 3, "warmup_iters": 1}

    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(20)
    assert dock.start_training()
    # Annotating goes on while the model trains.
    annotator.next_image()
    qtbot.waitUntil(lambda: not dock.is_training(), timeout=240_000)
    timer.stop()

    result = dock.last_result
    assert result is not None and result.status == "completed", result
    run_dir = Path(result.run_dir)
    assert run_dir.parent == folder / "runs"
    assert (run_dir / "last.pt").is_file() and (run_dir / "metrics.jsonl").is_file()
    assert session_for(viewer).checkpoint == Path(result.best_checkpoint or result.last_checkpoint)
    assert dock.loss_plot.ys and dock.progress.value() == dock.progress.maximum()
    # The Qt event loop kept running during training: no long freeze between timer ticks.
    assert len(ticks) >= 10 and max(np.diff(ticks)) < 5.0

    # Predict the image on screen; the Review panel appears and shows it.
    assert dock.predict_current_image()
    qtbot.waitUntil(lambda: not dock.is_predicting(), timeout=120_000)
    image = session_for(viewer).image_path
    prediction_file = folder / "predictions" / f"{image.stem}.pt"
    assert dock.predicted == [prediction_file]
    review = next(w for w in viewer.window.dock_widgets.values() if isinstance(w, ReviewWidget))
    raw = load_prediction(prediction_file)
    assert len(raw) > 0  # an untrained head scores ~1/3 per class, above the 0.01 floor
    for score, nms in [(0.0, 0.7), (0.2, 0.7), (0.2, 0.3), (0.0, 1.0)]:
        review.score_slider.setValue(score)
        review.nms_slider.setValue(nms)
        expected = filter_predictions(
            raw.boxes, raw.scores, raw.labels, score_threshold=score, nms_iou=nms
        )
        assert review.kept.tolist() == expected.tolist()
        np.testing.assert_allclose(
            drawn_boxes(viewer.layers[REVIEW_OUTLINES_LAYER])[: len(expected)],
            raw.boxes[expected],
            atol=1e-4,
        )

    review.score_slider.setValue(0.0)
    review.nms_slider.setValue(0.3)
    before = AnnotationStore(folder).load(image)
    added = review.accept_all()
    after = AnnotationStore(folder).load(image)
    assert added > 0 and after.reviewed
    assert len(after) == (0 if before is None else len(before)) + added


@pytest.mark.slow
def test_cancel_stops_within_an_iteration_and_keeps_the_last_checkpoint(sample_viewer, qtbot):
    from napari_detlab.core.model.checkpoint import load_checkpoint

    _viewer, _annotator, dock, _folder = sample_viewer()
    dock.options_overrides = {"max_iterations": 500, "warmup_iters": 1, "eval_every": 0}
    assert dock.start_training()
    qtbot.waitUntil(lambda: dock.progress.value() >= 1, timeout=120_000)
    seen = dock.progress.value()
    dock.cancel_training()
    qtbot.waitUntil(lambda: not dock.is_training(), timeout=60_000)
    result = dock.last_result
    assert result.status == "cancelled"
    checkpoint = load_checkpoint(result.last_checkpoint)
    assert seen <= checkpoint["metrics"]["iteration"] <= seen + 2  # the one under way, at most
    assert dock.start_button.isEnabled()


@pytest.mark.slow
def test_closing_the_dock_stops_the_training_process_cleanly(sample_viewer, qtbot):
    _viewer, _annotator, dock, _folder = sample_viewer()
    dock.options_overrides = {"max_iterations": 500, "warmup_iters": 1, "eval_every": 0}
    assert dock.start_training()
    qtbot.waitUntil(lambda: dock.progress.value() >= 1, timeout=120_000)
    child = dock._child
    dock.teardown()  # what closing the dock (or napari) does
    assert child.wait(timeout=60) == 130  # the CLI's exit code for a clean cancel
    qtbot.waitUntil(lambda: not dock.is_training(), timeout=30_000)
    assert dock.last_result.status == "cancelled"
    assert Path(dock.last_result.last_checkpoint).is_file()


def test_bad_data_is_a_notification_not_a_crash(make_napari_viewer, tmp_path, qtbot, notifications):
    folder = tmp_path / "unannotated"
    folder.mkdir()
    iio.imwrite(folder / "a.png", np.zeros((32, 32, 3), np.uint8))
    viewer = make_napari_viewer()
    dock = TrainDockWidget(viewer)
    viewer.window.add_dock_widget(dock, name="Train / predict")
    dock.dataset_edit.setText(str(folder))
    assert not dock.start_training()  # no class anywhere: refused before a thread starts
    assert any("Cannot train" in text and "classes" in text for text in notifications)

    # A class but no annotated image: the engine refuses it on the training thread.
    AnnotationStore(folder).save_classes([ClassSpec("cell", "#ff0000")])
    assert dock.start_training()
    qtbot.waitUntil(lambda: not dock.is_training(), timeout=60_000)
    assert any("no annotated images" in text for text in notifications), notifications
    assert dock.start_button.isEnabled()

    dock.checkpoint_edit.setText(str(tmp_path / "missing.pt"))
    assert not dock.predict_dataset()
    assert any("checkpoint" in text for text in notifications)


@pytest.mark.parametrize("failure", ["nan", "crash"])
def test_a_failing_run_is_a_notification_naming_the_kept_run_folder(
    sample_viewer, qtbot, notifications, monkeypatch, failure
):
    import napari_detlab.core.training.engine as engine
    from napari_detlab.core.training.events import IterationEnded, RunFinished, RunStarted

    def failing_train(dataset, run_dir, config, options, *, on_event=None, cancel=None):
        run_dir.mkdir(parents=True)
        on_event(RunStarted(str(run_dir), "cpu", 1, 10, 20, 4))
        on_event(IterationEnded(1, 1, 10, 2.5, {}, 0.01, 3.0, 27.0))
        if failure == "crash":
            raise RuntimeError("DataLoader worker exited unexpectedly")
        return RunFinished("failed", str(run_dir), None, None, None, "loss is nan at iteration 2")

    monkeypatch.setattr(engine, "train", failing_train)
    _viewer, _annotator, dock, _folder = sample_viewer()
    dock.use_subprocess = False  # the fake engine lives in this process
    assert dock.start_training()
    qtbot.waitUntil(lambda: not dock.is_training(), timeout=30_000)
    message = notifications[-1]
    expected = "loss is nan" if failure == "nan" else "RuntimeError: DataLoader worker exited"
    assert expected in message and str(dock.run_dir) in message
    assert dock.run_dir.is_dir()
    assert dock.loss_plot.ys == [2.5]  # what arrived before the failure is drawn
    assert dock.start_button.isEnabled() and not dock.cancel_button.isEnabled()


def test_eta_text_and_curves_ignore_values_that_are_not_yet_known(qtbot):
    from napari_detlab._qt.train_dock import CurvePlot, format_duration

    assert [format_duration(s) for s in (float("nan"), float("inf"), -1, 42, 185, 3725)] == [
        "?", "?", "?", "42s", "3m05s", "1h02m",
    ]  # fmt: skip
    plot = CurvePlot("loss", "#ff851b")
    qtbot.addWidget(plot)
    for x, y in enumerate([2.0, float("nan"), 1.5, float("inf"), 1.0]):
        plot.append(x, y)
    assert (plot.xs, plot.ys) == ([0.0, 2.0, 4.0], [2.0, 1.5, 1.0])
    plot.resize(200, 100)
    plot.grab()  # paints without error, with and without points
    plot.clear()
    plot.grab()
