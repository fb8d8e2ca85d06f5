"""The train / predict dock in a real viewer, with the Annotator docked: training in a child
process, cancelling, predicting, and the predictions reaching the Review dock."""

from __future__ import annotations

import json
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from layer_readers import drawn_boxes
from qtpy.QtCore import QTimer
from qtpy.QtGui import QCloseEvent
from qtpy.QtWidgets import QDialog

from napari_detlab._layers import REVIEW_OUTLINES_LAYER
from napari_detlab._qt.annotator import AnnotatorWidget
from napari_detlab._qt.review import ReviewWidget
from napari_detlab._qt.session import session_for
from napari_detlab._qt.train_dock import TrainDockWidget
from napari_detlab._qt.widgets.curve_plot import CurvePlot
from napari_detlab.core.annotations.store import AnnotationStore, ClassSpec
from napari_detlab.core.evaluation.review import filter_predictions
from napari_detlab.core.model.predict import load_prediction

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
    dock.train_form.config_combo.setCurrentText("fast")
    dock.config_overrides = dict(TINY_CONFIG)
    dock.train_form.epochs_spin.setValue(1)
    dock.train_form.batch_spin.setValue(2)
    dock.train_form.device_combo.setCurrentText("cpu")
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
    form = dock.train_form
    assert form.loss_plot.ys and form.progress.value() == form.progress.maximum()
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
    qtbot.waitUntil(lambda: dock.train_form.progress.value() >= 1, timeout=120_000)
    seen = dock.train_form.progress.value()
    dock.cancel_training()
    qtbot.waitUntil(lambda: not dock.is_training(), timeout=60_000)
    result = dock.last_result
    assert result.status == "cancelled"
    checkpoint = load_checkpoint(result.last_checkpoint)
    assert seen <= checkpoint["metrics"]["iteration"] <= seen + 2  # the one under way, at most
    assert dock.train_form.start_button.isEnabled()


@pytest.mark.slow
def test_closing_the_dock_stops_the_training_process_cleanly(sample_viewer, qtbot):
    _viewer, _annotator, dock, _folder = sample_viewer()
    dock.options_overrides = {"max_iterations": 500, "warmup_iters": 1, "eval_every": 0}
    assert dock.start_training()
    qtbot.waitUntil(lambda: dock.train_form.progress.value() >= 1, timeout=120_000)
    child = dock._child
    dock.teardown()  # what closing the dock (or napari) does
    assert child.wait(timeout=60) == 130  # the CLI's exit code for a clean cancel
    qtbot.waitUntil(lambda: not dock.is_training(), timeout=30_000)
    assert dock.last_result.status == "cancelled"
    assert Path(dock.last_result.last_checkpoint).is_file()


@pytest.mark.slow
def test_closing_the_window_asks_first_then_stops_the_training_process_cleanly(
    sample_viewer, qtbot, monkeypatch
):
    """napari lists the run as a running task, so closing the window asks the person first;
    once they agree, napari quits the worker, and the run still stops the clean way."""
    import napari._qt.qt_main_window as qt_main_window

    viewer, _annotator, dock, _folder = sample_viewer()
    dock.options_overrides = {"max_iterations": 500, "warmup_iters": 1, "eval_every": 0}
    assert dock.start_training()
    qtbot.waitUntil(lambda: dock.train_form.progress.value() >= 1, timeout=120_000)
    child, run_dir = dock._child, dock.run_dir
    questions: list[str] = []

    class Agree:
        """napari's "close anyway?" dialog, answered yes."""

        def __init__(self, _parent, close_app=False, extra_info="", display_checkbox=True):
            questions.append(extra_info)

        def exec_(self):
            return QDialog.DialogCode.Accepted

    class ClickedClose(QCloseEvent):
        """A close from the window's own button (Qt marks those spontaneous)."""

        def spontaneous(self) -> bool:
            return True

    monkeypatch.setattr(qt_main_window, "ConfirmCloseDialog", Agree)
    viewer.window._qt_window.closeEvent(ClickedClose())
    assert questions and "napari-worker" in questions[0]  # asked, naming the running task
    viewer.close()
    assert child.wait(timeout=120) == 130  # the CLI's exit code for a clean cancel
    assert (run_dir / "last.pt").is_file()
    last = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["status"] == "cancelled"


def test_bad_data_is_a_notification_not_a_crash(make_napari_viewer, tmp_path, qtbot, notifications):
    folder = tmp_path / "unannotated"
    folder.mkdir()
    iio.imwrite(folder / "a.png", np.zeros((32, 32, 3), np.uint8))
    viewer = make_napari_viewer()
    dock = TrainDockWidget(viewer)
    viewer.window.add_dock_widget(dock, name="Train / predict")
    dock.train_form.dataset_row.edit.setText(str(folder))
    assert not dock.start_training()  # no class anywhere: refused before a thread starts
    assert any("Cannot train" in text and "classes" in text for text in notifications)

    # A class but no annotated image: the engine refuses it on the training thread.
    AnnotationStore(folder).save_classes([ClassSpec("cell", "#ff0000")])
    assert dock.start_training()
    qtbot.waitUntil(lambda: not dock.is_training(), timeout=60_000)
    assert any("no annotated images" in text for text in notifications), notifications
    assert dock.train_form.start_button.isEnabled()

    dock.predict_panel.checkpoint_row.edit.setText(str(tmp_path / "missing.pt"))
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
    form = dock.train_form
    assert form.loss_plot.ys == [2.5]  # what arrived before the failure is drawn
    assert form.start_button.isEnabled() and not form.cancel_button.isEnabled()


def test_curves_skip_values_that_are_not_finite(qtbot):
    plot = CurvePlot("loss", "#ff851b")
    qtbot.addWidget(plot)
    for x, y in enumerate([2.0, float("nan"), 1.5, float("inf"), 1.0]):
        plot.append(x, y)
    assert (plot.xs, plot.ys) == ([0.0, 2.0, 4.0], [2.0, 1.5, 1.0])
    plot.resize(200, 100)
    plot.grab()  # paints without error, with and without points
    plot.clear()
    plot.grab()
