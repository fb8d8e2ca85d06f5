"""The Faster R-CNN + napari tutorial's targets: ``<stem>.json`` (or old ``<stem>.pt``) per image.

A target is ``{"labels": ["head", ...], "boxes": [[x1, y1, x2, y2], ...]}`` in float pixels
of the original image, the store's own layout, so the round trip is exact (JSON keeps every
float64 digit). The tutorial keeps images in ``input/`` and targets in ``target/``: either
folder's parent or ``target/`` itself is accepted as the source. Reading goes through
:func:`napari_detlab.core.legacy.read_tutorial_target`, which also reads the tutorial's first
``.pt`` dicts (numpy labels, float64 arrays) without unpickling anything unsafe. The format
has no "reviewed" flag; an exported negative is a file with empty lists, and every file read
counts as reviewed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from napari_detlab.core.errors import DetlabError
from napari_detlab.core.legacy import TARGET_SUFFIXES, read_tutorial_target
from napari_detlab.formats.base import (
    FilePerImageFormat,
    Problem,
    ReadResult,
    Record,
    SizeLookup,
)

__all__ = ["TUTORIAL", "TutorialFormat"]

TARGET_DIRNAME = "target"


class TutorialFormat(FilePerImageFormat):
    name = "tutorial"
    title = "tutorial JSON targets"
    suffix = ".json"
    needs_image_size = False

    def source_files(self, folder: Path) -> list[Path]:
        """``<stem>.json`` or old ``<stem>.pt`` targets in ``target/`` or ``folder`` itself."""
        if (folder / TARGET_DIRNAME).is_dir():
            folder = folder / TARGET_DIRNAME
        by_stem: dict[str, Path] = {}
        for path in sorted(folder.iterdir()):  # a .json beside a .pt of the same stem wins
            usable = path.suffix.lower() in TARGET_SUFFIXES and not path.name.startswith(".")
            if usable and (path.stem not in by_stem or path.suffix.lower() == ".json"):
                by_stem[path.stem] = path
        return [by_stem[stem] for stem in sorted(by_stem)]

    def read_file(self, path: Path, size_of: SizeLookup, result: ReadResult) -> Record | None:
        try:
            boxes, labels = read_tutorial_target(path)
        except (DetlabError, OSError) as error:
            result.problems.append(Problem(str(path), "", str(error).replace(f"{path}: ", "")))
            return None
        record = Record(stem=path.stem, boxes=boxes, labels=list(labels), source=str(path))
        record.image_size = size_of(record)
        return record

    def encode(self, record: Record, classes: Sequence[str], folder: Path) -> bytes:
        target = {"labels": list(record.labels), "boxes": record.boxes.tolist()}
        return (json.dumps(target, indent=2) + "\n").encode("utf-8")


TUTORIAL = TutorialFormat()
