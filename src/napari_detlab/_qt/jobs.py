"""The one way the docks run work in the background: napari's workers.

Training's relay, prediction, import / export and dataset scoring all run in napari's
thread pool (:func:`start_worker`); what they yield and return arrives on the GUI thread
through Qt signals, not a polled queue. napari shows each in its activity dock and registers
it as a running task, so closing the window while one runs asks first. The training itself
runs in a child process (see :mod:`napari_detlab.core.training.launch`); a worker here
only relays its events.

A dock that measures the dataset (anchor coverage, precision / recall / mAP) starts a job on
every change: :class:`LatestJobs` drops the results of every job but the newest of a kind,
so a slow old job can never overwrite a newer figure.

(The Annotator's image prefetch is the exception: it belongs to the Qt-free annotation
model in the core, which cannot use napari's workers, and it is a plain executor there.)
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from napari_detlab.core.errors import DetlabError

if TYPE_CHECKING:
    from napari.qt.threading import WorkerBase

__all__ = ["LatestJobs", "show_progress", "start_worker"]


def start_worker(
    function: Callable[..., Any],
    *args: Any,
    description: str,
    activity: bool = False,
    total: int = 0,
    on_yield: Callable[[Any], None] | None = None,
    on_done: Callable[[Any], None] | None = None,
    on_error: Callable[[Exception], None] | None = None,
) -> WorkerBase:
    """Run ``function(*args)`` in napari's thread pool and return the started worker.

    Parameters
    ----------
    function
        A plain function (its return value goes to ``on_done``) or a generator function
        (each value it yields goes to ``on_yield``, its return value to ``on_done``). A
        generator is stopped at its next ``yield`` by ``worker.quit()``, which napari also
        calls when the user closes the window and agrees to cancel running tasks.
    description
        What napari's "tasks still running" question (and its activity dock) call it.
    activity
        Also show a progress bar in napari's activity dock. Off unless asked: while it runs,
        that bar costs the viewer about a third of a CPU core under software OpenGL
        (measured: 3.4 s of CPU in 10 s), which a training or prediction on a 2-core
        machine pays in speed; the docks show their own progress instead.
    total
        With ``activity``, for a generator that yields once per step: how many steps (0: a
        busy indicator).
    on_yield, on_done, on_error
        Called on the GUI thread. A caller with ``on_error`` tells the user itself: superqt
        then does not re-raise the error in the event loop as well.
    """
    from napari.qt.threading import create_worker

    if on_error is not None and inspect.isgeneratorfunction(function):
        function = _carrying_runtime_errors(function)
    progress = {"total": total, "desc": description} if activity else None
    worker = create_worker(
        _named(function, description), *args, _start_thread=False,
        _ignore_errors=on_error is not None, _progress=progress,
    )  # fmt: skip
    if on_yield is not None and hasattr(worker, "yielded"):
        worker.yielded.connect(on_yield)
    if on_done is not None:
        worker.returned.connect(on_done)
    if on_error is not None:
        worker.errored.connect(lambda error: on_error(_carried(error)))
    worker.start()
    return worker


def show_progress(worker: WorkerBase, done: int, total: int, description: str) -> None:
    """Set the bar napari's activity dock shows for ``worker`` to ``done`` of ``total`` steps
    (0: a busy indicator), and its text to ``description``.

    For work whose size is known only once it runs (a download learns it from the server);
    ``worker`` is one :func:`start_worker` started with ``activity=True`` and ``total=0``, so
    that napari does not also count its yields.
    """
    bar = getattr(worker, "pbar", None)  # napari's progress object for the worker
    if bar is None:
        return
    if bar.total != total:
        bar.total = total
    if done != bar.n:
        bar.update(done - bar.n)
    bar.set_description(description)


def _named(function: Callable[..., Any], description: str) -> Callable[..., Any]:
    """``function`` under the name napari's "tasks still running" question shows."""
    if inspect.isgeneratorfunction(function):

        @functools.wraps(function)
        def steps(*args: Any) -> Generator:
            return (yield from function(*args))

        named: Callable[..., Any] = steps
    else:

        @functools.wraps(function)
        def call(*args: Any) -> Any:
            return function(*args)

        named = call
    named.__qualname__ = named.__name__ = description
    return named


class _CarriedRuntimeError(Exception):
    """A generator's ``RuntimeError`` on its way to ``on_error`` (its ``__cause__``).

    superqt's generator worker takes a ``RuntimeError`` for the sign of a deleted worker and
    drops it: no ``errored``, no ``finished``, and napari would list the task as running for
    ever. torch reports most failures (out of memory, a dead DataLoader) as one.
    """


def _carrying_runtime_errors(function: Callable[..., Generator]) -> Callable[..., Generator]:
    @functools.wraps(function)
    def steps(*args: Any) -> Generator:
        try:
            return (yield from function(*args))
        except RuntimeError as error:
            raise _CarriedRuntimeError() from error

    return steps


def _carried(error: Exception) -> Exception:
    if isinstance(error, _CarriedRuntimeError) and isinstance(error.__cause__, Exception):
        return error.__cause__
    return error


@dataclass(frozen=True)
class _Refused:
    """A job's :class:`~napari_detlab.core.errors.DetlabError`, carried as its result."""

    error: DetlabError


def _refusals_returned(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` returning a DetlabError (bad input: a message for the user) instead of
    raising it, so superqt does not re-raise it on the GUI thread as a crash report; any
    other exception (a bug) still is."""

    @functools.wraps(function)
    def run(*args: Any) -> Any:
        try:
            return function(*args)
        except DetlabError as error:
            return _Refused(error)

    return run


class LatestJobs:
    """Start jobs by kind; only the latest job of each kind reports back.

    Parameters
    ----------
    on_error
        Called on the GUI thread with ``(kind, error)`` when the latest job of a kind fails.
        A :class:`~napari_detlab.core.errors.DetlabError` (a bad file, a refused dataset)
        goes there alone; any other error is also napari's crash report, as a bug should be.
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
        worker = create_worker(_refusals_returned(function), *args, _start_thread=False)

        def finished(result: object) -> None:
            if generation != self._generation[kind]:
                return
            if isinstance(result, _Refused):
                self._on_error(kind, result.error)
            else:
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
