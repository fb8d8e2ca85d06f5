"""Accepting the model's predictions on many images in one action, and undoing that batch.

A person who trusts the model above some score takes its boxes on a whole dataset (or a
chosen set of images) at once instead of image by image: :func:`plan_accept` filters each
image's raw predictions at the Review's :class:`~.review.ReviewThresholds` (score, then NMS)
and merges the kept ones into its annotation by the Review's own rule
(:func:`~.image_review.merge_predictions`: a box the image already has is not added twice);
the plan says how many boxes on how many images, for the confirmation, and
:func:`apply_accept` writes it. Images where nothing new would be added are not touched.

Honesty: every image written this way is marked in its file as accepted from the model and
not yet reviewed (:data:`~napari_detlab.core.annotations.annotation.MODEL_ACCEPTED_KEY`);
the Annotator says so on its status line and clears the mark when the person edits the image
or sets its reviewed mark (``k``); the statistics count such images apart. Training uses
them like any annotation (their boxes are the person's choice of threshold); the statistics
say how many there are.

Undo: before writing, :func:`apply_accept` keeps a journal of the batch in
``annotations/accept_batch.json`` (written atomically; a derived file, not an annotation):
the exact bytes each touched file had (or that it had none) and a hash of what the batch
wrote. :func:`undo_accept` puts every file back exactly as it was (deleting the ones the
batch created), except a file changed since the batch (an edit, a review, another batch of
one image): that one is left as it is and named, so later work is never lost. One batch is
undoable, the last one; undone, its journal is removed.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import ACCEPT_JOURNAL_FILENAME, AnnotationStore
from napari_detlab.core.atomic import atomic_write_bytes, atomic_write_json
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.evaluation.image_review import (
    ImagePredictions,
    merge_predictions,
    review_image,
)
from napari_detlab.core.evaluation.review import ReviewThresholds
from napari_detlab.core.model.predict import load_prediction
from napari_detlab.core.wording import counted

__all__ = [
    "JOURNAL_FILENAME",
    "AcceptPlan",
    "AcceptedBatch",
    "BatchAcceptError",
    "PlannedImage",
    "Progress",
    "UndoneBatch",
    "apply_accept",
    "has_batch",
    "images_to_accept",
    "journal_path",
    "plan_accept",
    "undo_accept",
]

# The batch journal, in the annotations folder (not a .pt: the store never reads it).
JOURNAL_FILENAME = ACCEPT_JOURNAL_FILENAME
_JOURNAL_VERSION = 1

Progress = Callable[[int, int], None]


class BatchAcceptError(DetlabError, ValueError):
    """No batch to undo, or a journal that cannot be read; the message names the file."""


@dataclass(frozen=True)
class PlannedImage:
    """One image a batch would write.

    Attributes
    ----------
    image
        The image file.
    annotation
        What its file will hold: the existing boxes, then the accepted ones, marked.
    added
        How many predictions become boxes.
    before
        The annotation file's bytes when planned; ``None`` when the image had no file.
    """

    image: Path
    annotation: ImageAnnotation
    added: int
    before: bytes | None


@dataclass(frozen=True)
class AcceptPlan:
    """What accepting at one setting would write, before anything is written.

    Attributes
    ----------
    thresholds
        The settings the predictions were filtered at.
    images
        The images that would get at least one box.
    left_out
        One line per image whose prediction or annotation file cannot be used (naming it).
    """

    thresholds: ReviewThresholds
    images: list[PlannedImage]
    left_out: list[str] = field(default_factory=list)

    @property
    def boxes(self) -> int:
        """Predictions that would become boxes, over all images."""
        return sum(planned.added for planned in self.images)

    def summary(self) -> str:
        """``"12 boxes on 3 images"``: what the confirmation asks about."""
        return f"{counted(self.boxes, 'box', 'boxes')} on {counted(len(self.images), 'image')}"


@dataclass(frozen=True)
class AcceptedBatch:
    """What :func:`apply_accept` wrote.

    Attributes
    ----------
    written
        The images whose files were written (and marked).
    boxes
        The boxes added to them.
    changed_since
        Images left alone because their file changed between the plan and the writing.
    """

    written: list[Path]
    boxes: int
    changed_since: list[Path]

    def summary(self) -> str:
        line = (
            f"Accepted {counted(self.boxes, 'box', 'boxes')} on "
            f"{counted(len(self.written), 'image')}, marked as not yet reviewed"
        )
        if self.changed_since:
            names = ", ".join(image.name for image in self.changed_since)
            line += f"; left alone, changed since they were counted: {names}"
        return line


@dataclass(frozen=True)
class UndoneBatch:
    """What :func:`undo_accept` did.

    Attributes
    ----------
    restored
        Images whose files are back exactly as before the batch (deleted where there was
        none).
    kept
        Images changed since the batch: their files were left as they are.
    """

    restored: list[Path]
    kept: list[Path]

    def summary(self) -> str:
        line = f"Undid the batch on {counted(len(self.restored), 'image')}"
        if self.kept:
            names = ", ".join(image.name for image in self.kept)
            line += f"; kept as they are, changed since the batch: {names}"
        return line


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _digest(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def plan_accept(
    store: AnnotationStore,
    predictions_dir: str | Path,
    thresholds: ReviewThresholds,
    images: Iterable[str | Path] | None = None,
    *,
    on_progress: Progress | None = None,
) -> AcceptPlan:
    """What accepting every prediction kept at ``thresholds`` would write; writes nothing.

    Parameters
    ----------
    store
        The dataset.
    predictions_dir
        The model's ``<stem>.pt`` per image (``store.predictions_dir`` by default in the
        docks and the CLI).
    thresholds
        Score threshold and NMS IoU (and class-agnostic NMS) as in the Review dock.
    images
        The images to accept on (paths, names or stems of the dataset's images); ``None``
        for every image of the dataset. Images without a prediction file are skipped.
    on_progress
        Called with ``(done, total)`` after each image.
    """
    folder = Path(predictions_dir)
    chosen = store.images if images is None else [_image_in(store, image) for image in images]
    planned: list[PlannedImage] = []
    left_out: list[str] = []
    for done, image in enumerate(chosen, 1):
        prediction_file = folder / f"{image.stem}.pt"
        if prediction_file.is_file():
            try:
                entry = _plan_image(store, image, prediction_file, thresholds)
            except DetlabError as error:
                left_out.append(str(error))
                entry = None
            if entry is not None:
                planned.append(entry)
        if on_progress is not None:
            on_progress(done, len(chosen))
    return AcceptPlan(thresholds, planned, left_out)


def images_to_accept(
    store: AnnotationStore, *, unannotated_only: bool = False, patterns: Sequence[str] = ()
) -> list[Path]:
    """The dataset's images a batch is to cover, in the dataset's order.

    Parameters
    ----------
    unannotated_only
        Only images without an annotation file (nobody has looked at them).
    patterns
        Only images whose file name matches one of these shell patterns (``img_00*.png``,
        ``b.png``); none for every image.
    """
    chosen = [
        image
        for image in store.images
        if not patterns or any(fnmatch.fnmatch(image.name, pattern) for pattern in patterns)
    ]
    return [image for image in chosen if not store.has(image)] if unannotated_only else chosen


def _image_in(store: AnnotationStore, image: str | Path) -> Path:
    found = store.image_of(image)
    if found is None:
        raise BatchAcceptError(f"{image}: no such image in {store.root}")
    return found


def _plan_image(
    store: AnnotationStore, image: Path, prediction_file: Path, thresholds: ReviewThresholds
) -> PlannedImage | None:
    before = _read_bytes(store.path_for(image))
    existing = store.load(image)
    predictions = ImagePredictions(load_prediction(prediction_file, image))
    kept = review_image(predictions, None, thresholds).kept
    merged = merge_predictions(existing, predictions.prediction, kept)
    if merged.added == 0:
        return None
    return PlannedImage(image, merged.annotation.marked_from_model(True), merged.added, before)


def journal_path(store: AnnotationStore) -> Path:
    """Where the last batch's journal is kept."""
    return store.annotations_dir / JOURNAL_FILENAME


def has_batch(store: AnnotationStore) -> bool:
    """Whether a batch can be undone."""
    return journal_path(store).is_file()


def _write_journal(
    store: AnnotationStore, thresholds: ReviewThresholds, entries: list[dict[str, object]]
) -> None:
    atomic_write_json(
        journal_path(store),
        {"version": _JOURNAL_VERSION, "thresholds": asdict(thresholds), "images": entries},
    )


def apply_accept(
    store: AnnotationStore, plan: AcceptPlan, *, on_progress: Progress | None = None
) -> AcceptedBatch:
    """Write a plan, keeping its journal for :func:`undo_accept` (the previous one is lost).

    An image whose file changed since the plan was made (the person saved meanwhile) is
    left alone and named. The journal is written before the first file, with what each
    file held, and again at the end with a hash of what was written; a write that fails
    stops the batch with the error, the journal then covering the files written so far.
    """
    todo: list[PlannedImage] = []
    changed: list[Path] = []
    for entry in plan.images:
        unchanged = _read_bytes(store.path_for(entry.image)) == entry.before
        if unchanged:
            todo.append(entry)
        else:
            changed.append(entry.image)
    if not todo:  # nothing to write: the last batch stays undoable
        return AcceptedBatch([], 0, changed)
    entries: list[dict[str, object]] = [
        {
            "image": entry.image.name,
            "file": store.path_for(entry.image).name,
            "before": None if entry.before is None else base64.b64encode(entry.before).decode(),
            "after_sha256": None,
        }
        for entry in todo
    ]
    _write_journal(store, plan.thresholds, entries)
    written: list[Path] = []
    try:
        for done, (entry, record) in enumerate(zip(todo, entries, strict=True), 1):
            path = store.save(entry.image, entry.annotation)
            record["after_sha256"] = _digest(_read_bytes(path))
            written.append(entry.image)
            if on_progress is not None:
                on_progress(done, len(todo))
    finally:
        _write_journal(store, plan.thresholds, entries)
    boxes = sum(entry.added for entry in todo)
    return AcceptedBatch(written, boxes, changed)


def _read_journal(store: AnnotationStore) -> list[dict[str, object]]:
    path = journal_path(store)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BatchAcceptError(f"{store.root}: no batch of accepted predictions to undo") from None
    except (OSError, ValueError) as error:
        raise BatchAcceptError(f"{path}: unreadable batch journal ({error})") from error
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list) or not all(isinstance(entry, dict) for entry in images):
        raise BatchAcceptError(f"{path}: not a batch journal (no 'images' list)")
    return images


def undo_accept(store: AnnotationStore, *, on_progress: Progress | None = None) -> UndoneBatch:
    """Put every file of the last batch back as it was, except those changed since.

    A file still holding exactly what the batch wrote gets its old bytes back, or is
    deleted when the image had none; a file already back as it was counts as restored (a
    batch stopped by a failed write). Any other file was changed since the batch and is
    kept. The journal is removed. ``on_progress`` is called with ``(done, total)`` after
    each file.

    Raises
    ------
    BatchAcceptError
        There is no batch to undo, or its journal cannot be read.
    """
    restored: list[Path] = []
    kept: list[Path] = []
    entries = _read_journal(store)
    for done, entry in enumerate(entries, 1):
        image = store.root / str(entry["image"])
        path = store.annotations_dir / Path(str(entry["file"])).name
        encoded = entry.get("before")
        before = None if encoded is None else base64.b64decode(str(encoded))
        now = _read_bytes(path)
        if now == before:
            restored.append(image)
        elif _digest(now) is not None and _digest(now) == entry.get("after_sha256"):
            if before is None:
                path.unlink()
            else:
                atomic_write_bytes(path, before)
            restored.append(image)
        else:
            kept.append(image)
        if on_progress is not None:
            on_progress(done, len(entries))
    journal_path(store).unlink()
    return UndoneBatch(restored, kept)
