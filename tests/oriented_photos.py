"""Small JPEG "phone photos" with each EXIF orientation, and where their objects are.

Every photo stores the same :data:`STORED_SIZE` pixels: a dark frame with one bright block,
:data:`OBJECT` (off-centre in both directions, so every turn and mirror moves it somewhere
else), and a grey block, :data:`CORNER`, in the bottom-right corner. The orientation tag says
how a gallery, CVAT or OpenCV shows them; :data:`SHOWN` gives, per orientation, where each
block is then, worked out by hand from the EXIF definitions (not by the code under test).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

STORED_SIZE = (24, 40)  # (height, width) of the stored pixels: landscape, as a sensor writes
OBJECT = (6.0, 4.0, 18.0, 10.0)  # xyxy of the bright block in the stored pixels
CORNER = (30.0, 20.0, 40.0, 24.0)  # xyxy of the grey block, touching the stored bottom-right
BRIGHT, GREY, DARK = 240, 120, 20
ORIENTATIONS = tuple(range(1, 9))

# orientation -> (shown (height, width), OBJECT as shown, CORNER as shown)
SHOWN = {
    1: ((24, 40), (6, 4, 18, 10), (30, 20, 40, 24)),  # as stored
    2: ((24, 40), (22, 4, 34, 10), (0, 20, 10, 24)),  # mirrored left-right
    3: ((24, 40), (22, 14, 34, 20), (0, 0, 10, 4)),  # turned 180 degrees
    4: ((24, 40), (6, 14, 18, 20), (30, 0, 40, 4)),  # mirrored top-bottom
    5: ((40, 24), (4, 6, 10, 18), (20, 30, 24, 40)),  # transposed
    6: ((40, 24), (14, 6, 20, 18), (0, 30, 4, 40)),  # turned 90 degrees clockwise
    7: ((40, 24), (14, 22, 20, 34), (0, 0, 4, 10)),  # transversed
    8: ((40, 24), (4, 22, 10, 34), (20, 0, 24, 10)),  # turned 90 degrees counter-clockwise
}


def stored_pixels() -> np.ndarray:
    """The ``(24, 40, 3)`` uint8 pixels every test photo stores."""
    pixels = np.full((*STORED_SIZE, 3), DARK, np.uint8)
    for (x1, y1, x2, y2), level in ((OBJECT, BRIGHT), (CORNER, GREY)):
        pixels[int(y1) : int(y2), int(x1) : int(x2)] = level
    return pixels


def write_photo(path: Path, orientation: int) -> Path:
    """A JPEG of :func:`stored_pixels` tagged with ``orientation`` (near-lossless: quality
    100, no chroma subsampling, so the blocks keep their edges)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(stored_pixels())
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(path, exif=exif, quality=100, subsampling=0)
    return path


def save_version_1(
    path: Path,
    boxes: tuple[tuple[float, ...], ...] = (OBJECT, CORNER),
    labels: tuple[str, ...] = ("head", "tag"),
    **keys: object,
) -> Path:
    """An annotation or prediction file as the previous version wrote it for a test photo:
    boxes on the stored pixels, ``image_size`` the stored size, ``version`` 1. ``keys`` add
    (``reviewed``, ``scores``) or, set to None, remove keys."""
    data = {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": list(labels),
        "image_size": list(STORED_SIZE),
        "version": 1,
        **keys,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({key: value for key, value in data.items() if value is not None}, path)
    return path


def as_other_tools_show(path: Path) -> np.ndarray:
    """The photo's pixels as galleries, CVAT and OpenCV show them: Pillow's exif_transpose."""
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image))


def block_box(pixels: np.ndarray, level: int) -> tuple[float, float, float, float]:
    """xyxy (pixel edges) of the pixels within 40 of ``level``: where a block is in an image."""
    gray = pixels.mean(axis=-1) if pixels.ndim == 3 else pixels
    rows, cols = np.nonzero(np.abs(gray.astype(float) - level) < 40)
    return (float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1))


def mean_inside(pixels: np.ndarray, box: object) -> float:
    """Mean brightness of ``pixels`` inside the xyxy ``box`` (rounded to whole pixels)."""
    x1, y1, x2, y2 = (round(float(v)) for v in np.asarray(box).reshape(4))
    return float(pixels[y1:y2, x1:x2].mean())
