"""The planes of stacks, exported as images of their own.

COCO, VOC and YOLO know images as files, one picture each; none of them can point at plane 3
of a TIFF. So an export writes each exported plane as a PNG named by file and plane
(``cells.plane-0003.png``, the plane's stem from :mod:`~napari_detlab.core.stacks`) beside
the label files: in the export folder, or beside COCO's JSON file. COCO's ``file_name`` and
VOC's ``<filename>`` name that PNG; YOLO's ``cells.plane-0003.txt`` shares its stem. Single
images are not copied, as before: their labels name the dataset's own files.

8-bit planes (grey, RGB, RGBA) and 16-bit grey planes are written with their values as
stored; any other type (float, 32-bit, 16-bit colour) is stretched to 8 bits as the model
sees it (:func:`~napari_detlab.core.images.to_float_rgb`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from napari_detlab.core.atomic import atomic_write_bytes, make_folder
from napari_detlab.core.images import read_image, to_float_rgb
from napari_detlab.core.stacks import PLANE_EXPORT_SUFFIX, export_name, split_plane
from napari_detlab.formats.base import Record, parallel_map

__all__ = ["write_plane_images"]


def _png_pixels(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` as a PNG can hold them (see the module's notes)."""
    if pixels.dtype == np.uint8 or (pixels.dtype == np.uint16 and pixels.ndim == 2):
        return pixels
    return np.round(to_float_rgb(pixels) * 255).astype(np.uint8)


def _write_plane(record: Record, folder: Path) -> Path:
    import imageio.v3 as iio

    assert record.image is not None
    path = folder / export_name(record.image)
    pixels = _png_pixels(read_image(record.image))
    atomic_write_bytes(path, iio.imwrite("<bytes>", pixels, extension=PLANE_EXPORT_SUFFIX))
    return path


def write_plane_images(
    records: Sequence[Record],
    folder: Path,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Write the plane of each record that is a stack's plane as a PNG in ``folder``;
    returns the files written (none when no record is a plane)."""
    planes = [r for r in records if r.image is not None and split_plane(r.image) is not None]
    if not planes:
        return []
    make_folder(folder)
    return [
        Path(str(path))
        for path in parallel_map(lambda record: _write_plane(record, folder), planes, on_progress)
    ]
