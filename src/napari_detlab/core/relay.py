"""Work that reports through a callback, as a generator of its reports: for napari's workers.

A napari generator worker shows a job's progress from what it yields and can stop it at any
yield, but the work in the core reports through a callback called deep inside it: training's
event stream (``on_event``), the formats' ``on_progress`` in the readers and the writer pool,
prediction's per-image count. :func:`relay` joins the two, the same way for all of them: it
runs the work on a thread of its own, yields each report as it comes and returns the work's
result (or raises its exception, after the last report). The GUI thread only ever handles
small reports; :func:`run_to_end` takes the same generator to its end where no worker runs it
(a script, a test, a benchmark).

A caller that leaves before the end (closing the generator: napari's ``worker.quit()`` when
the window closes) calls ``on_close``, which tells the work to stop at its next step (the
training's cancel event, the formats' stop flag). The work's thread is not a daemon: the
interpreter waits for its clean stop before it exits, so nothing is left half written.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator
from concurrent.futures import Future
from typing import TypeVar

__all__ = ["relay", "run_to_end"]

Report = TypeVar("Report")
Result = TypeVar("Result")
_END = object()


def relay(
    work: Callable[[Callable[[Report], None]], Result],
    *,
    on_close: Callable[[], None] | None = None,
    wait_on_close: bool = True,
    poll_s: float | None = None,
    name: str = "detlab-relay",
) -> Generator[Report | None, None, Result]:
    """Run ``work(post)`` on a thread; yield what it posts, return what it returns.

    Parameters
    ----------
    work
        Called once with ``post``, the callback to report through.
    on_close
        Called when the caller closes the generator before the work ended: tell the work to
        stop at its next step.
    wait_on_close
        Whether closing also waits for the work's thread to end. A training run may take an
        iteration to stop, and a closing window should not wait for it (its thread still
        sees it to the end); a file job stops at its next file and is waited for.
    poll_s
        Yield ``None`` whenever this many seconds pass without a report, so that a caller
        that must be able to stop promptly (a napari worker checks for quit at each yield)
        gets the chance; ``None`` waits for the next report however long it takes.
    name
        The thread's name (what a debugger or ``py-spy`` shows).
    """
    posted: queue.SimpleQueue[object] = queue.SimpleQueue()
    outcome: Future[Result] = Future()

    def main() -> None:
        try:
            outcome.set_result(work(posted.put))
        except BaseException as error:  # raised again in the caller's thread
            outcome.set_exception(error)
        finally:
            posted.put(_END)

    thread = threading.Thread(target=main, name=name)
    thread.start()
    try:
        while True:
            try:
                item = posted.get(timeout=poll_s)
            except queue.Empty:
                yield None
                continue
            if item is _END:
                return outcome.result()
            yield item  # type: ignore[misc]  # only work's post puts anything else
    finally:
        if not outcome.done():
            if on_close is not None:
                on_close()
            if wait_on_close:
                thread.join()


def run_to_end(
    steps: Generator[Report, None, Result], on_report: Callable[[Report], None] | None = None
) -> Result:
    """Take ``steps`` to its end, handing each report to ``on_report``; return its value."""
    while True:
        try:
            report = next(steps)
        except StopIteration as end:
            return end.value
        if on_report is not None:
            on_report(report)
