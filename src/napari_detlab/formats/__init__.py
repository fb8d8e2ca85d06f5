"""Import and export annotations: COCO JSON, Pascal VOC XML, YOLO txt, the tutorial's targets.

A face: it defines nothing and re-exports the public names of its modules.

- :mod:`.dataset_io`: :func:`import_dataset`, :func:`export_dataset`, :func:`convert`, the
  one join between the annotation store and the formats (and VOC's ``difficult`` flags);
- :mod:`.background`: the same import and export as generators of progress steps, which
  napari's workers run while the viewer keeps drawing;
- :mod:`.registry`: :data:`FORMATS` by name, and :func:`get_format`;
- :mod:`.base`: :class:`Record`, :class:`Problem`, :class:`ReadResult`, the :class:`Format`
  interface every format implements, and the image look-ups they share;
- :mod:`.reports`: what an import or an export did, for the CLI and the notifications;
- :mod:`.coco`, :mod:`.voc`, :mod:`.yolo`, :mod:`.tutorial`: the formats (the tutorial's
  module also reads its old pickled ``.pt`` targets safely).
"""

from __future__ import annotations

from napari_detlab.formats.background import (
    Failed,
    Step,
    StoppedError,
    drain,
    export_steps,
    import_steps,
    progress_steps,
)
from napari_detlab.formats.base import (
    FilePerImageFormat,
    Format,
    FormatError,
    ImageIndex,
    Problem,
    ProgressCallback,
    ReadResult,
    Record,
    SizeLookup,
    complete_records,
    parallel_map,
)
from napari_detlab.formats.coco import (
    COCO,
    CocoFormat,
    to_coco_dict,
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
from napari_detlab.formats.tutorial import (
    TARGET_SUFFIXES,
    TUTORIAL,
    TUTORIAL_PT_GLOBALS,
    TutorialFormat,
    find_tutorial_target,
    read_tutorial_target,
)
from napari_detlab.formats.voc import (
    VOC,
    VocFormat,
    voc_pixels,
    xyxy_from_voc,
)
from napari_detlab.formats.yolo import (
    YOLO,
    YoloFormat,
    read_class_list,
)

__all__ = [
    "COCO",
    "DIFFICULT_KEY",
    "FORMATS",
    "TARGET_SUFFIXES",
    "TUTORIAL",
    "TUTORIAL_PT_GLOBALS",
    "VOC",
    "YOLO",
    "CocoFormat",
    "ExportReport",
    "Failed",
    "FilePerImageFormat",
    "Format",
    "FormatError",
    "ImageIndex",
    "ImportReport",
    "Problem",
    "ProgressCallback",
    "ReadResult",
    "Record",
    "SizeLookup",
    "Step",
    "StoppedError",
    "TutorialFormat",
    "VocFormat",
    "YoloFormat",
    "complete_records",
    "convert",
    "drain",
    "export_dataset",
    "export_steps",
    "find_tutorial_target",
    "get_difficult",
    "get_format",
    "import_dataset",
    "import_steps",
    "parallel_map",
    "progress_steps",
    "read_class_list",
    "read_tutorial_target",
    "set_difficult",
    "to_coco_dict",
    "voc_pixels",
    "xyxy_from_voc",
]
