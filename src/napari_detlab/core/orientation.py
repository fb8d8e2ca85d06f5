"""EXIF orientation: how an image's stored pixels map onto the image as it is meant to be seen.

A phone held upright stores its sensor's landscape pixels and a tag (EXIF ``0x0112``, which is
also TIFF's own Orientation tag) saying how to turn them. Galleries, browsers, CVAT, OpenCV
and Pillow's ``ImageOps.exif_transpose`` show the turned image, and so does napari-detlab
(:func:`~napari_detlab.core.images.read_image`): boxes drawn here and boxes from those tools
are in the same pixels. The eight values, as the stored pixels are moved for display::

    1  as stored              5  transposed (mirrored about the main diagonal)
    2  mirrored left-right    6  turned 90 degrees clockwise
    3  turned 180 degrees     7  transversed (mirrored about the other diagonal)
    4  mirrored top-bottom    8  turned 90 degrees counter-clockwise

Each is a transpose or not, followed by a left-right and a top-bottom mirror or not; the same
three steps move pixels (:func:`orient_pixels`), sizes (:func:`oriented_size`) and xyxy boxes
(:func:`orient_boxes`), so a box measured on the stored pixels (files written before the
orientation was honoured) covers the same object once both are oriented. Pixel ``i`` covers
``[i, i + 1)``, so mirroring a width-``W`` axis maps a coordinate ``x`` to ``W - x`` exactly.
"""

from __future__ import annotations

import numpy as np

from napari_detlab.core.boxes import BoxRecord, as_boxes

__all__ = [
    "ORIENTATION_TAG",
    "orient_boxes",
    "orient_pixels",
    "orient_record",
    "orientation_value",
    "oriented_size",
]

ORIENTATION_TAG = 0x0112
# orientation -> (transpose, mirror left-right, mirror top-bottom), applied in that order.
_STEPS = {
    1: (False, False, False),
    2: (False, True, False),
    3: (False, True, True),
    4: (False, False, True),
    5: (True, False, False),
    6: (True, True, False),
    7: (True, True, True),
    8: (True, False, True),
}


def orientation_value(value: object) -> int:
    """A tag's value as an orientation 1-8; anything else (missing, 0, junk) counts as 1.

    ``exif_transpose`` leaves images with such values as they are, and so does this module.
    """
    try:
        number = int(value)  # type: ignore[call-overload]  # tifffile gives an IntEnum
    except (TypeError, ValueError):
        return 1
    return number if number in _STEPS else 1


def oriented_size(stored_size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """``(height, width)`` of the shown image whose stored pixels are ``stored_size``."""
    height, width = (int(v) for v in stored_size)
    transpose = _STEPS.get(orientation, _STEPS[1])[0]
    return (width, height) if transpose else (height, width)


def orient_pixels(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """The stored ``(H, W)`` or ``(H, W, C)`` pixels as shown: a contiguous copy unless 1."""
    transpose, mirror_x, mirror_y = _STEPS.get(orientation, _STEPS[1])
    if transpose:
        pixels = pixels.swapaxes(0, 1)
    if mirror_x:
        pixels = pixels[:, ::-1]
    if mirror_y:
        pixels = pixels[::-1]
    return np.ascontiguousarray(pixels) if orientation in _STEPS and orientation != 1 else pixels


def orient_boxes(boxes: object, stored_size: tuple[int, int], orientation: int) -> np.ndarray:
    """xyxy boxes on the stored pixels of a ``stored_size`` image, as xyxy on the shown image.

    The corners move with the pixels: a transpose swaps x and y, a mirror of a side of
    length ``L`` maps ``[a, b]`` to ``[L - b, L - a]``. Returns ``float64 (N, 4)``.
    """
    b = as_boxes(boxes, np.float64).copy()
    transpose, mirror_x, mirror_y = _STEPS.get(orientation, _STEPS[1])
    if transpose:
        b = b[:, [1, 0, 3, 2]]
    height, width = oriented_size(stored_size, orientation)
    if mirror_x:
        b[:, [0, 2]] = width - b[:, [2, 0]]
    if mirror_y:
        b[:, [1, 3]] = height - b[:, [3, 1]]
    return b


def orient_record(record: BoxRecord, stored_size: tuple[int, int], orientation: int) -> None:
    """Move ``record``'s boxes (and its ``image_size``, when it has one) onto the shown image.

    ``stored_size`` is the ``(height, width)`` its boxes were measured on.
    """
    record.boxes = orient_boxes(record.boxes, stored_size, orientation).astype(np.float32)
    if getattr(record, "image_size", None) is not None:
        record.image_size = oriented_size(stored_size, orientation)  # type: ignore[attr-defined]
