"""Import and export as a background job: generators of progress steps, for napari's workers.

A napari worker shows a generator's progress in the activity dock from what it yields, but
the formats report progress through an ``on_progress(done, total, stage)`` callback called
deep inside the readers and the writer pool. :func:`progress_steps` joins the two: it runs
the work on a helper thread and yields each report as it comes, then returns the result, so
the GUI thread only ever handles small ``(done, total, stage)`` tuples.

:func:`import_steps` and :func:`export_steps` wrap :func:`~napari_detlab.formats.dataset_io.
import_dataset` and :func:`~napari_detlab.formats.dataset_io.export_dataset` this way, and
return the error the user must read (a bad file, a full disk) as :class:`Failed` rather
than raising it: a worker's exception is re-raised on the GUI thread as a crash report,
which is right for a bug and wrong for a typo in a JSON file.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.relay import relay, run_to_end
from napari_detlab.formats.base import Format, ProgressCallback
from napari_detlab.formats.dataset_io import export_dataset, import_dataset
from napari_detlab.formats.reports import ExportReport, ImportReport

__all__ = [
    "Failed",
    "Step",
    "StoppedError",
    "drain",
    "export_steps",
    "import_steps",
    "progress_steps",
]

Result = TypeVar("Result")
Step = tuple[int, int, str]
"""``(done, total, stage)``, as the formats' ``on_progress`` gets it."""


class StoppedError(DetlabError):
    """Raised inside the work at its next progress report once its steps are closed."""


@dataclass(frozen=True)
class Failed:
    """Why a background import or export did nothing more: the message the user reads."""

    error: DetlabError | OSError

    def __str__(self) -> str:
        return str(self.error)


def progress_steps(
    work: Callable[[ProgressCallback], Result],
) -> Generator[Step, None, Result]:
    """Run ``work(on_progress)`` on a helper thread; yield its progress, return its result.

    An exception of ``work`` is raised here, after the last step. Closing the generator
    (napari's ``worker.quit()`` when the window closes) makes the work's next progress
    report raise :class:`StoppedError` and waits for the helper thread to end, so no file is
    left half written behind the user's back.
    """
    stop = threading.Event()

    def run(post: Callable[[Step], None]) -> Result:
        def on_progress(done: int, total: int, stage: str) -> None:
            if stop.is_set():
                raise StoppedError("stopped before the end")
            post((done, total, stage))

        return work(on_progress)

    return (yield from relay(run, on_close=stop.set, name="detlab-formats"))


def drain(steps: Generator[Step, None, Result]) -> tuple[list[Step], Result]:
    """Every step of ``steps`` and then its value: a job run to the end where napari's worker
    would run it, as a script, a test or a benchmark does."""
    seen: list[Step] = []
    return seen, run_to_end(steps, seen.append)


def import_steps(
    format: str | Format,
    source: Path,
    dataset: AnnotationStore | Path,
    overwrite: bool = False,
) -> Generator[Step, None, ImportReport | Failed]:
    """:func:`~napari_detlab.formats.dataset_io.import_dataset` as progress steps.

    Every argument may be positional, as napari's workers pass them.
    """
    return (
        yield from _steps(
            lambda on_progress: import_dataset(
                format, source, dataset, on_progress=on_progress, overwrite=overwrite
            )
        )
    )


def export_steps(
    dataset: AnnotationStore | Path, format: str | Format, target: Path
) -> Generator[Step, None, ExportReport | Failed]:
    """:func:`~napari_detlab.formats.dataset_io.export_dataset` as progress steps."""
    return (
        yield from _steps(
            lambda on_progress: export_dataset(dataset, format, target, on_progress=on_progress)
        )
    )


def _steps(work: Callable[[ProgressCallback], Result]) -> Generator[Step, None, Result | Failed]:
    try:
        return (yield from progress_steps(work))
    except (DetlabError, OSError) as error:
        return Failed(error)
