"""The napari sample-data entry: the built-in dataset, written once to a per-user folder.

File > Open Sample > detlab writes the generated dataset (no network needed) to
:func:`sample_folder` unless it is there already, so boxes a user adds to it survive the next
time the menu is used, and returns what the reader opens for a dataset folder
(:func:`napari_detlab._reader.read_dataset_folder`): its first annotated image with its boxes,
one Shapes layer per class, with the metadata the writer needs to save them back. ``detlab
demo`` uses the same folder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from napari_detlab._reader import read_dataset_folder
from napari_detlab.core.annotations.sample_data import write_sample_dataset

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
    """LayerData tuples for napari: the sample dataset as the reader opens a dataset folder."""
    return read_dataset_folder(ensure_sample_dataset())
