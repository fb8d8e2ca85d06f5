"""The annotation store: one ``.pt`` dict per image, beside the images, written atomically.

Layout of a dataset folder (the names are this module's constants; nothing else spells them)::

    my_images/
        img001.jpg ...
        annotations/         ANNOTATIONS_DIRNAME
            img001.pt        {"boxes": float32 [N, 4] xyxy, "labels": [str] * N,
                              "reviewed": bool, "image_size": [height, width], "version": 2}
            classes.json     {"classes": [{"name": ..., "color": "#rrggbb"}, ...]}
            accept_batch.json  ACCEPT_JOURNAL_FILENAME: the last batch of accepted
                             predictions, for its undo (core.evaluation.batch_accept)
            .detlab-index.pt what the last process read of the files above (derived, a
                             cache: see core/annotations/saved_index.py)
        predictions/         PREDICTIONS_DIRNAME: <stem>.pt per image, written by the model
        runs/                RUNS_DIRNAME: <date>-<time>[-n]/ per training run started here

An image without a file has never been looked at; an image whose file has no boxes and
``reviewed=True`` is a confirmed negative example. Files load with
``torch.load(weights_only=True)`` and are validated, so a bad file is reported with its name
and what is wrong instead of crashing training hours later. A box must lie in its image:
when the file records no ``image_size`` (another tool wrote it), the boxes are checked
against the image's real size, read from its header, by the same rule.

What a file holds and the rules it must follow (EXIF orientation, version 1 files) are
:mod:`~napari_detlab.core.annotations.annotation`'s.

A plane of a stack (a multi-page or 3-D / 4-D TIFF) is an image of its own, named by file and
plane (:mod:`~napari_detlab.core.stacks`): plane 3 of ``cells.tif`` is
``cells.plane-0003.tif`` in :attr:`AnnotationStore.images` and its boxes are
``annotations/cells.plane-0003.pt``. A single-plane image keeps ``annotations/<stem>.pt``.

One image, one stem, one file: images whose names differ only in their extension
(``a.jpg`` and ``a.png``) would share ``annotations/a.pt``, so the store reads, writes and
deletes that file for neither of them (:class:`AmbiguousImageError`, naming both images),
and every verb and dock meets them as it meets any annotation file it cannot use.
"""

from __future__ import annotations

import copy
import json
import os
import stat
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import numpy as np

from napari_detlab.core.annotations.annotation import (
    AnnotationError,
    ImageAnnotation,
    validate_annotation,
    written_on_stored_pixels,
)
from napari_detlab.core.annotations.file_cache import (
    FileCache,
    Stamp,
    file_stamp,
    regular_file_stamp,
    settled,
    stamp_of,
)
from napari_detlab.core.annotations.index import folder_cache
from napari_detlab.core.annotations.saved_index import (
    read_saved_index,
    save_due,
    write_saved_index,
)
from napari_detlab.core.atomic import (
    atomic_torch_save,
    atomic_write_json,
    remove_stale_temporaries,
    safe_torch_load,
)
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.images import (
    IMAGE_SUFFIXES,
    ImageReadError,
    image_size,
    list_images,
    read_header,
)
from napari_detlab.core.stacks import expand_planes

__all__ = [
    "ANNOTATIONS_DIRNAME",
    "DEFAULT_CLASS",
    "DEFAULT_COLORS",
    "PREDICTIONS_DIRNAME",
    "RUNS_DIRNAME",
    "AmbiguousImageError",
    "AnnotationStore",
    "ClassInUseError",
    "ClassSpec",
    "next_color",
    "predictions_dir_of",
    "stem_of",
]

# What a caller of :meth:`AnnotationStore.derived` derives from a file.
_Derived = TypeVar("_Derived")

ANNOTATIONS_DIRNAME = "annotations"
PREDICTIONS_DIRNAME = "predictions"
RUNS_DIRNAME = "runs"
CLASSES_FILENAME = "classes.json"
ACCEPT_JOURNAL_FILENAME = "accept_batch.json"
# The class a new dataset starts with, so that a box can be drawn before any class is named.
DEFAULT_CLASS = "object"
DEFAULT_COLORS = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4",
    "#46f0f0", "#f032e6", "#bcf60c", "#fabebe", "#008080",
)  # fmt: skip


def next_color(classes: Sequence[ClassSpec]) -> str:
    """The default colour of a class added after ``classes``: the palette, in turn."""
    return DEFAULT_COLORS[len(classes) % len(DEFAULT_COLORS)]


def predictions_dir_of(folder: str | Path) -> Path:
    """Where the model's predictions of the images in ``folder`` are written."""
    return Path(folder) / PREDICTIONS_DIRNAME


def stem_of(image: str | Path) -> str:
    """The stem that names an image's annotation file, from a path, file name or stem."""
    # Strings, not Path objects: this runs several times per image of every whole-dataset
    # question, where pathlib's parsing cost more than the index lookups themselves.
    name = os.path.basename(os.fspath(image).rstrip("/" + os.sep))
    stem, suffix = os.path.splitext(name)
    return stem if suffix.lower() in IMAGE_SUFFIXES else name


def _list_planes(folder: Path) -> list[Path]:
    """The images of ``folder`` with each stack's planes in its place."""
    return expand_planes(list_images(folder))


class ClassInUseError(AnnotationError):
    """Removing a class that boxes still use, without saying what to do with them."""


class AmbiguousImageError(AnnotationError):
    """Two or more images with one stem (``a.jpg``, ``a.png``): their one annotation file
    would belong to both, so the store neither reads nor writes it for either.

    Attributes
    ----------
    annotation_file
        The file they would share (``annotations/a.pt``).
    images
        The images, in the dataset's order.
    reason
        The message without the file's path: what a report line that names its own file says.
    """

    def __init__(self, annotation_file: Path, images: Sequence[Path]) -> None:
        self.annotation_file = Path(annotation_file)
        self.images = list(images)
        names = [image.name for image in self.images]
        listed = ", ".join(names[:-1]) + f" and {names[-1]}"
        self.reason = (
            f"images {listed} differ only in their extension and would share "
            f"{self.annotation_file.name}; rename one of them"
        )
        super().__init__(f"{self.annotation_file}: {self.reason}")


@dataclass(frozen=True)
class _FileRead:
    """What reading one annotation file gave: the annotation or the error, and the images
    (with their stamps) the answer was checked against, if any."""

    result: ImageAnnotation | None = None
    error: AnnotationError | None = None
    images: tuple[tuple[Path, Stamp | None], ...] | None = None

    def annotation(self) -> ImageAnnotation:
        """A copy of the annotation (callers edit what they get), or the error raised anew."""
        if self.error is not None:
            raise type(self.error)(*self.error.args) from self.error.__cause__
        assert self.result is not None
        result = self.result
        return ImageAnnotation(
            result.boxes.copy(), list(result.labels), result.reviewed, result.image_size,
            copy.deepcopy(result.extra) if result.extra else {},
        )  # fmt: skip


@dataclass
class ClassSpec:
    """A class a box can have, with the colour its layer is drawn in."""

    name: str
    color: str


class AnnotationStore:
    """Reads and writes the annotations of one dataset folder.

    Parameters
    ----------
    root
        The folder holding the images; annotations live in ``root/annotations``.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: not a folder")
        self.annotations_dir = self.root / ANNOTATIONS_DIRNAME
        self._images: list[Path] | None = None
        # The image list, each image's stem and the images of each stem, made from it.
        self._by_stem: tuple[list[Path], dict[Path, str], dict[str, list[Path]]] | None = None
        # The folder's stamp, whether it could be trusted, and the images listed under it.
        self._listing: tuple[Stamp, bool, list[Path]] | None = None

    @classmethod
    def of(cls, store_or_root: AnnotationStore | str | Path) -> AnnotationStore:
        """``store_or_root`` itself when it is a store, else the store of that folder."""
        return store_or_root if isinstance(store_or_root, cls) else cls(store_or_root)

    # -- layout -------------------------------------------------------------------------
    @property
    def predictions_dir(self) -> Path:
        """Where the model's predictions of this dataset's images go."""
        return predictions_dir_of(self.root)

    @property
    def runs_dir(self) -> Path:
        """Where training runs started on this dataset keep their folders."""
        return self.root / RUNS_DIRNAME

    def new_run_dir(self, now: datetime | None = None) -> Path:
        """An unused run folder named by the time (``runs/20261201-101500``, then ``-2``...).

        Only the name is chosen; the folder is created by the run that uses it.
        """
        stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
        run_dir, suffix = self.runs_dir / stamp, 1
        while run_dir.exists():
            suffix += 1
            run_dir = self.runs_dir / f"{stamp}-{suffix}"
        return run_dir

    def tidy(self) -> list[Path]:
        """Remove what writes killed mid-way (``kill -9``, a power cut) left in the annotations
        folder: hidden temp files over an hour old. The annotations themselves are whole (each
        write replaces its file atomically); returns what was removed."""
        return remove_stale_temporaries(self.annotations_dir)

    # -- images -------------------------------------------------------------------------
    @property
    def images(self) -> list[Path]:
        """The dataset's images, natural order (cached; :meth:`refresh` re-reads).

        A stack's planes stand where its file would (``cells.plane-0000.tif``, ...; see
        :mod:`~napari_detlab.core.stacks`), each an image with its own annotation file.
        """
        if self._images is None:
            self._images = _list_planes(self.root)
        return self._images

    def refresh(self) -> None:
        """Forget the cached image list after files were added or removed."""
        self._images = None

    def duplicate_stems(self) -> list[str]:
        """Stems shared by two images (``a.jpg`` and ``a.png``): they would share one file."""
        return sorted(stem for stem, images in self._images_by_stem().items() if len(images) > 1)

    def images_named(self, image: str | Path) -> list[Path]:
        """The dataset's images whose annotation file is ``image``'s, in the dataset's order.

        One for an image of the dataset, none for a name it does not hold, several when
        images differ only in their extension (then :meth:`check_one_image` refuses them).
        """
        return list(self._images_by_stem().get(stem_of(image), []))

    def check_one_image(self, image: str | Path) -> None:
        """Refuse an annotation file that would belong to several images.

        Raises
        ------
        AmbiguousImageError
            ``image``'s stem names two or more of the dataset's images (``a.jpg`` and
            ``a.png``); the message names them and the file.
        """
        images = self.images_named(image)
        if len(images) > 1:
            raise AmbiguousImageError(self.path_for(image), images)

    def _images_by_stem(self) -> dict[str, list[Path]]:
        # The folder as listed for :attr:`images`; a store that has not listed it yet (a
        # script saving while it writes the images) lists it again whenever the folder's
        # stamp moved (an entry added, removed or renamed), never caching a list that the
        # next image would make stale.
        return self._stems()[1]

    def _stems(self) -> tuple[dict[Path, str], dict[str, list[Path]]]:
        """Each listed image's stem, and the images of each stem (see :meth:`_images_by_stem`)."""
        images = self._images if self._images is not None else self._unlisted_images()
        if self._by_stem is None or self._by_stem[0] is not images:
            stems = {path: stem_of(path) for path in images}
            by_stem: dict[str, list[Path]] = {}
            for path, stem in stems.items():
                by_stem.setdefault(stem, []).append(path)
            self._by_stem = (images, stems, by_stem)
        return self._by_stem[1], self._by_stem[2]

    def _unlisted_images(self) -> list[Path]:
        """The folder's images for a store that has not listed them (:attr:`images`),
        listed again only when the folder's stamp changed or had not settled (see
        :mod:`~napari_detlab.core.annotations.file_cache`): saving 5,000 annotations into a
        folder of 10,000 images must not list it 5,000 times."""
        try:
            stamp = file_stamp(self.root)
        except OSError:
            return _list_planes(self.root)
        now = time.time_ns()
        if self._listing is not None and self._listing[0] == stamp and self._listing[1]:
            return self._listing[2]
        images = _list_planes(self.root)
        self._listing = (stamp, settled(stamp, now), images)
        return images

    def image_of(self, image: str | Path) -> Path | None:
        """The dataset's image file for an image path, file name or stem; ``None`` if absent.

        An absolute path to an existing file is that file; otherwise the first image of the
        stem in natural order, the one whose annotation file the stem names.
        """
        path = Path(image)
        if path.is_absolute() and path.is_file():
            return path
        images = self.images_named(image)
        return images[0] if images else None

    def _real_size(self, image: str | Path, *, stored: bool = False) -> tuple[int, int] | None:
        """``(height, width)`` from the header of ``image``'s file, as shown (or as ``stored``,
        for a file of version 1); ``None`` when the dataset holds no such image or its header
        cannot be read (the Annotator reports that)."""
        images = self.images_named(image)
        if len(images) != 1:
            return None
        try:
            return read_header(images[0]).stored_size if stored else image_size(images[0])
        except ImageReadError:
            return None

    # -- annotations --------------------------------------------------------------------
    def path_for(self, image: str | Path) -> Path:
        """Where the annotation of ``image`` lives.

        ``image`` is an image path, a file name (``"img001.jpg"``) or a stem (``"img001"``);
        a stem may contain dots (``"scan.v2"``), only a known image suffix is dropped.
        """
        return self.annotations_dir / f"{stem_of(image)}.pt"

    def has(self, image: str | Path) -> bool:
        """Whether the image has an annotation file (it was looked at)."""
        return self.path_for(image).is_file()

    def load(self, image: str | Path) -> ImageAnnotation | None:
        """The image's annotation, or ``None`` if it was never annotated.

        A file that records no ``image_size`` is held to the image's real size, read from
        its header, and the annotation returned carries that size.

        Raises
        ------
        AnnotationError
            The file cannot be read (not a ``.pt`` file, truncated, or refused because it
            needs code to run) or breaks the rules; the message names the file and why.
        AmbiguousImageError
            The file exists and would belong to two images (``a.jpg`` and ``a.png``).

        A file of version 1 comes back in the shown image's pixels (see the module's notes);
        the file itself is only rewritten by the next :meth:`save`.
        """
        path = self.path_for(image)
        stamp = regular_file_stamp(path)
        if stamp is None:
            return None
        self.check_one_image(image)
        return self._load_stamped(image, path, stamp)

    def _load_stamped(self, image: str | Path, path: Path, stamp: Stamp) -> ImageAnnotation:
        """:meth:`load` of a file stamped just now, through the folder's index when it is on
        (:mod:`~napari_detlab.core.annotations.index`): a copy, as callers may edit it."""
        cache = self._index()
        if cache is None:
            return self._read(image, path).annotation()
        return self._indexed_read(cache, image, path, stamp).annotation()

    def _indexed_read(
        self, cache: FileCache, image: str | Path, path: Path, stamp: Stamp
    ) -> _FileRead:
        """The index's read of ``path`` (stamped just now), read again only when it changed."""
        return cache.get(
            path, lambda p: self._read(image, p), stamp=stamp,
            valid=lambda old: old.images == self._image_stamps(image, old.images is not None),
        )  # fmt: skip

    def derived(
        self,
        image: str | Path,
        key: Hashable,
        derive: Callable[[Path, ImageAnnotation], _Derived],
    ) -> _Derived | None:
        """``derive(image, annotation)`` of ``image``'s file, computed once per version of
        the file and kept beside the index; None when the image has no file (as :meth:`load`).

        A whole-dataset figure (the statistics view's per-image counts) then costs a lookup
        per file once warm, instead of a copy of every annotation and the figure again. The
        value is computed again whenever the index reads the file again (a new stamp, from
        this program or another), so it is never older than the file.

        Parameters
        ----------
        image
            As for :meth:`load`.
        key
            Names what ``derive`` computes: values of different keys are kept apart.
        derive
            Computes the value from the image and the index's own annotation (not a copy:
            it must not change it). Kept per image and file.

        Raises
        ------
        AnnotationError
            As :meth:`load`: the file is unreadable, breaks the rules or is shared.
        """
        image = Path(image)
        path = self.path_for(image)
        stamp = regular_file_stamp(path)
        if stamp is None:
            return None
        self.check_one_image(image)
        return self._derive_stamped(self._index(), image, path, stamp, key, derive)

    def derived_each(
        self,
        images: Iterable[Path],
        key: Hashable,
        derive: Callable[[Path, ImageAnnotation], _Derived],
        *,
        unchanged: Mapping[Path, Stamp | None] | None = None,
    ) -> Iterator[tuple[Path, Stamp | None, _Derived | DetlabError | OSError | None]]:
        """:meth:`derived` for each of ``images``, in one pass over the folder: each image
        with its file's stamp and value, or with ``(None, None)`` when it has no file, or
        with the error its file raises (the value's place; the image is not skipped).
        Images whose file still shows the stamp ``unchanged`` gives them (None: no file)
        are left out.

        One ``os.scandir`` stamps every file and each listed image's file name is worked
        out once, so a warm pass over 10,000 images costs a lookup or
        two per file.
        """
        unset = object()
        known: Mapping[Path, object] = unchanged or {}
        files = self._annotation_files()
        stems, by_stem = self._stems()
        cache = self._index()
        folder = self.annotations_dir
        for image in images:
            stem = stems.get(image) or stem_of(image)  # worked out once per listed image
            name = f"{stem}.pt"
            stamp = files.get(name)
            if known.get(image, unset) == stamp:
                continue
            if stamp is None:
                yield image, None, None
                continue
            try:
                if len(by_stem.get(stem, ())) > 1:
                    self.check_one_image(image)  # raises, naming the images
                value = self._derive_stamped(cache, image, folder / name, stamp, key, derive)
            except (DetlabError, OSError) as error:
                yield image, stamp, error
                continue
            yield image, stamp, value
        self._save_index()

    def _derive_stamped(
        self,
        cache: FileCache | None,
        image: Path,
        path: Path,
        stamp: Stamp,
        key: Hashable,
        derive: Callable[[Path, ImageAnnotation], _Derived],
    ) -> _Derived:
        if cache is None:
            return derive(image, self._read(image, path).annotation())
        read = self._indexed_read(cache, image, path, stamp)
        if read.error is not None:
            read.annotation()  # raises the file's error anew
        result = read.result
        assert result is not None
        return cache.derived((key, path), (read,), image, lambda: derive(image, result))

    def _read(self, image: str | Path, path: Path) -> _FileRead:
        """Read and validate ``path``, keeping an error as the result (it is the answer
        until the file changes) and the stamps of the images the answer depends on."""
        try:
            data = safe_torch_load(path)
        except DetlabError as error:  # unsafe or unreadable: the message names the file
            wrapped = AnnotationError(str(error))
            wrapped.__cause__ = error
            return _FileRead(error=wrapped)
        # Only a version-1 file needs its image: the folder is not listed for the others.
        legacy = written_on_stored_pixels(data)
        real_size = None
        needs_image = legacy or (isinstance(data, dict) and data.get("image_size") is None)
        images = self._image_stamps(image, needs_image)
        if isinstance(data, dict) and data.get("image_size") is None:
            real_size = self._real_size(image, stored=legacy)
        try:
            annotation = validate_annotation(
                data, source=str(path), real_size=real_size,
                image=self.image_of(image) if legacy else None,
            )  # fmt: skip
        except AnnotationError as error:
            return _FileRead(error=error, images=images)
        return _FileRead(annotation, images=images)

    def _image_stamps(
        self, image: str | Path, needed: bool
    ) -> tuple[tuple[Path, Stamp | None], ...] | None:
        """The images a file's reading looked at (its size, its orientation), each with its
        stamp, when it looked at any: an annotation checked against an image is read again
        when that image changes."""
        if not needed:
            return None
        seen = dict.fromkeys([*self.images_named(image), self.image_of(image)])
        return tuple((path, regular_file_stamp(path)) for path in seen if path is not None)

    def save(self, image: str | Path, annotation: ImageAnnotation) -> Path:
        """Validate, clip sub-pixel overshoot and write atomically; returns the file written.

        Raises :class:`AnnotationError` (and writes nothing) when the annotation breaks the
        rules, so a bad box never replaces a good file: an annotation without an
        ``image_size`` is checked against the image's real size, and one for an image whose
        stem another image shares is refused (:class:`AmbiguousImageError`).
        """
        path = self.path_for(image)
        self.check_one_image(image)
        real_size = None
        if annotation.image_size is None:
            real_size = self._real_size(image)
        checked = validate_annotation(annotation.to_dict(), source=str(path), real_size=real_size)
        if real_size is not None:
            checked.image_size = None  # checked against the header; written as it was given
        atomic_torch_save(path, checked.to_dict())
        return path

    def delete(self, image: str | Path) -> None:
        """Forget an image's annotation: it counts as never looked at again.

        Raises
        ------
        AmbiguousImageError
            The file would belong to two images: it is left alone.
        """
        path = self.path_for(image)
        if path.exists():
            self.check_one_image(image)
        path.unlink(missing_ok=True)

    def quarantine(self, image: str | Path) -> Path:
        """Set the image's unloadable file aside as ``<stem>.pt.unreadable``; returns where.

        The next edit would otherwise replace a file the user may still want to repair (or
        that a newer version wrote). Set aside, it is kept and the store no longer sees it;
        a file set aside earlier is not overwritten either (``.unreadable.2``, ...).
        """
        bad = self.path_for(image)
        aside, number = bad.with_name(f"{bad.name}.unreadable"), 1
        while aside.exists():
            number += 1
            aside = bad.with_name(f"{bad.name}.unreadable.{number}")
        bad.replace(aside)
        return aside

    def annotated(
        self, on_error: Callable[[Path, AnnotationError], None] | None = None
    ) -> Iterator[tuple[Path, ImageAnnotation]]:
        """Each image that has an annotation file, with the annotation, in image order.

        A bad file raises :class:`AnnotationError` unless ``on_error`` is given: then it is
        called with the image and the error, and the image is skipped. A file two images
        would share is reported once, with the first of them, and both are skipped.
        """
        reported: set[str] = set()
        files = self._annotation_files()
        for image in self.images:
            name = f"{stem_of(image)}.pt"
            stamp = files.get(name)
            if stamp is None:
                continue
            path = self.annotations_dir / name
            try:
                self.check_one_image(image)
                annotation = self._load_stamped(image, path, stamp)
            except FileNotFoundError:  # deleted since the folder was listed
                continue
            except AnnotationError as error:
                if on_error is None:
                    raise
                if isinstance(error, AmbiguousImageError):
                    if stem_of(image) in reported:
                        continue
                    reported.add(stem_of(image))
                on_error(image, error)
                continue
            yield image, annotation
        self._save_index()

    def _index(self) -> FileCache | None:
        """The folder's index (:mod:`~napari_detlab.core.annotations.index`), taking in
        what the last process wrote down of it on first use; ``None`` while it is off."""
        cache = folder_cache(self.annotations_dir)
        if cache is not None:
            cache.seed_once(self._saved_reads)
        return cache

    def _saved_reads(self) -> dict[Path, tuple[Stamp, _FileRead]]:
        saved = read_saved_index(self.annotations_dir)
        return {
            self.annotations_dir / name: (stamp, _FileRead(annotation))
            for name, (stamp, annotation) in saved.items()
        }

    def _save_index(self) -> None:
        """Write the index down (:mod:`~napari_detlab.core.annotations.saved_index`) once a
        whole-dataset question had to read enough files: the first one after opening the
        folder, or after many saves. Only reads that depend on their file alone are kept;
        a folder that cannot be written keeps its index in memory, silently."""
        cache = folder_cache(self.annotations_dir)
        if cache is None or not save_due(cache.unsaved(), len(cache)):
            return
        entries = {
            path.name: (stamp, read.result)
            for path, (stamp, read) in cache.trusted().items()
            if isinstance(read, _FileRead) and read.result is not None and read.images is None
        }
        try:
            write_saved_index(self.annotations_dir, entries)
        except OSError:
            return
        cache.mark_saved()

    def _annotation_files(self) -> dict[str, Stamp]:
        """``{file name: stamp}`` of the annotations folder's ``.pt`` files, in one
        ``os.scandir`` (the stat of each entry is the only other call); the index forgets
        the files that are gone."""
        files: dict[str, Stamp] = {}
        try:
            entries = os.scandir(self.annotations_dir)
        except (FileNotFoundError, NotADirectoryError):
            entries = None
        if entries is not None:
            with entries:
                for entry in entries:
                    if entry.name.endswith(".pt") and not entry.name.startswith("."):
                        try:
                            status = entry.stat()
                        except OSError:
                            continue
                        if stat.S_ISREG(status.st_mode):
                            files[entry.name] = stamp_of(status)
        cache = self._index()
        if cache is not None and len(cache) > len(files):  # some were deleted
            cache.retain({self.annotations_dir / name for name in files})
        return files

    def trainable(self) -> Iterator[tuple[Path, ImageAnnotation]]:
        """Each image that takes part in training, with its annotation (bad files raise)."""
        return ((image, ann) for image, ann in self.annotated() if ann.trainable)

    def trainable_stems(self) -> list[str]:
        """Stems of the images that train, in the folder's natural order."""
        return [image.stem for image, _ in self.trainable()]

    def next_unannotated(self, after: int = -1) -> int | None:
        """Index of the first image after ``after`` (wrapping around) with no annotation file."""
        images, count = self.images, len(self.images)
        if folder_cache(self.annotations_dir) is None:
            has = self.has
        else:  # one listing of the folder instead of a stat per image
            names = self._annotation_files()
            has = lambda image: f"{stem_of(image)}.pt" in names  # noqa: E731
        for step in range(1, count + 1):
            index = (after + step) % count
            if not has(images[index]):
                return index
        return None

    # -- classes ------------------------------------------------------------------------
    @property
    def classes_path(self) -> Path:
        return self.annotations_dir / CLASSES_FILENAME

    def load_classes(self) -> list[ClassSpec]:
        """The class list saved with the dataset, plus any label found in files but not listed."""
        classes = self.listed_classes()
        known = {c.name for c in classes}
        if self.annotations_dir.is_dir():
            # A broken file is reported when its image is opened; it must not hide the list.
            for _, annotation in self.annotated(on_error=lambda image, error: None):
                for label in annotation.labels:
                    if label not in known:
                        known.add(label)
                        classes.append(ClassSpec(label, next_color(classes)))
        return classes

    def listed_classes(self) -> list[ClassSpec]:
        """The class list as saved in ``classes.json`` alone (no file is read for labels);
        empty when there is none.

        Raises
        ------
        AnnotationError
            The list is unreadable; the message names the file.
        """
        if not self.classes_path.is_file():
            return []
        try:
            raw = json.loads(self.classes_path.read_text(encoding="utf-8"))
            return [ClassSpec(str(c["name"]), str(c["color"])) for c in raw["classes"]]
        except (ValueError, KeyError, TypeError) as error:
            raise AnnotationError(
                f"{self.classes_path}: unreadable class list ({error})"
            ) from error

    def class_names(self) -> list[str]:
        """The dataset's class names, in the class list's order.

        The order is the one the user sees in the Annotator, and it fixes a model's label ids
        (``classes[i]`` is label ``i + 1``; 0 is background).
        """
        return [spec.name for spec in self.load_classes()]

    def save_classes(self, classes: list[ClassSpec]) -> None:
        """Write the class list (order and colours) atomically to ``annotations/classes.json``."""
        names = [c.name for c in classes]
        repeated = [name for index, name in enumerate(names) if name in names[:index]]
        if repeated:
            raise AnnotationError(
                f"class names must be unique: a class named {repeated[0]!r} exists already"
            )
        if any(not name.strip() for name in names):
            raise AnnotationError("a class name cannot be empty")
        atomic_write_json(
            self.classes_path, {"classes": [{"name": c.name, "color": c.color} for c in classes]}
        )

    def class_counts(self) -> dict[str, int]:
        """How many boxes use each class, over the whole dataset."""
        counts: dict[str, int] = {}
        for _, annotation in self.annotated():
            for label in annotation.labels:
                counts[label] = counts.get(label, 0) + 1
        return counts

    def rename_class(self, old: str, new: str) -> int:
        """Rename a class in the class list and in every file; returns the boxes relabelled."""
        new = new.strip()
        if not new:
            raise AnnotationError("a class name cannot be empty")
        classes = self.load_classes()
        names = {c.name for c in classes}
        if old not in names:
            raise AnnotationError(f"there is no class named {old!r}")
        if new == old:
            return 0
        if new in names:
            raise AnnotationError(f"a class named {new!r} exists already")
        changed = 0
        for image, annotation in self.annotated():
            if old in annotation.labels:
                changed += annotation.labels.count(old)
                annotation.labels = [new if label == old else label for label in annotation.labels]
                self.save(image, annotation)
        self.save_classes([ClassSpec(new if c.name == old else c.name, c.color) for c in classes])
        return changed

    def remove_class(self, name: str, *, delete_boxes: bool = False) -> int:
        """Remove a class; refuses while boxes use it unless ``delete_boxes`` says to drop them."""
        classes = self.load_classes()
        if name not in {c.name for c in classes}:
            raise AnnotationError(f"there is no class named {name!r}")
        used = self.class_counts().get(name, 0)
        if used and not delete_boxes:
            raise ClassInUseError(
                f"class {name!r} is used by {used} boxes; delete them or rename the class"
            )
        if used:
            for image, annotation in self.annotated():
                keep = [label != name for label in annotation.labels]
                if not all(keep):
                    annotation.boxes = annotation.boxes[np.asarray(keep, bool)]
                    annotation.labels = [label for label in annotation.labels if label != name]
                    self.save(image, annotation)
        self.save_classes([c for c in classes if c.name != name])
        return used
