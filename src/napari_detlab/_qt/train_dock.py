"""The train / predict dock: train a detector and predict images without leaving napari.

Training runs the ``detlab train`` CLI (:func:`napari_detlab.core.training.engine.train`) in a child
process whose JSON events a background thread relays; prediction runs
:func:`napari_detlab.core.model.predict.predict_folder` on a background thread. The viewer stays
usable (the next images can be annotated meanwhile), and no worker touches Qt: events and
progress go onto a queue that a timer on the Qt thread drains and draws (progress bar with
ETA, loss and validation-mAP curves). Cancel sets a :class:`threading.Event`, relayed to the
child as SIGINT, which the engine checks every iteration; it writes ``last.pt`` before it
returns. A thread instead of a process cost the training loop most of its speed on a 2-core
CPU (its many small Python steps wait for the GIL the GUI holds), see
``benchmarks/bench_gui_training.py``. Failures (bad data, a non-finite loss, out of memory)
arrive as napari notifications naming the run folder, which is kept.

Predictions go to ``predictions/`` beside the images; the session's ``predictions_changed``
tells the Review panel (docked here if it is not yet) to show them as layers.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QPointF, QRectF, QTimer
from qtpy.QtGui import QColor, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_detlab._qt.session import session_for
from napari_detlab.core.annotations.store import AnnotationStore, predictions_dir_of
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.model.config import (
    PRESETS,
    ModelConfig,
    default_preset_name,
    resolve_model_config,
)
from napari_detlab.core.training.events import EpochEnded, IterationEnded, RunFinished, RunStarted
from napari_detlab.core.training.options import TrainingInputError

if TYPE_CHECKING:
    import napari

__all__ = ["CurvePlot", "TrainDockWidget", "format_duration"]

logger = logging.getLogger(__name__)
ANCHOR_VIEWER_CHOICE = "AnchorViewer's config"
_POLL_MS = 50


def format_duration(seconds: float) -> str:
    """``"1h02m"``, ``"3m05s"`` or ``"42s"``: an ETA a person reads at a glance."""
    if not math.isfinite(seconds) or seconds < 0:  # not known yet
        return "?"
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


# -- training in a child process ----------------------------------------------------------------
_CLI = "import sys; from napari_detlab.cli.main import main; sys.exit(main(sys.argv[1:]))"


def _path_row(edit: QLineEdit, placeholder: str, browse: Callable[[], None]) -> QHBoxLayout:
    """A path field with its "…" button that opens a file dialog."""
    edit.setPlaceholderText(placeholder)
    button = QPushButton("…")
    button.setMaximumWidth(30)
    button.clicked.connect(browse)
    row = QHBoxLayout()
    row.addWidget(edit)
    row.addWidget(button)
    return row


def stop_child(child: subprocess.Popen) -> None:
    """Ask a training process for the engine's clean stop (SIGINT: last.pt is written).

    Windows has no SIGINT for a child process: there it is terminated outright.
    """
    if child.poll() is None:
        child.send_signal(signal.SIGINT if os.name != "nt" else signal.SIGTERM)


def train_in_subprocess(
    dataset: Path,
    run_dir: Path,
    config: ModelConfig,
    options: Any,
    *,
    on_event: Callable[[object], None],
    cancel: threading.Event,
    on_start: Callable[[subprocess.Popen], None] | None = None,
) -> RunFinished:
    """Run ``detlab train --json-events`` in a child process and relay its events.

    A child process has its own interpreter: the training loop's many small Python steps
    never wait for the GUI thread's GIL, nor the GUI for them, and the throughput is the
    CLI's by construction. ``cancel`` becomes a SIGINT, which the CLI turns into the engine's
    clean stop (``last.pt`` written). The child's stderr is kept as ``run_dir/train.log``.
    ``on_start(process)`` lets the caller stop the child itself (e.g. when the app quits).

    Raises
    ------
    TrainingInputError
        The CLI refused the inputs (exit code 2), with its one-line message.
    RuntimeError
        The child ended without a final event (a crash), with the end of its log.
    """
    from napari_detlab.core.training.events import event_from_dict

    run_dir.mkdir(parents=True, exist_ok=True)
    config_path, options_path = run_dir / "config.json", run_dir / "options.json"
    config.to_json(config_path)  # the engine rewrites both with the same content
    options.to_json(options_path)
    command = [
        sys.executable, "-c", _CLI, "train", str(dataset), "--output", str(run_dir),
        "--config", str(config_path), "--options", str(options_path), "--json-events",
    ]  # fmt: skip
    log_path = run_dir / "train.log"
    with open(log_path, "w", encoding="utf-8") as log:
        child = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True
        )
        if on_start is not None:
            on_start(child)

        def relay_cancel() -> None:
            while child.poll() is None:
                if cancel.wait(0.2):
                    stop_child(child)
                    return

        threading.Thread(target=relay_cancel, name="detlab-train-cancel", daemon=True).start()
        finished: RunFinished | None = None
        assert child.stdout is not None
        for line in child.stdout:
            try:
                event = event_from_dict(json.loads(line))
            except (ValueError, KeyError, TypeError):
                continue  # not an event (a library printing to stdout)
            on_event(event)
            if isinstance(event, RunFinished):
                finished = event
        code = child.wait()
    if finished is not None:
        return finished
    lines = [line for line in log_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if code == 2 and lines:
        raise TrainingInputError(lines[-1].split("error: ", 1)[-1])
    tail = "; ".join(lines[-3:]) or f"exit code {code}"
    raise RuntimeError(f"the training process ended unexpectedly ({tail})")


# -- background jobs ----------------------------------------------------------------------------
@dataclass
class _Done:
    result: Any


@dataclass
class _Failed:
    error: BaseException
    trace: str


class _Job:
    """A function on a daemon thread; what it posts is handled on the Qt thread.

    ``run(post)`` gets a ``post(item)`` callable that only puts ``item`` on a queue (safe from
    any thread, never blocks). A :class:`QTimer` drains the queue on the Qt thread and calls
    ``on_item(item)`` for each, then ``on_done(result)`` or ``on_error(error, trace)`` once.
    """

    def __init__(
        self,
        parent: QWidget,
        run: Callable[[Callable[[object], None]], Any],
        on_item: Callable[[object], None],
        on_done: Callable[[Any], None],
        on_error: Callable[[BaseException, str], None],
        name: str,
    ) -> None:
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._on_item, self._on_done, self._on_error = on_item, on_done, on_error
        self._timer = QTimer(parent)
        self._timer.setInterval(_POLL_MS)
        self._timer.timeout.connect(self.drain)
        self._thread = threading.Thread(target=self._main, args=(run,), name=name, daemon=True)
        self.finished = False

    def start(self) -> None:
        self._timer.start()
        self._thread.start()

    def _main(self, run: Callable[[Callable[[object], None]], Any]) -> None:
        try:
            self._queue.put(_Done(run(self._queue.put)))
        except BaseException as error:  # reported on the Qt thread, never lost
            self._queue.put(_Failed(error, traceback.format_exc()))

    def drain(self) -> None:
        """Handle everything posted so far (called by the timer; tests may call it too)."""
        while not self.finished:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Done):
                self._stop()
                self._on_done(item.result)
            elif isinstance(item, _Failed):
                self._stop()
                self._on_error(item.error, item.trace)
            else:
                self._on_item(item)

    def _stop(self) -> None:
        self.finished = True
        self._timer.stop()

    def is_running(self) -> bool:
        return not self.finished

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)


# -- curves -------------------------------------------------------------------------------------
class CurvePlot(QWidget):
    """A small line plot drawn with QPainter (matplotlib is not a dependency).

    Parameters
    ----------
    title
        Drawn in the top-left corner with the last value.
    color
        The line colour.
    """

    def __init__(self, title: str, color: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.color = QColor(color)
        self.xs: list[float] = []
        self.ys: list[float] = []
        self.setMinimumHeight(90)

    def clear(self) -> None:
        self.xs, self.ys = [], []
        self.update()

    def append(self, x: float, y: float) -> None:
        """Add a point; non-finite values are skipped (a NaN loss stops the run anyway)."""
        if math.isfinite(y):
            self.xs.append(float(x))
            self.ys.append(float(y))
            self.update()

    def paintEvent(self, _event: object) -> None:  # noqa: N802 (Qt API)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        frame = QRectF(self.rect()).adjusted(34, 16, -6, -14)
        painter.setPen(QPen(QColor("#808080")))
        painter.drawRect(frame)
        last = f": {self.ys[-1]:.3g}" if self.ys else ""
        painter.drawText(QPointF(frame.left(), frame.top() - 3), f"{self.title}{last}")
        if not self.ys:
            painter.end()
            return
        low, high = min(self.ys), max(self.ys)
        if high - low < 1e-12:
            low, high = low - 0.5, high + 0.5
        first_x, last_x = self.xs[0], self.xs[-1]
        span_x = (last_x - first_x) or 1.0
        painter.drawText(QPointF(2, frame.top() + 10), f"{high:.2g}")
        painter.drawText(QPointF(2, frame.bottom()), f"{low:.2g}")
        points = QPolygonF(
            [
                QPointF(
                    frame.left() + (x - first_x) / span_x * frame.width(),
                    frame.bottom() - (y - low) / (high - low) * frame.height(),
                )
                for x, y in zip(self.xs, self.ys, strict=True)
            ]
        )
        painter.setPen(QPen(self.color, 1.5))
        if len(points) == 1:
            painter.drawEllipse(points[0], 2.5, 2.5)
        else:
            painter.drawPolyline(points)
        painter.end()


# -- the dock -----------------------------------------------------------------------------------
class TrainDockWidget(QWidget):
    """Train a detector on the Annotator's dataset and predict images, in the background.

    Parameters
    ----------
    napari_viewer
        The viewer; its :func:`~napari_detlab._qt.session.session_for` session gives the
        default dataset (the Annotator's), the AnchorViewer's config and the image on screen.

    Attributes
    ----------
    config_overrides, options_overrides
        Fields applied on top of the chosen config and of the training options at Start (for
        scripted use and tests, e.g. ``{"min_size": 128}`` and ``{"max_iterations": 4}``).
    last_result
        The :class:`~napari_detlab.core.training.events.RunFinished` of the last run.
    run_dir
        The folder of the current or last run.
    use_subprocess
        Train in a child process running the ``detlab train`` CLI (the default: the GUI and
        the training loop never compete for the GIL); ``False`` runs the engine on a thread
        of this process instead.
    """

    use_subprocess = True

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.config_overrides: dict[str, Any] = {}
        self.options_overrides: dict[str, Any] = {}
        self.last_result: RunFinished | None = None
        self.run_dir: Path | None = None
        self.predicted: list[Path] = []
        self.train_job: _Job | None = None
        self.predict_job: _Job | None = None
        self._cancel_training: threading.Event | None = None
        self._cancel_prediction: threading.Event | None = None
        self._child: subprocess.Popen | None = None  # the training process, when one runs
        self._run_started_at = 0.0
        self._build_ui()
        self.session.attach(
            self,
            teardown=self.teardown,
            dataset_changed=self._on_dataset_changed,
            config_changed=self._on_config_changed,
            checkpoint_changed=self._on_checkpoint_changed,
        )

    # -- UI ---------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        import torch

        self.dataset_edit = QLineEdit()
        dataset_row = _path_row(self.dataset_edit, "the Annotator's folder", self._browse_dataset)

        self.config_combo = QComboBox()
        self.config_combo.addItems(list(PRESETS))
        self.config_combo.setCurrentText(default_preset_name())
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 10000)
        self.epochs_spin.setValue(20)
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 256)
        self.batch_spin.setValue(2 if not torch.cuda.is_available() else 4)
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(5)
        self.lr_spin.setRange(1e-5, 1.0)
        self.lr_spin.setSingleStep(0.001)
        self.lr_spin.setValue(0.01)
        self.device_combo = QComboBox()
        self.device_combo.addItems(
            ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        )
        self.device_label = QLabel(
            f"CUDA GPU: {torch.cuda.get_device_name(0)}"
            if torch.cuda.is_available()
            else "No CUDA GPU found: training runs on the CPU"
        )
        self.device_label.setWordWrap(True)

        self.start_button = QPushButton("Start training")
        self.start_button.clicked.connect(self.start_training)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_training)
        self.progress = QProgressBar()
        self.progress.setFormat("%p%")
        self.status_label = QLabel("Not started")
        self.status_label.setWordWrap(True)
        self.loss_plot = CurvePlot("loss", "#ff851b")
        self.map_plot = CurvePlot("validation mAP", "#2ecc40")

        form = QFormLayout()
        form.addRow("Dataset", dataset_row)
        form.addRow("Model", self.config_combo)
        form.addRow("Epochs", self.epochs_spin)
        form.addRow("Batch size", self.batch_spin)
        form.addRow("Learning rate", self.lr_spin)
        form.addRow("Device", self.device_combo)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        train_box = QGroupBox("Train")
        train_layout = QVBoxLayout(train_box)
        train_layout.addLayout(form)
        train_layout.addWidget(self.device_label)
        train_layout.addLayout(buttons)
        train_layout.addWidget(self.progress)
        train_layout.addWidget(self.status_label)
        train_layout.addWidget(self.loss_plot)
        train_layout.addWidget(self.map_plot)

        self.checkpoint_edit = QLineEdit()
        checkpoint_row = _path_row(
            self.checkpoint_edit, "best.pt or last.pt of a run", self._browse_checkpoint
        )
        self.predict_image_button = QPushButton("Current image")
        self.predict_image_button.clicked.connect(self.predict_current_image)
        self.predict_dataset_button = QPushButton("Whole dataset")
        self.predict_dataset_button.clicked.connect(self.predict_dataset)
        self.predict_folder_button = QPushButton("Other folder…")
        self.predict_folder_button.clicked.connect(self._choose_predict_folder)
        self.predict_cancel_button = QPushButton("Cancel")
        self.predict_cancel_button.setEnabled(False)
        self.predict_cancel_button.clicked.connect(self.cancel_prediction)
        self.predict_progress = QProgressBar()
        predict_buttons = QHBoxLayout()
        for button in (
            self.predict_image_button,
            self.predict_dataset_button,
            self.predict_folder_button,
            self.predict_cancel_button,
        ):
            predict_buttons.addWidget(button)
        predict_box = QGroupBox("Predict")
        predict_layout = QVBoxLayout(predict_box)
        predict_form = QFormLayout()
        predict_form.addRow("Checkpoint", checkpoint_row)
        predict_layout.addLayout(predict_form)
        predict_layout.addLayout(predict_buttons)
        predict_layout.addWidget(self.predict_progress)

        layout = QVBoxLayout(self)
        layout.addWidget(train_box)
        layout.addWidget(predict_box)
        layout.addStretch(1)

    def _browse_dataset(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Dataset folder", self.dataset_edit.text())
        if folder:
            self.dataset_edit.setText(folder)

    def _browse_checkpoint(self) -> None:
        start = self.checkpoint_edit.text() or str(self.dataset or "")
        path, _ = QFileDialog.getOpenFileName(self, "Checkpoint", start, "Checkpoints (*.pt)")
        if path:
            self.checkpoint_edit.setText(path)

    def _choose_predict_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of images to predict")
        if folder:
            self.predict_folder(Path(folder))

    # -- session ----------------------------------------------------------------------------
    def _on_dataset_changed(self, store: AnnotationStore | None) -> None:
        if store is not None:
            self.dataset_edit.setText(str(store.root))

    def _on_config_changed(self, _config: ModelConfig) -> None:
        if self.config_combo.findText(ANCHOR_VIEWER_CHOICE) < 0:
            self.config_combo.addItem(ANCHOR_VIEWER_CHOICE)
        self.config_combo.setCurrentText(ANCHOR_VIEWER_CHOICE)

    def _on_checkpoint_changed(self, checkpoint: Path) -> None:
        self.checkpoint_edit.setText(str(checkpoint))

    @property
    def dataset(self) -> Path | None:
        text = self.dataset_edit.text().strip()
        return Path(text).expanduser() if text else None

    # -- training ---------------------------------------------------------------------------
    def model_config(self, classes: list[str]) -> ModelConfig:
        """The config Start would train: the chosen preset or the AnchorViewer's, these classes."""
        choice = self.config_combo.currentText()
        from_anchor_viewer = choice == ANCHOR_VIEWER_CHOICE and self.session.config is not None
        return resolve_model_config(
            classes,
            config=self.session.config if from_anchor_viewer else None,
            preset_name=None if from_anchor_viewer else choice,
            keep_config_classes=False,
            overrides=self.config_overrides,
        )

    def _store(self, dataset: Path) -> AnnotationStore:
        """The session's store when ``dataset`` is the open one (its answers are shared)."""
        store = self.session.store
        if store is not None and store.root.resolve() == dataset.resolve():
            return store
        return AnnotationStore(dataset)

    def train_options(self) -> Any:
        from napari_detlab.core.training.options import TrainOptions

        options = TrainOptions(
            epochs=self.epochs_spin.value(),
            batch_size=self.batch_spin.value(),
            lr=self.lr_spin.value(),
            device=self.device_combo.currentText(),
        )
        for name, value in self.options_overrides.items():
            setattr(options, name, value)
        return options.validate()

    def is_training(self) -> bool:
        return self.train_job is not None and self.train_job.is_running()

    def start_training(self) -> bool:
        """Check the inputs, then train on a background thread; ``False`` if refused."""
        from napari_detlab.core.training.engine import train

        if self.is_training():
            show_info("A training run is already going; cancel it first")
            return False
        dataset = self.dataset
        if dataset is None or not dataset.is_dir():
            show_error(
                f"Choose a dataset folder first ({dataset or 'none chosen'} is not a folder)"
            )
            return False
        self.session.request_flush()  # train on what is on screen, not what was saved before
        try:
            store = self._store(dataset)
            config = self.model_config(store.class_names())
            options = self.train_options()
        except (DetlabError, OSError) as error:
            show_error(f"Cannot train: {error}")
            return False
        self.run_dir = run_dir = store.new_run_dir()
        self.last_result = None
        cancel = self._cancel_training = threading.Event()
        self.loss_plot.clear()
        self.map_plot.clear()
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self.status_label.setText(f"Starting… ({run_dir})")
        self._run_started_at = time.monotonic()

        in_subprocess = self.use_subprocess

        def run(post: Callable[[object], None]) -> RunFinished:
            if in_subprocess:
                return train_in_subprocess(
                    dataset, run_dir, config, options, on_event=post, cancel=cancel, on_start=post
                )
            return train(dataset, run_dir, config, options, on_event=post, cancel=cancel)

        self.train_job = _Job(
            self, run, self._on_training_event, self._on_training_done, self._on_training_error,
            name="detlab-train",
        )  # fmt: skip
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.train_job.start()
        return True

    def cancel_training(self) -> None:
        """Stop the run after the current iteration; the engine saves ``last.pt`` first."""
        if self._cancel_training is not None and self.is_training():
            self._cancel_training.set()
            self.cancel_button.setEnabled(False)
            self.status_label.setText("Cancelling after this iteration…")

    def _on_training_event(self, event: object) -> None:
        if isinstance(event, subprocess.Popen):
            self._child = event
        elif isinstance(event, RunStarted):
            self.progress.setMaximum(max(1, event.epochs * event.iterations_per_epoch))
            self.status_label.setText(
                f"Training on {event.device}: {event.train_images} training and "
                f"{event.val_images} validation images"
            )
        elif isinstance(event, IterationEnded):
            self.progress.setMaximum(max(1, event.total_iterations))
            self.progress.setValue(event.iteration)
            self.progress.setFormat(f"%p% — ETA {format_duration(event.eta_s)}")
            self.loss_plot.append(event.iteration, event.loss)
            self.status_label.setText(
                f"Epoch {event.epoch} · iteration {event.iteration}/{event.total_iterations} · "
                f"loss {event.loss:.3f} · {event.images_per_s:.1f} images/s"
            )
        elif isinstance(event, EpochEnded):
            value = event.metrics.get("map")
            if value is not None:
                self.map_plot.append(event.epoch, float(value))

    def _on_training_done(self, result: RunFinished) -> None:
        self.last_result = result
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        checkpoint = result.best_checkpoint or result.last_checkpoint
        if checkpoint:
            self.session.set_checkpoint(Path(checkpoint))
        elapsed = format_duration(time.monotonic() - self._run_started_at)
        if result.status == "failed":
            self.status_label.setText(f"Failed after {elapsed}: {result.message}")
            show_error(f"Training failed: {result.message} (run folder kept: {result.run_dir})")
        elif result.status == "cancelled":
            self.status_label.setText(f"Cancelled after {elapsed}; last checkpoint kept")
            show_info(f"Training cancelled; checkpoint kept in {result.run_dir}")
        else:
            self.progress.setValue(self.progress.maximum())
            best = f", best mAP {result.best_metric:.3f}" if result.best_metric is not None else ""
            self.status_label.setText(f"Done in {elapsed}{best}: {result.message}")
            show_info(f"Training {result.status}{best}; checkpoints in {result.run_dir}")

    def _on_training_error(self, error: BaseException, trace: str) -> None:
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        where = (
            f" (run folder kept: {self.run_dir})" if self.run_dir and self.run_dir.exists() else ""
        )
        self.status_label.setText(f"Failed: {error}")
        if isinstance(error, DetlabError):  # inputs refused before anything was written
            show_error(f"Cannot train: {error}{where}")
        else:
            show_error(f"Training stopped: {type(error).__name__}: {error}{where}")
            logger.error("training thread crashed:\n%s", trace)

    # -- prediction -------------------------------------------------------------------------
    def predict_current_image(self) -> bool:
        image = self.session.image_path
        if image is None:
            show_info("Open an image in the Annotator first")
            return False
        return self.predict([image], predictions_dir_of(image.parent))

    def predict_dataset(self) -> bool:
        dataset = self.dataset
        if dataset is None or not dataset.is_dir():
            show_error("Choose a dataset folder first")
            return False
        return self.predict(dataset, predictions_dir_of(dataset))

    def predict_folder(self, folder: Path) -> bool:
        """Predict a folder of new images into ``folder/predictions``; opens it for review."""
        return self.predict(folder, predictions_dir_of(folder), open_folder=Path(folder))

    def is_predicting(self) -> bool:
        return self.predict_job is not None and self.predict_job.is_running()

    def predict(
        self, images: Path | list[Path], output_dir: Path, *, open_folder: Path | None = None
    ) -> bool:
        """Predict ``images`` (a folder or image paths) with the chosen checkpoint, in the
        background, writing ``output_dir/<stem>.pt``; ``False`` if refused."""
        from napari_detlab.core.model.predict import SkippedImage, predict_folder

        if self.is_predicting():
            show_info("A prediction is already running")
            return False
        text = self.checkpoint_edit.text().strip()
        checkpoint = Path(text).expanduser() if text else None
        if checkpoint is None or not checkpoint.is_file():
            show_error("Choose a checkpoint first (train a model, or pick a best.pt / last.pt)")
            return False
        device = self.device_combo.currentText()
        cancel = self._cancel_prediction = threading.Event()
        skipped: list[SkippedImage] = []

        def run(post: Callable[[object], None]) -> list[Path]:
            return predict_folder(
                checkpoint, images, output_dir, device=device, cancel=cancel, skipped=skipped,
                on_progress=lambda done, total, _path: post((done, total)),
            )  # fmt: skip

        def done(written: list[Path]) -> None:
            self._set_predicting(False)
            self.predicted = written
            self.predict_progress.setValue(self.predict_progress.maximum())
            if skipped:
                show_warning(
                    f"{len(skipped)} image(s) could not be read, e.g. {skipped[0].path.name}: "
                    f"{skipped[0].reason}"
                )
            show_info(f"{len(written)} prediction file(s) written to {output_dir}")
            self.session.set_checkpoint(checkpoint)
            self._show_predictions(output_dir, open_folder)

        def failed(error: BaseException, trace: str) -> None:
            self._set_predicting(False)
            show_error(f"Prediction failed: {error}")
            if not isinstance(error, DetlabError):
                logger.error("prediction thread crashed:\n%s", trace)

        self.predict_progress.setValue(0)
        self.predict_job = _Job(
            self, run, self._on_prediction_progress, done, failed, "detlab-predict"
        )
        self._set_predicting(True)
        self.predict_job.start()
        return True

    def cancel_prediction(self) -> None:
        if self._cancel_prediction is not None:
            self._cancel_prediction.set()

    def _on_prediction_progress(self, item: object) -> None:
        done, total = item  # type: ignore[misc]
        self.predict_progress.setMaximum(max(1, total))
        self.predict_progress.setValue(done)

    def _set_predicting(self, running: bool) -> None:
        """One prediction at a time: its Cancel is enabled only while it runs."""
        for button in (
            self.predict_image_button,
            self.predict_dataset_button,
            self.predict_folder_button,
        ):
            button.setEnabled(not running)
        self.predict_cancel_button.setEnabled(running)

    def _show_predictions(self, output_dir: Path, open_folder: Path | None) -> None:
        """Make the predictions visible: the new folder in the Annotator, and a Review dock.

        The Review dock is opened through napari's plugin menu when none is listening; it
        learns the predictions folder from the session when it joins.
        """
        if open_folder is not None and not self.session.request_open_folder(open_folder):
            show_info(f"Open {open_folder} in the Annotator to review its predictions")
        self.session.set_predictions(output_dir)
        if not self.session.listens("predictions_changed"):
            self.viewer.window.add_plugin_dock_widget("napari-detlab", "Review predictions")

    # -- helpers ----------------------------------------------------------------------------
    def teardown(self) -> None:
        """Stop background work and leave the session (the dock is closing)."""
        if self._cancel_training is not None:
            self._cancel_training.set()
        if self._child is not None:
            stop_child(self._child)  # now: the relay thread may not outlive the app
        if self._cancel_prediction is not None:
            self._cancel_prediction.set()
