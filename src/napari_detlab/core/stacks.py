"""Stacks: a multi-page TIFF, or a 3-D / 4-D TIFF (z, time, channels), as planes.

Every plane of a stack is annotated, trained on, predicted and exported as an image of its
own. Rather than teach every part of the package a second kind of image, a plane is named by
a path that says file and plane, ``cells.plane-0003.tif`` for plane 3 (counted from 0, as
napari's dims slider counts) of ``cells.tif``. Such a path is an image like any other:
:func:`~napari_detlab.core.images.read_image` and
:func:`~napari_detlab.core.images.image_size` read that plane, its stem
(``cells.plane-0003``) names its annotation and prediction files, and a listing holds the
planes of a file where it would hold the file (:func:`expand_planes`), so ``n`` goes over the
planes of a file and then to the next file. A file with one plane keeps its own path, so a
folder without stacks is listed, named and stored exactly as before.

What a plane is: every index over the axes before the image's rows (``Y``), flattened in
C order (a ``T x Z`` stack of 2 x 5 has planes 0-9, plane 7 being t=1, z=2). Colour is not
a stack: a trailing axis of 3 or 4 (``...YXS``, RGB or RGBA) is the colour of one plane, and
so is a leading sample axis that the file itself tags as colour (photometric RGB, YCbCr or
CIELab, "planar" colour), which is how the previous versions read such a file, so an
annotated dataset keeps its ``<stem>.pt``. A leading axis of 3 in a file tagged grey
(``photometric="minisblack"``, or ImageJ) is a stack of 3 planes. (``tifffile.imwrite`` of
a ``3 x H x W`` array without ``photometric`` tags it RGB today, with a warning that it will
not in future versions.)

A real file whose name looks like a plane's (``a.plane-0001.tif`` on disk) is that file.
Counting the planes of a file opens only its header, and the count is kept under the file's
stamp, so listing a folder of stacks does not decode them.
"""

from __future__ import annotations

import math
import os
import re
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from napari_detlab.core.orientation import ORIENTATION_TAG, orientation_value

if TYPE_CHECKING:
    import tifffile

__all__ = [
    "PLANE_EXPORT_SUFFIX",
    "PLANE_WORD",
    "PlaneStack",
    "expand_planes",
    "export_name",
    "is_tiff",
    "plane_count",
    "plane_path",
    "planes_of",
    "read_tiff_plane",
    "split_plane",
    "tiff_plane_size",
]

PLANE_WORD = "plane"
_PLANE_NAME = re.compile(rf"^(?P<stem>.+)\.{PLANE_WORD}-(?P<plane>\d{{4,}})(?P<suffix>\.[^.]+)$")
_TIFF_SUFFIXES = (".tif", ".tiff")
# TIFF photometric interpretations whose samples are one pixel's colour (RGB, YCbCr, CIELab).
_COLOUR = (2, 6, 8)
# What a plane is exported as: COCO, VOC and YOLO know images as files of one picture.
PLANE_EXPORT_SUFFIX = ".png"


def is_tiff(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a TIFF (the only format that holds stacks)."""
    return os.path.splitext(os.fspath(path))[1].lower() in _TIFF_SUFFIXES


def plane_path(file: str | os.PathLike[str], plane: int) -> Path:
    """The path that names plane ``plane`` (from 0) of ``file``: ``cells.plane-0003.tif``."""
    file = Path(file)
    return file.with_name(f"{file.stem}.{PLANE_WORD}-{plane:04d}{file.suffix}")


def split_plane(path: str | os.PathLike[str]) -> tuple[Path, int] | None:
    """``(file, plane)`` when ``path`` names a plane of a stack, else ``None``.

    ``None`` for a real file (whatever its name) and for a name whose stack file is absent.
    """
    match = _PLANE_NAME.match(os.path.basename(os.fspath(path)))
    if match is None:
        return None
    path = Path(path)
    file = path.with_name(match["stem"] + match["suffix"])
    if os.path.exists(path) or not os.path.isfile(file):
        return None
    return file, int(match["plane"])


def export_name(image: str | os.PathLike[str]) -> str:
    """The file name an exported image has in COCO, VOC or YOLO: a plane's own PNG
    (``cells.plane-0003.png``, see :mod:`~napari_detlab.formats.plane_images`), else the
    image's file name."""
    image = Path(image)
    return f"{image.stem}{PLANE_EXPORT_SUFFIX}" if split_plane(image) else image.name


class _Layout:
    """Where the planes of a TIFF's first series are: ``count`` planes, ``per_page`` of them
    in each page (more than one when a page holds several grey samples), ``size`` the
    ``(height, width)`` of a plane as stored and ``orientation`` the TIFF's."""

    def __init__(self, tif: tifffile.TiffFile) -> None:
        series = tif.series[0]
        axes, shape = series.axes, tuple(int(n) for n in series.shape)
        self.orientation = orientation_value(series.keyframe.tags.valueof(ORIENTATION_TAG))
        self.count, self.per_page = 1, 1
        if "Y" not in axes or "X" not in axes:
            self.size = (shape[0], shape[1])
            return
        rows = axes.index("Y")
        self.size = (shape[rows], shape[axes.index("X")])
        leading = shape[:rows]
        if axes[:rows].endswith("S") and int(series.keyframe.photometric) in _COLOUR:
            leading = leading[:-1]  # planar colour: the samples are one plane's colour
        count, pages = math.prod(leading), len(series.pages)
        if count > 1 and pages and count % pages == 0:
            self.count, self.per_page = count, count // pages


def _layout(file: Path) -> _Layout:
    import tifffile

    with tifffile.TiffFile(file) as tif:
        return _Layout(tif)


_counts: dict[str, tuple[tuple[int, int, int, int], int]] = {}
_counts_lock = threading.Lock()


def plane_count(file: str | os.PathLike[str]) -> int:
    """How many planes ``file`` holds: 1 for anything but a stack (and for a file that
    cannot be read, which reading it then reports). Kept under the file's stamp."""
    if not is_tiff(file):
        return 1
    key = os.fspath(file)
    try:
        status = os.stat(key)
    except OSError:
        return 1
    stamp = (status.st_mtime_ns, status.st_ctime_ns, status.st_size, status.st_ino)
    with _counts_lock:
        known = _counts.get(key)
    if known is not None and known[0] == stamp:
        return known[1]
    try:
        count = 1 if _one_plane_by_header(key) else _layout(Path(key)).count
    except Exception:  # any decoder error: listed as one image, reading it names the problem
        count = 1
    with _counts_lock:
        _counts[key] = (stamp, count)
    return count


# TIFF tags read by :func:`_one_plane_by_header`.
_DESCRIPTION, _SAMPLES_PER_PIXEL, _PLANAR_CONFIGURATION, _IMAGE_DEPTH = 270, 277, 284, 32997


def _one_plane_by_header(path: str) -> bool:
    """Whether the TIFF at ``path`` surely holds one plane, from its first directory alone.

    Listing a folder of 10,000 single-page TIFFs must not open each with tifffile (about
    1 ms a file). One directory and no next one, with one sample per pixel or colour stored
    per pixel, no depth and no ImageJ count of images, is one plane; anything else (also a
    file this cannot parse) is left to tifffile, which answers exactly.
    """
    with open(path, "rb") as file:
        head = file.read(16)
        order = {b"II": "<", b"MM": ">"}[head[:2]]
        big = int.from_bytes(head[2:4], "little" if order == "<" else "big") == 43
        count_size, entry_size, offset_size = (8, 20, 8) if big else (2, 12, 4)
        number = _struct(order, offset_size)
        file.seek(number.unpack(head[8:16] if big else head[4:8])[0])
        entries = _struct(order, count_size).unpack(file.read(count_size))[0]
        table = file.read(entries * entry_size + offset_size)
        values: dict[int, int] = {}
        description = b""
        for i in range(entries):
            entry = table[i * entry_size : (i + 1) * entry_size]
            tag = _struct(order, 2).unpack(entry[:2])[0]
            field = entry[4 + offset_size :]  # the value, or where it is when it does not fit
            if tag == _DESCRIPTION:
                length = number.unpack(entry[4 : 4 + offset_size])[0]
                if length <= offset_size:
                    description = field[:length]
                else:
                    file.seek(number.unpack(field)[0])
                    description = file.read(min(length, 4096))
            elif tag in (_SAMPLES_PER_PIXEL, _PLANAR_CONFIGURATION, _IMAGE_DEPTH):
                values[tag] = _struct(order, 2).unpack(field[:2])[0]  # SHORTs sit left
        next_directory = number.unpack(table[entries * entry_size :][:offset_size])[0]
    if next_directory or b"images=" in description or values.get(_IMAGE_DEPTH, 1) > 1:
        return False
    return values.get(_SAMPLES_PER_PIXEL, 1) == 1 or values.get(_PLANAR_CONFIGURATION, 1) == 1


def _struct(order: str, size: int) -> struct.Struct:
    return struct.Struct(order + {2: "H", 4: "I", 8: "Q"}[size])


def expand_planes(files: Iterable[Path]) -> list[Path]:
    """``files`` with each stack replaced by its planes, in order (file by file)."""
    images: list[Path] = []
    for file in files:
        count = plane_count(file)
        images.extend([file] if count < 2 else (plane_path(file, k) for k in range(count)))
    return images


def planes_of(image: str | os.PathLike[str]) -> list[Path]:
    """Every plane of the stack ``image`` belongs to (``image`` itself when not a plane)."""
    where = split_plane(image)
    if where is None:
        return [Path(image)]
    return expand_planes([where[0]])


def read_tiff_plane(file: Path, plane: int) -> tuple[np.ndarray, int]:
    """The stored pixels of plane ``plane`` of ``file`` and the orientation to apply.

    Only the page holding the plane is decoded.
    """
    import tifffile

    with tifffile.TiffFile(file) as tif:
        layout = _Layout(tif)
        if not 0 <= plane < layout.count:
            raise ValueError(f"it has {layout.count} plane(s), not a plane {plane}")
        page = np.asarray(tif.asarray(key=plane // layout.per_page, series=0))
    if layout.per_page > 1:
        page = page.reshape(layout.per_page, *page.shape[-2:])[plane % layout.per_page]
    return page, layout.orientation


def tiff_plane_size(file: Path) -> tuple[tuple[int, int], int]:
    """``((height, width), orientation)`` of each plane of ``file``, from its header."""
    layout = _layout(file)
    return layout.size, layout.orientation


class PlaneStack:
    """The planes of one stack as a read-only array, planes first, decoded plane by plane.

    What the Annotator gives napari's Image layer, so that entering a stack of hundreds of
    planes costs one plane's decode, not all of them (napari slices it by the dims slider's
    position, as it slices a dask array). The planes used last are kept.

    Parameters
    ----------
    planes
        The planes' paths, in order.
    reader
        Decodes one plane; a plane it cannot decode is shown black (the Annotator reports
        it and moves on, as for any unreadable image).
    sample
        One decoded plane: every plane has its shape and type.
    keep
        How many decoded planes are kept.
    """

    def __init__(
        self,
        planes: Iterable[Path],
        reader: Callable[[Path], np.ndarray],
        sample: np.ndarray,
        keep: int = 8,
    ) -> None:
        self.planes = list(planes)
        self._reader, self._keep = reader, keep
        self.shape = (len(self.planes), *sample.shape)
        self.dtype = sample.dtype
        self.ndim = len(self.shape)
        self.size = math.prod(self.shape)
        self._decoded: OrderedDict[int, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return self.shape[0]

    def put(self, index: int, pixels: np.ndarray) -> None:
        """Keep ``pixels``, already decoded elsewhere, as plane ``index``."""
        self._decoded[index] = pixels
        self._decoded.move_to_end(index)
        while len(self._decoded) > self._keep:
            self._decoded.popitem(last=False)

    def plane(self, index: int) -> np.ndarray:
        """Plane ``index`` (negative counts from the end), decoded now if not kept."""
        index = range(len(self))[index]
        pixels = self._decoded.get(index)
        if pixels is None:
            try:
                pixels = self._reader(self.planes[index])
            except Exception:  # the reader's error is the Annotator's to report
                pixels = np.zeros(self.shape[1:], self.dtype)
            if pixels.shape != self.shape[1:]:
                pixels = np.zeros(self.shape[1:], self.dtype)
        self.put(index, pixels)
        return pixels

    def __getitem__(self, key: object) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if not key or key[0] is Ellipsis:
            return np.asarray(self)[key]
        first, rest = key[0], key[1:]
        if isinstance(first, (int, np.integer)):
            return self.plane(int(first))[rest]
        if isinstance(first, slice):
            picked = [self.plane(i) for i in range(len(self))[first]]
            stacked = np.stack(picked) if picked else np.zeros((0, *self.shape[1:]), self.dtype)
            return stacked[(slice(None), *rest)]
        return np.asarray(self)[key]

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        whole = np.stack([self.plane(i) for i in range(len(self))])
        return whole if dtype is None else whole.astype(dtype)
