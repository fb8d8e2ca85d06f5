"""The Faster R-CNN + napari tutorial's targets: ``<stem>.json`` (or old ``<stem>.pt``) per image.

The public tutorial this project grew from (johschmidt42/PyTorch-Object-Detection-Faster-RCNN-
Tutorial) keeps its images in ``input/`` and one target per image in ``target/``:

- ``<stem>.json``: ``{"labels": ["head", ...], "boxes": [[x1, y1, x2, y2], ...]}`` in float
  pixels of the original image, the store's own layout, so the round trip is exact (JSON
  keeps every float64 digit);
- ``<stem>.pt`` (its first version): the same dict written with ``torch.save``, labels as a
  numpy ``'<U4'`` string array and boxes as a list of float64 numpy arrays.

Either folder's parent or ``target/`` itself is accepted as the source. The ``.pt`` files are
pickles: they are read with :func:`~napari_detlab.core.atomic.safe_torch_load` allowing only
the numpy globals that rebuild plain arrays (:data:`TUTORIAL_PT_GLOBALS`), so a file that
asks for anything else (``os.system`` in a crafted ``__reduce__``) is refused before any of it
runs. The format has no "reviewed" flag; an exported negative is a file with empty lists, and
every file read counts as reviewed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from napari_detlab.core.annotations.annotation import AnnotationError
from napari_detlab.core.atomic import safe_torch_load
from napari_detlab.core.boxes import as_boxes
from napari_detlab.core.errors import DetlabError
from napari_detlab.formats.base import (
    FilePerImageFormat,
    Problem,
    ReadResult,
    Record,
    SizeLookup,
)

__all__ = [
    "TARGET_SUFFIXES",
    "TUTORIAL",
    "TUTORIAL_PT_GLOBALS",
    "TutorialFormat",
    "find_tutorial_target",
    "read_tutorial_target",
]

TARGET_DIRNAME = "target"
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
    napari_detlab.core.annotations.annotation.AnnotationError
        The file is unreadable, refused as unsafe, or not a ``{"boxes", "labels"}`` dict with
        one label per box; the message names the file. Coordinates are returned as found:
        :class:`TutorialFormat` reports the unusable ones, and the import clips to the image.
    """
    path = Path(path)
    source = str(path)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise AnnotationError(f"{source}: not a readable JSON target ({error})") from error
    elif path.suffix.lower() == ".pt":
        try:
            data = safe_torch_load(path, allow=TUTORIAL_PT_GLOBALS)
        except (OSError, DetlabError) as error:  # UnsafeFileError included
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


class TutorialFormat(FilePerImageFormat):
    name = "tutorial"
    title = "tutorial JSON targets"
    suffix = ".json"
    needs_image_size = False

    def source_files(self, folder: Path) -> list[Path]:
        """``<stem>.json`` or old ``<stem>.pt`` targets in ``target/`` or ``folder`` itself."""
        if (folder / TARGET_DIRNAME).is_dir():
            folder = folder / TARGET_DIRNAME
        by_stem: dict[str, Path] = {}
        for path in sorted(folder.iterdir()):  # a .json beside a .pt of the same stem wins
            usable = path.suffix.lower() in TARGET_SUFFIXES and not path.name.startswith(".")
            if usable and (path.stem not in by_stem or path.suffix.lower() == ".json"):
                by_stem[path.stem] = path
        return [by_stem[stem] for stem in sorted(by_stem)]

    def read_file(self, path: Path, size_of: SizeLookup, result: ReadResult) -> Record | None:
        """One target as a record; a box with no area or a non-finite coordinate is reported
        and makes the record unreadable, as a bad box does in the other formats."""
        try:
            boxes, labels = read_tutorial_target(path)
        except (DetlabError, OSError) as error:
            result.problems.append(Problem(str(path), "", str(error).replace(f"{path}: ", "")))
            return None
        finite = np.isfinite(boxes).all(axis=1)
        usable = finite & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        for index in np.flatnonzero(~usable):
            why = "has no area" if finite[index] else "has a non-finite coordinate"
            result.problems.append(
                Problem(str(path), f"box {index}", f"{boxes[index].tolist()} {why}")
            )
        record = Record(
            stem=path.stem,
            boxes=boxes[usable],
            labels=[label for label, keep in zip(labels, usable, strict=True) if keep],
            source=str(path),
            unreadable=int((~usable).sum()),
        )
        record.image_size = size_of(record)
        return record

    def encode(self, record: Record, classes: Sequence[str], folder: Path) -> bytes:
        target = {"labels": list(record.labels), "boxes": record.boxes.tolist()}
        return (json.dumps(target, indent=2) + "\n").encode("utf-8")


TUTORIAL = TutorialFormat()
