"""Import and export annotations: COCO JSON, Pascal VOC XML, YOLO txt, the tutorial's targets.

A face: every name is defined in a module of its own and re-exported here.

- :mod:`.dataset_io`: :func:`import_dataset`, :func:`export_dataset`, :func:`convert`, the
  join between the annotation store and the formats;
- :mod:`.registry`: :data:`FORMATS` by name and :func:`get_format`;
- :mod:`.base`: :class:`Record`, :class:`Problem`, :class:`ReadResult` and the
  :class:`Format` interface every format implements;
- :mod:`.reports`: what an import or export did;
- :mod:`.coco`, :mod:`.voc`, :mod:`.yolo`, :mod:`.tutorial`: the formats.
"""

from __future__ import annotations

from napari_detlab.formats.base import (
    Format,
    FormatError,
    Problem,
    ReadResult,
    Record,
)
from napari_detlab.formats.dataset_io import (
    DIFFICULT_KEY,
    convert,
    export_dataset,
    get_difficult,
    import_dataset,
    set_difficult,
)
from napari_detlab.formats.registry import (
    FORMATS,
    get_format,
)
from napari_detlab.formats.reports import (
    ExportReport,
    ImportReport,
)

__all__ = [
    "DIFFICULT_KEY",
    "FORMATS",
    "ExportReport",
    "Format",
    "FormatError",
    "ImportReport",
    "Problem",
    "ReadResult",
    "Record",
    "convert",
    "export_dataset",
    "get_difficult",
    "get_format",
    "import_dataset",
    "set_difficult",
]
