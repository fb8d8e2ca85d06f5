"""The training loop: one function, :func:`train`, for the dock, the CLI and ``torchrun``.

It follows torchvision's detection reference (``references/detection/engine.py``): images
and targets from :class:`~napari_detlab.core.training.dataset.DetectionDataset`, ``loss =
sum(model(images, targets).values())``, SGD with warmup, one step per batch. Around that it
adds what an afternoon's run needs not to be lost:

- inputs are checked before anything is written (a missing folder, no annotations, a class
  the config lacks, a checkpoint of other classes, annotated images that cannot be decoded,
  every one of them named: a one-line ``TrainingInputError``);
- every event (:mod:`napari_detlab.core.training.events`) goes to ``on_event`` and, as one
  JSON line, to ``run_dir/metrics.jsonl``;
- ``last.pt`` (resumable) is written after every epoch and on cancel, ``best.pt`` (weights,
  config and metrics) whenever validation mAP improves: atomic writes, loadable with
  ``weights_only=True``, done by a background thread so the loop does not wait for the disk
  (:mod:`napari_detlab.core.training.background_save`);
- a non-finite loss stops the run before it can poison the weights, keeping the last good
  checkpoint; a CUDA out-of-memory error ends it with a hint instead of a traceback; so does
  an image that stops decoding during the run;
- a file that cannot be written (a full disk, a read-only folder) ends the run with a
  :class:`~napari_detlab.core.atomic.WriteError` naming it, within an iteration of the
  failure, and leaves every file written before it intact and no partial file;
- ``cancel`` (a :class:`threading.Event`) is checked every iteration.

Epoch numbers in events are 1-based (``epoch 1`` is the first); a checkpoint's ``epoch`` is
the number of epochs completed, which is where a resumed run starts.

Under ``torchrun`` the same call trains with DistributedDataParallel: every rank trains on
its shard of the data, rank 0 alone evaluates (on the unwrapped model, the whole validation
split, so the metric is the single-process one), writes files and sends events.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from napari_detlab.core.annotations.index import folder_cache
from napari_detlab.core.annotations.statistics import unreviewed_among
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.atomic import (
    WriteError,
    atomic_write_json,
    make_folder,
    remove_stale_temporaries,
    writing,
)
from napari_detlab.core.images import ImageReadError, unreadable_images
from napari_detlab.core.model.builder import build_model
from napari_detlab.core.model.checkpoint import (
    config_from_checkpoint,
    load_checkpoint,
    unwrap_state_dict,
)
from napari_detlab.core.model.config import ModelConfig
from napari_detlab.core.training.background_save import CheckpointWriter
from napari_detlab.core.training.crops import CropSampler
from napari_detlab.core.training.dataset import (
    DetectionDataset,
    collate,
    split_train_val,
)
from napari_detlab.core.training.distributed import DistributedContext
from napari_detlab.core.training.events import (
    EpochEnded,
    Event,
    IterationEnded,
    RunFinished,
    RunStarted,
    event_to_json,
)
from napari_detlab.core.training.options import TrainingInputError, TrainOptions
from napari_detlab.core.training.schedule import build_optimizer, build_scheduler, clip_gradients
from napari_detlab.core.training.validate import evaluate_detector

__all__ = ["train"]

logger = logging.getLogger(__name__)

EventCallback = Callable[[Event], None]

# The metric that picks best.pt and drives early stopping.
MONITORED_METRIC = "map"
_SPEED_WINDOW = 20  # iterations averaged for images/s and the ETA


# -- checks before anything is written ---------------------------------------------------------
def _check_inputs(
    dataset_root: Path, run_dir: Path, config: ModelConfig, options: TrainOptions
) -> tuple[AnnotationStore, dict[str, Any] | None, int]:
    """Everything that can be refused up front; returns the store, the resume checkpoint and
    the most boxes in one image that would train."""
    options.validate()
    config.validate()
    if not dataset_root.is_dir():
        raise TrainingInputError(f"{dataset_root}: dataset folder not found")
    store = AnnotationStore(dataset_root)
    store.tidy()
    # One pass reads (and validates) every annotation file for both checks below.
    annotated = list(store.annotated())
    stems = [image.stem for image, annotation in annotated if annotation.trainable]
    if not stems:
        raise TrainingInputError(
            f"{dataset_root}: no annotated images; draw boxes (or mark negatives reviewed) first"
        )
    counts = Counter(label for _, annotation in annotated for label in annotation.labels)
    if not any(counts.values()):
        raise TrainingInputError(
            f"{dataset_root}: the {len(stems)} annotated image(s) hold no boxes; at least one "
            "object must be annotated"
        )
    unknown = sorted(set(counts) - set(config.classes))
    if unknown:
        raise TrainingInputError(
            f"the dataset has boxes of class(es) {unknown} that the model config lacks "
            f"(config classes: {config.classes}, dataset classes: {sorted(counts)}); add them "
            "to the config's classes"
        )
    checkpoint = None
    if options.resume:
        checkpoint = load_checkpoint(options.resume)
        if list(checkpoint["classes"]) != list(config.classes):
            raise TrainingInputError(
                f"{options.resume} was trained on classes {list(checkpoint['classes'])} but this "
                f"run has {config.classes}; resume with the same classes or start a new run"
            )
    elif (run_dir / "last.pt").exists() and not options.overwrite:
        raise TrainingInputError(
            f"{run_dir} holds a previous run; resume it from {run_dir / 'last.pt'}, choose "
            "another output folder, or overwrite it (--overwrite, TrainOptions.overwrite)"
        )
    _check_images(store, [image for image, annotation in annotated if annotation.trainable])
    densest = max(len(annotation) for _, annotation in annotated if annotation.trainable)
    return store, checkpoint, densest


def _check_images(store: AnnotationStore, images: list[Path]) -> None:
    """Refuse to start when an image that would train cannot be decoded, naming all of them.

    Found now, every broken file is listed at once; found by the data loader, the first
    would end the run partway through an epoch. Leaving them out instead would quietly
    train on less than the person annotated. The check reads headers and end marks, not
    pixels (:func:`~napari_detlab.core.images.unreadable_images`: 0.2 s for 2,000 JPEGs).
    """
    cache = folder_cache(store.root)
    if cache is None:
        bad = unreadable_images(images)
    else:  # a file's verdict is kept until it changes: the next run checks only new images

        def check(paths: list[Path]) -> dict[Path, str | None]:
            found = unreadable_images(paths)
            return {path: found.get(path) for path in paths}

        verdicts = cache.get_many(images, check)
        vanished = [path for path in images if path not in verdicts]
        bad = {path: reason for path, reason in verdicts.items() if reason is not None}
        bad.update(unreadable_images(vanished))  # named as unreadable, as before
        bad = {path: bad[path] for path in images if path in bad}
    if bad:
        listed = ", ".join(f"{path.name} ({reason})" for path, reason in bad.items())
        raise TrainingInputError(
            f"{store.root}: {len(bad)} annotated image(s) cannot be read: {listed}; replace "
            f"each with a readable copy, or delete it and its annotation file from "
            f"{store.annotations_dir}, then train again"
        )


def _original_message(error: BaseException) -> str:
    """An error's own one-line message, also when a DataLoader worker raised it: the loader
    re-raises it as "Caught X in DataLoader worker process N. Original Traceback: ..."."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    if len(lines) > 1 and lines[0].startswith("Caught "):
        qualified = f"{type(error).__module__}.{type(error).__qualname__}: "
        return lines[-1].removeprefix(qualified)
    return lines[0]


def _num_workers(requested: int | None, world_size: int) -> int:
    if requested is not None:
        return requested
    spare = (os.cpu_count() or 1) // max(1, world_size) - 2
    return max(0, min(4, spare))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train(
    dataset_root: str | Path,
    run_dir: str | Path,
    config: ModelConfig,
    options: TrainOptions | None = None,
    *,
    on_event: EventCallback | None = None,
    cancel: threading.Event | None = None,
) -> RunFinished:
    """Train a detector on an Annotator folder; returns the final :class:`RunFinished`.

    Parameters
    ----------
    dataset_root
        The dataset folder (images + ``annotations/``).
    run_dir
        Where ``config.json``, ``options.json``, ``split.json``, ``metrics.jsonl``,
        ``last.pt`` and ``best.pt`` are written (created if needed).
    config
        The model; its classes must cover every class used in the dataset.
    options
        How to train (defaults: :class:`TrainOptions`).
    on_event
        Called with every event, on the training thread, on rank 0 only; must not block.
    cancel
        Set it to stop between iterations; ``last.pt`` is written before returning.

    Raises
    ------
    TrainingInputError
        Inputs that cannot train (raised before anything is written). Failures during the
        run (a non-finite loss, CUDA out of memory, an image that stopped decoding, a crash)
        are reported as a ``RunFinished`` with ``status="failed"`` instead.
    WriteError
        A file of the run could not be written (a full disk, a read-only folder: an
        ``OSError`` whose ``errno`` says which); it names the file, and the files written
        before it, ``last.pt`` included, are intact.
    """
    options = options or TrainOptions()
    dataset_root, run_dir = Path(dataset_root), Path(run_dir)
    store, checkpoint, densest = _check_inputs(dataset_root, run_dir, config, options)
    # A dense image (a field of cells) needs room for its boxes: say so in RunStarted.
    roomy = config.with_room_for(densest)
    room_for = densest if roomy is not config else 0
    config = roomy
    context = DistributedContext.from_env()
    device = context.device_for(options.device)
    context.start(device)
    try:
        run = _Run(
            store, run_dir, config, options, context, device, on_event, cancel, checkpoint,
            room_for_boxes=room_for,
        )  # fmt: skip
        return run.execute()
    finally:
        context.close()


class _StopRunError(Exception):
    """Ends the run early with a status and a message (cancel, non-finite loss)."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Run:
    """The state of one training run; :meth:`execute` is the loop."""

    def __init__(
        self,
        store: AnnotationStore,
        run_dir: Path,
        config: ModelConfig,
        options: TrainOptions,
        context: DistributedContext,
        device: torch.device,
        on_event: EventCallback | None,
        cancel: threading.Event | None,
        checkpoint: dict[str, Any] | None = None,
        room_for_boxes: int = 0,
    ) -> None:
        self.store, self.run_dir, self.config, self.options = store, run_dir, config, options
        self.room_for_boxes = room_for_boxes  # caps raised for an image of this many boxes
        self.context, self.device = context, device
        self.on_event, self.cancel = on_event, cancel or threading.Event()
        self.amp = options.uses_amp(device.type)
        self.channels_last = options.uses_channels_last(device.type)
        self._events: IO[str] | None = None
        self._speed: deque[tuple[float, int]] = deque(maxlen=_SPEED_WINDOW)
        self._epoch_losses: list[float] = []
        self._writer = CheckpointWriter()

        _seed_everything(options.seed + context.rank)
        self.train_stems, self.val_stems = split_train_val(
            store, options.val_fraction, options.seed, options.split_file,
            stratify=options.stratify_split,
        )  # fmt: skip
        if not self.train_stems:
            raise TrainingInputError("the split leaves no training images; lower val_fraction")
        self.train_set = DetectionDataset(
            store, self.train_stems, config.classes, augment=options.augment,
            crops=CropSampler(
                options.crop_size or config.min_size, config.min_size, config.max_size,
                mode=options.crops,
            ),
        )  # fmt: skip
        # With no validation image (a tiny dataset) the metrics are those of the training
        # images: flagged in each EpochEnded's metrics["evaluated_on"].
        self.eval_stems = self.val_stems or self.train_stems
        self.eval_set = DetectionDataset(store, self.eval_stems, config.classes, augment=False)
        self.loader = self._train_loader()

        # A resumed run's weights come from its checkpoint, not from pretrained files.
        model = build_model(config, load_weights=checkpoint is None).to(device)
        if context.enabled and device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model  # the bare model: evaluated and checkpointed
        self.trained = (
            torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )
            if context.enabled
            else model
        )
        self.iterations_per_epoch = len(self.loader)
        self.total_iterations = options.epochs * self.iterations_per_epoch
        if options.max_iterations is not None:
            self.total_iterations = min(self.total_iterations, options.max_iterations)
        self.optimizer = build_optimizer(
            model, options.optimizer, options.base_lr, options.momentum, options.weight_decay
        )
        self.scheduler = build_scheduler(
            self.optimizer, options.schedule, self.total_iterations,
            min(options.warmup_iters, self.total_iterations // 3),
        )  # fmt: skip
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp)
        self.epoch = 0  # epochs completed
        self.iteration = 0  # optimiser steps over the whole run
        self.best_metric: float | None = None
        self.stale_evaluations = 0
        if checkpoint is not None:
            self._restore(checkpoint)

    # -- set-up ----------------------------------------------------------------------------
    def _train_loader(self) -> DataLoader:
        options, context = self.options, self.context
        if context.enabled:
            sampler = DistributedSampler(
                self.train_set, num_replicas=context.world_size, rank=context.rank,
                shuffle=True, seed=options.seed,
            )  # fmt: skip
        else:
            sampler = RandomSampler(
                self.train_set, generator=torch.Generator().manual_seed(options.seed)
            )
        workers = _num_workers(options.num_workers, context.world_size)
        return DataLoader(
            self.train_set, batch_size=options.batch_size, sampler=sampler, collate_fn=collate,
            num_workers=workers, persistent_workers=workers > 0,
            pin_memory=self.device.type == "cuda",
        )  # fmt: skip

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        """Continue from a ``last.pt``: weights, optimiser, schedule, scaler and counters."""
        source = self.options.resume
        stored = config_from_checkpoint(checkpoint, str(source))
        try:
            self.model.load_state_dict(unwrap_state_dict(checkpoint["model"]))
        except RuntimeError as error:
            detail = str(error).strip().splitlines()[0]
            raise TrainingInputError(
                f"{source}: its weights do not fit this model config ({stored.backbone} "
                f"checkpoint, {self.config.backbone} config: {detail})"
            ) from error
        for name in ("optimizer", "scheduler", "scaler"):
            state = checkpoint.get(name)
            if state:
                getattr(self, name).load_state_dict(state)
        metrics = checkpoint.get("metrics") or {}
        self.epoch = int(checkpoint.get("epoch", 0))
        self.iteration = int(metrics.get("iteration", self.epoch * self.iterations_per_epoch))
        best = metrics.get("best_metric")
        self.best_metric = float(best) if best is not None else None
        self.stale_evaluations = int(metrics.get("stale_evaluations", 0))

    @property
    def _events_path(self) -> Path:
        return self.run_dir / "metrics.jsonl"

    def _open_run_dir(self) -> None:
        if not self.context.is_main:
            return
        make_folder(self.run_dir)
        remove_stale_temporaries(self.run_dir)  # a checkpoint write a kill -9 cut off (resume)
        self.config.to_json(self.run_dir / "config.json")
        self.options.to_json(self.run_dir / "options.json")
        atomic_write_json(
            self.run_dir / "split.json", {"train": self.train_stems, "val": self.val_stems}
        )
        # Appending keeps the curves of the epochs a resumed run continues.
        mode = "a" if self.options.resume else "w"
        with writing(self._events_path):
            self._events = open(self._events_path, mode, encoding="utf-8")  # noqa: SIM115

    def _close_events(self) -> None:
        """Close ``metrics.jsonl``; every line was flushed when written, so a close that fails
        (the disk filled up) loses nothing and must not hide the error that ended the run."""
        if self._events is not None:
            with contextlib.suppress(OSError):
                self._events.close()

    # -- events and checkpoints ------------------------------------------------------------
    def _emit(self, event: Event) -> None:
        if not self.context.is_main:
            return
        if self._events is not None:
            with writing(self._events_path):
                self._events.write(event_to_json(event) + "\n")
                self._events.flush()
        if self.on_event is not None:
            self.on_event(event)

    def _save(self, name: str, metrics: dict[str, Any], *, resumable: bool = True) -> Path:
        """Write a checkpoint of this step in the background (rank 0 only).

        ``last.pt`` is ``resumable`` (optimiser, schedule and scaler state included);
        ``best.pt`` is for predicting and sharing, half the size without them.
        """
        path = self.run_dir / name
        if self.context.is_main:
            extra = (
                {"optimizer": self.optimizer, "scheduler": self.scheduler, "scaler": self.scaler}
                if resumable
                else {}
            )
            self._writer.save(
                path, model=self.model, config=self.config, epoch=self.epoch,
                metrics={
                    **metrics, "iteration": self.iteration, "best_metric": self.best_metric,
                    "stale_evaluations": self.stale_evaluations,
                },
                options=self.options.to_dict(),
                split={"train": self.train_stems, "val": self.val_stems}, **extra,
            )  # fmt: skip
        return path

    def _finish(self, status: str, message: str) -> RunFinished:
        try:
            self._writer.wait()  # the files named below are on disk before anyone is told
        except WriteError:
            raise  # a full disk or a read-only folder: the caller reports the file, no traceback
        except Exception as error:
            logger.exception("writing a checkpoint failed")
            status, message = "failed", f"could not write a checkpoint: {error}"
        best = self.run_dir / "best.pt"
        last = self.run_dir / "last.pt"
        event = RunFinished(
            status=status,
            run_dir=str(self.run_dir),
            best_checkpoint=str(best) if best.is_file() else None,
            last_checkpoint=str(last) if last.is_file() else None,
            best_metric=self.best_metric,
            message=message,
        )
        self._emit(event)
        return event

    # -- the loop --------------------------------------------------------------------------
    def execute(self) -> RunFinished:
        try:
            self._open_run_dir()
            self._emit(
                RunStarted(
                    run_dir=str(self.run_dir),
                    device=self.context.describe(self.device),
                    epochs=self.options.epochs,
                    iterations_per_epoch=self.iterations_per_epoch,
                    train_images=len(self.train_stems),
                    val_images=len(self.val_stems),
                    config=self.config.to_dict(),
                    start_epoch=self.epoch,
                    unreviewed_images=unreviewed_among(
                        self.store, [*self.train_stems, *self.val_stems]
                    ),
                    room_for_boxes=self.room_for_boxes,
                )
            )
            return self._loop()
        except _StopRunError as stop:
            return self._finish(stop.status, stop.message)
        except torch.OutOfMemoryError:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            return self._finish(
                "failed",
                f"CUDA out of memory at batch size {self.options.batch_size} with images of "
                f"{self.config.min_size}-{self.config.max_size} px; lower the batch size or the "
                "config's min_size/max_size",
            )
        except WriteError as error:
            self._add_resume_advice(error)
            raise
        except ImageReadError as error:
            # Corrupt inside a whole file (the check reads no pixels), or replaced since.
            self._writer.wait()  # the last.pt named below, if any, is on disk
            last = self.run_dir / "last.pt"
            again = f"resume from {last}" if last.is_file() else "train again"
            return self._finish(
                "failed",
                f"{_original_message(error)}; replace it, or delete it and its annotation, then "
                f"{again}",
            )
        except Exception as error:
            logger.exception("training failed")
            return self._finish("failed", f"training failed: {type(error).__name__}: {error}")
        finally:
            try:
                self._writer.close()
            finally:
                self._close_events()

    def _add_resume_advice(self, error: WriteError) -> None:
        """Tell where the run can go on from once the disk takes writes again."""
        last = self.run_dir / "last.pt"
        if self.context.is_main and last.is_file():
            error.advice = f"{error.advice}; {last} is intact: resume from it".lstrip("; ")

    def _loop(self) -> RunFinished:
        options = self.options
        while self.epoch < options.epochs and not self._budget_spent():
            train_loss = self._train_one_epoch()
            self.epoch += 1
            last = self._end_epoch(train_loss)
            # Rank 0's decisions bind every rank (only it evaluates; a lone stop would hang).
            cancelled, stale = self.context.broadcast_flags(
                [
                    self.cancel.is_set(),
                    options.patience is not None and self.stale_evaluations >= options.patience,
                ],
                self.device,
            )
            if cancelled:
                return self._finish("cancelled", f"cancelled after epoch {self.epoch}; {last}")
            if stale:
                best = f"{self.best_metric:.4f}" if self.best_metric is not None else "-"
                return self._finish(
                    "early_stopped",
                    f"validation {MONITORED_METRIC} did not improve for {options.patience} "
                    f"evaluations (best {best})",
                )
        if self._budget_spent() and self.epoch < options.epochs:
            return self._finish(
                "completed", f"stopped after max_iterations={options.max_iterations}"
            )
        return self._finish("completed", f"trained {self.epoch} epoch(s)")

    def _end_epoch(self, train_loss: float) -> Path:
        """Evaluate when due, write ``last.pt`` (and ``best.pt``), send ``EpochEnded``."""
        options = self.options
        final = self.epoch == options.epochs or self._budget_spent()
        due = options.eval_every > 0 and (self.epoch % options.eval_every == 0 or final)
        metrics = self._evaluate() if due else {}
        is_best = bool(metrics) and self._improves(metrics.get(MONITORED_METRIC))
        if is_best:
            self.best_metric = float(metrics[MONITORED_METRIC])
            self.stale_evaluations = 0
        elif metrics:
            self.stale_evaluations += 1
        saved = {**metrics, "train_loss": train_loss}
        last = self._save("last.pt", saved)
        if is_best:
            self._save("best.pt", saved, resumable=False)
        self._emit(
            EpochEnded(
                epoch=self.epoch,
                train_loss=train_loss,
                metrics=metrics,
                is_best=is_best,
                checkpoint=str(last),
            )
        )
        return last

    def _budget_spent(self) -> bool:
        return (
            self.options.max_iterations is not None
            and self.iteration >= self.options.max_iterations
        )

    def _improves(self, value: Any) -> bool:
        if value is None or not math.isfinite(value):
            return self.best_metric is None  # the first evaluation is the best so far
        return (
            self.best_metric is None
            or not math.isfinite(self.best_metric)
            or value > self.best_metric
        )

    def _train_one_epoch(self) -> float:
        """One pass over this rank's training shard; returns the mean loss of its steps."""
        self.trained.train()
        if isinstance(self.loader.sampler, DistributedSampler):
            self.loader.sampler.set_epoch(self.epoch)
        self._epoch_losses = []
        self._speed.clear()
        self._speed.append((time.perf_counter(), 0))
        for images, targets in self._batches():
            total, losses, lr = self._step(images, targets)
            self._writer.raise_failure()  # a checkpoint that could not be written ends the run now
            self.iteration += 1
            self._epoch_losses.append(total)
            self._emit(self._iteration_event(total, losses, lr, len(images)))
            if self._budget_spent():
                break
        return self._mean_epoch_loss()

    def _batches(self) -> Iterator[tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]]:
        """The loader's batches on the device; a cancel stops before the next step."""
        device = self.device
        batches = iter(self.loader)
        while True:
            try:
                images, targets, _ = next(batches)
            except StopIteration:
                return
            except Exception:
                # Ctrl+C in a terminal also reaches DataLoader workers, which then die.
                if self.cancel.is_set():
                    raise self._cancelled() from None
                raise
            if not self.context.enabled and self.cancel.is_set():
                raise self._cancelled()
            yield (
                [image.to(device, non_blocking=True) for image in images],
                [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets],
            )

    def _step(
        self, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]]
    ) -> tuple[float, dict[str, float], float]:
        """One optimiser step; returns the loss (mean over ranks), its parts and the lr used."""
        context = self.context
        with torch.autocast(self.device.type, enabled=self.amp):
            loss_dict = self.trained(images, targets)
        names = sorted(loss_dict)
        # One collective per step carries every rank's losses and cancel flag, so all ranks
        # agree on stopping (a rank that stopped alone would leave the others hanging).
        shared = torch.stack([loss_dict[name].detach().float() for name in names])
        flag = torch.tensor([float(self.cancel.is_set())], device=shared.device)
        values = context.sum_(torch.cat([shared, flag])).tolist()
        if values[-1] > 0:
            raise self._cancelled()
        losses = {
            name: value / context.world_size for name, value in zip(names, values[:-1], strict=True)
        }
        total = sum(losses.values())
        if not math.isfinite(total):
            raise _StopRunError("failed", self._nonfinite_message(losses))
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(sum(loss_dict[name] for name in names)).backward()
        if self.options.grad_clip:
            self.scaler.unscale_(self.optimizer)
            clip_gradients(self.model.parameters(), self.options.grad_clip, self.device.type)
        lr = float(self.optimizer.param_groups[0]["lr"])
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return total, losses, lr

    def _mean_epoch_loss(self) -> float:
        return sum(self._epoch_losses) / len(self._epoch_losses) if self._epoch_losses else 0.0

    def _cancelled(self) -> _StopRunError:
        """Write ``last.pt`` with the weights of the last step and say where it is."""
        last = self._save("last.pt", {"train_loss": self._mean_epoch_loss()})
        return _StopRunError(
            "cancelled",
            f"cancelled during epoch {self.epoch + 1} after {self.iteration} iteration(s); "
            f"{last} holds the weights",
        )

    def _nonfinite_message(self, losses: dict[str, float]) -> str:
        bad = ", ".join(f"{k}={v}" for k, v in losses.items() if not math.isfinite(v))
        self._writer.wait()
        kept = self.run_dir / "last.pt"
        keep = (
            f"{kept} from epoch {self.epoch} is kept"
            if kept.is_file()
            else "no checkpoint was written (it failed in the first epoch)"
        )
        return (
            f"loss became non-finite ({bad}) at iteration {self.iteration + 1}, epoch "
            f"{self.epoch + 1}; lower the learning rate (now {self.options.base_lr:g}) or check "
            f"the annotations; {keep}"
        )

    def _iteration_event(
        self, total: float, losses: dict[str, float], lr: float, batch: int
    ) -> IterationEnded:
        now = time.perf_counter()
        self._speed.append((now, batch * self.context.world_size))
        elapsed = now - self._speed[0][0]
        images = sum(count for _, count in list(self._speed)[1:])
        steps = len(self._speed) - 1
        images_per_s = images / elapsed if elapsed > 0 else 0.0
        seconds_per_step = elapsed / steps if steps else 0.0
        return IterationEnded(
            epoch=self.epoch + 1,
            iteration=self.iteration,
            total_iterations=self.total_iterations,
            loss=total,
            losses=losses,
            lr=lr,
            images_per_s=images_per_s,
            eta_s=max(0, self.total_iterations - self.iteration) * seconds_per_step,
        )

    # -- evaluation --------------------------------------------------------------------------
    def _evaluate(self) -> dict[str, Any]:
        """COCO metrics of the whole evaluation split, computed by rank 0 while others wait.

        Uses :func:`~napari_detlab.core.training.validate.evaluate_detector`, the path of ``detlab
        predict``, so the validation mAP is what the user will see on those images.
        """
        metrics: dict[str, Any] = {}
        if self.context.is_main:
            result = evaluate_detector(
                self.model, self.config, self.eval_set, batch_size=self.options.batch_size,
                device=self.device, cancel=self.cancel,
            )  # fmt: skip
            self.model.train()
            if not self.cancel.is_set():
                metrics = {**result, "evaluated_on": "val" if self.val_stems else "train"}
        self.context.barrier()
        return metrics
