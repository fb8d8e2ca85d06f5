"""Import and export annotations: COCO JSON, Pascal VOC XML, YOLO txt, the tutorial's targets.

A face: it defines nothing and re-exports the public names of its modules.

- :mod:`.dataset_io`: :func:`import_dataset`, :func:`export_dataset`, :func:`convert`, the
  one join between the annotation store and the formats (and VOC's ``difficult`` flags);
- :mod:`.background`: the same import and export as generators of progress steps, which
  napari's workers run while the viewer keeps drawing;
- :mod:`.registry`: :data:`FORMATS` by name, and :func:`get_format`;
- :mod:`.base`: :class:`Record`, :class:`Problem`, :class:`ReadResult`, the :class:`Format`
  interface every format implements, and the image look-ups they share;
- :mod:`.plane_images`: the planes of stacks written as PNGs beside the labels;
- :mod:`.reports`: what an import or an export did, for the CLI and the notifications;
- :mod:`.coco`, :mod:`.voc`, :mod:`.yolo`, :mod:`.tutorial`: the formats (the tutorial's
  module also reads its old pickled ``.pt`` targets safely).
"""

from . import (
    background,
    base,
    coco,
    dataset_io,
    plane_images,
    registry,
    reports,
    tutorial,
    voc,
    yolo,
)
from .background import *
from .base import *
from .coco import *
from .dataset_io import *
from .plane_images import *
from .registry import *
from .reports import *
from .tutorial import *
from .voc import *
from .yolo import *

__all__ = [
    *background.__all__,
    *base.__all__,
    *coco.__all__,
    *dataset_io.__all__,
    *plane_images.__all__,
    *registry.__all__,
    *reports.__all__,
    *tutorial.__all__,
    *voc.__all__,
    *yolo.__all__,
]
