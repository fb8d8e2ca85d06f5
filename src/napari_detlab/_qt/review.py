"""The review panel: score and NMS sliders acting together, live, on the image on screen.

The model wrote every box above a low score floor to ``predictions/<stem>.pt``; this panel
re-filters them with :func:`~napari_detlab.core.evaluation.review.filter_predictions` on each slider
move, matches the survivors to the image's ground truth and colours them: true positives,
false positives and missed ground-truth boxes each in their own colour, with "label score"
beside each box. Accepted predictions become the image's annotations, for the Annotator to
correct.

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

import contextlib
import math
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from napari.layers.utils.color_encoding import NominalColorEncoding
from napari.utils.colormaps.categorical_colormap import CategoricalColormap
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QDockWidget,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from napari_detlab._layers import REVIEW_CAPTIONS_LAYER, REVIEW_OUTLINES_LAYER
from napari_detlab._qt.jobs import LatestJobs
from napari_detlab._qt.lifecycle import follow_dock_visibility
from napari_detlab._qt.napari_internals import dims_updater, limit_vectors_thumbnail
from napari_detlab._qt.session import session_for
from napari_detlab._qt.shader_reuse import reuse_mesh_shaders
from napari_detlab.core.annotations.file_cache import FileCache, file_stamp
from napari_detlab.core.annotations.store import (
    AnnotationStore,
    ImageAnnotation,
    sanitize_boxes,
)
from napari_detlab.core.boxes import box_iou, box_segments, xyxy_to_napari
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.evaluation.dataset_review import FolderReview, review_prediction_folder
from napari_detlab.core.evaluation.review import (
    Counts,
    Match,
    ReviewThresholds,
    filter_predictions,
    label_ids,
    match_predictions,
)
from napari_detlab.core.model.predict import Prediction, load_prediction

if TYPE_CHECKING:
    import napari
    from napari.layers import Points, Vectors

__all__ = [
    "STATUS_COLORS",
    "ReviewWidget",
]

# True positive, false positive, missed ground truth, and predictions on an image nobody has
# annotated (nothing to compare with).
STATUS_COLORS = {
    "tp": "#2ecc40",
    "fp": "#ff4136",
    "missed": "#ffdc00",
    "unchecked": "#39cccc",
}
_STATUS_RGBA = {
    name: np.array([int(c[i : i + 2], 16) / 255 for i in (1, 3, 5)] + [1.0])
    for name, c in STATUS_COLORS.items()
}
# Accepting a prediction that repeats a box the image already has would duplicate it.
_DUPLICATE_IOU = 0.9
_DATASET_METRICS_DELAY_MS = 300
_UNREAD = object()  # the ground truth's file stamp before the first read


def _fraction(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.2f}"


def _map_text(metrics: dict[str, Any]) -> str:
    nan = float("nan")
    return (
        f"mAP@.5 {_fraction(metrics.get('map_50', nan))}, "
        f"mAP@[.5:.95] {_fraction(metrics.get('map', nan))}"
    )


def _counts_text(counts: Counts) -> str:
    return (
        f"{counts.tp} TP · {counts.fp} FP · {counts.missed} missed — "
        f"precision {_fraction(counts.precision)}, recall {_fraction(counts.recall)}"
    )


class _ImagePredictions:
    """One image's raw predictions with what every slider step reuses, computed once."""

    def __init__(self, prediction: Prediction) -> None:
        self.prediction = prediction
        self.boxes = prediction.boxes
        self.scores = prediction.scores
        self.labels = np.asarray(prediction.labels, dtype=str)
        self.label_ids = label_ids(self.labels)
        self.segments = box_segments(self.boxes)
        self.corners = xyxy_to_napari(self.boxes)[:, 0, :]  # top-left (row, col)
        self.captions = np.array(
            [f"{label} {score:.2f}" for label, score in zip(self.labels, self.scores, strict=True)],
            dtype=object,
        )

    def __len__(self) -> int:
        return len(self.scores)


class ReviewWidget(QWidget):
    """Tune the score threshold and NMS IoU live, see TP / FP / misses, accept predictions.

    Parameters
    ----------
    napari_viewer
        The viewer; the image on screen and the dataset come from its
        :func:`~napari_detlab._qt.session.session_for` session (the Annotator sets them).

    Attributes
    ----------
    kept
        Indices into the raw predictions of the image that pass both filters, best first;
        row ``i`` of the ``review: predictions`` layer is prediction ``kept[i]`` (for the
        first ``max_labels``).
    match
        How the kept predictions meet the ground truth (``None`` when the image has no
        annotation file).
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
        self.current: _ImagePredictions | None = None
        self.ground_truth: ImageAnnotation | None = None
        self.kept = np.zeros(0, dtype=np.int64)
        self.match: Match | None = None
        self.dataset_review = None
        self._ground_truth_stamp: object = _UNREAD
        self._file_cache = FileCache()
        self._jobs = LatestJobs(on_error=self._metrics_failed)
        self._shown = True  # False while the dock's tab is behind another
        self._metrics_stale = False  # figures put off while hidden
        self._dock: QDockWidget | None = None
        QTimer.singleShot(0, self._follow_dock)  # napari docks the widget after __init__
        self._box_layer: Vectors | None = None
        self._label_layer: Points | None = None
        self._drawn: tuple | None = None  # what the layers show, to skip identical redraws
        self._loads = 0  # counts prediction / ground-truth loads, part of that key
        self._dims_synced = -1  # the load the viewer's dimensions were last updated for
        self._build_ui()
        self._metrics_timer = QTimer(self)
        self._metrics_timer.setSingleShot(True)
        self._metrics_timer.setInterval(_DATASET_METRICS_DELAY_MS)
        self._metrics_timer.timeout.connect(self.refresh_dataset_metrics)
        for slider in (self.score_slider, self.nms_slider):
            slider.sliderReleased.connect(self._schedule_dataset_metrics)
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
        self.score_slider = self._slider(0.0, 1.0, 0.5)
        self.nms_slider = self._slider(0.05, 1.0, 0.5)
        self.nms_slider.setToolTip("Boxes overlapping a better one by more than this go; 1 = off")
        self.class_agnostic_check = QCheckBox("Class-agnostic NMS (boxes of any class compete)")
        self.class_agnostic_check.toggled.connect(self.update_view)
        self.match_iou_spin = QDoubleSpinBox()
        self.match_iou_spin.setRange(0.05, 0.95)
        self.match_iou_spin.setSingleStep(0.05)
        self.match_iou_spin.setValue(0.5)
        self.match_iou_spin.setToolTip("A prediction is a true positive above this IoU")
        self.match_iou_spin.valueChanged.connect(self.update_view)
        self.image_label = QLabel()
        self.image_label.setWordWrap(True)
        self.image_map_label = QLabel("–")
        self.image_map_label.setToolTip("COCO mAP of this image, updated when a slider is released")
        self.dataset_label = QLabel()
        self.dataset_label.setWordWrap(True)
        self.legend_label = QLabel(
            " ".join(
                f'<span style="color:{STATUS_COLORS[key]}">■</span> {text}'
                for key, text in (
                    ("tp", "true positive"),
                    ("fp", "false positive"),
                    ("missed", "missed"),
                    ("unchecked", "not annotated"),
                )
            )
        )
        self.accept_selected_button = QPushButton("Accept selected")
        self.accept_selected_button.setToolTip(
            f"Select boxes by their corner dots in the '{REVIEW_CAPTIONS_LAYER}' layer "
            f"(the best {self.max_labels} shown have one)"
        )
        self.accept_selected_button.clicked.connect(self.accept_selected)
        self.accept_all_button = QPushButton("Accept all shown")
        self.accept_all_button.clicked.connect(self.accept_all)

        form = QFormLayout()
        form.addRow("Score ≥", self.score_slider)
        form.addRow("NMS IoU", self.nms_slider)
        form.addRow("", self.class_agnostic_check)
        form.addRow("Match IoU", self.match_iou_spin)
        buttons = QHBoxLayout()
        buttons.addWidget(self.accept_selected_button)
        buttons.addWidget(self.accept_all_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.source_label)
        layout.addLayout(form)
        layout.addWidget(self.legend_label)
        layout.addWidget(QLabel("<b>This image</b>"))
        layout.addWidget(self.image_label)
        layout.addWidget(self.image_map_label)
        layout.addWidget(QLabel("<b>Dataset</b> (images with predictions and annotations)"))
        layout.addWidget(self.dataset_label)
        layout.addLayout(buttons)
        layout.addStretch(1)

    def _slider(self, low: float, high: float, value: float) -> QLabeledDoubleSlider:
        slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        slider.setRange(low, high)
        slider.setSingleStep(0.01)
        slider.setDecimals(2)
        slider.setValue(value)
        # Tracking on: valueChanged fires while dragging, so the view follows the hand.
        slider.setTracking(True)
        slider.valueChanged.connect(self.update_view)
        return slider

    @property
    def score_threshold(self) -> float:
        return float(self.score_slider.value())

    @property
    def nms_iou(self) -> float:
        return float(self.nms_slider.value())

    @property
    def class_agnostic(self) -> bool:
        return self.class_agnostic_check.isChecked()

    @property
    def match_iou(self) -> float:
        return float(self.match_iou_spin.value())

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
            self._ground_truth_stamp = _UNREAD  # force a re-read
            self.update_view()
        self._schedule_dataset_metrics()

    # -- loading ---------------------------------------------------------------------------
    def prediction_path(self, image: Path) -> Path | None:
        return None if self.predictions_dir is None else self.predictions_dir / f"{image.stem}.pt"

    def show_image(self, image: str | Path) -> None:
        """Show the predictions of ``image`` at the current slider settings."""
        self.image_path = Path(image)
        if self.store is None and self.session.store is not None:
            self._on_dataset_changed(self.session.store)
        self.current = None
        self._ground_truth_stamp = _UNREAD
        self._loads += 1
        path = self.prediction_path(self.image_path)
        if path is None or not path.is_file():
            self.source_label.setText(
                f"No predictions for {self.image_path.name}: predict it in the Train / predict dock"
            )
        else:
            try:
                prediction = self._file_cache.get(path, load_prediction)
            except DetlabError as error:
                show_error(str(error))
                prediction = None
            if prediction is not None:
                self.current = _ImagePredictions(prediction)
                floor = prediction.score_floor
                nms = prediction.model_nms_thresh
                self.source_label.setText(
                    f"{len(self.current)} raw predictions for {self.image_path.name}"
                    + (f" (model score floor {floor:.2f}" if floor is not None else " (")
                    + (f", model NMS {nms:.2f} per class)" if nms is not None else ")")
                )
        self.update_view()

    def _refresh_ground_truth(self) -> None:
        """Re-read the image's annotation if its file changed (the Annotator autosaves)."""
        if self.store is None or self.image_path is None:
            self.ground_truth = None
            return
        path = self.store.path_for(self.image_path)
        try:
            stamp = file_stamp(path) if path.is_file() else None
        except OSError:
            stamp = None
        if stamp == self._ground_truth_stamp:
            return
        self._ground_truth_stamp = stamp
        self._loads += 1
        try:
            self.ground_truth = self.store.load(self.image_path) if stamp is not None else None
        except DetlabError as error:
            show_error(str(error))
            self.ground_truth = None

    # -- the live update --------------------------------------------------------------------
    def update_view(self, *_args: object) -> None:
        """Filter, match and redraw: what every slider step runs."""
        current = self.current
        if current is None:
            self.kept = np.zeros(0, dtype=np.int64)
            self.match = None
            self._draw(np.zeros((0, 2, 2)), np.zeros((0, 4)), np.zeros((0, 2)), [], [])
            self._drawn = None
            self.image_label.setText("–")
            self._schedule_dataset_metrics()
            return
        self.kept = kept = filter_predictions(
            current.boxes,
            current.scores,
            current.label_ids,
            score_threshold=self.score_threshold,
            nms_iou=self.nms_iou,
            class_agnostic=self.class_agnostic,
        )
        self._refresh_ground_truth()
        truth = self.ground_truth
        segments = [current.segments[(kept[:, None] * 4 + np.arange(4)).ravel()]]
        if truth is None:
            self.match = None
            status = np.full(len(kept), "unchecked", dtype=object)
            missed: list[str] = []
            missed_key = b""
            self.image_label.setText(
                f"{len(kept)} predictions shown; no annotation to compare with"
            )
        else:
            self.match = match_predictions(
                current.boxes[kept],
                current.labels[kept],
                current.scores[kept],
                truth.boxes,
                truth.labels,
                iou_threshold=self.match_iou,
            )
            status = np.where(self.match.is_tp, "tp", "fp").astype(object)
            segments.append(box_segments(truth.boxes[self.match.missed_gt]))
            missed = ["missed"] * len(self.match.missed_gt)
            missed_key = self.match.missed_gt.tobytes()
            self.image_label.setText(_counts_text(self.match.counts))
        edge_colors = np.repeat(
            np.array([_STATUS_RGBA[s] for s in [*status, *missed]]).reshape(-1, 4), 4, axis=0
        )
        captioned = kept[: self.max_labels]  # kept is best first
        # Many slider steps change nothing on screen (e.g. NMS looser than the model's own):
        # the layers are only refilled when what they would show differs.
        drawn = (self._loads, kept.tobytes(), tuple(status), missed_key)
        layers_there = self._box_layer in self.viewer.layers and (
            self._label_layer in self.viewer.layers
        )
        if drawn != self._drawn or not layers_there:
            self._drawn = drawn
            self._draw(
                np.concatenate(segments),
                edge_colors,
                current.corners[kept],
                list(current.captions[captioned]),
                list(status[: len(captioned)]),
            )
        self._schedule_dataset_metrics()

    def _draw(
        self,
        segments: np.ndarray,
        edge_colors: np.ndarray,
        corners: np.ndarray,
        captions: list[str],
        caption_status: list[str],
    ) -> None:
        """Refill the two review layers, one array assignment each (no per-box objects).

        Every data assignment makes the viewer recompute its dimensions from all layers
        (twice for Points); the review layers never reach beyond their image, so that is
        done once per image instead of three times per slider step.
        """
        if not self._shown:  # behind another tab the overlay is hidden: redrawn when shown
            self._drawn = None
            return
        outlines, handles = self._layers()
        recompute_dims = dims_updater(self.viewer)
        with contextlib.ExitStack() as stack:
            if recompute_dims is not None:
                for layer in (outlines, handles):
                    stack.enter_context(layer.events.data.blocker(recompute_dims))
            outlines.data = segments
            if len(segments):
                outlines.edge_color = edge_colors
            if handles.selected_data:
                handles.selected_data = set()
            handles.data = corners[: len(captions)]
            handles.features = pd.DataFrame({"caption": captions, "status": caption_status})
        if recompute_dims is not None and self._dims_synced != self._loads:
            self._dims_synced = self._loads
            recompute_dims()

    def _layers(self) -> tuple[Vectors, Points]:
        """The review layers, created on first use (or again if the user deleted one)."""
        layers = self.viewer.layers
        active = layers.selection.active
        if self._box_layer is None or self._box_layer not in layers:
            self._box_layer = self.viewer.add_vectors(
                np.zeros((0, 2, 2)),
                name=REVIEW_OUTLINES_LAYER,
                edge_width=2,
                length=1,
                vector_style="line",
                opacity=1.0,
            )
            # The thumbnail is drawn vector by vector in Python: with 4,000 segments that is
            # half of a slider step (bench_review: p95 94 ms with a sample, 175 ms without).
            # napari has no public setting for it; if the private one goes, only speed is lost.
            limit_vectors_thumbnail(self._box_layer, 32)
            reuse_mesh_shaders(self.viewer, self._box_layer)  # no recompile per slider step
        if self._label_layer is None or self._label_layer not in layers:
            self._label_layer = self.viewer.add_points(
                np.zeros((0, 2)),
                name=REVIEW_CAPTIONS_LAYER,
                size=6,
                border_width=0,
                face_color="white",
                features=pd.DataFrame(
                    {"caption": pd.Series([], dtype=object), "status": pd.Series([], dtype=object)}
                ),
                # New rows get these until the features of the update arrive a moment later.
                feature_defaults={"caption": "", "status": "unchecked"},
                text={
                    "string": "{caption}",
                    "size": 9,
                    "anchor": "upper_left",
                    "color": NominalColorEncoding(
                        feature="status", colormap=CategoricalColormap(colormap=STATUS_COLORS)
                    ),
                },
            )
        # Adding a layer selects it; give the selection back so the Annotator keeps drawing
        # in its class layer.
        if active is not None and active in layers and layers.selection.active is not active:
            layers.selection.active = active
        return self._box_layer, self._label_layer

    @property
    def box_layer(self) -> Vectors:
        """Outlines of the kept predictions (then of the missed ground truth), 4 vectors each."""
        return self._layers()[0]

    @property
    def label_layer(self) -> Points:
        """A selectable dot with "label score" at the top-left corner of each of the best
        ``max_labels`` kept predictions; row ``i`` is prediction ``kept[i]``."""
        return self._layers()[1]

    # -- dataset figures ---------------------------------------------------------------------
    def _schedule_dataset_metrics(self, *_args: object) -> None:
        """Recompute the dataset figures shortly after the last change, never mid-drag.

        COCO evaluation takes tens of milliseconds per image: running it while a slider is
        held would make the drag stutter, so it waits for the release (or a pause in typed or
        toggled changes).
        """
        if self.score_slider.isSliderDown() or self.nms_slider.isSliderDown():
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
            return
        if not self._shown:
            self._metrics_stale = True
            return
        score = partial(
            review_prediction_folder,
            current_stem=None if self.image_path is None else self.image_path.stem,
        )
        thresholds = ReviewThresholds(
            self.score_threshold, self.nms_iou, self.class_agnostic, self.match_iou
        )
        self._jobs.start(
            "metrics", score, self.predictions_dir, self.store, self._file_cache, thresholds,
            on_done=self._show_dataset_metrics,
        )  # fmt: skip

    def _show_dataset_metrics(self, figures: FolderReview) -> None:
        self.dataset_review = figures.dataset
        self.image_map_label.setText(
            "–" if figures.image is None else _map_text(figures.image.metrics)
        )
        if figures.dataset is None:
            self.dataset_label.setText("No annotated image has predictions yet")
            return
        counts = _counts_text(figures.dataset.counts)
        self.dataset_label.setText(
            f"{figures.images} images: {counts}<br>{_map_text(figures.dataset.metrics)}"
        )

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
        for layer in (self._box_layer, self._label_layer):
            if layer is not None and layer in self.viewer.layers:
                layer.visible = shown
        if shown:
            self._metrics_stale = False
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
        image already has (IoU >= 0.9) is not added twice.
        """
        current, image = self.current, self.image_path
        if current is None or image is None or self.store is None or len(indices) == 0:
            show_info("No predictions to accept")
            return 0
        self.session.request_flush()  # unsaved edits first: the reload below would drop them
        try:
            existing = self.store.load(image) or ImageAnnotation()
        except DetlabError as error:
            show_error(str(error))
            return 0
        size = existing.image_size or current.prediction.image_size
        boxes, valid = sanitize_boxes(current.boxes[indices], size)
        labels = current.labels[indices]
        overlap = box_iou(boxes, existing.boxes)
        same_label = labels[:, None] == np.asarray(existing.labels, dtype=str)[None, :]
        duplicate = ((overlap >= _DUPLICATE_IOU) & same_label).any(axis=1)
        new = valid & ~duplicate
        merged = ImageAnnotation(
            boxes=np.concatenate([existing.boxes, boxes[new]]).astype(np.float32),
            labels=list(existing.labels) + [str(label) for label in labels[new]],
            reviewed=True,
            image_size=size,
        )
        try:
            self.store.save(image, merged)
        except (OSError, DetlabError) as error:
            show_error(f"Could not save the accepted boxes of {image.name}: {error}")
            return 0
        added = int(new.sum())
        show_info(
            f"{added} prediction(s) added to {image.name}"
            + (f" ({int((valid & duplicate).sum())} already there)" if duplicate.any() else "")
        )
        self._ground_truth_stamp = _UNREAD
        self.session.annotations_changed.emit(image)
        self.update_view()
        return added

    # -- teardown ---------------------------------------------------------------------------
    def teardown(self) -> None:
        """Stop the pending dataset figures (the dock is closing; the session disconnects it)."""
        self._metrics_timer.stop()
        self._jobs.outdate_all()
