"""Finding and decoding the images of a dataset folder.

Users arrive with whatever their microscope or camera wrote: JPEG, PNG, TIFF (16-bit,
multi-page), grayscale or RGBA. Reading returns the pixels as stored (the Annotator shows them
within the limits of :func:`contrast_for`); :func:`to_float_rgb` is the one place that turns
them into the 3-channel ``[0, 1]`` floats a torchvision detector expects.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from napari_detlab.core.errors import DetlabError

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageReadError",
    "contrast_for",
    "image_size",
    "list_images",
    "read_image",
    "to_float_rgb",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")


class ImageReadError(DetlabError, ValueError):
    """An image file that cannot be decoded; the message names the file."""


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
    found = [
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    ]
    return sorted(found, key=_natural_key)


def read_image(path: str | Path) -> np.ndarray:
    """Decode one image: ``(H, W)`` grayscale or ``(H, W, C)`` colour, dtype as stored.

    Multi-page TIFFs give their first page, and a trailing singleton channel is dropped so
    grayscale is always 2-D.
    """
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            array = tifffile.imread(path, key=0)
        else:
            array = _read_with_pillow(path)
    except Exception as error:  # decoders raise many types; the user needs the file name
        raise ImageReadError(f"{path}: cannot be read as an image ({error})") from error
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[0] in (1, 2, 3, 4) and array.shape[-1] > 4:
        array = np.moveaxis(array, 0, -1)  # channel-first TIFFs
    if array.ndim == 3 and array.shape[-1] in (1, 2):
        array = array[..., 0]  # grayscale, possibly with alpha
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ImageReadError(f"{path}: unsupported image shape {array.shape}")
    return array


# Pillow modes whose pixels numpy cannot show as they are: converted to the nearest that can.
_PILLOW_CONVERSIONS = {"1": "L", "LA": "L", "La": "L", "P": "RGBA", "PA": "RGBA", "CMYK": "RGB",
                       "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB", "RGBa": "RGBA",
                       "RGBX": "RGB"}  # fmt: skip


def _read_with_pillow(path: Path) -> np.ndarray:
    """Decode with Pillow, turning palette, CMYK, bilevel and gray+alpha into plain arrays."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        mode = image.mode
        if mode == "P" and "transparency" not in image.info:
            image = image.convert("RGB")
        elif mode in _PILLOW_CONVERSIONS:
            image = image.convert(_PILLOW_CONVERSIONS[mode])
        return np.asarray(image)


def image_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` read from the header when possible, without decoding the pixels."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                shape = tif.pages[0].shape
                axes = tif.pages[0].axes
            if "Y" in axes and "X" in axes:
                return int(shape[axes.index("Y")]), int(shape[axes.index("X")])
            return int(shape[0]), int(shape[1])
        from PIL import Image

        with Image.open(path) as image:
            width, height = image.size
        return int(height), int(width)
    except Exception as error:
        raise ImageReadError(f"{path}: cannot be read as an image ({error})") from error


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
