"""The train dock's model: what a person is told while a run trains and when it ends."""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_detlab.core.training.events import EpochEnded, IterationEnded, RunFinished, RunStarted
from napari_detlab.core.training.launch import TrainingProcessError
from napari_detlab.core.training.options import TrainingInputError
from napari_detlab.core.training.progress import CurvePoint, Notice, RunProgress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def run(tmp_path) -> tuple[RunProgress, Clock]:
    clock = Clock()
    return RunProgress(tmp_path / "runs" / "run_001", clock=clock), clock


def test_events_move_the_bar_say_where_the_run_is_and_add_curve_points(run):
    progress, _ = run
    assert progress.status.startswith("Starting") and progress.eta is None
    assert progress.update(RunStarted("r", "cpu", 2, 5, 9, 3)) is None
    assert (progress.iteration, progress.total_iterations) == (0, 10)
    assert progress.status == "Training on cpu: 9 training and 3 validation images"
    progress.update(RunStarted("r", "cpu", 2, 5, 9, 3, unreviewed_images=4))
    assert progress.status == (
        "Training on cpu: 9 training and 3 validation images "
        "(4 accepted from the model, not yet reviewed)"
    )

    point = progress.update(IterationEnded(1, 4, 10, 0.8125, {}, 0.01, 2.5, 185.0))
    assert point == CurvePoint("loss", 4, 0.8125)
    assert (progress.iteration, progress.total_iterations, progress.eta) == (4, 10, "3m05s")
    assert progress.status == "Epoch 1 · iteration 4/10 · loss 0.812 · 2.5 images/s"

    assert progress.update(EpochEnded(1, 0.9, {"map": 0.25}, True, "last.pt")) == CurvePoint(
        "map", 1, 0.25
    )
    assert progress.update(EpochEnded(2, 0.9, {}, False, "last.pt")) is None  # not evaluated
    assert progress.update(RunFinished("completed", "r")) is None  # the end is finish()'s


def test_each_ending_has_its_status_line_and_notice(run):
    progress, clock = run
    progress.update(IterationEnded(1, 3, 10, 1.0, {}, 0.01, 2.0, 9.0))
    clock.now += 65
    done = RunFinished("completed", "r", "r/best.pt", "r/last.pt", 0.4321, "all epochs done")
    assert progress.finish(done) == Notice(
        "info", "Training completed, best mAP 0.432; checkpoints in r"
    )
    assert progress.status == "Done in 1m05s, best mAP 0.432: all epochs done"
    assert progress.iteration == progress.total_iterations and progress.result is done

    assert progress.finish(RunFinished("cancelled", "r")) == Notice(
        "info", "Training cancelled; checkpoint kept in r"
    )
    assert progress.status == "Cancelled after 1m05s; last checkpoint kept"
    failed = progress.finish(RunFinished("failed", "r", message="loss is nan at iteration 2"))
    assert failed == Notice(
        "error", "Training failed: loss is nan at iteration 2 (run folder kept: r)"
    )


def test_errors_say_whether_the_inputs_were_refused_or_the_run_stopped(run):
    progress, _ = run
    refused = progress.fail(TrainingInputError("no annotated images"))
    assert refused == Notice("error", "Cannot train: no annotated images")  # no folder yet
    assert progress.status == "Failed: no annotated images"

    Path(progress.run_dir).mkdir(parents=True)
    crashed = progress.fail(TrainingProcessError("the training process ended unexpectedly (x)"))
    assert crashed.text == (
        "Training stopped: TrainingProcessError: the training process ended unexpectedly (x) "
        f"(run folder kept: {progress.run_dir})"
    )
    assert progress.fail(RuntimeError("DataLoader worker exited")).text.startswith(
        "Training stopped: RuntimeError: DataLoader worker exited (run folder kept: "
    )
