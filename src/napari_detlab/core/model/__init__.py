"""What a detector is: its config, how it is built, its weights and checkpoints, prediction.

One :class:`~.config.ModelConfig` describes a model; :mod:`.builder` turns it into a torchvision
Faster R-CNN, :mod:`.weights` finds pretrained weights offline, a checkpoint alone rebuilds a
trained model, and :mod:`.predict` runs it on images.

A face: it re-exports the public names (``__all__``) of the modules below and defines
nothing; code inside the project imports from the modules themselves.
"""

from napari_detlab.core.model import builder, checkpoint, config, device, predict, weights

from .builder import *
from .checkpoint import *
from .config import *
from .device import *
from .predict import *
from .weights import *

__all__ = [
    *builder.__all__,
    *checkpoint.__all__,
    *config.__all__,
    *device.__all__,
    *predict.__all__,
    *weights.__all__,
]
