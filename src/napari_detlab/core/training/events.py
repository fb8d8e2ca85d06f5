"""Training progress events: what the CLI prints, the dock draws and ``metrics.jsonl`` keeps.

The engine calls one ``on_event(event)`` callback with these frozen dataclasses, from
whatever thread it runs on. Consumers must not block in the callback: the CLI prints a line,
and :mod:`~napari_detlab.core.training.launch` relays them to the train dock as a generator.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Union

__all__ = [
    "EpochEnded",
    "Event",
    "IterationEnded",
    "RunFinished",
    "RunStarted",
    "event_from_dict",
    "event_to_dict",
    "event_to_json",
    "format_duration",
]


@dataclass(frozen=True)
class RunStarted:
    """Sent once, before the first iteration.

    ``unreviewed_images`` counts the training and validation images whose boxes were
    accepted from the model in a batch and that no person has reviewed yet: they train like
    the others, and the run says how many there are.
    """

    run_dir: str
    device: str
    epochs: int
    iterations_per_epoch: int
    train_images: int
    val_images: int
    config: dict[str, Any] = field(default_factory=dict)
    start_epoch: int = 0
    unreviewed_images: int = 0
    # The most boxes in one image, when the model's per-image caps were raised for it.
    room_for_boxes: int = 0

    def unreviewed_note(self) -> str:
        """What the run's first line adds when some images were never reviewed by a person:
        ``" (3 accepted from the model, not yet reviewed)"``, else nothing."""
        count = self.unreviewed_images
        return f" ({count} accepted from the model, not yet reviewed)" if count else ""

    def notes(self) -> str:
        """Everything the run's first line adds: unreviewed images, and the caps raised for
        a dense image (``" (detections per image raised to 1000: an image has 960 boxes)"``)."""
        text = self.unreviewed_note()
        if self.room_for_boxes:
            raised = self.config.get("box_detections_per_img", self.room_for_boxes)
            text += (
                f" (detections per image raised to {raised}: an image has "
                f"{self.room_for_boxes} boxes)"
            )
        return text


@dataclass(frozen=True)
class IterationEnded:
    """Sent after every optimiser step (``iteration`` counts from 1 over the whole run)."""

    epoch: int
    iteration: int
    total_iterations: int
    loss: float
    losses: dict[str, float]
    lr: float
    images_per_s: float
    eta_s: float


@dataclass(frozen=True)
class EpochEnded:
    """Sent after each epoch's validation; ``metrics`` holds ``map``, ``map_50``, ``per_class``…"""

    epoch: int
    train_loss: float
    metrics: dict[str, Any]
    is_best: bool
    checkpoint: str


@dataclass(frozen=True)
class RunFinished:
    """The last event. ``status`` is completed, early_stopped, cancelled or failed."""

    status: str
    run_dir: str
    best_checkpoint: str | None = None
    last_checkpoint: str | None = None
    best_metric: float | None = None
    message: str = ""


Event = Union[RunStarted, IterationEnded, EpochEnded, RunFinished]
_TYPES = {cls.__name__: cls for cls in (RunStarted, IterationEnded, EpochEnded, RunFinished)}


def event_to_dict(event: Event) -> dict[str, Any]:
    """A JSON-ready dict with a ``type`` key naming the event."""
    return {"type": type(event).__name__, **asdict(event)}


def event_to_json(event: Event) -> str:
    """One line of ``metrics.jsonl``."""
    return json.dumps(event_to_dict(event), sort_keys=False)


def event_from_dict(data: dict[str, Any]) -> Event:
    """Inverse of :func:`event_to_dict`, for reading ``metrics.jsonl`` back (curves of old runs)."""
    data = dict(data)
    return _TYPES[data.pop("type")](**data)


def format_duration(seconds: float) -> str:
    """``"1h02m"``, ``"3m05s"`` or ``"42s"``: an ETA a person reads at a glance.

    ``"?"`` for a value that is not a duration yet (NaN, infinite or negative).
    """
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"
