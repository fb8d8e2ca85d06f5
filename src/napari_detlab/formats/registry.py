"""The formats by name: what ``detlab import coco ...`` and the Annotator's menu offer."""

from __future__ import annotations

from napari_detlab.formats.base import Format, FormatError
from napari_detlab.formats.coco import COCO
from napari_detlab.formats.tutorial import TUTORIAL
from napari_detlab.formats.voc import VOC
from napari_detlab.formats.yolo import YOLO

__all__ = ["FORMATS", "get_format"]

FORMATS: dict[str, Format] = {fmt.name: fmt for fmt in (COCO, VOC, YOLO, TUTORIAL)}
# Names people type for the same formats (tool and file-type names).
ALIASES = {"pascal_voc": "voc", "pascal-voc": "voc", "voc_xml": "voc", "coco_json": "coco",
           "yolo_txt": "yolo", "darknet": "yolo", "json": "tutorial"}  # fmt: skip


def get_format(name: str | Format) -> Format:
    """The format called ``name`` (case-insensitive; a few common aliases accepted)."""
    if isinstance(name, Format):
        return name
    key = ALIASES.get(name.lower(), name.lower())
    if key not in FORMATS:
        raise FormatError(f"unknown format {name!r}; choose one of {', '.join(FORMATS)}")
    return FORMATS[key]
