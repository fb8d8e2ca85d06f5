"""What a detector is: its config, how it is built, its weights and checkpoints, prediction.

One :class:`~.config.ModelConfig` describes a model; :mod:`.builder` turns it into a torchvision
Faster R-CNN, :mod:`.weights` finds pretrained weights offline, a checkpoint alone rebuilds a
trained model, and :mod:`.predict` runs it on images
(:mod:`.tiling`: large images in tiles).

A face: it re-exports the public names (``__all__``) of the modules below and defines
nothing; code inside the project imports from the modules themselves.
"""

from . import (
    builder,
    checkpoint,
    config,
    device,
    download,
    export,
    predict,
    tiling,
    weights,
    weights_catalog,
)
from .builder import *
from .checkpoint import *
from .config import *
from .device import *
from .download import *
from .export import *
from .predict import *
from .tiling import *
from .weights import *
from .weights_catalog import *

__all__ = [
    *builder.__all__,
    *checkpoint.__all__,
    *config.__all__,
    *device.__all__,
    *download.__all__,
    *export.__all__,
    *predict.__all__,
    *tiling.__all__,
    *weights.__all__,
    *weights_catalog.__all__,
]
