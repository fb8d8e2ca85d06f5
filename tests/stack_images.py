"""Stacks with a known answer: each plane has one bright block at a place of its own, so the
pixels any reader, trainer or exporter got say which plane it read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

HEIGHT, WIDTH = 40, 60
DARK, BRIGHT = 10, 230


def block_of(plane: int) -> tuple[int, int, int, int]:
    """The xyxy box of plane ``plane``'s bright block."""
    x = 4 + 12 * plane
    return x, 8, x + 10, 20


def plane_pixels(plane: int, dtype: type = np.uint8) -> np.ndarray:
    pixels = np.full((HEIGHT, WIDTH), DARK, dtype)
    x1, y1, x2, y2 = block_of(plane)
    pixels[y1:y2, x1:x2] = BRIGHT
    return pixels


def write_stack(path: Path, planes: int = 3, *, pages: bool = True, dtype: type = np.uint8) -> Path:
    """A z-stack of ``planes`` grey planes; ``pages=False`` writes it as tifffile does by
    default for 3 or 4 planes (one page of planar samples) instead of one page per plane."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.stack([plane_pixels(k, dtype) for k in range(planes)])
    if pages:
        tifffile.imwrite(path, data, photometric="minisblack")
    else:
        tifffile.imwrite(path, data, photometric="minisblack", planarconfig="separate")
    return path
