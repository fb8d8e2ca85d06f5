"""The Annotator dock: browse a folder, draw boxes per class, every edit saved at once.

The dock is the view of an :class:`~napari_detlab.core.annotations.annotator.Annotator`
model, which decides what is shown and what is written: it shows the image in a reused Image
layer and its boxes in one Shapes layer per class (:class:`~napari_detlab._qt.box_layers.
ClassLayers`), and asks the model to save whenever the boxes change (debounced by
:data:`AUTOSAVE_DELAY_MS`), before the image changes and before the viewer closes. What is on
disk is the truth; the layers are a view of it.

Keyboard first: next / previous image, undo / redo, a class by number, "reviewed", copying the
previous image's boxes and moving or resizing the selected boxes all have keys, shown in the
dock and changed in napari's Preferences (:mod:`~napari_detlab._qt.annotator_keys` binds them).
The Open dialog starts in the last folder opened, and the autosave delay is a setting too.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QFileDialog, QWidget

from napari_detlab._layers import BOX_EDGE_WIDTH
from napari_detlab._qt.annotator_controls import build_controls
from napari_detlab._qt.annotator_keys import AnnotatorKeys
from napari_detlab._qt.box_edits import nudge_selected
from napari_detlab._qt.box_layers import ClassLayers
from napari_detlab._qt.image_layer import ImageView
from napari_detlab._qt.lifecycle import WindowCloseWatcher
from napari_detlab._qt.plugin_settings import remember, setting
from napari_detlab._qt.session import session_for
from napari_detlab.core.annotations.annotator import Annotator, Level, ShownImage
from napari_detlab.core.annotations.keymap import NUDGES

if TYPE_CHECKING:
    import napari

    from napari_detlab.core.annotations.annotation import ImageAnnotation
    from napari_detlab.core.annotations.store import AnnotationStore, ClassSpec

__all__ = ["AUTOSAVE_DELAY_MS", "AnnotatorWidget"]

AUTOSAVE_DELAY_MS = 300
# Neighbours are decoded once the new image is on screen, not while it is being drawn:
# on a 2-core machine the decode would otherwise compete with the repaint the user waits for.
PREFETCH_DELAY_MS = 150
SETTINGS = "annotator"  # the manifest's settings category of this dock
NUDGE_STEP = 10  # image pixels an arrow key moves or resizes a box (a setting)
_NOTIFY: dict[Level, Callable[[str], None]] = {
    "info": show_info,
    "warning": show_warning,
    "error": show_error,
}


class AnnotatorWidget(QWidget):
    """Annotate a folder of images with boxes of several classes; saves every edit.

    Parameters
    ----------
    napari_viewer
        The viewer to draw in; its :func:`~napari_detlab._qt.session.session_for` session
        learns the dataset and the image on screen.

    Attributes
    ----------
    annotator
        The model: dataset, image on screen, classes, undo, and the rules of saving.
    class_layers
        The Shapes layers the boxes are drawn in, one per class.
    next_button, status_label, reviewed_checkbox, class_list, prelabels, ...
        The controls, made and laid out by
        :func:`~napari_detlab._qt.annotator_controls.build_controls`.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.class_layers = ClassLayers(
            napari_viewer,
            self._on_boxes_edited,
            self._on_released,
            setting(SETTINGS, "box_edge_width", float(BOX_EDGE_WIDTH)),
            partial(remember, SETTINGS, "box_edge_width"),
        )
        self.annotator = Annotator(self.class_layers)
        self._image_view = ImageView(napari_viewer)

        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(AUTOSAVE_DELAY_MS)
        self._save_timer.timeout.connect(self._autosave)
        self._prefetch_timer = QTimer(self)
        self._prefetch_timer.setSingleShot(True)
        self._prefetch_timer.setInterval(PREFETCH_DELAY_MS)
        self._prefetch_timer.timeout.connect(self.annotator.prefetch_neighbours)

        build_controls(self)  # buttons and labels, wired to this dock's methods
        self._bind_keys()
        model = self.annotator
        model.image_shown.connect(self._on_image_shown)
        model.annotation_shown.connect(self.class_layers.fill)
        model.reviewed_changed.connect(self._show_reviewed)
        model.classes_changed.connect(self.class_layers.sync)
        model.class_renamed.connect(self.class_layers.rename)
        model.status_changed.connect(self._on_status)
        model.annotation_saved.connect(self.session.annotation_saved.emit)
        model.notice.connect(self._notify)

        viewer_events = [
            (self.viewer.layers.events.inserted, self._on_layer_inserted),
            (self.viewer.layers.events.removing, self._on_layer_removing),
            (self.viewer.layers.selection.events.active, self._on_active_layer),
            (self.viewer.dims.events.current_step, self._on_dims_step),
        ]
        for signal, callback in viewer_events:
            signal.connect(callback)
        session_slots = {
            "annotations_changed": self._on_annotations_changed,
            "flush_requested": self.flush,
            "show_image_requested": self._on_show_image_requested,
            "open_folder_requested": self.open_folder,
        }
        self.session.attach(self, teardown=self.teardown, **session_slots)
        # All of it undone by _release, also when the widget is destroyed before its teardown.
        self._connections = viewer_events + [
            (getattr(self.session, name), slot) for name, slot in session_slots.items()
        ]
        # Pending edits are saved however the session ends: window closed, app quit (here),
        # layers cleared by viewer.close() (_on_layer_removing), dock removed (teardown).
        self._window_close = WindowCloseWatcher(self, self._on_window_close)
        # Runs after the C++ widget is gone (dock removed), so it must not touch ``self``.
        self.destroyed.connect(partial(_release, **self._release_arguments()))

    # -- the model's state, as the dock's --------------------------------------------------
    @property
    def store(self) -> AnnotationStore | None:
        """The open dataset, or ``None`` before a folder is chosen."""
        return self.annotator.store

    @property
    def index(self) -> int:
        """Position of the image on screen in ``store.images`` (``-1`` when none)."""
        return self.annotator.index

    @property
    def classes(self) -> list[ClassSpec]:
        """The dataset's classes, in the order of the class list."""
        return self.annotator.classes

    @property
    def current_path(self) -> Path | None:
        """The image on screen, or ``None``."""
        return self.annotator.current_path

    # -- user interface (the controls: annotator_controls) ---------------------------------
    def _choose_folder(self) -> None:
        last = setting(SETTINGS, "last_folder", "")
        folder = QFileDialog.getExistingDirectory(self, "Image folder to annotate", last)
        if folder:
            self.open_folder(folder)

    def _update_labels(self) -> None:
        count = len(self.store.images) if self.store else 0
        self.position_label.setText(f"{self.index + 1 if self.index >= 0 else 0} / {count}")
        path = self.current_path
        self.image_label.setText(path.name if path else "")
        self.previous_button.setEnabled(self.index > 0)
        self.next_button.setEnabled(0 <= self.index < count - 1)

    def _show_reviewed(self, checked: bool) -> None:
        """Show ``checked`` without treating it as the user's click."""
        self.reviewed_checkbox.blockSignals(True)
        self.reviewed_checkbox.setChecked(checked)
        self.reviewed_checkbox.blockSignals(False)

    def _on_status(self, text: str) -> None:
        # The model reports a file's state after each save or check of the boxes: a pending
        # autosave has nothing left to write.
        self._save_timer.stop()
        self.status_label.setText(text)

    def _notify(self, level: Level, message: str) -> None:
        _NOTIFY[level](message)

    # -- keys -------------------------------------------------------------------------------
    def _bind_keys(self) -> None:
        """Bind the keys the settings name (and again whenever they change)."""
        me = weakref.ref(self)

        def run(action: str) -> None:
            widget = me()
            if widget is not None:
                widget.run_key_action(action)

        self.keys = AnnotatorKeys(self.viewer, run, show_warning, lambda: run("keys_bound"))
        self.keys.bind()

    def run_key_action(self, action: str) -> None:
        """Do what a key does: ``action`` names it (see :mod:`~napari_detlab.core.annotations.
        keymap`); ``"keys_bound"`` says the keys changed, to be shown again."""
        if action == "keys_bound":
            self._show_keys()
        elif action.startswith("class_"):
            self.choose_class(int(action.removeprefix("class_")))
        elif action.removesuffix("_fine") in NUDGES:
            self.nudge(action)
        else:  # the dock's own method when it has one (it saves first), else the model's
            name = {"redo_second_key": "redo"}.get(action, action)
            owners = (self, self.prelabels, self.annotator)
            next(getattr(o, name) for o in owners if hasattr(o, name))()

    def _show_keys(self) -> None:
        """The keys in force: a line per group in the dock, and in the buttons' tooltips."""
        self.keys_label.setText("\n".join(self.keys.help_lines()))
        self.keys.show_in_tooltips(
            {
                self.previous_button: ("previous_image",),
                self.next_button: ("next_image",),
                self.undo_button: ("undo",),
                self.redo_button: ("redo", "redo_second_key"),
                self.copy_button: ("copy_previous",),
                self.prelabels.accept_button: ("accept_proposals",),
                self.reviewed_checkbox: ("toggle_reviewed",),
            }
        )

    def _on_layer_inserted(self, event: object) -> None:
        self.keys.bind_on(event.value)

    # -- closing ----------------------------------------------------------------------------
    def _on_window_close(self) -> None:
        """The window closes or the app quits: save now, stop decoding ahead."""
        self.flush()
        self.annotator.prefetcher.shutdown()

    def _on_layer_removing(self, event: object) -> None:
        """A class layer is about to go (``viewer.close`` clears layers first): save it now."""
        if self.class_layers.class_of(self.viewer.layers[event.index]) is not None:
            self.flush()

    # -- folder and navigation --------------------------------------------------------------
    def open_folder(self, path: str | Path) -> None:
        """Open a dataset folder (for every dock of the viewer) and show its first image."""
        self._window_close.watch_window()
        self.flush()
        self.annotator.open(self.session.open_dataset(path))
        self.folder_label.setText(str(self.annotator.store.root))
        remember(SETTINGS, "last_folder", str(self.annotator.store.root))
        self._update_labels()
        first = self.classes[0].name
        self.class_list.select(first)
        if self.current_path is not None:
            self._activate_class(first)

    def go_to(self, index: int, step: int = 1) -> None:
        """Save the current image, then show image ``index`` (broken images skipped by ``step``)."""
        self.annotator.go_to(index, step)

    def next_image(self) -> None:
        """Show the next image (saving the current one first); stays on the last one."""
        self.annotator.next_image()

    def previous_image(self) -> None:
        """Show the previous image (saving the current one first); stays on the first one."""
        self.annotator.previous_image()

    def next_unannotated(self) -> None:
        """Jump to the next image without an annotation file, wrapping around."""
        self.annotator.next_unannotated()

    def undo(self) -> None:
        """Put back the annotation before the last saved edit of this image, and save it."""
        self.annotator.undo()

    def copy_previous(self) -> int:
        """Add the previous image's boxes to this one (one undo step); returns how many."""
        self._save_timer.stop()
        return self.annotator.copy_previous()

    def choose_class(self, number: int) -> None:
        """Draw class ``number`` (1 is the first of the class list) from now on."""
        if not 1 <= number <= len(self.classes):
            self.status_label.setText(f"No class {number}: the list has {len(self.classes)}")
            return
        name = self.classes[number - 1].name
        self.class_list.select(name)
        self._activate_class(name)

    def nudge(self, action: str) -> None:
        """Move or resize the selected boxes of the chosen class layer by one step, or by one
        pixel for a ``*_fine`` action; saved like any edit."""
        layer = self.viewer.layers.selection.active
        dx, dy, grow_x, grow_y = NUDGES[action.removesuffix("_fine")]
        step = 1 if action.endswith("_fine") else setting(SETTINGS, "nudge_step", NUDGE_STEP)
        moved = 0
        if self.class_layers.class_of(layer) is not None:
            size = self.annotator.image_size
            moved = nudge_selected(
                layer, (dx * step, dy * step), (grow_x * step, grow_y * step), size
            )
        if not moved:
            self.status_label.setText("Select boxes first (select mode, click or drag around them)")

    def reload_current(self) -> None:
        """Re-read the current image's annotation from disk and redraw it, saving nothing."""
        self._save_timer.stop()
        self.annotator.reload()

    def _on_image_shown(self, shown: ShownImage) -> None:
        self._image_view.show(shown.path, shown.pixels)
        self.class_layers.fill(shown.annotation)
        self._update_labels()
        self.session.set_image(shown.index, shown.path)
        self._prefetch_timer.start()

    def _on_show_image_requested(self, path: Path, _box: int | None) -> None:
        """Another dock asks for an image of this dataset (the asking dock selects its box)."""
        self.annotator.show(path)  # tells everyone through image_changed

    def _on_annotations_changed(self, path: object) -> None:
        if self.annotator.shows(path):
            self.reload_current()

    # -- drawing layers ---------------------------------------------------------------------
    def _on_dims_step(self, event: object) -> None:
        """The dims slider moved over a stack: show (and annotate) the plane it points at."""
        plane = self._image_view.plane_on_slider()
        if plane is not None and plane != self.current_path:
            self._save_timer.stop()
            self.annotator.show(plane)

    def _activate_class(self, class_name: str) -> None:
        """Make the class's layer the active one, in rectangle-drawing mode."""
        layer = self.class_layers.layer_for(class_name)
        if layer is None:
            return
        self.viewer.layers.selection.active = layer
        layer.mode = "add_rectangle"

    def _on_active_layer(self, event: object) -> None:
        name = self.class_layers.class_of(event.value)
        if name is not None and self.class_list.selected() != name:
            self.class_list.select(name)

    # -- saving -----------------------------------------------------------------------------
    def _on_boxes_edited(self) -> None:
        if self.current_path is None:
            return
        self.status_label.setText("Saving…")
        self._save_timer.setInterval(setting(SETTINGS, "autosave_delay_ms", AUTOSAVE_DELAY_MS))
        self._save_timer.start()

    def _on_released(self) -> None:
        """A drawn or dragged box was let go: the autosave delay starts again from now."""
        if self._save_timer.isActive():
            self._save_timer.start()

    def _autosave(self) -> None:
        """Timer callback: save, unless the user is still dragging a box (then wait)."""
        if self.class_layers.dragging:
            self._save_timer.start()
            return
        self.flush()

    def flush(self) -> bool:
        """Write the current image's annotation now if it changed; ``True`` if on disk.

        Called on every navigation, class change and close, and by the autosave timer.
        """
        self._save_timer.stop()
        return self.annotator.flush()

    def current_annotation(self) -> ImageAnnotation:
        """What the layers show now, as it would be saved."""
        return self.annotator.current_annotation()

    def move_selected_to_class(self, target: str) -> int:
        """Relabel the boxes selected in any class layer as ``target``; saved at once."""
        moved = self.class_layers.move_selected(target)
        self.flush()
        return moved

    def _move_selected(self, target: str) -> None:
        if not self.move_selected_to_class(target):
            show_info("Select boxes first (select mode, click or drag a box around them)")

    # -- teardown ---------------------------------------------------------------------------
    def teardown(self) -> None:
        """Save, stop background work and give the viewer its keys and events back.

        Run by the session when the dock closes or napari removes it (napari un-parents the
        widget rather than deleting it; the plugin menu then makes a new Annotator); what
        needs no widget is also done if the widget is destroyed first.
        """
        self.flush()
        self._prefetch_timer.stop()
        self.prelabels.teardown()
        _release(**self._release_arguments())

    def _release_arguments(self) -> dict[str, object]:
        """What :func:`_release` needs, none of it the widget itself."""
        return {
            "viewer_ref": weakref.ref(self.viewer),
            "keys": self.keys,
            "annotator": self.annotator,
            "connections": self._connections,
            "drag_tracker": self.class_layers.tracker,
        }


def _release(
    viewer_ref: weakref.ref[napari.Viewer],
    keys: AnnotatorKeys,
    annotator: Annotator,
    connections: list[tuple[object, Callable[..., None]]],
    drag_tracker: Callable[..., Iterator[None]],
) -> None:
    """Give the viewer back what the Annotator hooked into it, and close the model.

    Keys are unbound where they are still the Annotator's; the viewer's and the session's
    events no longer reach a widget that may be deleted; the prefetch thread stops.
    """
    annotator.close()
    keys.release()
    for signal, callback in connections:
        signal.disconnect(callback)
    viewer = viewer_ref()
    if viewer is None:
        return
    for owner in [viewer, *viewer.layers]:
        callbacks = getattr(owner, "mouse_drag_callbacks", [])
        if drag_tracker in callbacks:
            callbacks.remove(drag_tracker)
