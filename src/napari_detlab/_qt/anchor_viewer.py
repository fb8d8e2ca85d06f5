"""AnchorViewer dock: the config's real anchors over the image, against the ground truth.

Everything shown comes from the Qt-free core (:mod:`~napari_detlab.core.anchors.layout`,
:mod:`~napari_detlab.core.anchors.coverage`, :mod:`~napari_detlab.core.anchors.suggest`):

* anchor centres of the chosen level as a Points layer, and the anchors at the clicked (or,
  with "follow mouse", hovered) position as a Shapes layer, both in original-image pixels;
* the current image's ground-truth boxes coloured by their best anchor IoU (red < 0.3,
  orange < 0.7, green >= 0.7);
* the dataset's figures, a histogram of best IoUs with the 0.3 / 0.7 lines, and a table of
  uncaught boxes that jumps to the image (through the Annotator when it is docked, else by
  loading the image here) and selects the box;
* "Suggest" fits anchors to the dataset and shows before/after; "Use these anchors" hands the
  config to the other docks through :meth:`DetlabSession.set_config`.

The overlay follows edits after a short debounce; dataset coverage runs in a worker thread,
and a result that arrives after the config changed again is dropped.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDockWidget,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_detlab._layers import (
    ANCHOR_CENTRES_LAYER,
    ANCHOR_IMAGE_LAYER,
    ANCHOR_TRUTH_LAYER,
    ANCHORS_AT_POINT_LAYER,
)
from napari_detlab._qt.jobs import LatestJobs
from napari_detlab._qt.lifecycle import follow_dock_visibility
from napari_detlab._qt.session import session_for
from napari_detlab._qt.shader_reuse import reuse_mesh_shaders
from napari_detlab._qt.widgets.iou_histogram import IouHistogram, zone_color
from napari_detlab.core.anchors.coverage import ImageBoxes, coverage, dataset_boxes
from napari_detlab.core.anchors.layout import AnchorLayout
from napari_detlab.core.anchors.suggest import AnchorSuggestion, anchor_report, suggest_anchors
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.boxes import xyxy_to_napari
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.images import image_size, read_image
from napari_detlab.core.model.config import (
    BACKBONES,
    ConfigError,
    ModelConfig,
    format_levels,
    parse_levels,
    preset,
)

if TYPE_CHECKING:
    import napari

__all__ = ["AnchorViewerWidget"]

OVERLAY_DELAY_MS = 120  # debounce of typing / spinning before the overlay is redrawn
COVERAGE_DELAY_MS = 400  # and before the dataset's coverage is recomputed
HOVER_INTERVAL_S = 0.05  # at most 20 hover redraws a second
UNCAUGHT_ROWS = 500


def _pct(value: object) -> str:
    """A report's fraction as ``"87.5%"``; ``"n/a"`` when the report has none (no boxes)."""
    return "n/a" if value is None else f"{100 * float(value):.1f}%"


def _measure(config: ModelConfig, items: list[ImageBoxes]) -> tuple[dict[str, object], np.ndarray]:
    """The dataset's report and every box's best IoU (for the histogram); runs in a worker."""
    result = coverage(config, items)
    return anchor_report(config, items, uncaught_limit=UNCAUGHT_ROWS, base=result), result.best_iou


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
        self.layout_: AnchorLayout | None = None
        self.config: ModelConfig | None = None
        self.report: dict[str, object] | None = None
        self.items: list[ImageBoxes] | None = None  # the dataset's boxes, loaded once
        self.image_path: Path | None = None
        self.image_size: tuple[int, int] | None = None
        self.image_boxes = ImageBoxes("", (1, 1), np.zeros((0, 4)), [])
        self.image_best_iou = np.zeros(0, np.float32)
        self.dataset_best_iou = np.zeros(0, np.float32)
        self.suggestion: AnchorSuggestion | None = None
        self._base_config: ModelConfig  # what the fields were loaded from (set just below)
        self._before_suggestion: ModelConfig | None = None
        self._jobs = LatestJobs(on_error=self._job_failed)
        self._last_hover = 0.0
        self._point: tuple[float, float] | None = None
        self._pushed: ModelConfig | None = None  # the config we gave the session last

        self._overlay_timer = self._timer(OVERLAY_DELAY_MS, self.refresh_overlay)
        self._dock: QDockWidget | None = None
        self._overlay_shown = True  # False while the dock's tab is hidden
        self._stale: set[str] = set()  # work put off while hidden: "overlay", "coverage"
        QTimer.singleShot(0, self._follow_dock)  # napari docks the widget after __init__
        self._coverage_timer = self._timer(COVERAGE_DELAY_MS, self.compute_coverage)
        self._build_ui()
        self._load_config(self.session.config or self._default_config())

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
    def _timer(self, delay: int, slot: object) -> QTimer:
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(delay)
        timer.timeout.connect(slot)
        return timer

    def _build_ui(self) -> None:
        form = QFormLayout()
        self.backbone_combo = QComboBox()
        self.backbone_combo.addItems(BACKBONES)
        self.fpn_check = QCheckBox("FPN")
        row = QHBoxLayout()
        row.addWidget(self.backbone_combo)
        row.addWidget(self.fpn_check)
        form.addRow("Backbone", row)
        self.sizes_edit = QLineEdit()
        self.sizes_edit.setToolTip("Anchor sizes per feature map: '16; 32; 64' or '16, 24; 32, 48'")
        form.addRow("Sizes", self.sizes_edit)
        self.ratios_edit = QLineEdit()
        self.ratios_edit.setToolTip("Aspect ratios h/w, one group for every level or one per level")
        form.addRow("Ratios", self.ratios_edit)
        self.min_spin, self.max_spin = QSpinBox(), QSpinBox()
        for spin in (self.min_spin, self.max_spin):
            spin.setRange(32, 4096)
            spin.setSingleStep(32)
        row = QHBoxLayout()
        row.addWidget(self.min_spin)
        row.addWidget(QLabel("max"))
        row.addWidget(self.max_spin)
        form.addRow("Min size", row)
        self.level_spin = QSpinBox()
        self.level_spin.setRange(0, 4)
        self.follow_check = QCheckBox("follow mouse")
        row = QHBoxLayout()
        row.addWidget(self.level_spin)
        row.addWidget(self.follow_check)
        form.addRow("Level", row)

        self.error_label = QLabel("")
        self.error_label.setStyleSheet("color: #ff6b6b")
        self.error_label.setWordWrap(True)
        self.layout_label = QLabel("")
        self.layout_label.setWordWrap(True)
        self.figures_label = QLabel("Open a dataset in the Annotator to measure coverage")
        self.figures_label.setWordWrap(True)
        self.histogram = IouHistogram()
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Image", "Box", "Class", "Best IoU", "Why"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.cellClicked.connect(lambda row, _col: self.go_to_uncaught(row))

        self.suggest_button = QPushButton("Suggest")
        self.suggest_button.setToolTip(
            "Fit sizes and ratios to the dataset's boxes (k-means on 1 - IoU)"
        )
        self.suggest_button.clicked.connect(self.suggest)
        self.revert_button = QPushButton("Revert")
        self.revert_button.setEnabled(False)
        self.revert_button.clicked.connect(self.revert_suggestion)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Re-read the dataset's boxes (after annotating more)")
        self.refresh_button.clicked.connect(self.refresh_dataset)
        self.use_button = QPushButton("Use these anchors")
        self.use_button.setToolTip("Hand this config to the train dock")
        self.use_button.clicked.connect(self.use_anchors)
        buttons = QHBoxLayout()
        for button in (
            self.refresh_button,
            self.suggest_button,
            self.revert_button,
            self.use_button,
        ):
            buttons.addWidget(button)
        self.suggestion_label = QLabel("")
        self.suggestion_label.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        for widget in (self.error_label, self.layout_label, self.figures_label, self.histogram):
            layout.addWidget(widget)
        layout.addWidget(QLabel("Boxes no anchor catches (click to go there)"))
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        layout.addWidget(self.suggestion_label)

        self.backbone_combo.currentTextChanged.connect(self._changed)
        self.fpn_check.toggled.connect(self._changed)
        self.sizes_edit.textChanged.connect(self._changed)
        self.ratios_edit.textChanged.connect(self._changed)
        self.min_spin.valueChanged.connect(self._changed)
        self.max_spin.valueChanged.connect(self._changed)
        self.level_spin.valueChanged.connect(lambda _v: self._overlay_timer.start())

    # -- config <-> fields --------------------------------------------------------------
    def _default_config(self) -> ModelConfig:
        classes = self._dataset_classes() or ["object"]
        return preset("fast", classes)

    def _dataset_classes(self) -> list[str]:
        if self.session.store is None:
            return []
        try:
            return self.session.store.class_names()
        except (OSError, DetlabError):
            return []

    def _load_config(self, config: ModelConfig) -> None:
        """Show ``config`` in the fields (without one redraw per field)."""
        self._base_config = config
        widgets = (self.backbone_combo, self.fpn_check, self.sizes_edit, self.ratios_edit,
                   self.min_spin, self.max_spin)  # fmt: skip
        for widget in widgets:
            widget.blockSignals(True)
        try:
            self.backbone_combo.setCurrentText(config.backbone)
            self.fpn_check.setChecked(config.fpn)
            self.sizes_edit.setText(format_levels(config.anchor_sizes))
            self.ratios_edit.setText(format_levels(config.aspect_ratios, collapse=True))
            self.min_spin.setValue(config.min_size)
            self.max_spin.setValue(config.max_size)
        finally:
            for widget in widgets:
                widget.blockSignals(False)
        self._changed()

    def config_from_fields(self) -> ModelConfig:
        """The config the fields describe; raises :class:`ConfigError` naming what is wrong."""
        base = self._base_config
        backbone, fpn = self.backbone_combo.currentText(), self.fpn_check.isChecked()
        probe = base.replace(backbone=backbone, fpn=fpn)
        config = base.replace(
            backbone=backbone, fpn=fpn, min_size=self.min_spin.value(),
            max_size=self.max_spin.value(), anchor_sizes=parse_levels(self.sizes_edit.text()),
            aspect_ratios=parse_levels(self.ratios_edit.text(), probe.num_levels),
        )  # fmt: skip
        if not config.classes:
            config = config.replace(classes=self._dataset_classes() or ["object"])
        if config.pretrained == "coco" and not (
            fpn and backbone in ("resnet50", "mobilenet_v3_large")
        ):
            config = config.replace(pretrained="imagenet")
        return config.validate()

    def _changed(self, *_args: object) -> None:
        try:
            config = self.config_from_fields()
        except ConfigError as error:
            self.error_label.setText(str(error))
            self.use_button.setEnabled(False)
            return
        self.error_label.setText("")
        self.use_button.setEnabled(True)
        self.config = config
        self.level_spin.setMaximum(config.num_levels - 1)
        self._overlay_timer.start()
        self._coverage_timer.start()

    # -- session events -----------------------------------------------------------------
    def _on_dataset_changed(self, store: AnnotationStore | None) -> None:
        self.items = None
        self.report = None
        if store is None:
            return
        self._jobs.start("items", self._load_items, store, on_done=self._items_loaded)

    @staticmethod
    def _load_items(store: AnnotationStore) -> list[ImageBoxes]:
        return dataset_boxes(store)

    def _items_loaded(self, items: list[ImageBoxes]) -> None:
        self.items = items
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
        if self.image_path is not None:
            self._set_image(self.image_path)
        if self.session.store is not None:
            self._on_dataset_changed(self.session.store)

    def _on_annotation_saved(self, path: object) -> None:
        """The Annotator saved one image: re-read that file alone.

        Autosave fires every few seconds while someone annotates; re-reading the whole
        dataset each time (a thousand files) made ``n`` twice as slow with this dock open,
        even behind the Annotator's tab.
        """
        if path is None or self.session.store is None:
            self.refresh_dataset()
            return
        path = Path(path)
        if self.image_path is not None and path.stem == self.image_path.stem:
            self._set_image(self.image_path)
        if self.items is None:  # a load is under way and may have read the old file
            self._on_dataset_changed(self.session.store)
            return
        item = self.image_boxes if path.stem == self.image_boxes_stem else None
        if item is None:
            item = self._read_item(path)
        kept = [old for old in self.items if Path(old.image).stem != path.stem]
        # An image new to the dataset goes last: only the uncaught table's order differs
        # from a fresh load.
        position = next(
            (i for i, old in enumerate(self.items) if Path(old.image).stem == path.stem), len(kept)
        )
        if item is not None and len(item.boxes):
            kept.insert(position, item)
        self.items = kept
        self._coverage_timer.start()

    @property
    def image_boxes_stem(self) -> str | None:
        """The stem of the image whose boxes :attr:`image_boxes` holds, if one is shown."""
        return Path(self.image_boxes.image).stem if self.image_boxes.image else None

    def _read_item(self, path: Path) -> ImageBoxes | None:
        """``path``'s saved boxes as coverage needs them; None when unreadable."""
        try:
            annotation = self.session.store.load(path)
            if annotation is None:
                return None
            return ImageBoxes(
                path, annotation.image_size or image_size(path), annotation.boxes,
                annotation.labels,
            )  # fmt: skip
        except (OSError, DetlabError):
            return None

    def _set_image(self, path: Path) -> None:
        """Make ``path`` the image the overlay describes (its size and its saved boxes)."""
        self.image_path = path
        boxes, labels = np.zeros((0, 4), np.float32), []
        size = None
        if self.session.store is not None:
            try:
                annotation = self.session.store.load(path)
            except (OSError, DetlabError):
                annotation = None
            if annotation is not None:
                boxes, labels, size = annotation.boxes, annotation.labels, annotation.image_size
        try:
            self.image_size = size or image_size(path)
        except (OSError, DetlabError) as error:
            self.error_label.setText(f"{path.name}: {error}")
            return
        self.image_boxes = ImageBoxes(path, self.image_size, boxes, labels)
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
        if self.config is None:
            return
        if not self._overlay_shown:
            self._stale.add("overlay")
            return
        size = self.image_size or self._canvas_image_size()
        if size is None:
            self.layout_label.setText("No image: open a dataset in the Annotator, or add an image")
            return
        try:
            self.layout_ = AnchorLayout.from_config(self.config, size)
        except DetlabError as error:
            self.error_label.setText(str(error))
            return
        layout = self.layout_
        level = min(self.level_spin.value(), layout.num_levels - 1)
        self.layout_label.setText(
            f"Image {size[1]}x{size[0]} -> resized {layout.resized_size[1]}x"
            f"{layout.resized_size[0]} (padded {layout.padded_size[1]}x{layout.padded_size[0]}); "
            f"level {level}: grid {layout.grid_sizes[level][1]}x{layout.grid_sizes[level][0]}, "
            f"stride {layout.strides[level][1]}, {layout.anchors_per_location[level]} anchors per "
            f"position; {layout.num_anchors} anchors in all"
        )
        centres = layout.centres(level)
        stride_px = layout.strides[level][0] / layout.scale[0]
        points = self._layer(ANCHOR_CENTRES_LAYER, "points")
        points.data = centres[:, ::-1]  # (x, y) -> napari's (row, col)
        points.size = max(1.0, stride_px / 4)
        self._draw_anchors_at()
        self._draw_ground_truth()

    def _layer(self, name: str, kind: str) -> object:
        """Our layer ``name``, (re)created if the user deleted it.

        Adding a layer makes it the active one; the previously active layer (the Annotator's
        class layer the user draws in) is made active again so drawing is not hijacked.
        """
        if name in self.viewer.layers:
            return self.viewer.layers[name]
        previous = self.viewer.layers.selection.active
        if kind == "points":
            layer = self.viewer.add_points(
                np.zeros((0, 2)), name=name, size=2, face_color="#ffd700", border_width=0
            )
        else:
            layer = self.viewer.add_shapes(
                None, ndim=2, name=name, shape_type="rectangle", face_color="transparent",
                edge_color="#00e5ff", edge_width=1 if name == ANCHORS_AT_POINT_LAYER else 2,
            )  # fmt: skip
            reuse_mesh_shaders(self.viewer, layer)  # the anchors are redrawn on every hover
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
        layer = self._layer(ANCHORS_AT_POINT_LAYER, "shapes")
        if self.layout_ is None or self._point is None:
            return np.zeros((0, 4))
        level = min(self.level_spin.value(), self.layout_.num_levels - 1)
        anchors = self.layout_.anchors_at(*self._point, level)
        layer.data = [(corners, "rectangle") for corners in xyxy_to_napari(anchors)]
        layer.edge_color = "#00e5ff"
        layer.face_color = "transparent"
        return anchors

    def _draw_ground_truth(self) -> None:
        layer = self._layer(ANCHOR_TRUTH_LAYER, "shapes")
        item = self.image_boxes
        if self.config is None or not len(item.boxes) or self.image_size is None:
            self.image_best_iou = np.zeros(0, np.float32)
            if layer.nshapes:
                layer.data = []
            return
        result = coverage(
            self.config, [ImageBoxes(item.image, self.image_size, item.boxes, item.labels)]
        )
        self.image_best_iou = result.best_iou
        bg, fg = self.config.rpn_bg_iou_thresh, self.config.rpn_fg_iou_thresh
        colors = [zone_color(float(v), bg, fg) for v in result.best_iou]
        layer.data = [(corners, "rectangle") for corners in xyxy_to_napari(item.boxes)]
        layer.edge_color = colors
        layer.face_color = "transparent"
        layer.features = {"best_iou": result.best_iou, "positives": result.num_positive}

    def _on_click(self, _viewer: object, event: object) -> None:
        if getattr(event, "type", "") != "mouse_press" or self.layout_ is None:
            return
        row, col = event.position[-2], event.position[-1]
        self.show_anchors_at(col, row)

    def _on_hover(self, _viewer: object, event: object) -> None:
        if not self.follow_check.isChecked() or self.layout_ is None:
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
        if self.config is None or not self.items:
            return
        if not self._overlay_shown:  # nobody sees the figures: measure when the tab is chosen
            self._stale.add("coverage")
            return
        self.figures_label.setText("Measuring coverage…")
        self._jobs.start("coverage", _measure, self.config, self.items, on_done=self._show_report)

    def _show_report(self, measured: tuple[dict[str, object], np.ndarray]) -> None:
        report, self.dataset_best_iou = measured
        self.report = report

        per_class = ", ".join(
            f"{name} {_pct(f['recall_07'])}" for name, f in report["per_class"].items()
        )
        per_size = ", ".join(
            f"{name} {_pct(f['recall_07'])}" for name, f in report["per_size"].items() if f["boxes"]
        )
        self.figures_label.setText(
            f"{report['boxes']} boxes in {report['images']} images: recall@0.7 "
            f"{_pct(report['recall_07'])}, [0.3, 0.7) {_pct(report['share_03_07'])}, < 0.3 "
            f"{_pct(report['share_below_03'])}, {report['no_positive']} with no positive anchor\n"
            f"per class: {per_class}\nper size: {per_size}\n"
            f"shape-only: BPR {_pct(report['bpr'])}, mean best IoU {report['mean_best_iou']:.3f}"
            + (
                f"\n{report['tiny_boxes']} box(es) under 3 px after resizing"
                if report["tiny_boxes"]
                else ""
            )
        )
        self.histogram.set_values(self.dataset_best_iou, report["bg_thresh"], report["fg_thresh"])
        rows = report["uncaught"]
        self.table.setRowCount(len(rows))
        for r, entry in enumerate(rows):
            values = (Path(entry["image"]).name, str(entry["box_index"]), entry["label"],
                      f"{entry['best_iou']:.3f}", entry["reason"])  # fmt: skip
            for c, value in enumerate(values):
                self.table.setItem(r, c, QTableWidgetItem(value))

    # -- navigation ---------------------------------------------------------------------
    def go_to_uncaught(self, row: int) -> None:
        """Show the image of the table's ``row`` and select and centre its box."""
        if self.report is None or not 0 <= row < len(self.report["uncaught"]):
            return
        entry = self.report["uncaught"][row]
        path = Path(entry["image"])
        # The Annotator, when docked, shows the image (and tells everyone through image_changed).
        if not self.session.request_image(path, int(entry["box_index"])):
            self._show_image_here(path)
        self._set_image(path)
        self.refresh_overlay()
        layer = self._layer(ANCHOR_TRUTH_LAYER, "shapes")
        box = np.asarray(entry["box"], np.float64)
        if entry["box_index"] < layer.nshapes:
            layer.selected_data = {int(entry["box_index"])}
        self.viewer.scene.camera.center = ((box[1] + box[3]) / 2, (box[0] + box[2]) / 2)
        self.viewer.scene.camera.zoom = float(
            np.clip(150.0 / max(box[2] - box[0], box[3] - box[1], 1.0), 0.05, 20)
        )
        self.show_anchors_at((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)

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
        if self.config is None or not self.items:
            self.suggestion_label.setText("Open an annotated dataset first")
            return
        self.suggestion_label.setText("Fitting anchors…")
        self.suggest_button.setEnabled(False)
        self._jobs.start(
            "suggest", suggest_anchors, self.config, self.items, on_done=self._show_suggestion
        )

    def _show_suggestion(self, suggestion: AnchorSuggestion) -> None:
        self.suggest_button.setEnabled(True)
        self.suggestion = suggestion
        before, after = suggestion.before, suggestion.after

        self.suggestion_label.setText(
            f"recall@0.7 {_pct(before['recall_07'])} -> {_pct(after['recall_07'])}; < 0.3 "
            f"{_pct(before['share_below_03'])} -> {_pct(after['share_below_03'])}; mean best IoU "
            f"{suggestion.shape_before['mean_best_iou']:.3f} -> "
            f"{suggestion.shape_after['mean_best_iou']:.3f}"
            + ("" if suggestion.improved else "\n(no better than the current anchors)")
            + "".join(f"\n{w}" for w in suggestion.warnings)
        )
        self._before_suggestion = self.config
        self.revert_button.setEnabled(True)
        self._load_config(suggestion.config)

    def revert_suggestion(self) -> None:
        """Back to the anchors shown before "Suggest"."""
        if self._before_suggestion is not None:
            self._load_config(self._before_suggestion)
            self._before_suggestion = None
            self.revert_button.setEnabled(False)

    def use_anchors(self) -> None:
        """Give the fields' config to the session; the train dock listens for it."""
        try:
            config = self.config_from_fields()
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
