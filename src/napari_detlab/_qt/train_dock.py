"""The train / predict dock: train a detector and predict images without leaving napari.

Training runs the ``detlab train`` CLI in a child process
(:func:`~napari_detlab.core.training.launch.train_in_subprocess`); a napari generator worker
relays its events as they arrive to a
:class:`~napari_detlab.core.training.progress.RunProgress`, which the
:class:`~napari_detlab._qt.widgets.train_form.TrainForm` draws (progress with ETA, loss and
validation-mAP curves). Prediction runs
:func:`~napari_detlab.core.model.predict.predict_folder` in another worker. Both show in
napari's activity dock, and the viewer stays usable meanwhile (the next images can be
annotated). A thread instead of a process cost the training loop most of its speed on a
2-core CPU (see ``benchmarks/bench_gui_training.py``).

Cancel sets a :class:`threading.Event`, relayed to the child as SIGINT, which the engine
checks every iteration; it writes ``last.pt`` before it returns, and its final event ends the
worker. napari lists running workers as tasks, so closing the window during a run asks first;
if the person agrees, napari quits the worker, which sets the same event: the run stops the
same clean way. Failures (bad data, a non-finite loss, out of memory) arrive as napari
notifications naming the run folder, which is kept.

The form's "Start from" row chooses where the weights start and says what the next run
starts from; its Download button fetches the weights the choice lacks (see
:mod:`~napari_detlab._qt.widgets.start_choice`). A choice whose file is missing is refused at
Start, before a run folder is made.

The predict box's "Tiles" choice (auto / on / off) is passed to ``predict_folder`` and
remembered with the training values. Predictions go to ``predictions/`` beside the images;
the session's ``predictions_changed`` tells the Review panel (docked here if it is not yet)
to show them as layers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QFileDialog, QVBoxLayout, QWidget

from napari_detlab._qt.jobs import start_worker
from napari_detlab._qt.plugin_settings import remember, remember_all, values
from napari_detlab._qt.session import session_for
from napari_detlab._qt.widgets.predict_panel import PredictPanel
from napari_detlab._qt.widgets.train_form import ANCHOR_VIEWER_CHOICE, TrainForm
from napari_detlab.core.annotations.store import AnnotationStore, predictions_dir_of
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.model.config import ModelConfig, resolve_model_config
from napari_detlab.core.model.crowded import CrowdedImage
from napari_detlab.core.model.predict import SkippedImage, collect_images, predict_folder
from napari_detlab.core.model.weights import required_weights_file
from napari_detlab.core.relay import relay
from napari_detlab.core.training.events import Event, RunFinished
from napari_detlab.core.training.launch import stop_child, train_in_subprocess, train_in_thread
from napari_detlab.core.training.options import TrainOptions
from napari_detlab.core.training.progress import Notice, RunProgress

if TYPE_CHECKING:
    import subprocess

    import napari
    from napari.qt.threading import WorkerBase

__all__ = ["TrainDockWidget"]

logger = logging.getLogger(__name__)
PredictStep = tuple[int, int, Path]  # images done, images in all, the last one
# How soon napari's quit (the window closing) reaches a run that has no event to yield.
_POLL_S = 0.25
_SHOW = {"info": show_info, "error": show_error}
# The classes of the config the "Start from" line describes: where weights start does not
# depend on them, and reading the dataset's would read every annotation file.
_ANY_CLASSES = ["object"]
SETTINGS = "training"  # the manifest's settings category of this dock


class TrainDockWidget(QWidget):
    """Train a detector on the Annotator's dataset and predict images, in the background.

    Parameters
    ----------
    napari_viewer
        The viewer; its :func:`~napari_detlab._qt.session.session_for` session gives the
        default dataset (the Annotator's), the AnchorViewer's config and the image on screen.

    Attributes
    ----------
    train_form, predict_panel
        The "Train" and "Predict" boxes.
    config_overrides, options_overrides
        Fields applied on top of the chosen config and of the training options at Start (for
        scripted use and tests, e.g. ``{"min_size": 128}`` and ``{"max_iterations": 4}``).
    last_result
        The :class:`~napari_detlab.core.training.events.RunFinished` of the last run.
    run_dir
        The folder of the current or last run.
    predicted
        The prediction files the last prediction wrote.
    use_subprocess
        Train in a child process running the ``detlab train`` CLI (the default: the GUI and
        the training loop never compete for the GIL); ``False`` runs the engine on a thread
        of this process instead, relayed the same way.
    """

    use_subprocess = True

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.config_overrides: dict[str, object] = {}
        self.options_overrides: dict[str, object] = {}
        self.last_result: RunFinished | None = None
        self.run_dir: Path | None = None
        self.predicted: list[Path] = []
        self._run: RunProgress | None = None
        self._train_worker: WorkerBase | None = None
        self._predict_worker: WorkerBase | None = None
        self._cancel_training: threading.Event | None = None
        self._cancel_prediction: threading.Event | None = None
        self._child: subprocess.Popen[str] | None = None  # the training process, once it runs

        self.train_form = TrainForm(lambda start: self.model_config(_ANY_CLASSES, start))
        self.train_form.start_button.clicked.connect(self.start_training)
        self.train_form.cancel_button.clicked.connect(self.cancel_training)
        self.train_form.restore(values(SETTINGS))  # what the person set before, last start
        self.train_form.choices_changed.connect(
            lambda: remember_all(SETTINGS, self.train_form.choices())
        )
        self.predict_panel = PredictPanel(checkpoint_start=lambda: str(self.dataset or ""))
        self.predict_panel.image_button.clicked.connect(self.predict_current_image)
        self.predict_panel.dataset_button.clicked.connect(self.predict_dataset)
        self.predict_panel.folder_button.clicked.connect(self._choose_predict_folder)
        self.predict_panel.cancel_button.clicked.connect(self.cancel_prediction)
        self.predict_panel.checkpoint_row.edit.textChanged.connect(self._checkpoint_typed)
        self.predict_panel.restore_tiling(values(SETTINGS).get("tiling"))
        self.predict_panel.tiling_changed.connect(partial(remember, SETTINGS, "tiling"))
        layout = QVBoxLayout(self)
        layout.addWidget(self.train_form)
        layout.addWidget(self.predict_panel)
        layout.addStretch(1)

        self.session.attach(
            self,
            teardown=self.teardown,
            dataset_changed=self._on_dataset_changed,
            config_changed=self._on_config_changed,
            checkpoint_changed=self._on_checkpoint_changed,
        )
        self.train_form.start_choice.refresh()

    # -- session ----------------------------------------------------------------------------
    def _on_dataset_changed(self, store: AnnotationStore | None) -> None:
        if store is not None:
            self.train_form.dataset_row.edit.setText(str(store.root))

    def _on_config_changed(self, _config: ModelConfig) -> None:
        self.train_form.offer_anchor_viewer_config()

    def _on_checkpoint_changed(self, checkpoint: Path) -> None:
        self.predict_panel.checkpoint_row.edit.setText(str(checkpoint))

    def _checkpoint_typed(self, _text: str) -> None:
        """A checkpoint chosen here (typed or browsed) is the session's: the Annotator's
        pre-labels come from it."""
        checkpoint = self.predict_panel.checkpoint_row.path()
        if (
            checkpoint is not None
            and checkpoint.is_file()
            and checkpoint != self.session.checkpoint
        ):
            self.session.set_checkpoint(checkpoint)

    @property
    def dataset(self) -> Path | None:
        return self.train_form.dataset_row.path()

    # -- training ---------------------------------------------------------------------------
    def model_config(self, classes: list[str], start: str | None = None) -> ModelConfig:
        """The config Start would train: the chosen preset or the AnchorViewer's, these
        classes, its weights starting from ``start`` (default: the form's choice)."""
        choice = self.train_form.config_combo.currentText()
        from_anchor_viewer = choice == ANCHOR_VIEWER_CHOICE and self.session.config is not None
        return resolve_model_config(
            classes,
            config=self.session.config if from_anchor_viewer else None,
            preset_name=None if from_anchor_viewer else choice,
            keep_config_classes=False,
            start=start or self.train_form.start_choice.start(),
            overrides=self.config_overrides,
        )

    def train_options(self) -> TrainOptions:
        """The options Start would train with: the form's values, then ``options_overrides``
        (an unknown name is refused, not silently ignored)."""
        values = {**self.train_form.option_values(), **self.options_overrides}
        return TrainOptions.from_dict(values).validate()

    def _store(self, dataset: Path) -> AnnotationStore:
        """The session's store when ``dataset`` is the open one (its answers are shared)."""
        store = self.session.store
        if store is not None and store.root.resolve() == dataset.resolve():
            return store
        return AnnotationStore(dataset)

    def is_training(self) -> bool:
        return self._train_worker is not None

    def start_training(self) -> bool:
        """Check the inputs, then train in the background; ``False`` if refused."""
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
        self.train_form.start_choice.refresh()  # weights may have landed from a terminal
        try:
            store = self._store(dataset)
            config = self.model_config(store.class_names())
            required_weights_file(config)  # a missing file is refused now, not in the run
            options = self.train_options()
        except (DetlabError, OSError) as error:
            show_error(f"Cannot train: {error}")
            return False
        self.run_dir = run_dir = store.new_run_dir()
        self.last_result = None
        self._run = RunProgress(run_dir)
        cancel = self._cancel_training = threading.Event()
        launch = train_in_subprocess if self.use_subprocess else train_in_thread
        child = {"on_start": self._child_started} if self.use_subprocess else {}
        events = partial(
            launch, dataset, run_dir, config, options, cancel=cancel, poll_s=_POLL_S, **child
        )
        self.train_form.start(self._run)
        self._train_worker = start_worker(
            events, description=f"Training {run_dir.name}", on_yield=self._on_training_event,
            on_done=self._on_training_done, on_error=self._on_training_error,
        )  # fmt: skip
        # napari's "cancel running tasks" (the window closing) quits the worker at its next
        # yield: the run then stops the clean way too, set from the worker's own thread, as
        # the GUI thread may be on its way out.
        self._train_worker.aborted.connect(cancel.set, Qt.ConnectionType.DirectConnection)
        return True

    def cancel_training(self) -> None:
        """Stop the run after the current iteration; the engine saves ``last.pt`` first.

        The worker runs on until the run's final event, so the dock can say how it ended.
        """
        if self._cancel_training is not None and self._run is not None and self.is_training():
            self._cancel_training.set()
            self._run.cancelling()
            self.train_form.show_run(self._run)
            self.train_form.cancel_button.setEnabled(False)

    def _child_started(self, child: subprocess.Popen[str]) -> None:
        """Called on the run's thread: remembered only so that closing the dock stops it."""
        self._child = child

    def _on_training_event(self, event: Event | None) -> None:
        if event is not None and self._run is not None:  # None: the relay's heartbeat
            self.train_form.show_run(self._run, self._run.update(event))

    def _on_training_done(self, result: RunFinished) -> None:
        assert self._run is not None
        notice = self._run.finish(result)
        self.last_result = result
        checkpoint = result.best_checkpoint or result.last_checkpoint
        if checkpoint:
            self.session.set_checkpoint(Path(checkpoint))
        self._training_ended(notice)

    def _on_training_error(self, error: Exception) -> None:
        assert self._run is not None
        if not isinstance(error, DetlabError):
            logger.error("the training stopped", exc_info=error)
        self._training_ended(self._run.fail(error))

    def _training_ended(self, notice: Notice) -> None:
        self._train_worker = None
        self.train_form.set_running(False)
        if self._run is not None:
            self.train_form.show_run(self._run)
        _SHOW[notice.level](notice.text)

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

    def _choose_predict_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of images to predict")
        if folder:
            self.predict_folder(Path(folder))

    def is_predicting(self) -> bool:
        return self._predict_worker is not None

    def predict(
        self, images: Path | list[Path], output_dir: Path, *, open_folder: Path | None = None
    ) -> bool:
        """Predict ``images`` (a folder or image paths) with the chosen checkpoint, in the
        background, writing ``output_dir/<stem>.pt``; ``False`` if refused."""
        if self.is_predicting():
            show_info("A prediction is already running")
            return False
        checkpoint = self.predict_panel.checkpoint_row.path()
        if checkpoint is None or not checkpoint.is_file():
            show_error("Choose a checkpoint first (train a model, or pick a best.pt / last.pt)")
            return False
        try:
            paths = collect_images(images)  # the count, for napari's progress bar
        except (DetlabError, OSError) as error:
            show_error(f"Prediction failed: {error}")
            return False
        cancel = self._cancel_prediction = threading.Event()
        skipped: list[SkippedImage] = []
        crowded: list[CrowdedImage] = []
        predict = partial(
            predict_folder, checkpoint, paths, output_dir,
            device=self.train_form.device_combo.currentText(), cancel=cancel, skipped=skipped,
            tiling=self.predict_panel.tiling(), crowded=crowded,
        )  # fmt: skip

        def run(post: Callable[[PredictStep], None]) -> list[Path]:
            return predict(on_progress=lambda done, total, path: post((done, total, path)))

        def steps() -> Generator[PredictStep | None, None, list[Path]]:
            return (yield from relay(run, on_close=cancel.set, name="detlab-predict"))

        def done(written: list[Path]) -> None:
            self._prediction_ended()
            self.predicted = written
            self.predict_panel.show_progress(len(paths), len(paths))
            if skipped:
                show_warning(  # the reason starts with the file's path
                    f"{len(skipped)} image(s) could not be read, e.g. {skipped[0].reason}"
                )
            if crowded:
                show_info(
                    f"{len(crowded)} image(s) held more confident objects than the model keeps "
                    f"per image and were predicted again with room for them, e.g. {crowded[0]}"
                )
            show_info(f"{len(written)} prediction file(s) written to {output_dir}")
            self.session.set_checkpoint(checkpoint)
            self._show_predictions(output_dir, open_folder)

        def failed(error: Exception) -> None:
            self._prediction_ended()
            show_error(f"Prediction failed: {error}")
            if not isinstance(error, DetlabError):
                logger.error("the prediction stopped", exc_info=error)

        self.predict_panel.show_progress(0, len(paths))
        self.predict_panel.set_running(True)
        self._predict_worker = start_worker(
            steps, description=f"Predicting {len(paths)} image(s)",
            on_yield=self._on_prediction_progress, on_done=done, on_error=failed,
        )  # fmt: skip
        return True

    def cancel_prediction(self) -> None:
        """Stop after the current batch; the files written so far are kept and shown."""
        if self._cancel_prediction is not None:
            self._cancel_prediction.set()

    def _on_prediction_progress(self, step: tuple[int, int, Path]) -> None:
        done, total, _path = step
        self.predict_panel.show_progress(done, total)

    def _prediction_ended(self) -> None:
        self._predict_worker = None
        self.predict_panel.set_running(False)

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

    # -- closing ----------------------------------------------------------------------------
    def teardown(self) -> None:
        """Stop background work (the dock is closing): each run stops its clean way."""
        for cancel in (self._cancel_training, self._cancel_prediction):
            if cancel is not None:
                cancel.set()
        self.train_form.start_choice.cancel_download()
        if self._child is not None:
            stop_child(self._child)  # now, not at the run's next look at its cancel event
