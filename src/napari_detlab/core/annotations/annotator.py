"""The Annotator's model: which image is on screen, what its file holds, and when to write it.

The Annotator dock draws; this class decides. It owns the open dataset's
:class:`~napari_detlab.core.annotations.store.AnnotationStore`, the image on screen and what
its annotation file holds, the class list, the undo history and the image prefetch, and the
rules of annotating: an image nobody touched gets no file, an emptied image that was never
marked reviewed loses its file, a broken image is reported once and skipped, a broken
annotation file is set aside rather than overwritten, a class layer the user deleted keeps
its saved boxes, an image whose stem another image shares (``a.jpg``, ``a.png``) is never
saved (the store refuses, and the user is told both names) while the others work as
usual. It needs no Qt and no napari (as napari-animation's ``Animation`` under its
``AnimationWidget``): a script or a test drives it with a plain :class:`Drawing`.

The view tells the model what the user did (:meth:`Annotator.flush` after an edit,
:meth:`Annotator.next_image` on ``n``, :meth:`Annotator.set_reviewed` from the check box) and
listens to its signals to draw the outcome; the model reads the boxes on screen through the
:class:`Drawing` it was given, when it is about to write them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
from psygnal import Signal

from napari_detlab.core.annotations.annotation import (
    AnnotationError,
    ImageAnnotation,
    sanitize_boxes,
)
from napari_detlab.core.annotations.copying import boxes_not_yet_in
from napari_detlab.core.annotations.history import AnnotationHistory
from napari_detlab.core.annotations.prefetch import ImagePrefetcher
from napari_detlab.core.annotations.store import (
    DEFAULT_CLASS,
    AmbiguousImageError,
    AnnotationStore,
    ClassSpec,
    next_color,
)
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.images import ImageReadError

__all__ = ["MODEL_ACCEPTED_STATUS", "Annotator", "Drawing", "Level", "ShownImage"]

# What the status line says of an image whose boxes were accepted from the model in a batch.
MODEL_ACCEPTED_STATUS = "accepted from model, not yet reviewed"

# How loudly the view tells the user: a notification's level.
Level = Literal["info", "warning", "error"]


class Drawing(Protocol):
    """The boxes on screen, as the model reads them: the dock's class layers, or a test's dict."""

    def boxes_of(self, class_name: str) -> np.ndarray | None:
        """The boxes drawn for ``class_name``, ``(N, 4)`` xyxy; ``None`` when its layer is gone."""

    def discard(self, class_name: str, indices: np.ndarray) -> None:
        """Take boxes the model refused (clicks smaller than a pixel) off the screen."""


@dataclass(frozen=True)
class ShownImage:
    """An image that became the current one, with what its boxes are to be drawn from."""

    index: int
    path: Path
    pixels: np.ndarray
    annotation: ImageAnnotation


def _default_classes() -> list[ClassSpec]:
    """The class list of a dataset without one, so a box can be drawn before naming classes."""
    return [ClassSpec(DEFAULT_CLASS, next_color([]))]


class Annotator:
    """Browse a dataset's images and keep each one's annotation file equal to what is drawn.

    Parameters
    ----------
    drawing
        Where the user's boxes are read from when they are saved.

    Attributes
    ----------
    store
        The open dataset, or ``None`` before one is opened.
    index
        Position of the image on screen in ``store.images`` (``-1`` when none).
    classes
        The dataset's classes, in the order of the class list.
    saved
        What the current image's file holds (empty when it has none).
    reviewed
        Whether the image on screen is marked reviewed (what the view's check box shows).
    image_size
        ``(height, width)`` of the image on screen; drawn boxes are clipped to it.
    history
        The states each image's file had before its last writes, for undo.
    prefetcher
        Decodes the images next to the current one in the background.
    unreadable
        Images already reported as undecodable: skipped without a second report.
    """

    # -- what the view draws -------------------------------------------------------------
    image_shown = Signal(object)  # ShownImage: draw its pixels and its boxes
    annotation_shown = Signal(object)  # ImageAnnotation: redraw the current image's boxes
    reviewed_changed = Signal(bool)  # the reviewed check box's new state
    classes_changed = Signal(object)  # list[ClassSpec]: the class list (and its layers)
    class_renamed = Signal(str, str)  # old, new: before classes_changed; the layer is kept
    # The current file's state in a few words; always sent after the boxes on screen were
    # compared with the file (and written if they differed): nothing drawn is pending then.
    status_changed = Signal(str)
    # -- what the user and the other docks are told ----------------------------------------
    annotation_saved = Signal(object)  # Path of the image whose file was written or deleted
    notice = Signal(str, str)  # Level, message

    def __init__(self, drawing: Drawing) -> None:
        self.drawing = drawing
        self.store: AnnotationStore | None = None
        self.index = -1
        self.classes: list[ClassSpec] = []
        self.saved = ImageAnnotation()
        self.reviewed = False
        self.image_size: tuple[int, int] | None = None
        self.history = AnnotationHistory()
        self.prefetcher = ImagePrefetcher()
        self.unreadable: set[Path] = set()

    @property
    def current_path(self) -> Path | None:
        """The image on screen, or ``None``."""
        if self.store is None or not 0 <= self.index < len(self.store.images):
            return None
        return self.store.images[self.index]

    def shows(self, image: str | Path | None) -> bool:
        """Whether ``image`` is the one on screen (its annotation file is the one drawn)."""
        current = self.current_path
        return current is not None and image is not None and Path(image).stem == current.stem

    # -- dataset ---------------------------------------------------------------------------
    def open(self, store: AnnotationStore) -> None:
        """Save the current image, then show the first image of ``store``.

        A dataset without a class list gets the default class, so a box can be drawn at once.
        """
        self.flush()
        store.tidy()
        self.store, self.index, self.image_size = store, -1, None
        self.saved = ImageAnnotation()
        self.history.clear()
        self.prefetcher.clear()
        self.unreadable.clear()
        try:
            classes = store.load_classes()
        except AnnotationError as error:
            self._tell("error", str(error))
            classes = []
        if classes:
            self._set_classes(classes)
        else:
            self._save_classes(_default_classes())
        duplicates = store.duplicate_stems()
        if duplicates:
            self._tell(
                "warning",
                f"{store.root}: images {', '.join(duplicates[:5])} exist with two extensions and "
                "would share one annotation file; their boxes cannot be saved until you rename "
                "one of each pair",
            )
        if not store.images:
            self._tell("warning", f"{store.root}: no images found (JPEG, PNG, TIFF, BMP, WebP)")
            return
        self.go_to(0)

    def close(self) -> None:
        """Stop the prefetch thread and forget the dataset (nothing is saved: flush first)."""
        self.prefetcher.shutdown()
        self.store, self.index = None, -1

    # -- navigation ------------------------------------------------------------------------
    def go_to(self, index: int, step: int = 1) -> bool:
        """Save the current image, then show image ``index``; whether an image was shown.

        A file that cannot be decoded is reported once (naming it) and skipped in the
        direction ``step``, so one broken file never stops an afternoon's work.
        """
        if self.store is None or not self.store.images:
            return False
        self.flush()
        images = self.store.images
        index = int(np.clip(index, 0, len(images) - 1))
        while 0 <= index < len(images):
            try:
                pixels = self.prefetcher.get(images[index])
            except ImageReadError as error:
                if images[index] not in self.unreadable:
                    self.unreadable.add(images[index])
                    self._tell("warning", f"Skipped: {error}")
                index += step if step else 1
                continue
            break
        else:
            self.status_changed.emit("No readable image in that direction")
            return False
        path = images[index]
        loaded = self._load_or_quarantine(path)
        self.index = index
        self.image_size = (int(pixels.shape[0]), int(pixels.shape[1]))
        self.saved = loaded if loaded is not None else ImageAnnotation()
        self.image_shown.emit(ShownImage(index, path, pixels, self.saved))
        self._set_reviewed(self.saved.trainable and not self.saved.model_accepted)
        self.status_changed.emit(self.saved_status if loaded is not None else "Not annotated yet")
        return True

    def next_image(self) -> None:
        """Show the next image (saving the current one first); stays on the last one."""
        if self.store is not None and self.index < len(self.store.images) - 1:
            self.go_to(self.index + 1, step=1)
        else:
            self.flush()
            self.status_changed.emit("Last image")

    def previous_image(self) -> None:
        """Show the previous image (saving the current one first); stays on the first one."""
        if self.store is not None and self.index > 0:
            self.go_to(self.index - 1, step=-1)
        else:
            self.flush()
            self.status_changed.emit("First image")

    def next_unannotated(self) -> None:
        """Jump to the next image without an annotation file, wrapping around."""
        if self.store is None:
            return
        self.flush()
        target = self.store.next_unannotated(after=self.index)
        if target is None:
            self._tell("info", "Every image has been annotated or marked reviewed")
            return
        self.go_to(target)

    def show(self, image: Path) -> bool:
        """Go to ``image``; whether it is one of the dataset's images."""
        if self.store is None or image not in self.store.images:
            return False
        return self.go_to(self.store.images.index(image))

    def prefetch_neighbours(self) -> None:
        """Start decoding the images ``n`` and ``b`` would show next."""
        if self.store is None or self.index < 0:
            return
        images = self.store.images
        around = (self.index + 1, self.index - 1)
        self.prefetcher.prefetch(
            [images[i] for i in around if 0 <= i < len(images)], keep=[images[self.index]]
        )

    # -- saving ----------------------------------------------------------------------------
    def current_annotation(self) -> ImageAnnotation:
        """What the drawing shows now, sanitized as it would be saved.

        A class whose layer the user deleted keeps its saved boxes: removing a layer from
        the layer list must not silently delete an afternoon's boxes. Boxes smaller than a
        pixel (a click in rectangle mode) are dropped, from the drawing too.
        """
        saved_labels = np.asarray(self.saved.labels, dtype=object)
        boxes: list[np.ndarray] = []
        labels: list[str] = []
        dropped = 0
        for spec in self.classes:
            drawn = self.drawing.boxes_of(spec.name)
            if drawn is None:
                class_boxes = self.saved.boxes[saved_labels == spec.name].astype(np.float64)
            else:
                class_boxes, keep = sanitize_boxes(drawn, self.image_size)
                if not keep.all():
                    dropped += int((~keep).sum())
                    self.drawing.discard(spec.name, np.flatnonzero(~keep))
                    class_boxes = class_boxes[keep]
            boxes.append(class_boxes)
            labels += [spec.name] * len(class_boxes)
        if dropped:
            self._tell(
                "info", f"Ignored {dropped} box(es) smaller than 1 pixel (a click, not a drag)"
            )
        drawn = ImageAnnotation(
            boxes=np.concatenate(boxes) if boxes else np.zeros((0, 4)),
            labels=labels,
            reviewed=self.reviewed or bool(labels),
            image_size=self.image_size,
            extra=dict(self.saved.extra),  # keys of other tools survive an edit
        )
        # Boxes accepted from the model stay marked until the person reviews them: an edit
        # of the image, or the reviewed mark set (k, the check box), clears the mark.
        unreviewed = self.saved.model_accepted and not self.reviewed
        return drawn.marked_from_model(unreviewed and drawn.same_as(self.saved, ordered=False))

    @property
    def saved_status(self) -> str:
        """The status of an image whose file holds what is drawn: "Saved", and for boxes
        accepted from the model in a batch, that no person has reviewed them yet."""
        if self.saved.model_accepted:
            return f"Saved: {MODEL_ACCEPTED_STATUS} (edit it or tick Reviewed)"
        return "Saved"

    def flush(self) -> bool:
        """Write the current image's annotation now if it changed; ``True`` if on disk.

        Called before every navigation, class change and close, and after edits. Unchanged
        annotations are not rewritten (boxes in another order are unchanged), and an image
        with no boxes that is not marked reviewed has no file: it counts as never looked at.
        """
        path = self.current_path
        if path is None:
            return True
        annotation = self.current_annotation()
        if (
            annotation.same_as(self.saved, ordered=False)
            and annotation.model_accepted == self.saved.model_accepted
        ):
            self.status_changed.emit(self.saved_status)
            return True
        previous = self.saved
        if not self._write(path, annotation):
            return False
        self.history.push(path.stem, previous)
        return True

    def set_reviewed(self, reviewed: bool) -> None:
        """Mark the image reviewed or not, and save; an image with boxes stays reviewed."""
        if not reviewed and any(len(self._drawn(spec.name)) for spec in self.classes):
            self._set_reviewed(True)
            self._tell("info", "An image with boxes counts as reviewed; delete its boxes first")
            return
        self.reviewed = reviewed
        self.flush()

    def undo(self) -> None:
        """Put back the annotation before the last saved edit of this image, and save it."""
        self._step_history(self.history.undo, "Nothing to undo")

    def redo(self) -> None:
        """Put back what the last undo of this image took away, and save it."""
        self._step_history(self.history.redo, "Nothing to redo")

    def toggle_reviewed(self) -> None:
        """Flip the reviewed mark (a key's action); an image with boxes stays reviewed."""
        self.set_reviewed(not self.reviewed)

    def copy_previous(self) -> int:
        """Add the boxes of the previous image to this one as one edit; returns how many.

        Boxes are clipped to this image (those left under a pixel are dropped), and a box
        this image already has (same class, IoU of at least :data:`SAME_BOX_IOU`) is not added
        twice, so pressing the key again changes nothing. One undo takes the copy back.
        """
        path = self.current_path
        if path is None or self.store is None:
            return 0
        self.flush()
        if self.index == 0:
            self.status_changed.emit("No previous image to copy from")
            return 0
        source = self.store.images[self.index - 1]
        try:
            earlier = self.store.load(source)
        except DetlabError as error:
            self._tell("error", f"Could not copy the boxes of {source.name}: {error}")
            return 0
        if earlier is None or len(earlier) == 0:
            self._tell("info", f"{source.name} has no boxes to copy")
            return 0
        current = self.current_annotation()
        added = boxes_not_yet_in(current, earlier, self.image_size)
        if len(added) == 0:
            self.status_changed.emit(f"Every box of {source.name} is here already")
            return 0
        for label in added.labels:
            self.ensure_class(label)
        copied = ImageAnnotation(
            boxes=np.concatenate([current.boxes.astype(np.float64), added.boxes]),
            labels=[*current.labels, *added.labels],
            reviewed=True,
            image_size=self.image_size,
            extra=current.extra,
        )
        previous = self.saved
        self._display(copied)
        if self._write(path, copied):
            self.history.push(path.stem, previous)
        return len(added)

    def reload(self) -> None:
        """Re-read the current image's file (another dock wrote it) and redraw; saves nothing."""
        path = self.current_path
        if path is None or self.store is None:
            return
        try:
            loaded = self.store.load(path)
        except DetlabError as error:
            self._tell("error", str(error))
            return
        self.saved = loaded if loaded is not None else ImageAnnotation()
        for label in self.saved.labels:
            self.ensure_class(label)
        self._display(self.saved)
        self.status_changed.emit(self.saved_status if loaded is not None else "Not annotated yet")

    # -- classes ---------------------------------------------------------------------------
    def add_class(self, name: str, color: str | None = None) -> ClassSpec:
        """Add a class (in the next palette colour unless given); saved with the dataset."""
        spec = ClassSpec(name.strip(), color or next_color(self.classes))
        self._save_classes([*self.classes, spec])
        return spec

    def ensure_class(self, name: str) -> None:
        """Add a class met in a file but missing from the list (another tool wrote it)."""
        if name not in {c.name for c in self.classes}:
            self.add_class(name)

    def rename_class(self, old: str, new: str) -> int:
        """Rename a class in every file and in the list; returns the boxes relabelled."""
        store = self._open_store()
        self.flush()
        changed = store.rename_class(old, new)
        new = new.strip()
        self._files_changed()
        self.classes = [ClassSpec(new if c.name == old else c.name, c.color) for c in self.classes]
        self.class_renamed.emit(old, new)  # the classes say the new name already
        self.classes_changed.emit(list(self.classes))
        return changed

    def remove_class(self, name: str, *, delete_boxes: bool = False) -> int:
        """Remove a class; with boxes using it, only when ``delete_boxes`` is true.

        The last class removed leaves the default class. Returns the boxes deleted.

        Raises
        ------
        ClassInUseError
            Boxes use the class and ``delete_boxes`` is false; nothing was changed.
        """
        store = self._open_store()
        self.flush()
        removed = store.remove_class(name, delete_boxes=delete_boxes)
        self._files_changed()
        self._save_classes([c for c in self.classes if c.name != name] or _default_classes())
        return removed

    def set_class_color(self, name: str, color: str) -> None:
        """Recolour a class; saved with the class list."""
        self._save_classes(
            [ClassSpec(c.name, color if c.name == name else c.color) for c in self.classes]
        )

    # -- internals ---------------------------------------------------------------------------
    def _step_history(
        self,
        step: Callable[[str, ImageAnnotation], ImageAnnotation | None],
        nothing: str,
    ) -> None:
        """Show and save the state ``step`` (undo or redo) returns for the current image."""
        path = self.current_path
        if path is None:
            return
        self.flush()
        state = step(path.stem, self.saved)
        if state is None:
            self.status_changed.emit(nothing)
            return
        for label in state.labels:
            self.ensure_class(label)
        self._display(state)
        self._write(path, state)

    def _open_store(self) -> AnnotationStore:
        if self.store is None:
            raise AnnotationError("open a folder before changing classes")
        return self.store

    def _save_classes(self, classes: list[ClassSpec]) -> None:
        """Write the list (the store checks the names), then tell the view."""
        self._open_store().save_classes(classes)
        self._set_classes(classes)

    def _set_classes(self, classes: list[ClassSpec]) -> None:
        self.classes = classes
        self.classes_changed.emit(list(classes))

    def _files_changed(self) -> None:
        """After a class change rewrote files: history names old classes, the file is new."""
        self.history.clear()
        path = self.current_path
        loaded = self.store.load(path) if path is not None and self.store is not None else None
        self.saved = loaded if loaded is not None else ImageAnnotation()

    def _drawn(self, class_name: str) -> np.ndarray:
        drawn = self.drawing.boxes_of(class_name)
        return np.zeros((0, 4)) if drawn is None else drawn

    def _write(self, path: Path, annotation: ImageAnnotation) -> bool:
        """Save (or, for an empty image not marked reviewed, delete) the file; report failures.

        On failure nothing is lost: the drawing still shows the boxes and the next flush
        tries again.
        """
        assert self.store is not None
        try:
            if len(annotation) == 0 and not annotation.reviewed:
                self.store.delete(path)
            else:
                self.store.save(path, annotation)
        except (OSError, DetlabError) as error:
            self._tell("error", f"Could not save the boxes of {path.name}: {error}")
            self.status_changed.emit("NOT SAVED")
            return False
        self.saved = annotation
        self._set_reviewed(annotation.reviewed and not annotation.model_accepted)
        self.status_changed.emit(self.saved_status)
        self.annotation_saved.emit(path)
        return True

    def _load_or_quarantine(self, path: Path) -> ImageAnnotation | None:
        """The image's annotation; a file that fails to load is set aside, never overwritten.

        A file two images would share (``a.jpg``, ``a.png``) is not broken: it stays where it
        is for the user to sort out, and the image is shown without boxes (saving them is
        refused by the store, with the same message).
        """
        assert self.store is not None
        try:
            return self.store.load(path)
        except AmbiguousImageError as error:
            self._tell("error", f"{error}. {path.name} is shown without boxes")
            return None
        except DetlabError as error:
            aside = self.store.quarantine(path)
            self._tell(
                "error", f"{error}. Renamed to {aside.name}; {path.name} is shown without boxes"
            )
            return None

    def _display(self, annotation: ImageAnnotation) -> None:
        self.annotation_shown.emit(annotation)
        self._set_reviewed(annotation.trainable and not annotation.model_accepted)

    def _set_reviewed(self, reviewed: bool) -> None:
        self.reviewed = reviewed
        self.reviewed_changed.emit(reviewed)

    def _tell(self, level: Level, message: str) -> None:
        self.notice.emit(level, message)
