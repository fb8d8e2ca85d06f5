"""Training a detector: the loop, its data, its schedule, its events and its validation.

The same engine runs from ``detlab train``, the train dock (in a child process, see
:mod:`~napari_detlab.core.training.launch`) and ``torchrun``.
"""

from __future__ import annotations

from napari_detlab.core.training.augment import (
    Augmenter,
    clean_boxes,
    hflip,
    scale_jitter,
    vflip,
)
from napari_detlab.core.training.background_save import (
    CheckpointWriter,
)
from napari_detlab.core.training.dataset import (
    DetectionDataset,
    collate,
    read_split_file,
    split_train_val,
)
from napari_detlab.core.training.distributed import (
    DistributedContext,
)
from napari_detlab.core.training.engine import (
    train,
)
from napari_detlab.core.training.events import (
    EpochEnded,
    Event,
    IterationEnded,
    RunFinished,
    RunStarted,
    event_from_dict,
    event_to_dict,
    event_to_json,
    format_duration,
)
from napari_detlab.core.training.launch import (
    STOP_TIMEOUT_S,
    RunEvents,
    TrainingProcessError,
    stop_child,
    train_command,
    train_in_subprocess,
    train_in_thread,
)
from napari_detlab.core.training.options import (
    TrainingInputError,
    TrainOptions,
)
from napari_detlab.core.training.progress import (
    CurvePoint,
    Notice,
    RunProgress,
)
from napari_detlab.core.training.schedule import (
    OPTIMIZERS,
    SCHEDULES,
    build_optimizer,
    build_scheduler,
    lr_factor,
)
from napari_detlab.core.training.validate import (
    evaluate_detector,
)

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "STOP_TIMEOUT_S",
    "Augmenter",
    "CheckpointWriter",
    "CurvePoint",
    "DetectionDataset",
    "DistributedContext",
    "EpochEnded",
    "Event",
    "IterationEnded",
    "Notice",
    "RunEvents",
    "RunFinished",
    "RunProgress",
    "RunStarted",
    "TrainOptions",
    "TrainingInputError",
    "TrainingProcessError",
    "build_optimizer",
    "build_scheduler",
    "clean_boxes",
    "collate",
    "evaluate_detector",
    "event_from_dict",
    "event_to_dict",
    "event_to_json",
    "format_duration",
    "hflip",
    "lr_factor",
    "read_split_file",
    "scale_jitter",
    "split_train_val",
    "stop_child",
    "train",
    "train_command",
    "train_in_subprocess",
    "train_in_thread",
    "vflip",
]
