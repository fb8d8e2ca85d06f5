"""Anchors on the real feature-map grid, what they catch, and anchors fitted to the boxes.

A face: it re-exports the public names (``__all__``) of the modules below and defines
nothing; code inside the project imports from the modules themselves.
"""

from . import coverage, dataset_boxes, figures, layout, report, suggest, tuning
from .coverage import *
from .dataset_boxes import *
from .figures import *
from .layout import *
from .report import *
from .suggest import *
from .tuning import *

__all__ = [
    *coverage.__all__,
    *dataset_boxes.__all__,
    *figures.__all__,
    *layout.__all__,
    *report.__all__,
    *suggest.__all__,
    *tuning.__all__,
]
