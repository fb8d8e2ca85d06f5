"""How to train: :class:`TrainOptions`, the engine's settings apart from the model.

The model is a :class:`~napari_detlab.core.model.config.ModelConfig`; everything about the run
itself (epochs, optimiser, schedule, device, resume...) lives here, serialised as JSON into
each run folder (``options.json``) and each checkpoint, so a run can be repeated or resumed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from napari_detlab.core.errors import DetlabError
from napari_detlab.core.json_dataclass import JsonDataclass
from napari_detlab.core.training.schedule import OPTIMIZERS, SCHEDULES

__all__ = ["TrainOptions", "TrainingInputError"]

_DEFAULT_LR = {"sgd": 0.01, "adamw": 1e-4}


class TrainingInputError(DetlabError, ValueError):
    """Inputs a run cannot start with; the message says what to change."""


@dataclass
class TrainOptions(JsonDataclass):
    """How to train (the model itself is a :class:`~napari_detlab.core.model.config.ModelConfig`).

    Attributes
    ----------
    epochs, batch_size
        Passes over the training split; images per step and per process.
    lr
        Base learning rate; ``None`` takes 0.01 for SGD and 1e-4 for AdamW.
    optimizer
        ``"sgd"`` (momentum, the detection default) or ``"adamw"``.
    momentum, weight_decay
        Optimiser settings (weight decay spares norms and biases).
    warmup_iters
        Linear warmup length, capped at a third of the run so a short run is not all warmup.
    schedule
        ``"cosine"`` decay to zero or ``"step"`` (x0.1 at 2/3 and 8/9 of the run).
    grad_clip
        Maximum gradient norm; ``None`` or 0 disables clipping.
    amp, channels_last
        ``"auto"`` turns them on when training on CUDA; ``True``/``False`` force them.
    patience
        Stop after this many evaluations without a better validation mAP; ``None`` never.
    val_fraction, stratify_split, split_file, seed
        The train / validation split (see
        :func:`~napari_detlab.core.training.dataset.split_train_val`: by a hash of each image's
        name, salted by the seed; stratified, every class with two images or more validates;
        a split file fixes it) and the seed of everything random.
    device
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    num_workers
        DataLoader processes; ``None`` picks from the CPU count (0 on a 2-core machine).
    augment
        Random flips and scale jitter on the training images.
    crops, crop_size
        Train large images on crops of the model's input size around their boxes
        (:mod:`~napari_detlab.core.training.crops`): ``"auto"`` when resizing an image whole
        would shrink it over 4 times a side (the rule of tiled prediction), ``"on"``,
        ``"off"``; the crop side in pixels, ``None`` for the model's ``min_size``.
    resume
        A ``last.pt`` to continue from (model, optimiser, schedule, epoch).
    max_iterations
        Stop after this many iterations in total (tests, benchmarks, smoke runs).
    eval_every
        Evaluate every this many epochs (and after the last); 0 never evaluates.
    overwrite
        Allow starting a new run in a folder that holds one (otherwise refused).
    """

    json_error = TrainingInputError  # not annotated: a class attribute, not a field
    json_what = "training option"

    epochs: int = 20
    batch_size: int = 4
    lr: float | None = None
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_iters: int = 100
    schedule: str = "cosine"
    grad_clip: float | None = 10.0
    amp: bool | str = "auto"
    channels_last: bool | str = "auto"
    patience: int | None = None
    val_fraction: float = 0.2
    stratify_split: bool = False
    split_file: str | None = None
    seed: int = 0
    device: str = "auto"
    num_workers: int | None = None
    augment: bool = True
    crops: str = "auto"
    crop_size: int | None = None
    resume: str | None = None
    max_iterations: int | None = None
    eval_every: int = 1
    overwrite: bool = False

    @property
    def base_lr(self) -> float:
        return float(self.lr) if self.lr is not None else _DEFAULT_LR.get(self.optimizer, 0.01)

    def uses_amp(self, device_type: str) -> bool:
        """Whether the run trains in mixed precision on this kind of device (``"auto"``: on a
        GPU only, where it is faster; on a CPU autocast only slows the loop down)."""
        return device_type == "cuda" if self.amp == "auto" else bool(self.amp)

    def uses_channels_last(self, device_type: str) -> bool:
        """Whether the model's convolutions use channels-last memory (``"auto"``: on a GPU)."""
        return device_type == "cuda" if self.channels_last == "auto" else bool(self.channels_last)

    def validate(self) -> TrainOptions:
        """Raise :class:`TrainingInputError` for values no run can use."""
        checks = [
            (self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}"),
            (
                0 < self.base_lr < math.inf,
                f"lr must be a positive number, got {self.lr}",
            ),
            (
                0.0 <= self.momentum < 1.0,
                f"momentum must be in [0, 1), got {self.momentum}",
            ),
            (
                0.0 <= self.weight_decay < math.inf,
                f"weight_decay must be >= 0, got {self.weight_decay}",
            ),
            (
                self.grad_clip is None or 0.0 <= self.grad_clip <= math.inf,
                f"grad_clip must be >= 0 (or null: no clipping), got {self.grad_clip}",
            ),
            (
                self.optimizer in OPTIMIZERS,
                f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}",
            ),
            (
                self.schedule in SCHEDULES,
                f"schedule must be one of {SCHEDULES}, got {self.schedule!r}",
            ),
            (self.warmup_iters >= 0, f"warmup_iters must be >= 0, got {self.warmup_iters}"),
            (
                0.0 <= self.val_fraction < 1.0,
                f"val_fraction must be in [0, 1), got {self.val_fraction}",
            ),
            (self.eval_every >= 0, f"eval_every must be >= 0, got {self.eval_every}"),
            (
                self.patience is None or self.patience >= 1,
                f"patience must be >= 1, got {self.patience}",
            ),
            (
                self.max_iterations is None or self.max_iterations >= 1,
                f"max_iterations must be at least 1, got {self.max_iterations}",
            ),
            (self.num_workers is None or self.num_workers >= 0, "num_workers must be >= 0"),
            (
                self.crops in ("auto", "on", "off"),
                f"crops must be 'auto', 'on' or 'off', got {self.crops!r}",
            ),
            (
                self.crop_size is None or self.crop_size >= 16,
                f"crop_size must be at least 16 pixels, got {self.crop_size}",
            ),
            (
                self.amp in ("auto", True, False),
                f"amp must be 'auto', true or false, got {self.amp!r}",
            ),
            (
                self.channels_last in ("auto", True, False),
                f"channels_last must be 'auto', true or false, got {self.channels_last!r}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise TrainingInputError(message)
        return self
