"""The napari sample-data entry: the built-in dataset, written once to a per-user folder.

File > Open Sample > detlab writes the generated dataset (no network needed) to
:func:`sample_folder` unless it is there already, so boxes a user adds to it survive the next
time the menu is used, and returns its first image with its boxes, one Shapes layer per
class. ``detlab demo`` uses the same folder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from napari_detlab._qt.box_layers import BOX_EDGE_WIDTH, class_layer_name
from napari_detlab.core.boxes import xyxy_to_napari
from napari_detlab.core.images import read_image
from napari_detlab.core.sample_data import write_sample_dataset
from napari_detlab.core.store import AnnotationStore, ImageAnnotation

__all__ = ["SAMPLE_DIR_ENV", "ensure_sample_dataset", "make_sample_data", "sample_folder"]

SAMPLE_DIR_ENV = "DETLAB_SAMPLE_DIR"


def sample_folder() -> Path:
    """Where the sample dataset lives: ``$DETLAB_SAMPLE_DIR``, else the user's cache folder.

    The cache folder follows the platform's convention (``%LOCALAPPDATA%`` on Windows,
    ``~/Library/Caches`` on macOS, ``$XDG_CACHE_HOME`` or ``~/.cache`` elsewhere) without
    a dependency for it.
    """
    override = os.environ.get(SAMPLE_DIR_ENV)
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "napari-detlab" / "sample"


def ensure_sample_dataset(folder: str | Path | None = None) -> Path:
    """Write the sample dataset to ``folder`` (default :func:`sample_folder`) unless present."""
    return write_sample_dataset(sample_folder() if folder is None else Path(folder))


def make_sample_data() -> list[tuple[object, dict[str, object], str]]:
    """LayerData tuples for napari: the first sample image and its boxes, per class."""
    store = AnnotationStore(ensure_sample_dataset())
    first = store.images[0]
    annotation = store.load(first) or ImageAnnotation()
    labels = np.asarray(annotation.labels, dtype=object)
    layers: list[tuple[object, dict[str, object], str]] = [
        (read_image(first), {"name": first.name}, "image")
    ]
    for spec in store.load_classes():
        layers.append(
            (
                list(xyxy_to_napari(annotation.boxes[labels == spec.name])),
                {
                    "name": class_layer_name(spec.name),
                    "shape_type": "rectangle",
                    "edge_color": spec.color,
                    "face_color": "transparent",
                    "edge_width": BOX_EDGE_WIDTH,
                },
                "shapes",
            )
        )
    return layers
