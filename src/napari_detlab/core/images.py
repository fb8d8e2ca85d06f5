"""Finding and decoding the images of a dataset folder.

Users arrive with whatever their microscope or camera wrote: JPEG, PNG, TIFF (16-bit,
multi-page), grayscale or RGBA. Reading returns the pixels as the image is meant to be seen:
a phone photo's EXIF orientation is applied (:mod:`~napari_detlab.core.orientation`), as every
gallery, CVAT and OpenCV do, so boxes here and boxes there are in the same pixels. Everything
that shows, trains on, predicts or measures an image goes through :func:`read_image` and
:func:`image_size`. The Annotator shows the pixels within the limits of
:func:`contrast_for`; :func:`to_float_rgb` is the one place that turns them into the
3-channel ``[0, 1]`` floats a torchvision detector expects.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from napari_detlab.core.boxes import BoxRecord
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.orientation import (
    ORIENTATION_TAG,
    orient_pixels,
    orient_record,
    orientation_value,
    oriented_size,
)
from napari_detlab.core.stacks import (
    PlaneStack,
    planes_of,
    read_tiff_plane,
    split_plane,
    tiff_plane_size,
)

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageHeader",
    "ImageReadError",
    "contrast_for",
    "image_size",
    "list_images",
    "orient_stored_boxes",
    "read_header",
    "read_image",
    "read_stack",
    "to_float_rgb",
    "unreadable_images",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")


class ImageReadError(DetlabError, ValueError):
    """An image file that cannot be decoded; the message names the file.

    ``reason`` is the message without the path (what a list of several files shows).
    """

    reason: str = ""


def _unreadable(path: Path, reason: str) -> ImageReadError:
    error = ImageReadError(f"{path}: cannot be read as an image ({reason})")
    error.reason = reason
    return error


def _reason(path: Path, error: Exception) -> str:
    """Why a decoder failed, in words, without the path a decoder may repeat in its message
    (Pillow's "cannot identify image file '/the/path'" would name the file twice)."""
    try:
        if path.stat().st_size == 0:
            return "the file is empty"
    except OSError as stat_error:
        return stat_error.strerror or type(stat_error).__name__
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if text.startswith("cannot identify image file"):
        return "its content is not an image of a known format"
    if text.startswith("image file is truncated"):
        return "the file is cut short"
    for spelling in (f" '{path}'", f" {path}", str(path)):
        text = text.replace(spelling, "")
    return text.strip(" :") or type(error).__name__


def _natural_key(path: Path) -> tuple[list[object], str]:
    """Sort ``img2`` before ``img10``, as a person numbering files expects.

    ``re.split`` with a capturing group alternates text and digits, so items at the same
    position always compare text with text and numbers with numbers. The full name breaks
    ties (``img01`` / ``img1``) so the order never depends on the file system.
    """
    parts = re.split(r"(\d+)", path.name)
    return [int(part) if i % 2 else part.lower() for i, part in enumerate(parts)], path.name


def list_images(folder: str | Path) -> list[Path]:
    """The image files directly inside ``folder``, in natural order; hidden files skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    # os.scandir knows each entry's type from the listing itself (no stat per file on
    # local file systems): 10,000 images list in tens of milliseconds.
    with os.scandir(folder) as entries:
        found = [
            folder / entry.name
            for entry in entries
            if not entry.name.startswith(".")
            and os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES
            and entry.is_file()
        ]
    return sorted(found, key=_natural_key)


def read_image(path: str | Path) -> np.ndarray:
    """Decode one image as it is meant to be seen: ``(H, W)`` grayscale or ``(H, W, C)``
    colour, dtype as stored, its EXIF (or TIFF) orientation applied.

    The result equals ``np.asarray(ImageOps.exif_transpose(Image.open(path)))`` for the
    images Pillow reads. A plane of a stack (``cells.plane-0003.tif``, see
    :mod:`~napari_detlab.core.stacks`) gives that plane; a stack's own path its first page.
    A trailing singleton channel is dropped so grayscale is always 2-D.
    """
    return _read(Path(path))


def read_stack(image: str | Path, pixels: np.ndarray | None = None) -> PlaneStack:
    """Every plane of the stack ``image`` (a plane's path) belongs to, as one array with the
    planes first, ``(planes, H, W[, C])``, decoded plane by plane when asked for
    (:class:`~napari_detlab.core.stacks.PlaneStack`); a single image as one plane.

    ``pixels`` are ``image``'s, when already decoded. What the Annotator shows under napari's
    dims slider. Raises :class:`ImageReadError` as :func:`read_image` does when ``image``
    cannot be decoded.
    """
    planes = planes_of(image)
    if pixels is None:
        pixels = read_image(image)
    stack = PlaneStack(planes, read_image, pixels)
    stack.put(planes.index(Path(image)), pixels)
    return stack


def _read(path: Path, *, reduced: bool = False) -> np.ndarray:
    """:func:`read_image`; ``reduced`` decodes a JPEG at 1/8 scale (see :func:`_check`)."""
    plane = split_plane(path) if _is_tiff(path) else None
    try:
        if plane is not None:
            array, orientation = read_tiff_plane(*plane)
        elif _is_tiff(path):
            array, orientation = _read_with_tifffile(path)
        else:
            array, orientation = _read_with_pillow(path, reduced=reduced)
    except Exception as error:  # decoders raise many types; the user needs the file name
        raise _unreadable(path, _reason(plane[0] if plane else path, error)) from error
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[0] in (1, 2, 3, 4) and array.shape[-1] > 4:
        array = np.moveaxis(array, 0, -1)  # channel-first TIFFs
    if array.ndim == 3 and array.shape[-1] in (1, 2):
        array = array[..., 0]  # grayscale, possibly with alpha
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise _unreadable(path, f"unsupported image shape {array.shape}")
    return orient_pixels(array, orientation)


def _is_tiff(path: Path) -> bool:
    return path.suffix.lower() in (".tif", ".tiff")


def _read_with_tifffile(path: Path) -> tuple[np.ndarray, int]:
    """The first page and its Orientation tag (what Pillow's ``getexif`` reports for TIFFs)."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        return tif.asarray(key=0), orientation_value(tif.pages[0].tags.valueof(ORIENTATION_TAG))


# Pillow modes whose pixels numpy cannot show as they are: converted to the nearest that can.
_PILLOW_CONVERSIONS = {"1": "L", "LA": "L", "La": "L", "P": "RGBA", "PA": "RGBA", "CMYK": "RGB",
                       "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB", "RGBa": "RGBA",
                       "RGBX": "RGB"}  # fmt: skip


def _read_with_pillow(path: Path, *, reduced: bool = False) -> tuple[np.ndarray, int]:
    """Decode with Pillow, turning palette, CMYK, bilevel and gray+alpha into plain arrays;
    returns the stored pixels and the orientation to apply.

    ``reduced`` lets libjpeg decode a JPEG at 1/8 of its size: every byte of the compressed
    data is still read and entropy-decoded (a cut-short file fails as it would at full size),
    but the inverse DCT and colour conversion run on 1/64 of the pixels.
    """
    from PIL import Image

    with Image.open(path) as image:
        if reduced and image.format == "JPEG":
            image.draft(None, (max(1, image.width // 8), max(1, image.height // 8)))
        image.load()
        orientation = _pillow_orientation(image)
        mode = image.mode
        if mode == "P" and "transparency" not in image.info:
            image = image.convert("RGB")
        elif mode in _PILLOW_CONVERSIONS:
            image = image.convert(_PILLOW_CONVERSIONS[mode])
        return np.asarray(image), orientation


def _pillow_orientation(image: Image.Image) -> int:
    """The orientation ``ImageOps.exif_transpose`` applies: EXIF, else XMP's, else 1.

    A damaged EXIF block must not make a photo unreadable: it counts as no orientation.
    """
    try:
        return orientation_value(image.getexif().get(ORIENTATION_TAG, 1))
    except Exception:  # Pillow's EXIF parser raises many types on damaged blocks
        return 1


@dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says about its geometry.

    Attributes
    ----------
    stored_size
        ``(height, width)`` of the pixels as stored in the file.
    orientation
        The EXIF (or TIFF) orientation, 1-8; 1 when the file has none.
    """

    stored_size: tuple[int, int]
    orientation: int = 1

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` of the image as shown: what :func:`read_image` returns."""
        return oriented_size(self.stored_size, self.orientation)


def read_header(path: str | Path) -> ImageHeader:
    """The stored size and orientation of an image, from its header, without decoding it."""
    path = Path(path)
    try:
        if _is_tiff(path):
            return _tiff_header(path)
        from PIL import Image

        with Image.open(path) as image:
            width, height = image.size
            if image.format == "PNG":
                _spare_png_decode(image, path)
            return ImageHeader((int(height), int(width)), _pillow_orientation(image))
    except Exception as error:
        raise _unreadable(path, _reason(path, error)) from error


def _tiff_header(path: Path) -> ImageHeader:
    plane = split_plane(path)
    if plane is not None:
        return ImageHeader(*tiff_plane_size(plane[0]))
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        shape, axes = page.shape, page.axes
        orientation = orientation_value(page.tags.valueof(ORIENTATION_TAG))
    if "Y" in axes and "X" in axes:
        return ImageHeader((int(shape[axes.index("Y")]), int(shape[axes.index("X")])), orientation)
    return ImageHeader((int(shape[0]), int(shape[1])), orientation)


# PNG text chunks whose keyword Pillow reads an orientation from (EXIF as hex, XMP).
_PNG_ORIENTATION_KEYWORDS = (b"Raw profile type exif", b"XML:com.adobe.xmp")


def _spare_png_decode(image: Image.Image, path: Path) -> None:
    """Let ``image.getexif()`` answer from the chunks before the pixels when that is complete.

    A PNG may carry its EXIF after the pixel data, so Pillow decodes the whole image before
    it answers ``getexif()`` unless an EXIF chunk came before the pixels. Sizing a folder of
    PNGs must not decode them: when no chunk after the pixels can hold an orientation, an
    empty EXIF entry tells Pillow there is none, which is what decoding would have found.
    """
    if "exif" in image.info or "Raw profile type exif" in image.info:
        return
    if not _png_orientation_after_pixels(path):
        image.info["exif"] = b""


def _png_orientation_after_pixels(path: Path) -> bool:
    """Whether a chunk after the first pixel chunk (IDAT) may hold an orientation.

    Reads only the chunks' 8-byte headers (and a text chunk's keyword), seeking over the
    pixel data; a truncated file answers ``False``, as the header's size is still usable.
    """
    with open(path, "rb", buffering=0) as file:
        file.seek(8)  # the signature
        after_pixels = False
        while len(head := file.read(8)) == 8:
            length, kind = int.from_bytes(head[:4], "big"), head[4:]
            if kind == b"IEND":
                return False
            if kind == b"IDAT":
                after_pixels = True
            elif after_pixels and kind == b"eXIf":
                return True
            elif after_pixels and kind in (b"tEXt", b"zTXt", b"iTXt"):
                start = file.read(min(length, 80))  # a keyword has 1-79 bytes and a NUL
                if start.split(b"\0", 1)[0] in _PNG_ORIENTATION_KEYWORDS:
                    return True
                length -= len(start)
            file.seek(length + 4, 1)  # the (rest of the) data and its CRC
    return False


def image_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` of the image as shown (its orientation applied), read from the
    header without decoding the pixels: the shape :func:`read_image` returns."""
    return read_header(path).size


def orient_stored_boxes(record: BoxRecord, image: str | Path | None) -> None:
    """Move boxes measured on ``image``'s stored pixels onto the image as shown, in place.

    Files written before napari-detlab honoured the orientation (store and prediction files
    of version 1) hold such boxes. Their ``image_size``, when they have one, is the stored
    size the boxes were measured on; else the header's. Nothing happens without an image, for
    an orientation of 1, or when the image cannot be read (it cannot be shown or trained on
    either, and the boxes are kept as they are).
    """
    if image is None:
        return
    try:
        header = read_header(image)
    except ImageReadError:
        return
    if header.orientation != 1:
        size = getattr(record, "image_size", None) or header.stored_size
        orient_record(record, size, header.orientation)


def to_float_rgb(array: np.ndarray) -> np.ndarray:
    """Any decoded image as ``float32 (H, W, 3)`` in ``[0, 1]``.

    8-bit images are divided by 255. Wider integer and float images are stretched between
    their own minimum and maximum, because 12- or 16-bit scientific images rarely use the
    full range and dividing by 65535 would leave them nearly black. Alpha is dropped and
    grayscale repeated over three channels.
    """
    if array.ndim == 3 and array.shape[-1] == 4:
        array = array[..., :3]
    elif array.ndim == 3 and array.shape[-1] in (1, 2):
        array = array[..., 0]
    if array.dtype == np.uint8:
        out = array.astype(np.float32) / 255.0
    elif array.dtype == np.bool_:
        out = array.astype(np.float32)
    else:
        out = array.astype(np.float32)
        finite = np.isfinite(out)
        if not finite.all():  # NaN or inf pixels of a float TIFF: treat as the darkest value
            out = np.where(finite, out, np.nan)
            low = float(np.nanmin(out)) if finite.any() else 0.0
            out = np.nan_to_num(out, nan=low)
        low, high = float(out.min()), float(out.max())
        if high > low:
            out = (out - low) / (high - low)
        else:  # a flat image: keep its level if it is already in [0, 1], else mid-grey
            out = np.full_like(out, low if 0.0 <= low <= 1.0 else 0.5)
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=2)
    return np.ascontiguousarray(out)


def contrast_for(pixels: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """``(range, limits)`` to display ``pixels`` with: the slider's span and where it sits.

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


# How a whole file of these formats ends (JPEG's end-of-image marker, PNG's IEND chunk). A
# file cut short (an interrupted copy or download, the usual way a photo breaks) does not.
_WHOLE_FILE_ENDS = {"JPEG": b"\xff\xd9", "PNG": b"IEND\xaeB`\x82"}


def _ends_whole(path: Path, image_format: str | None) -> bool:
    end = _WHOLE_FILE_ENDS.get(image_format or "")
    if end is None:
        return False
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - len(end)))
        return handle.read() == end


def _check(path: Path) -> str | None:
    """Why ``path`` cannot be decoded for training, or ``None`` if it can.

    A JPEG or PNG whose header opens and whose last bytes are its format's end mark is
    taken as whole without decoding it. Any other file (cut short, data after the end mark,
    TIFF, BMP, WebP) is decoded as :func:`read_image` does, JPEGs at 1/8 scale (see
    :func:`_read_with_pillow`).
    """
    try:
        if path.suffix.lower() not in (".tif", ".tiff"):  # Pillow does not read every TIFF
            from PIL import Image

            with Image.open(path) as image:  # the header only
                if _ends_whole(path, image.format):
                    return None
        _read(path, reduced=True)
    except ImageReadError as error:
        return error.reason
    except Exception as error:  # Pillow's header parsers raise many types
        return _reason(path, error)
    return None


def unreadable_images(
    paths: Sequence[str | Path], *, threads: int | None = None
) -> dict[Path, str]:
    """The images among ``paths`` that cannot be decoded, with why, in the order given.

    This is what training checks before it starts, so that every broken file is reported
    at once instead of the first one ending a run when the data loader reaches it. It must
    stay cheap on a folder of thousands of photos: each file's header is read and its end
    checked (a cut-short JPEG or PNG lacks its end mark), and only the files that fail that,
    or whose format has no end mark, are decoded; all of it on a pool of threads, since
    file reads and decoders release the GIL. (2,000 JPEGs of 640x480: 0.2 s on a busy 2-core
    machine, where decoding them all takes 9 s; see ``benchmarks/bench_image_check.py``.)
    A complete file with corrupt data inside is left to the training loader, which ends the
    run naming it.

    Parameters
    ----------
    paths
        Image files.
    threads
        Threads; ``None`` takes the CPU count, at most 8.
    """
    files = [Path(p) for p in paths]
    workers = threads or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="detlab-image-check") as pool:
        reasons = list(pool.map(_check, files))
    return {path: reason for path, reason in zip(files, reasons, strict=True) if reason}
