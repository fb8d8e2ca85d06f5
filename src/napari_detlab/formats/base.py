"""What every annotation format shares: records, problems, the format interface, image look-ups.

A format module turns files into :class:`Record` objects (one per image, boxes already in the
core's xyxy pixels) and records back into files. Nothing in a format module knows about the
annotation store: :mod:`napari_detlab.formats.dataset_io` matches records to a dataset's
images, so ``convert`` can go from one format to another without a dataset in between, and
every format gets the same matching, clipping and reporting rules.

Reading never stops at the first bad line: what cannot be read is collected as a
:class:`Problem` naming the file and the place (a line number, or a JSON path with the
annotation id), and the rest is imported. Only a source that is unreadable as a whole (not
JSON, no such folder) raises :class:`FormatError`.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_detlab.core.atomic import WriteError, atomic_write_bytes
from napari_detlab.core.boxes import as_boxes
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.images import IMAGE_SUFFIXES, ImageReadError, image_size
from napari_detlab.core.stacks import export_name

__all__ = [
    "FilePerImageFormat",
    "Format",
    "FormatError",
    "ImageIndex",
    "Problem",
    "ProgressCallback",
    "ReadResult",
    "Record",
    "SizeLookup",
    "TargetWriteError",
    "complete_records",
    "parallel_map",
    "write_file",
]

ProgressCallback = Callable[[int, int, str], None]
"""``on_progress(done, total, stage)``; ``stage`` is ``"reading"``, ``"decoding"`` (an
export checking its images) or ``"writing"``."""


class FormatError(DetlabError, ValueError):
    """A source or target that cannot be used at all; the message names the file and place."""


class TargetWriteError(WriteError):
    """A file an import or an export could not write (a full disk, a read-only folder).

    It stops the job: every later file would fail the same way. The message is one line that
    names the file; the files written before it are whole (each write is atomic), and the
    file itself is as it was.
    """

    @classmethod
    def of(cls, path: Path, error: OSError) -> TargetWriteError:
        """The error of writing ``path`` that failed with ``error``; the atomic writer's
        advice (a full disk, a file in the way of a folder) is kept."""
        named = cls(error.errno, error.strerror or str(error) or type(error).__name__, str(path))
        named.advice = getattr(error, "advice", "")
        return named

    def __str__(self) -> str:
        advice = f"; {self.advice}" if self.advice else ""
        return (
            f"{self.filename}: cannot be written ({self.strerror}){advice}; stopped there, the "
            "files written before it are complete"
        )


def write_file(path: Path, data: bytes) -> Path:
    """Write one file of an export atomically; returns ``path``.

    Raises
    ------
    TargetWriteError
        The write failed (full disk, read-only folder, a file where a folder should be);
        ``path`` is untouched and no temporary file is left.
    """
    try:
        atomic_write_bytes(path, data)
    except OSError as error:
        raise TargetWriteError.of(path, error) from error
    return path


def _make_folder(folder: Path) -> None:
    """Create an export's target folder, or raise :class:`TargetWriteError` naming it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TargetWriteError.of(folder, error) from error


@dataclass(frozen=True)
class Problem:
    """Something a reader or writer could not use, and where it is.

    ``location`` is what a person needs to find it: ``"line 12"``, ``"line 3, column 7"`` or
    a JSON path such as ``"annotations[41] (id 57)"``; empty when the whole file is meant.
    """

    file: str
    location: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.location}" if self.location else self.file
        # An error's own message often names the file already ("<file>: not a .pt file").
        return f"{where}: {self.message.removeprefix(f'{self.file}: ')}"


@dataclass
class Record:
    """One image's boxes as a format holds them.

    Not a :class:`~napari_detlab.core.boxes.BoxRecord`: that family keeps float32 boxes (what
    the store and the model hold), while a record keeps the float64 the format was read in,
    so ``convert`` writes a tutorial's ``1.1`` into COCO as ``1.1``, not as float32's
    ``1.100000023841858``. A record becomes the family's
    :class:`~napari_detlab.core.annotations.annotation.ImageAnnotation` on import.

    Attributes
    ----------
    stem
        The image's name without suffix: what YOLO, VOC and tutorial files are named after,
        and the key of the annotation store.
    file_name
        The image's file name when the format records it (COCO ``file_name``, VOC
        ``<filename>``), else ``None``; matched before ``stem``.
    boxes
        ``float64 (N, 4)`` xyxy in pixels of the image.
    labels
        One class name per box.
    image_size
        ``(height, width)`` when the format or the image file tells it.
    difficult
        VOC's per-box ``difficult`` flags, or ``None`` when the format has no such flag.
    source
        The file the record was read from, for messages.
    image
        The image file, once found (in a dataset on import, beside the labels on convert).
    unreadable
        Boxes of this image the reader could not use (each one reported as a problem). Such
        a record is not imported or converted: an image missing one of its boxes would
        teach a detector that the object is background.
    """

    stem: str
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    labels: list[str] = field(default_factory=list)
    file_name: str | None = None
    image_size: tuple[int, int] | None = None
    difficult: list[bool] | None = None
    source: str = ""
    image: Path | None = None
    unreadable: int = 0

    def __post_init__(self) -> None:
        self.boxes = as_boxes(self.boxes, np.float64)
        if len(self.labels) != len(self.boxes):
            raise ValueError(f"{self.stem}: {len(self.boxes)} boxes but {len(self.labels)} labels")

    @property
    def output_name(self) -> str:
        """The image file name to write into formats that name the image."""
        if self.image is not None:
            return export_name(self.image)  # a plane of a stack: its exported PNG
        return self.file_name or self.stem

    def difficult_flags(self) -> list[bool]:
        """One flag per box, ``False`` where the format had none."""
        if self.difficult is None:
            return [False] * len(self.labels)
        return list(self.difficult)


SizeLookup = Callable[[Record], "tuple[int, int] | None"]
"""Finds a record's image and returns its ``(height, width)``; ``None`` when there is none."""


@dataclass
class ReadResult:
    """Everything a reader found: the class list in the format's order, records, problems.

    ``skipped`` counts what the reader left out on purpose (not an error), by reason:
    ``result.skipped["crowd annotations (iscrowd=1)"] += 1``; the reports carry it on.
    """

    classes: list[str]
    records: list[Record]
    problems: list[Problem] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


class Format(ABC):
    """One annotation format: a reader, a writer and how its target looks.

    Subclasses set ``name`` and ``title`` and implement :meth:`read` and :meth:`write`.
    ``target_is_file`` says whether the format is one file (COCO) or a folder of files;
    ``needs_image_size`` whether it cannot write a box without the image's size.
    """

    name: str = ""
    title: str = ""
    target_is_file: bool = False
    needs_image_size: bool = True
    default_file_name: str = ""

    @abstractmethod
    def read(
        self,
        source: Path,
        size_of: SizeLookup,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> ReadResult:
        """Read ``source`` into records; ``size_of`` finds image sizes the format lacks."""

    @abstractmethod
    def write(
        self,
        records: Sequence[Record],
        classes: Sequence[str],
        target: Path,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> tuple[list[Path], list[Problem]]:
        """Write ``records`` (sizes resolved) under ``target``; returns files and problems."""

    def target_file(self, target: Path) -> Path:
        """For one-file formats: ``target`` itself if it names a file, else a file inside it."""
        if target.suffix.lower() == Path(self.default_file_name).suffix:
            return target
        return target / self.default_file_name


class FilePerImageFormat(Format):
    """A format with one file per image, ``<stem><suffix>``, in a folder (VOC, YOLO, tutorial).

    Subclasses implement :meth:`read_file` and :meth:`encode`; the folder walk, the class
    list, progress, the target checks and the overlapped atomic writes are shared here.
    """

    suffix: str = ""

    def source_files(self, folder: Path) -> list[Path]:
        """The annotation files under ``folder`` (recursively, hidden ones skipped)."""
        return sorted(p for p in folder.rglob(f"*{self.suffix}") if not p.name.startswith("."))

    def start_reading(self, source: Path, result: ReadResult) -> None:
        """Read what the folder holds besides per-image files (a class list); default none."""

    @abstractmethod
    def read_file(self, path: Path, size_of: SizeLookup, result: ReadResult) -> Record | None:
        """One file as a record; problems go to ``result``; ``None`` when nothing is usable."""

    @abstractmethod
    def encode(self, record: Record, classes: Sequence[str], folder: Path) -> bytes:
        """The file of ``record`` (its size resolved) as written into ``folder``."""

    def write_extras(self, classes: Sequence[str], target: Path) -> list[Path]:
        """Files besides the per-image ones (a class list); default none."""
        return []

    def read(
        self,
        source: Path,
        size_of: SizeLookup,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> ReadResult:
        if not source.exists():
            raise FileNotFoundError(f"{source}: no such file or folder")
        result = ReadResult(classes=[], records=[])
        self.start_reading(source, result)
        files = [source] if source.is_file() else self.source_files(source)
        for done, path in enumerate(files, start=1):
            report_progress(on_progress, done, len(files))
            record = self.read_file(path, size_of, result)
            if record is not None:
                result.records.append(record)
        labels = (label for record in result.records for label in record.labels)
        result.classes = list(dict.fromkeys([*result.classes, *labels]))
        return result

    def write(
        self,
        records: Sequence[Record],
        classes: Sequence[str],
        target: Path,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> tuple[list[Path], list[Problem]]:
        if target.exists() and not target.is_dir():
            raise FormatError(
                f"{target}: {self.title} is a folder of {self.suffix} files, not a file"
            )
        _make_folder(target)

        def write_one(record: Record) -> Path:
            path = target / f"{record.stem}{self.suffix}"
            return write_file(path, self.encode(record, classes, target))

        extras = self.write_extras(classes, target)
        return [*extras, *parallel_map(write_one, records, on_progress)], []


class ImageIndex:
    """Image files found by file name or by stem, with their sizes read once.

    Import builds one over the dataset's images; convert over the folders beside the labels.
    The first file found for a name wins, as the dataset's natural order puts it first.
    """

    def __init__(self, images: Iterable[Path]) -> None:
        self.by_name: dict[str, Path] = {}
        self.by_stem: dict[str, Path] = {}
        for path in images:
            self.by_name.setdefault(path.name, path)
            self.by_name.setdefault(path.name.lower(), path)
            self.by_stem.setdefault(path.stem, path)
        self._sizes: dict[Path, tuple[int, int] | None] = {}

    @classmethod
    def scan(cls, folders: Iterable[Path], shallow: Iterable[Path] = ()) -> ImageIndex:
        """Every image under ``folders`` (recursively) and directly in ``shallow`` folders.

        Hidden files and folders are skipped.
        """
        found: list[Path] = []
        shallow = set(shallow)
        for folder in [*folders, *shallow]:
            for directory, subdirs, files in os.walk(folder):
                if folder in shallow:
                    subdirs.clear()
                subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
                found.extend(
                    Path(directory) / name
                    for name in sorted(files)
                    if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES
                )
        return cls(found)

    def find(self, record: Record) -> Path | None:
        """The image of ``record``: by its file name (any case), then by its stem."""
        if record.file_name:
            name = Path(record.file_name.replace("\\", "/")).name
            path = self.by_name.get(name) or self.by_name.get(name.lower())
            if path is not None:
                return path
            stem_path = self.by_stem.get(Path(name).stem)
            if stem_path is not None:
                return stem_path
        return self.by_stem.get(record.stem)

    def size(self, path: Path) -> tuple[int, int] | None:
        """``(height, width)`` from the image header; ``None`` when it cannot be read."""
        if path not in self._sizes:
            try:
                self._sizes[path] = image_size(path)
            except ImageReadError:
                self._sizes[path] = None
        return self._sizes[path]

    def size_of(self, record: Record) -> tuple[int, int] | None:
        """A :data:`SizeLookup`: finds the image, remembers it on the record, reads its size."""
        path = record.image or self.find(record)
        if path is None:
            return None
        record.image = path
        return self.size(path)


def complete_records(records: Iterable[Record], problems: list[Problem]) -> list[Record]:
    """The records whose every box was read; the others are named in ``problems``."""
    complete = []
    for record in records:
        if record.unreadable:
            problems.append(
                Problem(record.source, record.file_name or record.stem,
                        f"{record.unreadable} of its boxes could not be read (see above): "
                        "left out, fix the file and import again")
            )  # fmt: skip
        else:
            complete.append(record)
    return complete


WRITE_THREADS = 8


def parallel_map(
    function: Callable[[object], object],
    items: Sequence[object],
    on_progress: Callable[[int, int], None] | None = None,
) -> list[object]:
    """``[function(item) for item in items]`` on a few threads, in order, with progress.

    Every file is written through :mod:`napari_detlab.core.atomic`, whose ``fsync`` makes one
    small file cost ~10 ms on a busy disk; overlapping those waits on
    :data:`WRITE_THREADS` threads is what lets thousands of images convert in seconds while
    each file stays atomic and durable. The first exception (in the order of ``items``)
    stops the work: items not started yet are dropped, those under way finish (each file
    whole), and then it is raised.
    """
    results: list[object] = []
    with ThreadPoolExecutor(max_workers=WRITE_THREADS) as pool:
        futures = [pool.submit(function, item) for item in items]
        try:
            for done, future in enumerate(futures, start=1):
                results.append(future.result())
                report_progress(on_progress, done, len(items))
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return results


def report_progress(
    on_progress: Callable[[int, int], None] | None, done: int, total: int, every: int = 50
) -> None:
    """Call ``on_progress`` every ``every`` items and at the end, not for each of thousands."""
    if on_progress is not None and (done % every == 0 or done == total):
        on_progress(done, total)


def parse_float(text: str | None) -> float:
    """A finite float from a file's text, or ``ValueError`` quoting what was there."""
    value = float((text or "").strip())  # raises ValueError for junk, which callers report
    if not np.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value
