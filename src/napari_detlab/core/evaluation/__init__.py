"""Scoring predictions against the ground truth: COCO metrics and the Review rules.

A face: it re-exports the public names (``__all__``) of the modules below and defines
nothing; code inside the project imports from the modules themselves.
"""

from . import batch_accept, dataset_review, image_review, metrics, review
from .batch_accept import *
from .dataset_review import *
from .image_review import *
from .metrics import *
from .review import *

__all__ = [
    *batch_accept.__all__,
    *dataset_review.__all__,
    *image_review.__all__,
    *metrics.__all__,
    *review.__all__,
]
