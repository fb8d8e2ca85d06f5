"""Reading the Faster R-CNN tutorial's layout into the annotation store.

The public tutorial this project grew from (johschmidt42/PyTorch-Object-Detection-Faster-RCNN-
Tutorial) keeps a folder of images beside a folder of targets, one per image:

- ``<stem>.json``: ``{"labels": ["head", ...], "boxes": [[x1, y1, x2, y2], ...]}``;
- ``<stem>.pt`` (its first version): the same dict written with ``torch.save``, labels as a
  numpy ``'<U4'`` string array and boxes as a list of float64 numpy arrays.

Those ``.pt`` files are pickles. They are read with :func:`~napari_detlab.core.atomic.
safe_torch_load` allowing only the numpy globals that rebuild plain arrays
(:data:`TUTORIAL_PT_GLOBALS`), so a file that asks for anything else (``os.system`` in a
crafted ``__reduce__``) is refused before any of it runs.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_detlab.core.annotations.store import (
    CLIP_TOLERANCE,
    AnnotationError,
    AnnotationStore,
    ImageAnnotation,
)
from napari_detlab.core.atomic import safe_torch_load
from napari_detlab.core.boxes import as_boxes, clip_xyxy
from napari_detlab.core.images import ImageReadError, image_size, list_images

__all__ = [
    "TUTORIAL_PT_GLOBALS",
    "ImportReport",
    "find_tutorial_target",
    "import_tutorial_layout",
    "read_tutorial_target",
]

TARGET_SUFFIXES = (".json", ".pt")


def _numpy_array_globals() -> list[object]:
    """The numpy callables and types a pickled plain array needs, and nothing else.

    numpy 2 moved ``numpy.core`` to ``numpy._core``; files written under numpy 1 (all of the
    tutorial's) name the old path, so each function is also allowed under that name. Only
    string, boolean and numeric dtypes are listed: an object array would need ``ObjectDType``
    and is refused.
    """
    multiarray = (getattr(np, "_core", None) or np.core).multiarray
    allowed: list[object] = [np.ndarray, np.dtype]
    for function in (multiarray._reconstruct, multiarray.scalar):
        allowed.append(function)
        for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            allowed.append((function, f"{module}.{function.__name__}"))
    codes = ("U1", "S1", "?", "f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8")
    allowed.extend({type(np.dtype(code)) for code in codes})
    return allowed


TUTORIAL_PT_GLOBALS: list[object] = _numpy_array_globals()


def _label_list(labels: object, source: str) -> list[str]:
    if hasattr(labels, "tolist"):
        labels = labels.tolist()
    if isinstance(labels, str) or not isinstance(labels, (list, tuple)):
        raise AnnotationError(f"{source}: 'labels' must be a list, got {type(labels).__name__}")
    names = []
    for index, label in enumerate(labels):
        # Class names are strings; a target mapped to integer ids keeps the id as its name.
        if isinstance(label, bytes):
            label = label.decode("utf-8", "replace")
        if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
            label = str(int(label))
        if not isinstance(label, str) or not label.strip():
            raise AnnotationError(f"{source}: label {index} ({label!r}) is not a class name")
        names.append(label)
    return names


def _box_array(boxes: object, source: str) -> np.ndarray:
    # A tensor goes straight to as_boxes, which converts it.
    if isinstance(boxes, (list, tuple)) and boxes and all(hasattr(b, "shape") for b in boxes):
        if any(np.shape(b) != (4,) for b in boxes):
            raise AnnotationError(f"{source}: every box must have 4 coordinates")
        boxes = np.stack([np.asarray(b, np.float64) for b in boxes])
    try:
        return as_boxes(boxes, np.float64)
    except (TypeError, ValueError) as error:
        raise AnnotationError(f"{source}: 'boxes' {error}") from error


def read_tutorial_target(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """Read one tutorial target file: ``(boxes float64 (N, 4) xyxy, labels)``.

    Parameters
    ----------
    path
        A ``<stem>.json`` target or an old ``<stem>.pt`` one.

    Raises
    ------
    napari_detlab.core.annotations.store.AnnotationError
        The file is unreadable, refused as unsafe, or not a ``{"boxes", "labels"}`` dict with
        one label per box; the message names the file. Coordinates are returned as found
        (checking them against the image is :func:`import_tutorial_layout`'s job).
    """
    path = Path(path)
    source = str(path)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise AnnotationError(f"{source}: not a readable JSON target ({error})") from error
    elif path.suffix.lower() == ".pt":
        try:
            data = safe_torch_load(path, allow=TUTORIAL_PT_GLOBALS)
        except (OSError, ValueError) as error:  # UnsafeFileError included
            raise AnnotationError(str(error)) from error
    else:
        raise AnnotationError(f"{source}: targets are .json or .pt files")
    if not isinstance(data, dict) or "boxes" not in data or "labels" not in data:
        raise AnnotationError(f"{source}: expected a dict with 'boxes' and 'labels'")
    boxes = _box_array(data["boxes"], source)
    labels = _label_list(data["labels"], source)
    if len(labels) != len(boxes):
        raise AnnotationError(f"{source}: {len(boxes)} boxes but {len(labels)} labels")
    return boxes, labels


def find_tutorial_target(targets_dir: str | Path, stem: str) -> Path | None:
    """The target of ``stem``: the JSON one if present (the tutorial's current format)."""
    for suffix in TARGET_SUFFIXES:
        candidate = Path(targets_dir) / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


@dataclass
class ImportReport:
    """What :func:`import_tutorial_layout` did, for a dock message or a CLI summary.

    Attributes
    ----------
    dataset_dir
        The folder now holding the images and ``annotations/``.
    imported
        Stems whose target became an annotation file.
    boxes
        Boxes written over all imported images.
    unannotated
        Stems with no target: left without a file, for the user to annotate.
    kept
        Stems that already had an annotation in the dataset: left as they were.
    copied
        Images copied or hard-linked into ``dataset_dir``.
    clipped
        One line per box that reached past the image by more than the store's tolerance and
        was clipped to it (common in hand-drawn data: the tutorial clipped at training time).
    problems
        One line per file that needed attention, each naming the file: unreadable targets
        (that image stays unannotated), boxes dropped, targets with no image.
    """

    dataset_dir: Path
    imported: list[str] = field(default_factory=list)
    boxes: int = 0
    unannotated: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    copied: int = 0
    clipped: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line: counts, and how many problems to read."""
        text = (
            f"{len(self.imported)} images imported with {self.boxes} boxes into "
            f"{self.dataset_dir}; {len(self.unannotated)} left to annotate"
        )
        if self.kept:
            text += f", {len(self.kept)} already annotated kept"
        if self.clipped:
            text += f"; {len(self.clipped)} boxes clipped to their image"
        if self.problems:
            text += f"; {len(self.problems)} problems"
        return text


def _fit_to_image(
    boxes: np.ndarray, labels: list[str], size: tuple[int, int], source: str
) -> tuple[np.ndarray, list[str], list[str], list[str]]:
    """Keep the usable boxes, clipped to the image.

    Returns the boxes, their labels, a note per box clipped and a note per box dropped.

    The tutorial clipped boxes itself before training, so a box reaching past the border is
    clipped here too (with a note when it overshoots by more than the store's tolerance); a
    box with a non-finite coordinate, no extent, or nothing inside the image is dropped.
    """
    height, width = size
    keep: list[int] = []
    notes: list[str] = []
    clip_notes: list[str] = []
    clipped = clip_xyxy(boxes, width, height)
    for index, (box, fitted) in enumerate(zip(boxes, clipped, strict=True)):
        if not np.isfinite(box).all():
            notes.append(
                f"{source}: box {index} {box.tolist()} has a non-finite coordinate, dropped"
            )
        elif box[0] >= box[2] or box[1] >= box[3]:
            notes.append(f"{source}: box {index} {box.tolist()} has no area, dropped")
        elif fitted[0] >= fitted[2] or fitted[1] >= fitted[3]:
            notes.append(
                f"{source}: box {index} {box.tolist()} lies outside the {width}x{height} "
                "image, dropped"
            )
        else:
            if np.abs(box - fitted).max() > CLIP_TOLERANCE:
                clip_notes.append(
                    f"{source}: box {index} {box.tolist()} reached past the {width}x{height} "
                    f"image, clipped to {fitted.tolist()}"
                )
            keep.append(index)
    return clipped[keep], [labels[i] for i in keep], clip_notes, notes


def _bring_image(image: Path, dataset_dir: Path, report: ImportReport) -> Path | None:
    """The image's path inside ``dataset_dir``, hard-linking or copying it there if needed."""
    destination = dataset_dir / image.name
    if destination.exists():
        if destination.stat().st_size != image.stat().st_size:
            report.problems.append(
                f"{destination}: a different file of that name exists already; "
                f"{image} was not imported"
            )
            return None
        return destination
    try:
        os.link(image, destination)
    except OSError:  # other file system, or links not allowed: copy instead
        shutil.copy2(image, destination)
    report.copied += 1
    return destination


def import_tutorial_layout(
    images_dir: str | Path,
    targets_dir: str | Path,
    dataset_dir: str | Path | None = None,
    *,
    overwrite: bool = False,
) -> ImportReport:
    """Import the tutorial's images + targets folders as an annotation store.

    Parameters
    ----------
    images_dir
        The tutorial's ``input/`` folder.
    targets_dir
        Its ``target/`` folder of ``<stem>.json`` (or old ``<stem>.pt``) files.
    dataset_dir
        Where the dataset should live; ``None`` means ``images_dir`` itself (only an
        ``annotations/`` folder is added). A different folder receives hard links to the
        images, or copies where links are impossible; the originals are never changed.
    overwrite
        Replace annotation files the dataset already has. By default they are kept: a
        second import never undoes the user's edits.

    Returns
    -------
    ImportReport
        Every image is imported, left unannotated (no target) or named in ``problems``.
    """
    images_dir, targets_dir = Path(images_dir), Path(targets_dir)
    if not targets_dir.is_dir():
        raise FileNotFoundError(f"{targets_dir}: not a folder")
    images = list_images(images_dir)
    dataset = Path(dataset_dir) if dataset_dir is not None else images_dir
    dataset.mkdir(parents=True, exist_ok=True)
    same_folder = dataset.resolve() == images_dir.resolve()
    report = ImportReport(dataset_dir=dataset)
    store = AnnotationStore(dataset)
    seen: set[str] = set()
    for image in images:
        stem = image.stem
        if stem in seen:
            report.problems.append(f"{image}: another image is also named {stem!r}, skipped")
            continue
        seen.add(stem)
        target = find_tutorial_target(targets_dir, stem)
        local = image if same_folder else _bring_image(image, dataset, report)
        if local is None:
            continue
        if target is None:
            if not store.has(local):
                report.unannotated.append(stem)
            continue
        if store.has(local) and not overwrite:
            report.kept.append(stem)
            continue
        try:
            boxes, labels = read_tutorial_target(target)
            size = image_size(local)
        except (AnnotationError, ImageReadError) as error:
            report.problems.append(f"{error} (image left unannotated)")
            report.unannotated.append(stem)
            continue
        boxes, labels, clip_notes, notes = _fit_to_image(boxes, labels, size, str(target))
        report.clipped.extend(clip_notes)
        report.problems.extend(notes)
        store.save(local, ImageAnnotation(boxes, labels, reviewed=True, image_size=size))
        report.imported.append(stem)
        report.boxes += len(labels)
    stems = {image.stem for image in images}
    for suffix in TARGET_SUFFIXES:
        for target in sorted(targets_dir.glob(f"*{suffix}")):
            if target.stem not in stems:
                report.problems.append(f"{target}: no image named {target.stem}.* in {images_dir}")
    store.refresh()
    # Persist the class list (with colours) so the Annotator shows the imported classes.
    store.save_classes(store.load_classes())
    return report
