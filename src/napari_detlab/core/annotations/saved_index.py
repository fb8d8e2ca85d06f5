"""The folder index kept on disk, so that the first question after opening a folder is fast.

The in-memory index (:mod:`~napari_detlab.core.annotations.index`) answers every question
after the first without reading the files again; the first one in a process still reads
every annotation file (about 2 s for 5,000 files on a 2-core machine). This module writes
what that first reading learnt to one file, ``annotations/.detlab-index.pt``, and reads it
back in the next process: one ``os.scandir`` of the folder and this one read then answer,
and only the files whose stamp moved since are read again.

It is a derived file, never a record. Each entry is kept under the stamp the file had when
it was read (modification and change times, inode, size) and only for a stamp that had
settled (:data:`~napari_detlab.core.annotations.file_cache.SETTLE_NS`), so it is used by
exactly the rule the in-memory index follows: a file rewritten, added or deleted by any
program shows another stamp (or none) and is read from disk. An annotation that depends on
something besides its file (one checked against its image's header, one of version 1, one
whose file was refused) and one with keys of another tool (``extra``) are not kept here:
they are read again at each start, as before. A file of another version, a foreign or
damaged one is ignored, never an error (the next write replaces it), and it is read with
``weights_only=True`` like every ``.pt`` file. The name starts with a dot and holds no
image's annotation: the store's listing, its exports and ``tidy`` leave it alone, and
deleting it only costs the next start its speed.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.file_cache import Stamp
from napari_detlab.core.atomic import atomic_torch_save, safe_torch_load
from napari_detlab.core.errors import DetlabError

__all__ = [
    "INDEX_FILENAME",
    "INDEX_FORMAT",
    "INDEX_VERSION",
    "SAVE_AFTER_READS",
    "keepable",
    "read_saved_index",
    "save_due",
    "write_saved_index",
]

INDEX_FILENAME = ".detlab-index.pt"
# What the file says it is; anything else found under the name is ignored.
INDEX_FORMAT = "napari-detlab annotation index"
INDEX_VERSION = 1
# Files read again before the index is written again (or 2 % of the folder, if more): the
# first question in a process reads them all; later a write follows every few dozen saves,
# so that what a start must read again stays a few dozen files.
SAVE_AFTER_READS = 32

SavedEntries = Mapping[str, tuple[Stamp, ImageAnnotation]]


def save_due(read_since: int, kept: int) -> bool:
    """Whether the index is worth writing again: ``read_since`` files were read from disk
    since it was last written, out of ``kept`` the index holds."""
    return read_since >= max(SAVE_AFTER_READS, kept // 50)


def keepable(annotation: ImageAnnotation) -> bool:
    """Whether an annotation can be kept in the file: it records its image size (so it
    depends on its file alone) and has no keys of another tool."""
    return annotation.image_size is not None and not annotation.extra


def write_saved_index(folder: Path, entries: SavedEntries) -> None:
    """Write ``{file name: (stamp, annotation)}`` of ``folder`` atomically, as columns (a
    few tensors and two lists of strings: a fraction of a second to read for 5,000 files).

    Raises ``OSError`` (a :class:`~napari_detlab.core.atomic.WriteError`) when the folder
    cannot be written; the caller decides whether that matters (it does not: the index is a
    cache).
    """
    names = sorted(name for name, (_, annotation) in entries.items() if keepable(annotation))
    annotations = [entries[name][1] for name in names]
    classes = sorted({label for annotation in annotations for label in annotation.labels})
    class_id = {name: index for index, name in enumerate(classes)}
    labels = [class_id[label] for annotation in annotations for label in annotation.labels]
    boxes = [annotation.boxes for annotation in annotations]
    data = {
        "format": INDEX_FORMAT,
        "version": INDEX_VERSION,
        "names": names,
        "stamps": torch.tensor([entries[name][0] for name in names], dtype=torch.int64)
        .reshape(-1, 4),
        "counts": torch.tensor([len(annotation) for annotation in annotations], dtype=torch.int64),
        "boxes": torch.from_numpy(
            np.concatenate(boxes).astype(np.float32) if boxes else np.zeros((0, 4), np.float32)
        ),
        "classes": classes,
        "labels": torch.tensor(labels, dtype=torch.int64),
        "reviewed": torch.tensor([a.reviewed for a in annotations], dtype=torch.bool),
        "sizes": torch.tensor([a.image_size for a in annotations], dtype=torch.int64)
        .reshape(-1, 2),
    }  # fmt: skip
    atomic_torch_save(folder / INDEX_FILENAME, data)


def read_saved_index(folder: Path) -> dict[str, tuple[Stamp, ImageAnnotation]]:
    """``{file name: (stamp, annotation)}`` from ``folder``'s index file; empty when there
    is none or it cannot be trusted to be one this version wrote (never an error)."""
    path = folder / INDEX_FILENAME
    try:
        data = safe_torch_load(path)
        return _entries(data)
    except FileNotFoundError:
        return {}
    except (
        DetlabError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError,
        EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
    ):  # fmt: skip
        return {}


def _column(
    data: dict[str, object], key: str, dtype: torch.dtype, shape: tuple[int, ...]
) -> np.ndarray:
    """``data[key]`` as a numpy array, refused (``ValueError``) unless it has the dtype and
    the shape (``-1``: any length) this version writes."""
    value = data[key]
    if not isinstance(value, torch.Tensor) or value.dtype != dtype or value.dim() != len(shape):
        raise ValueError(f"index column {key!r} is not a {dtype} tensor of {len(shape)} dims")
    if any(want not in (-1, got) for want, got in zip(shape, value.shape, strict=True)):
        raise ValueError(f"index column {key!r} has shape {tuple(value.shape)}")
    return value.numpy()


def _strings(data: dict[str, object], key: str) -> list[str]:
    value = data[key]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"index column {key!r} is not a list of strings")
    return value


def _entries(data: object) -> dict[str, tuple[Stamp, ImageAnnotation]]:
    """The entries of a loaded index file, after checking that its columns fit together
    and that every box could have come out of validation (finite, ordered, inside its
    image): a file that fails any check is a ``ValueError`` (ignored by the caller)."""
    if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT:
        raise ValueError("not an annotation index")
    if data.get("version") != INDEX_VERSION:
        raise ValueError("an annotation index of another version")
    names, classes = _strings(data, "names"), _strings(data, "classes")
    count = len(names)
    stamps = _column(data, "stamps", torch.int64, (count, 4))
    counts = _column(data, "counts", torch.int64, (count,))
    reviewed = _column(data, "reviewed", torch.bool, (count,))
    sizes = _column(data, "sizes", torch.int64, (count, 2))
    total = int(counts.sum()) if count else 0
    boxes = _column(data, "boxes", torch.float32, (total, 4))
    labels = _column(data, "labels", torch.int64, (total,))
    if (counts < 0).any() or (sizes <= 0).any() or len(set(names)) != count:
        raise ValueError("an annotation index with impossible counts, sizes or names")
    if total and ((labels < 0).any() or (labels >= len(classes)).any()):
        raise ValueError("an annotation index with unknown labels")
    limits = np.repeat(sizes[:, ::-1], counts, axis=0).astype(np.float64)  # (width, height)
    inside = (
        np.isfinite(boxes).all(axis=1)
        & (boxes[:, :2] >= 0).all(axis=1)
        & (boxes[:, 2:] <= limits).all(axis=1)
        & (boxes[:, 2:] >= boxes[:, :2]).all(axis=1)
    )
    if not inside.all():
        raise ValueError("an annotation index with boxes no file could hold")
    starts = np.concatenate([[0], np.cumsum(counts)]).tolist()
    label_names = [classes[index] for index in labels.tolist()]
    stamp_rows = stamps.tolist()
    size_rows = sizes.tolist()
    flags = reviewed.tolist()
    entries: dict[str, tuple[Stamp, ImageAnnotation]] = {}
    for row, name in enumerate(names):
        start, end = starts[row], starts[row + 1]
        annotation = ImageAnnotation(
            boxes[start:end].copy(), label_names[start:end], flags[row], tuple(size_rows[row])
        )
        entries[name] = (tuple(stamp_rows[row]), annotation)
    return entries
