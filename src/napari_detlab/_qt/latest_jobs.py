"""Background jobs whose newest result wins, for docks that recompute as the user works.

A dock that measures the dataset (anchor coverage, precision / recall / mAP) starts a job
on every change; a job started later makes the results of earlier ones of the same kind
outdated, and those are dropped, so a slow old job can never overwrite a newer figure.
The work runs in napari's worker threads; results arrive on the GUI thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["LatestJobs"]


class LatestJobs:
    """Start jobs by kind; only the latest job of each kind reports back.

    Parameters
    ----------
    on_error
        Called on the GUI thread with ``(kind, error)`` when the latest job of a kind fails.
    """

    def __init__(self, on_error: Callable[[str, Exception], None]) -> None:
        self._on_error = on_error
        self._generation: dict[str, int] = {}
        self._running: list[object] = []

    @property
    def running(self) -> bool:
        """Whether any job (outdated ones included) is still running."""
        return bool(self._running)

    def start(self, kind: str, function: Callable[..., Any], *args: Any, on_done: Callable) -> None:
        """Run ``function(*args)`` in a worker thread; ``on_done(result)`` if still the latest."""
        from napari.qt.threading import create_worker

        generation = self._generation[kind] = self._generation.get(kind, 0) + 1
        worker = create_worker(function, *args, _start_thread=False)

        def finished(result: object) -> None:
            if generation == self._generation[kind]:
                on_done(result)

        def failed(error: Exception) -> None:
            if generation == self._generation[kind]:
                self._on_error(kind, error)

        worker.returned.connect(finished)
        worker.errored.connect(failed)
        worker.finished.connect(
            lambda: self._running.remove(worker) if worker in self._running else None
        )
        self._running.append(worker)
        worker.start()

    def outdate_all(self) -> None:
        """Drop the results of every job still running (the dock is closing)."""
        for kind in self._generation:
            self._generation[kind] += 1
