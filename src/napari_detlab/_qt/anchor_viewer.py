"""AnchorViewer dock: the config's real anchors over the image, against the ground truth.

What is shown and decided comes from the Qt-free core: the dock's model
(:class:`~napari_detlab.core.anchors.tuning.AnchorTuning`: the config being tuned, the image's
and the dataset's boxes, the last report and suggestion) over the anchor wing's layout,
coverage, report and fitting. The dock draws:

* anchor centres of the chosen level as a Points layer, and the anchors at the clicked (or,
  with "follow mouse", hovered) position as a Shapes layer, both in original-image pixels;
* the current image's ground-truth boxes coloured by their best anchor IoU (red below the
  background threshold, orange below the foreground one, green above);
* the dataset's figures, a histogram of best IoUs with the two thresholds, and a table of
  uncaught boxes that jumps to the image (through the Annotator when it is docked, else by
  loading the image here) and selects the box;
* "Suggest" fits anchors to the dataset and shows before/after; "Use these anchors" hands the
  config to the other docks through :meth:`DetlabSession.set_config`.

The overlay follows edits after a short debounce; dataset coverage runs in a worker thread,
and a result that arrives after the config changed again is dropped. Behind another dock's
tab, nothing is redrawn or measured until the tab is shown again.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QDockWidget, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from napari_detlab._layers import (
    ANCHOR_CENTRES_LAYER,
    ANCHOR_IMAGE_LAYER,
    ANCHOR_TRUTH_LAYER,
    ANCHORS_AT_POINT_LAYER,
)
from napari_detlab._qt.invisible_triangles import skip_invisible_triangles
from napari_detlab._qt.jobs import LatestJobs
from napari_detlab._qt.lifecycle import follow_dock_visibility
from napari_detlab._qt.session import session_for
from napari_detlab._qt.shader_reuse import reuse_mesh_shaders
from napari_detlab._qt.widgets.anchor_config_form import AnchorConfigForm
from napari_detlab._qt.widgets.iou_histogram import IouHistogram
from napari_detlab._qt.widgets.uncaught_table import UncaughtTable
from napari_detlab.core.anchors.dataset_boxes import DatasetBoxes
from napari_detlab.core.anchors.figures import UncaughtBox, zone_color
from napari_detlab.core.anchors.report import AnchorReport, anchor_report
from napari_detlab.core.anchors.suggest import AnchorSuggestion, suggest_anchors
from napari_detlab.core.anchors.tuning import AnchorFields, AnchorTuning
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.boxes import xyxy_to_napari
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.images import read_image
from napari_detlab.core.model.config import ConfigError, ModelConfig

if TYPE_CHECKING:
    from collections.abc import Callable

    import napari
    from napari.layers import Points, Shapes

__all__ = ["AnchorViewerWidget"]

OVERLAY_DELAY_MS = 120  # debounce of typing / spinning before the overlay is redrawn
COVERAGE_DELAY_MS = 400  # and before the dataset's coverage is recomputed
HOVER_INTERVAL_S = 0.05  # at most 20 hover redraws a second
UNCAUGHT_ROWS = 500  # rows of the uncaught table: more is a list nobody scrolls


class AnchorViewerWidget(QWidget):
    """Tune anchors on the real feature-map grid and see what they catch.

    Parameters
    ----------
    napari_viewer
        The viewer whose session (dataset, current image, config) the dock follows.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.model = AnchorTuning(self.session.store)
        self._jobs = LatestJobs(on_error=self._job_failed)
        self._last_hover = 0.0
        self._point: tuple[float, float] | None = None
        self._pushed: ModelConfig | None = None  # the config we gave the session last

        self._overlay_timer = self._timer(OVERLAY_DELAY_MS, self.refresh_overlay)
        self._coverage_timer = self._timer(COVERAGE_DELAY_MS, self.compute_coverage)
        self._dock: QDockWidget | None = None
        self._overlay_shown = True  # False while the dock's tab is hidden
        self._stale: set[str] = set()  # work put off while hidden: "overlay", "coverage"
        QTimer.singleShot(0, self._follow_dock)  # napari docks the widget after __init__
        self._build_ui()
        self._load_config(self.session.config or self.model.default_config())

        self.viewer.mouse_drag_callbacks.append(self._on_click)
        self.viewer.mouse_move_callbacks.append(self._on_hover)
        self.session.attach(
            self,
            teardown=self.teardown,
            dataset_changed=self._on_dataset_changed,
            image_changed=self._on_image_changed,
            annotations_changed=self._on_annotations_changed,
            annotation_saved=self._on_annotation_saved,
            config_changed=self._on_config_changed,
        )

    # -- UI -----------------------------------------------------------------------------
    def _timer(self, delay: int, slot: Callable[[], None]) -> QTimer:
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(delay)
        timer.timeout.connect(slot)
        return timer

    def _build_ui(self) -> None:
        self.form = AnchorConfigForm()
        self.form.changed.connect(self._changed)
        self.form.level_changed.connect(lambda _level: self._overlay_timer.start())
        self.error_label = _label("", style="color: #ff6b6b")
        self.layout_label = _label("")
        self.figures_label = _label("Open a dataset in the Annotator to measure coverage")
        self.histogram = IouHistogram()
        self.table = UncaughtTable()
        self.table.box_chosen.connect(self.go_to_uncaught)
        self.suggestion_label = _label("")

        self.refresh_button = _button(
            "Refresh", self.refresh_dataset, "Re-read the dataset's boxes (after annotating more)"
        )
        self.suggest_button = _button(
            "Suggest",
            self.suggest,
            "Fit sizes and ratios to the dataset's boxes (k-means on 1 - IoU)",
        )
        self.revert_button = _button("Revert", self.revert_suggestion)
        self.revert_button.setEnabled(False)
        self.use_button = _button(
            "Use these anchors", self.use_anchors, "Hand this config to the train dock"
        )
        buttons = QHBoxLayout()
        for button in (self.refresh_button, self.suggest_button, self.revert_button,
                       self.use_button):  # fmt: skip
            buttons.addWidget(button)

        layout = QVBoxLayout(self)
        for widget in (self.form, self.error_label, self.layout_label, self.figures_label,
                       self.histogram, QLabel("Boxes no anchor catches (click to go there)"),
                       self.table):  # fmt: skip
            layout.addWidget(widget)
        layout.addLayout(buttons)
        layout.addWidget(self.suggestion_label)

    # -- config <-> fields --------------------------------------------------------------
    def _load_config(self, config: ModelConfig) -> None:
        """Show ``config`` in the fields (without one redraw per field)."""
        self._show_fields(self.model.load_config(config))

    def _show_fields(self, fields: AnchorFields) -> None:
        self.form.show_fields(fields)
        self._changed()

    def _changed(self) -> None:
        try:
            config = self.model.read_fields(self.form.fields())
        except ConfigError as error:
            self.error_label.setText(str(error))
            self.use_button.setEnabled(False)
            return
        self.error_label.setText("")
        self.use_button.setEnabled(True)
        self.form.set_level_count(config.num_levels)
        self._overlay_timer.start()
        self._coverage_timer.start()

    # -- session events -----------------------------------------------------------------
    def _on_dataset_changed(self, store: AnnotationStore | None) -> None:
        self.model.set_store(store)
        if store is not None:
            self._load_dataset()

    def _load_dataset(self) -> None:
        """Read the dataset's boxes in a worker (seconds on a thousand files)."""
        self._jobs.start("items", DatasetBoxes.load, self.model.store, on_done=self._dataset_loaded)

    def _dataset_loaded(self, dataset: DatasetBoxes) -> None:
        if self.model.accept_dataset(dataset):
            self.compute_coverage()

    def _on_image_changed(self, _index: int, path: Path) -> None:
        self._set_image(Path(path))

    def _on_config_changed(self, config: ModelConfig) -> None:
        """Another dock (the train dock, a loaded checkpoint) chose a config: show it."""
        if config is not self._pushed and config is not None:
            self._load_config(config)

    def _on_annotations_changed(self, _path: object) -> None:
        self.refresh_dataset()

    def refresh_dataset(self) -> None:
        """Re-read the current image's boxes and the dataset's (the Annotator saves as you go)."""
        if self.model.image_path is not None:
            self._set_image(self.model.image_path)
        if self.model.store is not None:
            self._on_dataset_changed(self.model.store)

    def _on_annotation_saved(self, path: object) -> None:
        """The Annotator saved one image: re-read that file alone.

        Autosave fires every few seconds while someone annotates; re-reading the whole
        dataset each time (a thousand files) made ``n`` twice as slow with this dock open,
        even behind the Annotator's tab.
        """
        if path is None or self.model.store is None:
            self.refresh_dataset()
            return
        path = Path(path)
        if self.model.shows(path):
            self._set_image(self.model.image_path)
        if self.model.dataset is None:  # a load is under way and may have read the old file
            self._load_dataset()
            return
        self.model.update_dataset(path)
        self._coverage_timer.start()

    def _set_image(self, path: Path) -> None:
        """Make ``path`` the image the overlay describes (its size and its saved boxes)."""
        try:
            self.model.set_image(path)
        except DetlabError as error:
            self.error_label.setText(str(error))  # it names the file
            return
        self._overlay_timer.start()

    def _canvas_image_size(self) -> tuple[int, int] | None:
        """Without a dataset image, the size of the first image layer on the canvas."""
        from napari.layers import Image

        for layer in self.viewer.layers:
            if isinstance(layer, Image):
                shape = layer.data.shape[-3:-1] if layer.rgb else layer.data.shape[-2:]
                return int(shape[0]), int(shape[1])
        return None

    # -- overlay ------------------------------------------------------------------------
    def refresh_overlay(self) -> None:
        """Redraw centres, anchors at the chosen point and GT colours for the current config.

        Behind another dock's tab the overlay is hidden: the redraw waits until it is shown.
        """
        if self.model.config is None:
            return
        if not self._overlay_shown:
            self._stale.add("overlay")
            return
        size = self.model.image_size or self._canvas_image_size()
        if size is None:
            self.layout_label.setText("No image: open a dataset in the Annotator, or add an image")
            return
        try:
            layout = self.model.place_anchors(size)
        except DetlabError as error:
            self.error_label.setText(str(error))
            return
        level = self._level()
        self.layout_label.setText(layout.describe(level))
        points = self._layer(ANCHOR_CENTRES_LAYER)
        points.data = layout.centres(level)[:, ::-1]  # (x, y) -> napari's (row, col)
        points.size = max(1.0, layout.strides[level][0] / layout.scale[0] / 4)  # stride / 4
        self._draw_anchors_at()
        self._draw_ground_truth()

    def _level(self) -> int:
        """The form's level, within the current layout's."""
        return min(self.form.level, self.model.layout.num_levels - 1)

    def _layer(self, name: str) -> Points | Shapes:
        """Our layer ``name`` (the centres are points, the rest rectangles), (re)created if the
        user deleted it.

        Adding a layer makes it the active one; the previously active layer (the Annotator's
        class layer the user draws in) is made active again so drawing is not hijacked.
        """
        if name in self.viewer.layers:
            return self.viewer.layers[name]
        previous = self.viewer.layers.selection.active
        if name == ANCHOR_CENTRES_LAYER:
            layer = self.viewer.add_points(
                np.zeros((0, 2)), name=name, size=2, face_color="#ffd700", border_width=0
            )
        else:
            layer = self.viewer.add_shapes(
                None, ndim=2, name=name, shape_type="rectangle", face_color="transparent",
                edge_color="#00e5ff", edge_width=1 if name == ANCHORS_AT_POINT_LAYER else 2,
            )  # fmt: skip
            reuse_mesh_shaders(self.viewer, layer)  # the anchors are redrawn on every hover
            skip_invisible_triangles(self.viewer, layer)  # thousands of anchor outlines
        layer.visible = self._overlay_shown
        if previous is not None:
            self.viewer.layers.selection.active = previous
        return layer

    def set_overlay_visible(self, visible: bool) -> None:
        """Show or hide the overlay layers (a tab that starts hidden never signals it).

        While hidden, redraws and coverage are put off; showing the tab catches up on them.
        """
        self._overlay_shown = visible
        for name in (ANCHOR_CENTRES_LAYER, ANCHORS_AT_POINT_LAYER, ANCHOR_TRUTH_LAYER):
            if name in self.viewer.layers:
                self.viewer.layers[name].visible = visible
        if visible:
            stale, self._stale = self._stale, set()
            if "overlay" in stale:
                self.refresh_overlay()
            if "coverage" in stale:
                self.compute_coverage()

    def _follow_dock(self) -> None:
        """Show the overlay only while this dock's tab is shown.

        The overlay belongs to this dock: behind the Annotator's tab, thousands of anchor
        centres must not cover the image being annotated.
        """
        if self._dock is None:
            self._dock = follow_dock_visibility(self, self.set_overlay_visible)

    def show_anchors_at(self, x: float, y: float) -> np.ndarray:
        """Show the chosen level's anchors at the grid position nearest ``(x, y)``."""
        self._point = (float(x), float(y))
        return self._draw_anchors_at()

    def _draw_anchors_at(self) -> np.ndarray:
        layer = self._layer(ANCHORS_AT_POINT_LAYER)
        if self.model.layout is None or self._point is None:
            return np.zeros((0, 4))
        anchors = self.model.layout.anchors_at(*self._point, self._level())
        layer.data = [(corners, "rectangle") for corners in xyxy_to_napari(anchors)]
        layer.edge_color = "#00e5ff"
        layer.face_color = "transparent"
        return anchors

    def _draw_ground_truth(self) -> None:
        layer = self._layer(ANCHOR_TRUTH_LAYER)
        result = self.model.image_coverage()
        if result is None:
            if layer.nshapes:
                layer.data = []
            return
        bg, fg = result.bg_thresh, result.fg_thresh
        layer.data = [(corners, "rectangle") for corners in xyxy_to_napari(result.boxes)]
        layer.edge_color = [zone_color(float(v), bg, fg) for v in result.best_iou]
        layer.face_color = "transparent"
        layer.features = {"best_iou": result.best_iou, "positives": result.num_positive}

    def _on_click(self, _viewer: napari.Viewer, event: object) -> None:
        if getattr(event, "type", "") != "mouse_press" or self.model.layout is None:
            return
        row, col = event.position[-2], event.position[-1]
        self.show_anchors_at(col, row)

    def _on_hover(self, _viewer: napari.Viewer, event: object) -> None:
        if not self.form.following or self.model.layout is None:
            return
        now = time.monotonic()
        if now - self._last_hover < HOVER_INTERVAL_S:
            return
        self._last_hover = now
        self.show_anchors_at(event.position[-1], event.position[-2])

    # -- dataset coverage (worker thread) -----------------------------------------------
    @property
    def busy(self) -> bool:
        """Whether a redraw or a computation is pending or running (tests wait on it)."""
        timers = (self._overlay_timer, self._coverage_timer)
        return self._jobs.running or any(timer.isActive() for timer in timers)

    def _job_failed(self, kind: str, error: Exception) -> None:
        self.error_label.setText(str(error))
        if kind == "suggest":
            self.suggest_button.setEnabled(True)

    def compute_coverage(self) -> None:
        """Recompute the dataset's figures for the fields' config, in a worker thread."""
        if self.model.config is None or not self.model.dataset:
            return
        if not self._overlay_shown:  # nobody sees the figures: measure when the tab is chosen
            self._stale.add("coverage")
            return
        self.figures_label.setText("Measuring coverage…")
        measure = partial(anchor_report, uncaught_limit=UNCAUGHT_ROWS)
        self._jobs.start(
            "coverage", measure, self.model.config, self.model.dataset.items,
            on_done=self._show_report,
        )  # fmt: skip

    def _show_report(self, report: AnchorReport) -> None:
        self.model.report = report
        self.figures_label.setText(report.summary())
        self.histogram.set_values(report.best_iou, report.bg_thresh, report.fg_thresh)
        self.table.show_rows(report.uncaught)

    # -- navigation ---------------------------------------------------------------------
    def go_to_uncaught(self, entry: UncaughtBox) -> None:
        """Show the image of an uncaught box, and select and centre the box."""
        path = Path(entry.image)
        # The Annotator, when docked, shows the image (and tells everyone through image_changed).
        if not self.session.request_image(path, entry.box_index):
            self._show_image_here(path)
        self._set_image(path)
        self.refresh_overlay()
        layer = self._layer(ANCHOR_TRUTH_LAYER)
        if entry.box_index < layer.nshapes:
            layer.selected_data = {entry.box_index}
        x1, y1, x2, y2 = entry.box
        self.viewer.scene.camera.center = ((y1 + y2) / 2, (x1 + x2) / 2)
        self.viewer.scene.camera.zoom = float(np.clip(150.0 / max(x2 - x1, y2 - y1, 1.0), 0.05, 20))
        self.show_anchors_at((x1 + x2) / 2, (y1 + y2) / 2)

    def _show_image_here(self, path: Path) -> None:
        """No Annotator docked: show the image in our own layer."""
        pixels = read_image(path)
        if ANCHOR_IMAGE_LAYER in self.viewer.layers:
            self.viewer.layers[ANCHOR_IMAGE_LAYER].data = pixels
        else:
            self.viewer.add_image(pixels, name=ANCHOR_IMAGE_LAYER)
            self.viewer.layers.move(self.viewer.layers.index(ANCHOR_IMAGE_LAYER), 0)

    # -- suggestions and hand-over ------------------------------------------------------
    def suggest(self) -> None:
        """Fit anchors to the dataset (worker thread), then show them with before/after."""
        if self.model.config is None or not self.model.dataset:
            self.suggestion_label.setText("Open an annotated dataset first")
            return
        self.suggestion_label.setText("Fitting anchors…")
        self.suggest_button.setEnabled(False)
        self._jobs.start(
            "suggest", suggest_anchors, self.model.config, self.model.dataset.items,
            on_done=self._show_suggestion,
        )  # fmt: skip

    def _show_suggestion(self, suggestion: AnchorSuggestion) -> None:
        self.suggest_button.setEnabled(True)
        self.suggestion_label.setText(suggestion.summary())
        self.revert_button.setEnabled(True)
        self._show_fields(self.model.accept_suggestion(suggestion))

    def revert_suggestion(self) -> None:
        """Back to the anchors shown before "Suggest"."""
        fields = self.model.revert()
        if fields is not None:
            self._show_fields(fields)
            self.revert_button.setEnabled(False)

    def use_anchors(self) -> None:
        """Give the fields' config to the session; the train dock listens for it."""
        try:
            config = self.model.read_fields(self.form.fields())
        except ConfigError as error:
            self.error_label.setText(str(error))
            return
        self._pushed = config
        self.session.set_config(config)
        self.suggestion_label.setText("The train dock will use these anchors")

    # -- teardown -----------------------------------------------------------------------
    def teardown(self) -> None:
        """Stop listening to the viewer (the session disconnects itself when the dock closes)."""
        self._overlay_timer.stop()
        self._coverage_timer.stop()
        self._jobs.outdate_all()  # results of jobs still running are dropped
        hooks = (
            (self.viewer.mouse_drag_callbacks, self._on_click),
            (self.viewer.mouse_move_callbacks, self._on_hover),
        )
        for callbacks, function in hooks:
            if function in callbacks:
                callbacks.remove(function)


def _label(text: str, style: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    if style:
        label.setStyleSheet(style)
    return label


def _button(text: str, slot: Callable[[], None], tip: str = "") -> QPushButton:
    button = QPushButton(text)
    if tip:
        button.setToolTip(tip)
    button.clicked.connect(slot)
    return button
