"""The Annotator dock: browse a folder, draw boxes per class, every edit saved at once.

The widget is a thin layer over
:class:`~napari_detlab.core.annotations.store.AnnotationStore`: it shows one image in a
reused Image layer and its boxes in one Shapes layer per class, and writes the image's
``.pt`` file whenever the boxes change (debounced by :data:`AUTOSAVE_DELAY_MS`),
before the image changes and before the viewer closes. What is on disk is the truth; the
layers are a view of it.

Keyboard: ``n`` / ``b`` next / previous image and ``Ctrl+Z`` undo work whichever layer is
selected. napari looks keys up in the active layer's keymap before the viewer's, and Shapes
layers bind ``b`` (move to back), so the keys are bound on the viewer *and* on every layer
instance, including layers added later.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from app_model.types import KeyCode, KeyMod
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QEvent, QObject, QTimer
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QApplication,
    QCheckBox,
    QColorDialog,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_detlab._layers import IMAGE_LAYER
from napari_detlab._qt.box_layers import (
    add_class_layer,
    class_layer_name,
    layer_boxes,
    set_layer_boxes,
    style_class_layer,
)
from napari_detlab._qt.interop_menu import build_interop_menu
from napari_detlab._qt.session import session_for
from napari_detlab.core.annotations.history import AnnotationHistory
from napari_detlab.core.annotations.prefetch import ImagePrefetcher
from napari_detlab.core.annotations.store import (
    DEFAULT_COLORS,
    AnnotationError,
    AnnotationStore,
    ClassInUseError,
    ClassSpec,
    ImageAnnotation,
    sanitize_boxes,
)
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.images import ImageReadError

if TYPE_CHECKING:
    import napari
    from napari.layers import Image, Shapes

__all__ = ["AUTOSAVE_DELAY_MS", "AnnotatorWidget"]

AUTOSAVE_DELAY_MS = 300
# Neighbours are decoded once the new image is on screen, not while it is being drawn:
# on a 2-core machine the decode would otherwise compete with the repaint the user waits for.
PREFETCH_DELAY_MS = 150
DEFAULT_CLASS = "object"
NAVIGATION_KEYS = ("n", "b")  # bound on every layer too: layer keymaps shadow the viewer's


def contrast_for(pixels: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """``(range, limits)`` for an Image layer showing ``pixels``.

    8-bit images use their full range. 12/16-bit and float images rarely fill their dtype, so
    the limits are the 0.5 / 99.8 percentiles of a strided sample: the cells are visible at
    once instead of a black frame, at a cost of a few milliseconds on 4 MP.
    """
    if pixels.dtype == np.uint8:
        return (0.0, 255.0), (0.0, 255.0)
    step = max(1, int(np.sqrt(pixels.shape[0] * pixels.shape[1] / 250_000)))
    sample = pixels[::step, ::step]
    low, high = (float(v) for v in np.percentile(sample, (0.5, 99.8)))
    if np.issubdtype(pixels.dtype, np.integer):
        info = np.iinfo(pixels.dtype)
        full = (float(info.min), float(info.max))
    else:
        full = (float(np.min(sample)), float(np.max(sample)))
    if high <= low:
        high = low + 1.0
    full = (min(full[0], low), max(full[1], high))
    return full, (low, high)


def same_boxes(a: ImageAnnotation, b: ImageAnnotation) -> bool:
    """Whether two annotations hold the same labelled boxes and flag, in any order.

    The layers give boxes grouped by class while a file may interleave them (the sample
    dataset, other tools): merely showing an image must not rewrite its file.
    """

    def content(annotation: ImageAnnotation) -> list[tuple[str, tuple[float, ...]]]:
        rows = annotation.boxes.tolist()
        return sorted(zip(annotation.labels, map(tuple, rows), strict=True))

    return a.reviewed == b.reviewed and len(a) == len(b) and content(a) == content(b)


class AnnotatorWidget(QWidget):
    """Annotate a folder of images with boxes of several classes; saves every edit.

    Parameters
    ----------
    napari_viewer
        The viewer to draw in; its :func:`~napari_detlab._qt.session.session_for` session
        learns the dataset and the image on screen.

    Attributes
    ----------
    store
        The open dataset, or ``None`` before a folder is chosen.
    index
        Position of the image on screen in ``store.images`` (``-1`` when none).
    classes
        The dataset's classes, in the order of the class list.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.store: AnnotationStore | None = None
        self.index = -1
        self.classes: list[ClassSpec] = []
        self.history = AnnotationHistory()
        self._image_layer: Image | None = None
        self._class_layers: dict[str, Shapes] = {}
        self._saved = ImageAnnotation()  # what the current image's file holds (empty: none)
        self._image_size: tuple[int, int] | None = None
        self._filling_layers = False  # programmatic layer updates are not user edits
        self._dragging = False  # a mouse button is down on a class layer
        self._drag_tracker = _drag_tracker(weakref.ref(self))
        self._prefetcher = ImagePrefetcher()
        self._unreadable: set[Path] = set()  # images already reported as broken
        self._key_functions: dict[object, Callable[[object], None]] = {}

        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(AUTOSAVE_DELAY_MS)
        self._save_timer.timeout.connect(self._autosave)
        self._prefetch_timer = QTimer(self)
        self._prefetch_timer.setSingleShot(True)
        self._prefetch_timer.setInterval(PREFETCH_DELAY_MS)
        self._prefetch_timer.timeout.connect(self._prefetch_neighbours)

        self._build_ui()
        self._bind_keys()
        self._connections = [
            (self.viewer.layers.events.inserted, self._on_layer_inserted),
            (self.viewer.layers.events.removing, self._on_layer_removing),
            (self.viewer.layers.selection.events.active, self._on_active_layer),
            (self.session.annotations_changed, self._on_annotations_changed),
            (self.session.flush_requested, self.flush),
            (self.session.show_image_requested, self._on_show_image_requested),
            (self.session.open_folder_requested, self.open_folder),
        ]
        for signal, callback in self._connections:
            signal.connect(callback)
        self._watch_close()
        # Runs after the C++ widget is gone (dock removed), so it must not touch ``self``.
        self.destroyed.connect(partial(_release, **self._release_arguments()))

    # -- user interface ---------------------------------------------------------------
    def _build_ui(self) -> None:
        self.open_button = QPushButton("Open folder…")
        self.open_button.clicked.connect(self._choose_folder)
        self.folder_label = QLabel("No folder open")
        self.folder_label.setWordWrap(True)

        self.previous_button = QPushButton("◀ Previous (b)")
        self.previous_button.clicked.connect(self.previous_image)
        self.position_label = QLabel("0 / 0")
        self.next_button = QPushButton("Next (n) ▶")
        self.next_button.clicked.connect(self.next_image)
        self.unannotated_button = QPushButton("Next unannotated")
        self.unannotated_button.clicked.connect(self.next_unannotated)
        self.image_label = QLabel("")
        self.image_label.setWordWrap(True)

        self.reviewed_checkbox = QCheckBox("Reviewed (no boxes = no objects here)")
        self.reviewed_checkbox.setToolTip(
            "Checked images are used for training; an empty checked image teaches the model "
            "what background looks like. Drawing a box checks it."
        )
        self.reviewed_checkbox.toggled.connect(self._on_reviewed_toggled)

        self.class_combo = QComboBox()
        self.class_combo.setToolTip("The class new boxes are drawn in")
        self.class_combo.currentTextChanged.connect(self._on_class_chosen)
        self.new_class_edit = QLineEdit()
        self.new_class_edit.setPlaceholderText("new class name")
        self.new_class_edit.returnPressed.connect(self._add_class_clicked)
        add_button = QPushButton("Add class")
        add_button.clicked.connect(self._add_class_clicked)
        rename_button = QPushButton("Rename…")
        rename_button.clicked.connect(self._rename_class_clicked)
        remove_button = QPushButton("Remove")
        remove_button.clicked.connect(self._remove_class_clicked)
        color_button = QPushButton("Colour…")
        color_button.clicked.connect(self._color_class_clicked)
        move_button = QPushButton("Move selected boxes to this class")
        move_button.clicked.connect(self._move_selected_clicked)
        self.undo_button = QPushButton("Undo last box edit (Ctrl+Z)")
        self.undo_button.clicked.connect(self.undo)
        self.status_label = QLabel("")

        navigation = QHBoxLayout()
        navigation.addWidget(self.previous_button)
        navigation.addWidget(self.position_label)
        navigation.addWidget(self.next_button)

        class_grid = QGridLayout()
        class_grid.addWidget(QLabel("Draw class"), 0, 0)
        class_grid.addWidget(self.class_combo, 0, 1, 1, 2)
        class_grid.addWidget(self.new_class_edit, 1, 0, 1, 2)
        class_grid.addWidget(add_button, 1, 2)
        class_grid.addWidget(rename_button, 2, 0)
        class_grid.addWidget(remove_button, 2, 1)
        class_grid.addWidget(color_button, 2, 2)
        class_grid.addWidget(move_button, 3, 0, 1, 3)

        # Import / export sits beside "Open folder": both decide what the dataset holds.
        self.interop_button = build_interop_menu(self)
        top_row = QHBoxLayout()
        top_row.addWidget(self.open_button, 1)
        top_row.addWidget(self.interop_button)

        layout = QVBoxLayout(self)
        layout.addLayout(top_row)
        layout.addWidget(self.folder_label)
        layout.addLayout(navigation)
        layout.addWidget(self.unannotated_button)
        layout.addWidget(self.image_label)
        layout.addWidget(self.reviewed_checkbox)
        layout.addLayout(class_grid)
        layout.addWidget(self.undo_button)
        layout.addWidget(self.status_label)
        layout.addStretch(1)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Image folder to annotate")
        if folder:
            self.open_folder(folder)

    def _update_labels(self) -> None:
        count = len(self.store.images) if self.store else 0
        self.position_label.setText(f"{self.index + 1 if self.index >= 0 else 0} / {count}")
        path = self.current_path
        self.image_label.setText(path.name if path else "")
        self.previous_button.setEnabled(self.index > 0)
        self.next_button.setEnabled(0 <= self.index < count - 1)

    def _set_reviewed_checkbox(self, checked: bool) -> None:
        """Show ``checked`` without treating it as the user's click."""
        self.reviewed_checkbox.blockSignals(True)
        self.reviewed_checkbox.setChecked(checked)
        self.reviewed_checkbox.blockSignals(False)

    def _refresh_class_combo(self, current: str | None = None) -> None:
        current = current or self.class_combo.currentText()
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        self.class_combo.addItems([c.name for c in self.classes])
        if current in {c.name for c in self.classes}:
            self.class_combo.setCurrentText(current)
        self.class_combo.blockSignals(False)

    # -- keys -------------------------------------------------------------------------
    def _bind_keys(self) -> None:
        """Bind n / b on the viewer and on every layer, present and future; Ctrl+Z on the viewer.

        No layer type binds Ctrl+Z except Labels (its own paint undo, which it keeps), so the
        viewer's binding is reached from the Image and Shapes layers.
        """
        me = weakref.ref(self)

        def action(method: str) -> Callable[[object], None]:
            def run(_owner: object) -> None:
                widget = me()
                if widget is not None:
                    getattr(widget, method)()

            run.__name__ = f"detlab_{method}"
            return run

        self._key_functions = {
            "n": action("next_image"),
            "b": action("previous_image"),
            KeyMod.CtrlCmd | KeyCode.KeyZ: action("undo"),
        }
        self._bind_keys_on(self.viewer)
        for layer in self.viewer.layers:
            self._bind_keys_on(layer)

    def _bind_keys_on(self, owner: object) -> None:
        for key, function in self._key_functions.items():
            if owner is self.viewer or key in NAVIGATION_KEYS:
                owner.bind_key(key, function, overwrite=True)

    def _on_layer_inserted(self, event: object) -> None:
        self._bind_keys_on(event.value)

    # -- closing ----------------------------------------------------------------------
    def _watch_close(self) -> None:
        """Flush pending edits however the session ends: window closed, app quit, layers cleared.

        ``viewer.close()`` clears the layers first (see :meth:`_on_layer_removing`); the
        window's close button is caught by an event filter on the top-level window
        (:meth:`_watch_window`), installed once the widget is docked: when it is shown or a
        folder is opened, whichever comes first.
        """
        # A weak reference: the dock must not keep a closed viewer's window alive.
        self._watched_window: weakref.ref[QObject] | None = None
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.flush)

    def _watch_window(self) -> None:
        window = self.window()
        watched = self._watched_window() if self._watched_window is not None else None
        if window is not self and window is not watched:
            window.installEventFilter(self)
            self._watched_window = weakref.ref(window)

    def showEvent(self, event: object) -> None:  # noqa: N802 (Qt API)
        self._watch_window()
        super().showEvent(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        if event.type() == QEvent.Type.Close:
            self.flush()
            self._prefetcher.shutdown()
        return False

    def _on_layer_removing(self, event: object) -> None:
        """A class layer is about to go (``viewer.close`` clears layers first): save it now."""
        layer = self.viewer.layers[event.index]
        if layer in self._class_layers.values():
            self.flush()

    def closeEvent(self, event: object) -> None:  # noqa: N802 (Qt API)
        self.flush()
        super().closeEvent(event)

    # -- folder and navigation --------------------------------------------------------
    @property
    def current_path(self) -> Path | None:
        """The image on screen, or ``None``."""
        if self.store is None or not 0 <= self.index < len(self.store.images):
            return None
        return self.store.images[self.index]

    def open_folder(self, path: str | Path) -> None:
        """Open a dataset folder and show its first image."""
        self._watch_window()
        self.flush()
        store = self.session.open_dataset(path)
        self.store = store
        self.index = -1
        self.history.clear()
        self._prefetcher.clear()
        self._unreadable.clear()
        self._saved = ImageAnnotation()
        self.folder_label.setText(str(store.root))
        try:
            self.classes = store.load_classes()
        except AnnotationError as error:
            show_error(str(error))
            self.classes = []
        if not self.classes:
            self.classes = [ClassSpec(DEFAULT_CLASS, DEFAULT_COLORS[0])]
            store.save_classes(self.classes)
        self._sync_class_layers()
        self._refresh_class_combo(self.classes[0].name)
        duplicates = store.duplicate_stems()
        if duplicates:
            show_warning(
                f"{store.root}: images {', '.join(duplicates[:5])} exist with two extensions and "
                "would share one annotation file; rename one of each pair"
            )
        if not store.images:
            show_warning(f"{store.root}: no images found (JPEG, PNG, TIFF, BMP, WebP)")
            self._update_labels()
            return
        self.go_to(0)
        self._activate_class(self.classes[0].name)

    def next_image(self) -> None:
        """Show the next image (saving the current one first); stays on the last one."""
        if self.store is not None and self.index < len(self.store.images) - 1:
            self.go_to(self.index + 1, step=1)
        else:
            self.flush()
            self.status_label.setText("Last image")

    def previous_image(self) -> None:
        """Show the previous image (saving the current one first); stays on the first one."""
        if self.store is not None and self.index > 0:
            self.go_to(self.index - 1, step=-1)
        else:
            self.flush()
            self.status_label.setText("First image")

    def next_unannotated(self) -> None:
        """Jump to the next image without an annotation file, wrapping around."""
        if self.store is None:
            return
        self.flush()
        target = self.store.next_unannotated(after=self.index)
        if target is None:
            show_info("Every image has been annotated or marked reviewed")
            return
        self.go_to(target)

    def go_to(self, index: int, step: int = 1) -> None:
        """Save the current image, then show image ``index``.

        A file that cannot be decoded is reported once (naming it) and skipped in the
        direction ``step``, so one broken file never stops an afternoon's work.
        """
        if self.store is None or not self.store.images:
            return
        self.flush()
        images = self.store.images
        index = int(np.clip(index, 0, len(images) - 1))
        while 0 <= index < len(images):
            try:
                pixels = self._prefetcher.get(images[index])
            except ImageReadError as error:
                if images[index] not in self._unreadable:
                    self._unreadable.add(images[index])
                    show_warning(f"Skipped: {error}")
                index += step if step else 1
                continue
            break
        else:
            self.status_label.setText("No readable image in that direction")
            return
        path = images[index]
        annotation = self._load_or_set_aside(path)
        self.index = index
        self._image_size = (int(pixels.shape[0]), int(pixels.shape[1]))
        self._show_image(pixels)
        self._saved = annotation if annotation is not None else ImageAnnotation()
        self._show_annotation(self._saved)
        self._update_labels()
        self.status_label.setText("Saved" if annotation is not None else "Not annotated yet")
        self.session.set_image(index, path)
        self._prefetch_timer.start()

    def _prefetch_neighbours(self) -> None:
        """Start decoding the images ``n`` and ``b`` would show next."""
        if self.store is None or self.index < 0:
            return
        images = self.store.images
        around = (self.index + 1, self.index - 1)
        self._prefetcher.prefetch(
            [images[i] for i in around if 0 <= i < len(images)], keep=[images[self.index]]
        )

    def _load_or_set_aside(self, path: Path) -> ImageAnnotation | None:
        """The image's annotation; a file that fails to load is renamed, never overwritten.

        The next edit would otherwise replace a file the user may still want to repair (or
        that a newer version wrote); renamed to ``<stem>.pt.unreadable`` it is kept, and the
        store no longer sees it.
        """
        assert self.store is not None
        try:
            return self.store.load(path)
        except DetlabError as error:
            bad = self.store.path_for(path)
            aside = bad.with_name(bad.name + ".unreadable")
            bad.replace(aside)
            show_error(f"{error}. Renamed to {aside.name}; {path.name} is shown without boxes")
            return None

    def reload_current(self) -> None:
        """Re-read the current image's annotation from disk and redraw it, saving nothing."""
        path = self.current_path
        if path is None or self.store is None:
            return
        self._save_timer.stop()
        try:
            annotation = self.store.load(path)
        except DetlabError as error:
            show_error(str(error))
            return
        self._saved = annotation if annotation is not None else ImageAnnotation()
        for label in self._saved.labels:
            self._ensure_class(label)
        self._show_annotation(self._saved)

    def _on_show_image_requested(self, path: Path, _box: int | None) -> None:
        """Another dock asks for an image of this dataset (the asking dock selects its box)."""
        if self.store is not None and path in self.store.images:
            self.go_to(self.store.images.index(path))  # tells everyone through image_changed

    def _on_annotations_changed(self, path: object) -> None:
        current = self.current_path
        if current is not None and path is not None and Path(path).stem == current.stem:
            self.reload_current()

    # -- drawing layers ---------------------------------------------------------------
    def _show_image(self, pixels: np.ndarray) -> None:
        """Put ``pixels`` in the reused Image layer (a new layer only if rgb-ness changes)."""
        rgb = pixels.ndim == 3
        full, limits = contrast_for(pixels)
        layer = self._image_layer
        if layer is not None and (layer not in self.viewer.layers or layer.rgb != rgb):
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
            layer = None
        if layer is None:
            layer = self.viewer.add_image(pixels, name=IMAGE_LAYER, rgb=rgb, contrast_limits=limits)
            self.viewer.layers.move(self.viewer.layers.index(layer), 0)
            self._image_layer = layer
            self.viewer.reset_view()
            return
        old_shape = layer.data.shape
        layer.data = pixels
        if tuple(layer.contrast_limits_range) != full:
            layer.contrast_limits_range = full
        if tuple(layer.contrast_limits) != limits:
            layer.contrast_limits = limits
        if old_shape[:2] != pixels.shape[:2]:
            self.viewer.reset_view()

    def _layer_for(self, class_name: str) -> Shapes | None:
        """The class's Shapes layer if it is still in the viewer."""
        layer = self._class_layers.get(class_name)
        return layer if layer is not None and layer in self.viewer.layers else None

    def _sync_class_layers(self) -> None:
        """One Shapes layer per class, in the class colour; layers of old classes removed."""
        self._filling_layers = True
        try:
            names = {c.name for c in self.classes}
            for name, layer in list(self._class_layers.items()):
                if name not in names:
                    del self._class_layers[name]
                    if layer in self.viewer.layers:
                        self.viewer.layers.remove(layer)
            for spec in self.classes:
                if self._layer_for(spec.name) is None:
                    layer = add_class_layer(self.viewer, spec)
                    layer.events.data.connect(self._on_boxes_edited)
                    layer.mouse_drag_callbacks.append(self._drag_tracker)
                    self._class_layers[spec.name] = layer
        finally:
            self._filling_layers = False

    def _show_annotation(self, annotation: ImageAnnotation) -> None:
        """Fill every class layer from ``annotation`` (not an edit: nothing is saved)."""
        self._sync_class_layers()
        labels = np.asarray(annotation.labels, dtype=object)
        self._filling_layers = True
        try:
            for spec in self.classes:
                layer = self._class_layers[spec.name]
                set_layer_boxes(layer, annotation.boxes[labels == spec.name])
        finally:
            self._filling_layers = False
        self._set_reviewed_checkbox(annotation.reviewed or len(annotation) > 0)

    def _activate_class(self, class_name: str) -> None:
        """Make the class's layer the active one, in rectangle-drawing mode."""
        layer = self._layer_for(class_name)
        if layer is None:
            return
        self.viewer.layers.selection.active = layer
        layer.mode = "add_rectangle"

    def _on_class_chosen(self, class_name: str) -> None:
        if class_name:
            self._activate_class(class_name)

    def _on_active_layer(self, event: object) -> None:
        for name, layer in self._class_layers.items():
            if layer is event.value and self.class_combo.currentText() != name:
                self.class_combo.blockSignals(True)
                self.class_combo.setCurrentText(name)
                self.class_combo.blockSignals(False)

    # -- saving -----------------------------------------------------------------------
    def _on_boxes_edited(self, event: object = None) -> None:
        if self._filling_layers or self.store is None or self.index < 0:
            return
        self.status_label.setText("Saving…")
        self._save_timer.start()

    def _autosave(self) -> None:
        """Timer callback: save, unless the user is still dragging a box (then wait)."""
        if self._dragging:
            self._save_timer.start()
            return
        self.flush()

    def _live_class_layers(self) -> list[Shapes]:
        return [layer for c in self.classes if (layer := self._layer_for(c.name)) is not None]

    def current_annotation(self) -> ImageAnnotation:
        """What the layers show now, sanitized as it would be saved.

        A class whose layer the user deleted keeps its saved boxes: removing a layer from
        the layer list must not silently delete an afternoon's boxes.
        """
        saved_labels = np.asarray(self._saved.labels, dtype=object)
        boxes: list[np.ndarray] = []
        labels: list[str] = []
        dropped = 0
        for spec in self.classes:
            layer = self._layer_for(spec.name)
            if layer is None:
                class_boxes = self._saved.boxes[saved_labels == spec.name].astype(np.float64)
            else:
                class_boxes, keep = sanitize_boxes(layer_boxes(layer), self._image_size)
                if not keep.all():
                    dropped += int((~keep).sum())
                    self._remove_shapes(layer, np.flatnonzero(~keep))
                    class_boxes = class_boxes[keep]
            boxes.append(class_boxes)
            labels += [spec.name] * len(class_boxes)
        if dropped:
            show_info(f"Ignored {dropped} box(es) smaller than 1 pixel (a click, not a drag)")
        stacked = np.concatenate(boxes) if boxes else np.zeros((0, 4))
        return ImageAnnotation(
            boxes=stacked,
            labels=labels,
            reviewed=self.reviewed_checkbox.isChecked() or bool(labels),
            image_size=self._image_size,
            extra=dict(self._saved.extra),  # keys of other tools survive an edit
        )

    def _remove_shapes(self, layer: Shapes, indices: np.ndarray) -> None:
        if self._dragging:
            return  # the shape may still be being drawn; it is left out of the file anyway
        self._filling_layers = True
        try:
            layer.selected_data = {int(i) for i in indices}
            layer.remove_selected()
        finally:
            self._filling_layers = False

    def flush(self) -> bool:
        """Write the current image's annotation now if it changed; ``True`` if on disk.

        Called on every navigation, class change and close, and by the autosave timer.
        Unchanged annotations are not rewritten, and an image nobody touched gets no file.
        """
        self._save_timer.stop()
        path = self.current_path
        if path is None or self.store is None:
            return True
        annotation = self.current_annotation()
        if same_boxes(annotation, self._saved):
            self.status_label.setText("Saved")
            return True
        previous = self._saved
        if not self._write(path, annotation):
            return False
        self.history.push(path.stem, previous)
        return True

    def _write(self, path: Path, annotation: ImageAnnotation) -> bool:
        """Save (or, for an untouched empty image, delete) the file; report failures."""
        assert self.store is not None
        try:
            if len(annotation) == 0 and not annotation.reviewed:
                self.store.delete(path)
            else:
                self.store.save(path, annotation)
        except (OSError, DetlabError) as error:
            show_error(f"Could not save the boxes of {path.name}: {error}")
            self.status_label.setText("NOT SAVED")
            return False
        self._saved = annotation
        self._set_reviewed_checkbox(annotation.reviewed)
        self.status_label.setText("Saved")
        self.session.annotation_saved.emit(path)
        return True

    def _on_reviewed_toggled(self, checked: bool) -> None:
        if not checked and any(layer.nshapes for layer in self._live_class_layers()):
            self._set_reviewed_checkbox(True)
            show_info("An image with boxes counts as reviewed; delete its boxes first")
            return
        self.flush()

    def undo(self) -> None:
        """Put back the annotation before the last saved edit of this image, and save it."""
        path = self.current_path
        if path is None:
            return
        self.flush()
        previous = self.history.pop(path.stem)
        if previous is None:
            self.status_label.setText("Nothing to undo")
            return
        for label in previous.labels:
            self._ensure_class(label)
        self._show_annotation(previous)
        self._write(path, previous)

    # -- classes ----------------------------------------------------------------------
    def _ensure_class(self, name: str) -> None:
        """Add a class met in a file but missing from the list (another tool wrote it)."""
        if name not in {c.name for c in self.classes}:
            self.classes.append(ClassSpec(name, _next_color(self.classes)))
            self._save_classes()

    def _save_classes(self) -> None:
        assert self.store is not None
        self.store.save_classes(self.classes)
        self._sync_class_layers()
        self._refresh_class_combo()

    def add_class(self, name: str, color: str | None = None) -> ClassSpec:
        """Add a class (and its layer); the list is saved with the dataset."""
        name = name.strip()
        if self.store is None:
            raise AnnotationError("open a folder before adding classes")
        if not name:
            raise AnnotationError("a class needs a name")
        if name in {c.name for c in self.classes}:
            raise AnnotationError(f"a class named {name!r} exists already")
        spec = ClassSpec(name, color or _next_color(self.classes))
        self.classes.append(spec)
        self._save_classes()
        self._layer_for(name).mode = "add_rectangle"
        return spec

    def rename_class(self, old: str, new: str) -> int:
        """Rename a class everywhere (every file, the list, the layer); returns boxes relabelled."""
        new = new.strip()
        if self.store is None or old not in {c.name for c in self.classes}:
            raise AnnotationError(f"no class named {old!r}")
        if not new:
            raise AnnotationError("a class needs a name")
        self.flush()
        changed = self.store.rename_class(old, new)
        layer = self._class_layers.pop(old, None)
        self.classes = [ClassSpec(new if c.name == old else c.name, c.color) for c in self.classes]
        if layer is not None:
            layer.name = class_layer_name(new)
            self._class_layers[new] = layer
        self.history.clear()  # snapshots name the old class
        self._saved = self._load_saved()
        self._refresh_class_combo(new if self.class_combo.currentText() == old else None)
        return changed

    def remove_class(self, name: str, *, delete_boxes: bool = False) -> int:
        """Remove a class; with boxes using it, only when ``delete_boxes`` is true.

        Raises
        ------
        ClassInUseError
            Boxes use the class and ``delete_boxes`` is false; nothing was changed.
        """
        if self.store is None or name not in {c.name for c in self.classes}:
            raise AnnotationError(f"no class named {name!r}")
        self.flush()
        removed = self.store.remove_class(name, delete_boxes=delete_boxes)
        self.classes = [c for c in self.classes if c.name != name]
        if not self.classes:
            self.classes = [ClassSpec(DEFAULT_CLASS, DEFAULT_COLORS[0])]
        self._save_classes()
        self.history.clear()  # snapshots hold boxes of the removed class
        self._saved = self._load_saved()
        return removed

    def set_class_color(self, name: str, color: str) -> None:
        """Recolour a class's boxes; saved with the class list."""
        self.classes = [
            ClassSpec(c.name, color if c.name == name else c.color) for c in self.classes
        ]
        layer = self._layer_for(name)
        if layer is not None:
            style_class_layer(layer, color)
        self._save_classes()

    def move_selected_to_class(self, target: str) -> int:
        """Relabel the boxes selected in any class layer as ``target``; saved at once."""
        destination = self._layer_for(target)
        if destination is None:
            raise AnnotationError(f"no class named {target!r}")
        moved: list[np.ndarray] = []
        self._filling_layers = True
        try:
            for layer in self._live_class_layers():
                if layer is destination or not layer.selected_data:
                    continue
                selected = sorted(layer.selected_data)
                moved.append(layer_boxes(layer)[selected])
                layer.remove_selected()
            if moved:
                boxes = np.concatenate(moved)
                current = layer_boxes(destination)
                set_layer_boxes(destination, np.concatenate([current, boxes]))
        finally:
            self._filling_layers = False
        self.flush()
        return int(sum(len(m) for m in moved))

    def _load_saved(self) -> ImageAnnotation:
        path = self.current_path
        loaded = self.store.load(path) if path is not None and self.store is not None else None
        return loaded if loaded is not None else ImageAnnotation()

    def _selected_class(self) -> str | None:
        return self.class_combo.currentText() or None

    def _add_class_clicked(self) -> None:
        try:
            spec = self.add_class(self.new_class_edit.text())
        except DetlabError as error:
            show_warning(str(error))
            return
        self.new_class_edit.clear()
        self._refresh_class_combo(spec.name)
        self._activate_class(spec.name)

    def _rename_class_clicked(self) -> None:
        old = self._selected_class()
        if old is None:
            return
        new, ok = QInputDialog.getText(self, "Rename class", f"New name for {old!r}:", text=old)
        if ok and new.strip() and new.strip() != old:
            try:
                self.rename_class(old, new)
            except DetlabError as error:
                show_warning(str(error))

    def _remove_class_clicked(self) -> None:
        name = self._selected_class()
        if name is None:
            return
        try:
            self.remove_class(name)
        except ClassInUseError as error:
            answer = QMessageBox.question(
                self,
                "Remove class",
                f"{error}.\n\nDelete those boxes from every image?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel,
            )
            if answer == QMessageBox.StandardButton.Yes:
                self.remove_class(name, delete_boxes=True)

    def _color_class_clicked(self) -> None:
        name = self._selected_class()
        if name is None:
            return
        current = next(c.color for c in self.classes if c.name == name)
        color = QColorDialog.getColor(QColor(current), self, f"Colour of {name!r}")
        if color.isValid():
            self.set_class_color(name, color.name())

    def _move_selected_clicked(self) -> None:
        name = self._selected_class()
        if name is not None and not self.move_selected_to_class(name):
            show_info("Select boxes first (select mode, click or drag a box around them)")

    # -- teardown ---------------------------------------------------------------------
    def teardown(self) -> None:
        """Save, stop background work and give the viewer its keys and events back.

        Called when the dock is removed (napari un-parents the widget rather than deleting
        it; the plugin menu then makes a new Annotator); what needs no widget is also done
        if the widget is destroyed.
        """
        self.flush()
        self._save_timer.stop()
        self._prefetch_timer.stop()
        _release(**self._release_arguments())
        self.store, self.index = None, -1

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ParentChange:
            if self.parent() is not None:
                self._was_docked = True
            elif getattr(self, "_was_docked", False) and self.store is not None:
                self.teardown()
        return super().event(event)

    def _release_arguments(self) -> dict[str, object]:
        """What :func:`_release` needs, none of it the widget itself."""
        return {
            "viewer_ref": weakref.ref(self.viewer),
            "key_functions": self._key_functions,
            "prefetcher": self._prefetcher,
            "connections": self._connections,
            "drag_tracker": self._drag_tracker,
        }


def _drag_tracker(widget_ref: weakref.ref[AnnotatorWidget]) -> Callable[..., Iterator[None]]:
    """A mouse-drag callback telling the widget when a box is being drawn or dragged.

    The autosave waits while the button is down (a half-drawn rectangle is not worth a
    write) and restarts its delay on release.
    """

    def track(_layer: object, event: object) -> Iterator[None]:
        widget = widget_ref()
        if widget is None:
            return
        widget._dragging = True
        try:
            yield
            while event.type == "mouse_move":
                yield
        finally:
            widget._dragging = False
            if widget._save_timer.isActive():
                widget._save_timer.start()

    return track


def _next_color(classes: list[ClassSpec]) -> str:
    """A default colour for a new class, cycling through the store's palette."""
    return DEFAULT_COLORS[len(classes) % len(DEFAULT_COLORS)]


def _release(
    viewer_ref: weakref.ref[napari.Viewer],
    key_functions: dict[object, Callable[[object], None]],
    prefetcher: ImagePrefetcher,
    connections: list[tuple[object, Callable[..., None]]],
    drag_tracker: Callable[..., Iterator[None]],
) -> None:
    """Give the viewer back what the Annotator hooked into it, and stop the prefetch thread.

    Keys are unbound where they are still the Annotator's; the viewer's events no longer
    reach a widget that may be deleted.
    """
    from napari.utils.key_bindings import coerce_keybinding

    prefetcher.shutdown()
    for signal, callback in connections:
        signal.disconnect(callback)
    viewer = viewer_ref()
    if viewer is None:
        return
    for owner in [viewer, *viewer.layers]:
        for key, function in key_functions.items():
            if owner.keymap.get(coerce_keybinding(key)) is function:
                owner.bind_key(key, None)
        callbacks = getattr(owner, "mouse_drag_callbacks", [])
        if drag_tracker in callbacks:
            callbacks.remove(drag_tracker)
