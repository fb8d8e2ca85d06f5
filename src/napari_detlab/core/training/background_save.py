"""Checkpoints written by a background thread, so training does not wait for the disk.

Serialising a Faster R-CNN with its optimiser state is a few hundred MB; written in the
training loop it stalls every epoch for about a second, which on a GPU with a small dataset
is a large share of the epoch. :class:`CheckpointWriter` copies the state to CPU memory at
the moment of the call (so the file holds exactly that step) and hands the serialisation
and the atomic write to one worker thread. Writes happen in call order; a new save first
waits for the previous one, so at most one snapshot is held in memory. :meth:`wait` (called
before a run reports its end) makes sure every file is on disk and re-raises a failed write;
:meth:`raise_failure`, cheap enough for every iteration, re-raises one as soon as it happened,
so a full disk ends the run at once rather than an epoch later. A failed write leaves no
partial file (:func:`~napari_detlab.core.atomic.atomic_writer`), and its error, a
:class:`~napari_detlab.core.atomic.WriteError` naming the file, is raised on the training
thread, never printed from the writer's.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from napari_detlab.core.model.checkpoint import save_checkpoint

__all__ = ["CheckpointWriter"]


def _cpu_copy(value: Any) -> Any:
    """``value`` with every tensor copied to CPU memory (containers rebuilt, rest shared)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return type(value)((k, _cpu_copy(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_cpu_copy(v) for v in value)
    return value


class _Frozen:
    """Something with a ``state_dict()``, frozen at one step (what ``save_checkpoint`` reads)."""

    def __init__(self, owner: Any) -> None:
        self._state = _cpu_copy(owner.state_dict())

    def state_dict(self) -> Any:
        return self._state


class CheckpointWriter:
    """Writes :func:`~napari_detlab.core.model.checkpoint.save_checkpoint` files in the
    background."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="detlab-checkpoint")
        self._pending: Future[Path] | None = None

    def save(
        self,
        path: Path,
        *,
        model: torch.nn.Module,
        optimizer: Any | None = None,
        scheduler: Any | None = None,
        scaler: Any | None = None,
        **fields: Any,
    ) -> Path:
        """Snapshot the state now, write ``path`` later; returns ``path``.

        ``fields`` are the other keywords of ``save_checkpoint`` (config, epoch, metrics,
        options); they must not be mutated after the call.
        """
        self.wait()
        frozen = {
            name: _Frozen(owner) if owner is not None else None
            for name, owner in (
                ("model", model), ("optimizer", optimizer), ("scheduler", scheduler),
                ("scaler", scaler),
            )
        }  # fmt: skip
        self._pending = self._pool.submit(save_checkpoint, path, **frozen, **fields)
        return path

    def wait(self) -> None:
        """Block until the last requested file is written; re-raise its error if it failed."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def raise_failure(self) -> None:
        """Re-raise the error of the last write if it has failed already; never blocks."""
        pending = self._pending
        if pending is not None and pending.done() and pending.exception() is not None:
            self.wait()

    def close(self) -> None:
        """Finish the pending write and stop the thread."""
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)
