"""Training a detector: the loop, its data, its schedule, its events and its validation.

The same engine runs from ``detlab train``, the train dock (in a child process, see
:mod:`~napari_detlab.core.training.launch`) and ``torchrun``.

A face: it re-exports the public names (``__all__``) of the modules below and defines
nothing; code inside the project imports from the modules themselves.
"""

from . import (
    augment,
    background_save,
    crops,
    dataset,
    distributed,
    engine,
    events,
    launch,
    options,
    progress,
    schedule,
    validate,
)
from .augment import *
from .background_save import *
from .crops import *
from .dataset import *
from .distributed import *
from .engine import *
from .events import *
from .launch import *
from .options import *
from .progress import *
from .schedule import *
from .validate import *

__all__ = [
    *augment.__all__,
    *background_save.__all__,
    *crops.__all__,
    *dataset.__all__,
    *distributed.__all__,
    *engine.__all__,
    *events.__all__,
    *launch.__all__,
    *options.__all__,
    *progress.__all__,
    *schedule.__all__,
    *validate.__all__,
]
