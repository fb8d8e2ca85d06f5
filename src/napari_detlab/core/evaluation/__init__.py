"""Scoring predictions against the ground truth: COCO metrics and the Review rules.

A face: it re-exports the public names (``__all__``) of the modules below and defines
nothing; code inside the project imports from the modules themselves.
"""

from . import (
    batch_accept,
    coco_images,
    confusion,
    dataset_review,
    image_review,
    metrics,
    pr_curve,
    pr_plot,
    review,
    split_figures,
    split_groups,
)
from .batch_accept import *
from .coco_images import *
from .confusion import *
from .dataset_review import *
from .image_review import *
from .metrics import *
from .pr_curve import *
from .pr_plot import *
from .review import *
from .split_figures import *
from .split_groups import *

__all__ = [
    *batch_accept.__all__,
    *coco_images.__all__,
    *confusion.__all__,
    *dataset_review.__all__,
    *image_review.__all__,
    *metrics.__all__,
    *pr_curve.__all__,
    *pr_plot.__all__,
    *review.__all__,
    *split_figures.__all__,
    *split_groups.__all__,
]
