"""The review panel: score and NMS sliders acting together, live, on the image on screen.

The model wrote every box above a low score floor to ``predictions/<stem>.pt``; on each slider
move this panel reviews them again with
:func:`~napari_detlab.core.evaluation.image_review.review_image` (filter, then match to the
image's ground truth) and colours them: true positives, false positives and missed
ground-truth boxes each in their own colour, with "label score" beside each box. Accepted
predictions become the image's annotations
(:func:`~napari_detlab.core.evaluation.image_review.merge_predictions`), for the Annotator to
correct. The rules live in the core; this widget draws, and runs the slow figures in a worker.

Why not a Shapes layer
----------------------
napari's Shapes layer triangulates every shape in Python (about half a millisecond per
rectangle) and has no per-shape visibility mask, so rebuilding it on every slider step costs
most of a second at 1,000 predictions. Outlines are drawn here instead as one Vectors layer
(four segments per box, built by numpy and set in one array assignment), and the captions as
one Points layer with a dot at the top-left corner of each box, which can be selected to
accept boxes one by one. vispy lays text out in Python, string by string (even an empty one),
so that layer holds only the ``max_labels`` best kept boxes; "Accept all shown" takes every
kept box. The dataset's COCO mAP (tens of milliseconds per image) is recomputed when the
slider is released, never during a drag. ``benchmarks/bench_review.py`` times the update.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QDockWidget, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from napari_detlab._layers import REVIEW_CAPTIONS_LAYER
from napari_detlab._qt.jobs import LatestJobs
from napari_detlab._qt.lifecycle import follow_dock_visibility
from napari_detlab._qt.plugin_settings import remember_all, values
from napari_detlab._qt.review_layers import STATUS_COLORS, ReviewLayers
from napari_detlab._qt.session import session_for
from napari_detlab._qt.widgets.batch_accept_panel import BatchAcceptPanel
from napari_detlab._qt.widgets.split_figures_panel import SplitFiguresPanel
from napari_detlab._qt.widgets.threshold_controls import ThresholdControls
from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.file_cache import FileCache
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.evaluation.dataset_review import (
    DatasetReview,
    FolderReview,
    review_prediction_folder,
)
from napari_detlab.core.evaluation.image_review import (
    STATUSES,
    ImagePredictions,
    ImageReview,
    ReviewOverlay,
    merge_predictions,
    review_image,
    review_overlay,
)
from napari_detlab.core.evaluation.review import Match, ReviewThresholds, map_text
from napari_detlab.core.model.predict import load_prediction

if TYPE_CHECKING:
    import napari
    from napari.layers import Points, Vectors

__all__ = ["ReviewWidget"]

_DATASET_METRICS_DELAY_MS = 300
SETTINGS = "review"  # the manifest's settings category of this dock


class ReviewWidget(QWidget):
    """Tune the score threshold and NMS IoU live, see TP / FP / misses, accept predictions.

    Parameters
    ----------
    napari_viewer
        The viewer; the image on screen and the dataset come from its
        :func:`~napari_detlab._qt.session.session_for` session (the Annotator sets them).

    Attributes
    ----------
    controls
        The four settings; ``score_slider`` and ``nms_slider`` are its sliders.
    review
        The image on screen at the current settings (kept predictions, their status, misses).
    current
        The image's raw predictions (``None`` when it has none).
    ground_truth
        Its annotation (``None`` when it has none).
    max_labels
        At most this many captions (best scores first): vispy lays text out in Python.
    """

    max_labels = 100

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.store: AnnotationStore | None = None
        self.predictions_dir: Path | None = None
        self.image_path: Path | None = None
        self.current: ImagePredictions | None = None
        self.ground_truth: ImageAnnotation | None = None
        self.review = ImageReview.empty()
        self.dataset_review: DatasetReview | None = None
        self._file_cache = FileCache()  # predictions and annotations, shared with the worker
        self._reported: str | None = None  # the broken annotation file last reported
        self._jobs = LatestJobs(on_error=self._metrics_failed)
        self._shown = True  # False while the dock's tab is behind another
        self._dock: QDockWidget | None = None
        QTimer.singleShot(0, self._follow_dock)  # napari docks the widget after __init__
        self._layers = ReviewLayers(napari_viewer)
        self._drawn: tuple | None = None  # what the layers show, to skip identical redraws
        self._loads = 0  # counts prediction / ground-truth loads, part of that key
        self._build_ui()
        self._metrics_timer = QTimer(self)
        self._metrics_timer.setSingleShot(True)
        self._metrics_timer.setInterval(_DATASET_METRICS_DELAY_MS)
        self._metrics_timer.timeout.connect(self.refresh_dataset_metrics)
        self.controls.changed.connect(self.update_view)
        self.controls.released.connect(self._schedule_dataset_metrics)
        self.controls.changed.connect(self._remember_thresholds)
        self.controls.released.connect(self._remember_thresholds)
        self.session.attach(
            self,
            teardown=self.teardown,
            dataset_changed=self._on_dataset_changed,
            image_changed=self._on_image_changed,
            predictions_changed=self._on_predictions_changed,
            annotations_changed=self._on_annotations_changed,
            annotation_saved=self._on_annotations_changed,
        )

    # -- UI -------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.source_label = QLabel("No predictions yet: predict in the Train / predict dock")
        self.source_label.setWordWrap(True)
        self.controls = ThresholdControls(ReviewThresholds(**values(SETTINGS)))
        self.score_slider = self.controls.score_slider
        self.nms_slider = self.controls.nms_slider
        self.image_label = QLabel()
        self.image_label.setWordWrap(True)
        self.image_map_label = QLabel("–")
        self.image_map_label.setToolTip("COCO mAP of this image, updated when a slider is released")
        self.dataset_label = QLabel()
        self.dataset_label.setWordWrap(True)
        legend = QLabel(
            " ".join(
                f'<span style="color:{STATUS_COLORS[key]}">■</span> {text}'
                for key, text in zip(
                    STATUSES, ("true positive", "false positive", "missed", "not annotated"),
                    strict=True,
                )
            )
        )  # fmt: skip
        self.accept_selected_button = QPushButton("Accept selected")
        self.accept_selected_button.setToolTip(
            f"Select boxes by their corner dots in the '{REVIEW_CAPTIONS_LAYER}' layer "
            f"(the best {self.max_labels} shown have one)"
        )
        self.accept_selected_button.clicked.connect(self.accept_selected)
        self.accept_all_button = QPushButton("Accept all shown")
        self.accept_all_button.clicked.connect(self.accept_all)

        buttons = QHBoxLayout()
        buttons.addWidget(self.accept_selected_button)
        buttons.addWidget(self.accept_all_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.source_label)
        layout.addWidget(self.controls)
        layout.addWidget(legend)
        layout.addWidget(QLabel("<b>This image</b>"))
        layout.addWidget(self.image_label)
        layout.addWidget(self.image_map_label)
        layout.addWidget(QLabel("<b>Dataset</b> (images with predictions and annotations)"))
        layout.addWidget(self.dataset_label)
        self.split_figures = SplitFiguresPanel()
        self.split_figures.split_changed.connect(self._schedule_dataset_metrics)
        layout.addWidget(self.split_figures)
        layout.addLayout(buttons)
        self.batch = BatchAcceptPanel(
            self.session, lambda: self.thresholds, lambda: self.predictions_dir
        )
        layout.addWidget(self.batch)
        layout.addStretch(1)

    def _remember_thresholds(self) -> None:
        """Keep the settings for the next napari start; a drag is saved once, when let go."""
        if not self.controls.dragging:
            remember_all(SETTINGS, dataclasses.asdict(self.thresholds))

    @property
    def thresholds(self) -> ReviewThresholds:
        """The settings the controls show."""
        return self.controls.thresholds

    @property
    def kept(self) -> np.ndarray:
        """Indices into the raw predictions that pass both filters, best first; row ``i`` of
        the captions layer is prediction ``kept[i]`` (for the first ``max_labels``)."""
        return self.review.kept

    @property
    def match(self) -> Match | None:
        """How the kept predictions meet the ground truth (``None`` without an annotation)."""
        return self.review.match

    # -- session ---------------------------------------------------------------------------
    def _on_dataset_changed(self, store: AnnotationStore | None) -> None:
        self.store = store
        self.predictions_dir = None if store is None else store.predictions_dir
        self._file_cache.clear()
        self.dataset_review = None
        self._schedule_dataset_metrics()

    def _on_image_changed(self, _index: int, path: Path) -> None:
        self.show_image(path)

    def _on_predictions_changed(self, pred_dir: Path | None) -> None:
        if pred_dir is not None:
            self.predictions_dir = Path(pred_dir)
        self._file_cache.clear()
        if self.image_path is not None:
            self.show_image(self.image_path)
        self._schedule_dataset_metrics()

    def _on_annotations_changed(self, path: Path | None) -> None:
        if (
            self.image_path is not None
            and path is not None
            and Path(path).stem == self.image_path.stem
        ):
            self.update_view()  # the file cache re-reads the rewritten annotation
        self._schedule_dataset_metrics()

    # -- loading ---------------------------------------------------------------------------
    def show_image(self, image: str | Path) -> None:
        """Show the predictions of ``image`` at the current slider settings."""
        self.image_path = Path(image)
        if self.store is None and self.session.store is not None:
            self._on_dataset_changed(self.session.store)
        self.current = None
        self._loads += 1
        folder = self.predictions_dir
        path = None if folder is None else folder / f"{self.image_path.stem}.pt"
        if path is None or not path.is_file():
            self.source_label.setText(
                f"No predictions for {self.image_path.name}: predict it in the Train / predict dock"
            )
        else:
            try:
                image = self.image_path  # a version-1 file is oriented like its image
                prediction = self._file_cache.get(path, lambda p: load_prediction(p, image))
            except DetlabError as error:
                show_error(str(error))
                prediction = None
            if prediction is not None:
                self.current = ImagePredictions(prediction)
                self.source_label.setText(self.current.describe(self.image_path.name))
        self.update_view()

    def _refresh_ground_truth(self) -> None:
        """Re-read the image's annotation if its file changed (the Annotator autosaves)."""
        truth = None
        if self.store is not None and self.image_path is not None:
            truth = self._file_cache.get(self.store.path_for(self.image_path), self._read_truth)
        if truth is not self.ground_truth:
            self.ground_truth = truth
            self._loads += 1

    def _read_truth(self, path: Path) -> ImageAnnotation | None:
        """A broken annotation file is reported once and scores as not annotated, as the
        worker leaves it out. The cache re-reads a file changed in the last seconds on every
        step (its stamp cannot be trusted yet), so the same error is not shown again."""
        try:
            truth = None if self.store is None else self.store.load(path.stem)
        except DetlabError as error:
            if str(error) != self._reported:
                show_error(str(error))
            self._reported = str(error)
            return None
        self._reported = None
        return truth

    # -- the live update --------------------------------------------------------------------
    def update_view(self, *_args: object) -> None:
        """Review and redraw: what every slider step runs."""
        current = self.current
        if current is None:
            self.review = ImageReview.empty()
            self._draw(ReviewOverlay.empty())
            self._drawn = None
            self.image_label.setText("–")
            self._schedule_dataset_metrics()
            return
        self._refresh_ground_truth()
        self.review = review = review_image(current, self.ground_truth, self.thresholds)
        self.image_label.setText(review.summary())
        # Many slider steps change nothing on screen (e.g. NMS looser than the model's own):
        # the layers are only refilled when what they would show differs.
        drawn = (self._loads, review.kept.tobytes(), tuple(review.status), review.missed.tobytes())
        if drawn != self._drawn or not self._layers.present:
            self._drawn = drawn
            self._draw(review_overlay(current, review, self.ground_truth, self.max_labels))
        self._schedule_dataset_metrics()

    def _draw(self, overlay: ReviewOverlay) -> None:
        if self._shown:
            self._layers.draw(overlay, self._loads)
        else:  # behind another tab the overlay is hidden: redrawn when shown
            self._drawn = None

    @property
    def box_layer(self) -> Vectors:
        """Outlines of the kept predictions (then of the missed ground truth), 4 vectors each."""
        return self._layers.get()[0]

    @property
    def label_layer(self) -> Points:
        """A selectable dot with "label score" at the top-left corner of each of the best
        ``max_labels`` kept predictions; row ``i`` is prediction ``kept[i]``."""
        return self._layers.get()[1]

    # -- dataset figures ---------------------------------------------------------------------
    def _schedule_dataset_metrics(self, *_args: object) -> None:
        """Recompute the dataset figures shortly after the last change, never mid-drag.

        COCO evaluation takes tens of milliseconds per image: running it while a slider is
        held would make the drag stutter, so it waits for the release (or a pause in typed or
        toggled changes).
        """
        if self.controls.dragging:
            return
        self.dataset_label.setText(
            self.dataset_label.text().split(" (updating")[0] + " (updating…)"
        )
        self._metrics_timer.start()

    def refresh_dataset_metrics(self) -> None:
        """Precision / recall / mAP over the dataset at the current thresholds.

        Scored in a worker thread (a few hundred images take about a second, which would
        freeze the viewer after every ``n``), and only while the tab is shown: behind the
        Annotator's tab the figures wait until someone looks.
        """
        if self.store is None or self.predictions_dir is None or not self.predictions_dir.is_dir():
            self.dataset_label.setText("–")
            self.split_figures.show_figures(None)
            return
        if not self._shown:
            return  # set_overlay_visible catches up when the tab is chosen
        score = partial(
            review_prediction_folder,
            current_stem=None if self.image_path is None else self.image_path.stem,
            split=self.split_figures.split_override,
        )
        self._jobs.start(
            "metrics", score, self.predictions_dir, self.store, self._file_cache, self.thresholds,
            on_done=self._show_dataset_metrics,
        )  # fmt: skip

    def _show_dataset_metrics(self, figures: FolderReview) -> None:
        self.dataset_review = figures.dataset
        self.image_map_label.setText(
            "–" if figures.image is None else map_text(figures.image.metrics)
        )
        note = figures.left_out_note()
        self.split_figures.show_figures(figures.figures)
        if figures.dataset is None:
            lines = ["No annotated image has predictions yet", note]
        else:
            lines = [figures.headline(), map_text(figures.dataset.metrics), note]
        self.dataset_label.setText("<br>".join(line for line in lines if line))

    def _metrics_failed(self, _kind: str, error: Exception) -> None:
        self.dataset_label.setText(f"Cannot evaluate: {error}")

    @property
    def busy(self) -> bool:
        """Whether dataset figures are pending or being computed (tests wait on it)."""
        return self._jobs.running or self._metrics_timer.isActive()

    def _follow_dock(self) -> None:
        if self._dock is None:
            self._dock = follow_dock_visibility(self, self.set_overlay_visible)

    def set_overlay_visible(self, shown: bool) -> None:
        """The tab was chosen or left: the overlay follows it, and catches up when shown.

        As with the AnchorViewer, predictions and their captions are drawn only while this
        dock is in view: behind the Annotator's tab they would clutter the image being
        annotated and cost every ``n`` a redraw (about 20 ms under software OpenGL).
        """
        self._shown = shown
        self._layers.set_visible(shown)
        if shown:
            self.update_view()  # redraws what changed meanwhile and schedules the figures

    # -- accept -----------------------------------------------------------------------------
    def accept_selected(self) -> int:
        """Accept the predictions whose corner dots are selected; returns how many were added."""
        layer = self.label_layer
        rows = sorted(int(i) for i in layer.selected_data if int(i) < len(self.kept))
        if not rows:
            show_info(f"Select predictions first (their corner dots in '{REVIEW_CAPTIONS_LAYER}')")
            return 0
        return self._accept(self.kept[rows])

    def accept_all(self) -> int:
        """Accept every prediction shown at the current thresholds."""
        return self._accept(self.kept)

    def _accept(self, indices: np.ndarray) -> int:
        """Merge predictions into the image's annotation, atomically, and tell the Annotator.

        The image becomes reviewed; a prediction repeating a box of the same class that the
        image already has is not added twice (the rule: ``merge_predictions``).
        """
        current, image, store = self.current, self.image_path, self.store
        if current is None or image is None or store is None or len(indices) == 0:
            show_info("No predictions to accept")
            return 0
        self.session.request_flush()  # unsaved edits first: the reload below would drop them
        try:
            existing = store.load(image)
        except DetlabError as error:
            show_error(str(error))
            return 0
        merged = merge_predictions(existing, current.prediction, indices)
        try:
            store.save(image, merged.annotation)
        except (OSError, DetlabError) as error:
            show_error(f"Could not save the accepted boxes of {image.name}: {error}")
            return 0
        show_info(
            f"{merged.added} prediction(s) added to {image.name}"
            + (f" ({merged.already_there} already there)" if merged.already_there else "")
        )
        self.session.annotations_changed.emit(image)
        self.update_view()
        return merged.added

    # -- teardown ---------------------------------------------------------------------------
    def teardown(self) -> None:
        """Stop the pending dataset figures (the dock is closing; the session disconnects it)."""
        self._metrics_timer.stop()
        self._jobs.outdate_all()
