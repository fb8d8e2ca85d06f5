"""What the person who started a run is told while it trains and when it ends.

:class:`RunProgress` is the train dock's model: the dock feeds it each event and the run's
end, then draws what it holds (progress, status line, curve points) and shows the notice it
returns. Being plain Python, what the dock says is tested without a viewer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

from napari_detlab.core.errors import DetlabError
from napari_detlab.core.training.events import (
    EpochEnded,
    Event,
    IterationEnded,
    RunFinished,
    RunStarted,
    format_duration,
)
from napari_detlab.core.training.launch import TrainingProcessError

__all__ = ["CurvePoint", "Notice", "RunProgress"]


class CurvePoint(NamedTuple):
    """A new point of the ``"loss"`` (per iteration) or ``"map"`` (per epoch) curve."""

    curve: Literal["loss", "map"]
    x: float
    y: float


@dataclass(frozen=True)
class Notice:
    """A notification for the person: its level and its text."""

    level: Literal["info", "error"]
    text: str


class RunProgress:
    """One run, as the person who started it follows it.

    Parameters
    ----------
    run_dir
        The run's folder, named in the messages (it is kept when a run fails).
    clock
        Seconds, for the elapsed time of the end messages.

    Attributes
    ----------
    iteration, total_iterations
        Where the run is (the progress bar); ``total_iterations`` is at least 1.
    eta_s
        The engine's estimate of the time left (NaN before the first iteration).
    status
        One line saying what is happening now.
    result
        The final event, once the run has ended normally.
    """

    def __init__(self, run_dir: Path, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.run_dir = Path(run_dir)
        self._clock = clock
        self._started = clock()
        self.iteration = 0
        self.total_iterations = 1
        self.eta_s = math.nan
        self.status = f"Starting… ({self.run_dir})"
        self.result: RunFinished | None = None
        self.started = False  # the engine began (its RunStarted arrived)

    @property
    def eta(self) -> str | None:
        """The time left as a person reads it, once an iteration has reported it."""
        return format_duration(self.eta_s) if self.iteration else None

    def update(self, event: Event) -> CurvePoint | None:
        """Take in one event; returns the curve point it adds, if any."""
        if isinstance(event, RunStarted):
            self.started = True
            self.total_iterations = max(1, event.epochs * event.iterations_per_epoch)
            self.status = (
                f"Training on {event.device}: {event.train_images} training and "
                f"{event.val_images} validation images" + event.notes()
            )
        elif isinstance(event, IterationEnded):
            self.total_iterations = max(1, event.total_iterations)
            self.iteration, self.eta_s = event.iteration, event.eta_s
            self.status = (
                f"Epoch {event.epoch} · iteration {event.iteration}/{event.total_iterations} · "
                f"loss {event.loss:.3f} · {event.images_per_s:.1f} images/s"
            )
            return CurvePoint("loss", event.iteration, event.loss)
        elif isinstance(event, EpochEnded) and event.metrics.get("map") is not None:
            return CurvePoint("map", event.epoch, float(event.metrics["map"]))
        return None

    def cancelling(self) -> None:
        """The person asked to stop: say so until the run's last event arrives."""
        self.status = "Cancelling after this iteration…"

    def finish(self, result: RunFinished) -> Notice:
        """The run ended (completed, stopped early, cancelled or failed inside the engine)."""
        self.result = result
        elapsed = format_duration(self._clock() - self._started)
        if result.status == "failed":
            self.status = f"Failed after {elapsed}: {result.message}"
            return Notice(
                "error", f"Training failed: {result.message} (run folder kept: {result.run_dir})"
            )
        if result.status == "cancelled":
            self.status = f"Cancelled after {elapsed}; last checkpoint kept"
            return Notice("info", f"Training cancelled; checkpoint kept in {result.run_dir}")
        self.iteration = self.total_iterations
        best = f", best mAP {result.best_metric:.3f}" if result.best_metric is not None else ""
        self.status = f"Done in {elapsed}{best}: {result.message}"
        return Notice("info", f"Training {result.status}{best}; checkpoints in {result.run_dir}")

    def fail(self, error: Exception) -> Notice:
        """The run could not start (inputs refused) or stopped without its final event (a
        file it could not write, a crash)."""
        self.status = f"Failed: {error}"
        where = f" (run folder kept: {self.run_dir})" if self.run_dir.exists() else ""
        if isinstance(error, DetlabError) and not isinstance(error, TrainingProcessError):
            lead = "Training stopped" if self.started else "Cannot train"
            return Notice("error", f"{lead}: {error}{where}")
        return Notice("error", f"Training stopped: {type(error).__name__}: {error}{where}")
