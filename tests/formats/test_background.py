"""Import and export as generators of progress steps, what napari's workers run."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from formats_helpers import copy_images

from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.formats import ExportReport, FormatError, ImportReport
from napari_detlab.formats.background import (
    Failed,
    StoppedError,
    drain,
    export_steps,
    import_steps,
    progress_steps,
)


def test_progress_arrives_as_steps_and_the_result_as_the_return_value() -> None:
    threads = []

    def work(on_progress) -> str:
        threads.append(threading.current_thread())
        for done in (1, 2, 3):
            on_progress(done, 3, "reading")
        on_progress(1, 1, "writing")
        return "report"

    steps, result = drain(progress_steps(work))
    assert steps == [(1, 3, "reading"), (2, 3, "reading"), (3, 3, "reading"), (1, 1, "writing")]
    assert result == "report"
    assert threads and threads[0] is not threading.current_thread()  # off the caller's thread


def test_an_error_of_the_work_is_raised_after_its_steps() -> None:
    def work(on_progress) -> None:
        on_progress(1, 2, "reading")
        raise FormatError("labels.json: line 3: not valid JSON")

    steps = progress_steps(work)
    assert next(steps) == (1, 2, "reading")
    with pytest.raises(FormatError, match="line 3"):
        next(steps)


def test_closing_the_steps_stops_the_work_at_its_next_report() -> None:
    reached: list[int] = []
    errors: list[BaseException] = []

    def work(on_progress) -> None:
        try:
            for done in range(1, 1001):
                on_progress(done, 1000, "writing")
                reached.append(done)
                time.sleep(0.002)
        except StoppedError as error:
            errors.append(error)
            raise

    steps = progress_steps(work)
    assert next(steps) == (1, 1000, "writing")
    steps.close()  # what napari's worker.quit() does at the generator's next yield
    count = len(reached)
    assert count < 1000 and len(errors) == 1  # stopped, and ended before close returned
    time.sleep(0.05)
    assert len(reached) == count
    assert not any(t.name.startswith("detlab-formats") for t in threading.enumerate())


def test_import_and_export_steps_report_progress_and_return_the_reports(
    image_set: Path, tmp_path: Path
) -> None:
    dataset = copy_images(image_set, tmp_path / "ds")
    targets = tmp_path / "target"
    targets.mkdir()
    for image in AnnotationStore(dataset).images:
        (targets / f"{image.stem}.json").write_text(
            json.dumps({"labels": ["cell"], "boxes": [[1, 2, 5, 6]]})
        )
    steps, report = drain(import_steps("tutorial", targets, dataset))
    assert isinstance(report, ImportReport) and report.images == 3 and report.boxes == 3
    assert steps[-1] == (3, 3, "writing") and (3, 3, "reading") in steps
    steps, report = drain(export_steps(AnnotationStore(dataset), "voc", tmp_path / "voc"))
    assert isinstance(report, ExportReport) and report.images == 3
    assert steps[-1] == (3, 3, "writing")
    assert sorted(p.name for p in (tmp_path / "voc").iterdir()) == [
        "img0.xml",
        "img1.xml",
        "img2.xml",
    ]


def test_an_import_that_cannot_start_returns_why_instead_of_raising(
    image_set: Path, tmp_path: Path
) -> None:
    dataset = copy_images(image_set, tmp_path / "ds")
    broken = tmp_path / "labels.json"
    broken.write_text("{not json")
    steps, outcome = drain(import_steps("coco", broken, dataset))
    assert steps == [] and isinstance(outcome, Failed)
    assert isinstance(outcome.error, FormatError) and "not valid JSON" in str(outcome)
    _, outcome = drain(import_steps("yolo", tmp_path / "nowhere", dataset))
    assert isinstance(outcome, Failed) and isinstance(outcome.error, FileNotFoundError)
    assert not (dataset / "annotations").exists()
