"""Training in a child process, relayed as a generator of events (what the train dock runs).

No viewer: the relay is plain Python. The runs are the fast preset at 64 px with a few
iterations, so each child costs its start-up (importing torch) more than its training.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import napari_detlab.core.training.engine as engine
import napari_detlab.core.training.launch as launch
from napari_detlab.core.annotations.sample_data import SAMPLE_CLASSES, write_synthetic_dataset
from napari_detlab.core.model.checkpoint import load_checkpoint
from napari_detlab.core.model.config import preset
from napari_detlab.core.training.events import (
    IterationEnded,
    RunFinished,
    RunStarted,
    event_from_dict,
)
from napari_detlab.core.training.launch import (
    TrainingProcessError,
    train_in_subprocess,
    train_in_thread,
)
from napari_detlab.core.training.options import TrainingInputError, TrainOptions

CONFIG = preset("fast", list(SAMPLE_CLASSES)).replace(
    min_size=64, max_size=64, box_batch_size_per_image=32, rpn_post_nms_top_n_test=40,
    box_detections_per_img=40,
)  # fmt: skip


def options(**changes) -> TrainOptions:
    return TrainOptions(
        **{"epochs": 1, "batch_size": 2, "warmup_iters": 1, "num_workers": 0, **changes}
    )


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """6 annotated 64x64 scenes."""
    root = tmp_path_factory.mktemp("launch")
    return write_synthetic_dataset(root / "data", 6, size=(64, 64), seed=4, max_objects=3)


def run_to_end(events) -> tuple[list[object], RunFinished]:
    """Every event a run yields (heartbeats left out) and what it returns."""
    seen = []
    while True:
        try:
            event = next(events)
        except StopIteration as end:
            return seen, end.value
        if event is not None:
            seen.append(event)


def test_a_runs_events_arrive_in_order_and_its_last_is_returned(dataset, tmp_path):
    run_dir = tmp_path / "run"
    children: list[subprocess.Popen] = []
    events, result = run_to_end(
        train_in_subprocess(
            dataset, run_dir, CONFIG, options(max_iterations=2, eval_every=0),
            on_start=children.append,
        )
    )  # fmt: skip
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    recorded = [event_from_dict(json.loads(line)) for line in lines]
    assert events == recorded  # every event, in the engine's order
    assert [type(e).__name__ for e in events[:3]] == ["RunStarted"] + ["IterationEnded"] * 2
    assert result == events[-1] and result.status == "completed"
    assert (run_dir / "last.pt").is_file() and children[0].poll() == 0


@pytest.mark.parametrize("stop", ["cancel", "close"])
def test_a_cancelled_or_abandoned_run_stops_cleanly_with_last_pt(dataset, tmp_path, stop):
    """Setting ``cancel``, or leaving the generator (as napari's quit does), is a SIGINT: the
    engine finishes its iteration, writes ``last.pt`` and the child exits 130."""
    cancel = threading.Event()
    children: list[subprocess.Popen] = []
    events = train_in_subprocess(
        dataset, tmp_path / "run", CONFIG, options(epochs=500, eval_every=0),
        cancel=cancel, poll_s=0.1, on_start=children.append,
    )  # fmt: skip
    seen = next(e for e in events if isinstance(e, IterationEnded))
    if stop == "cancel":
        cancel.set()
        later, result = run_to_end(events)
        assert result.status == "cancelled" and later[-1] == result
    else:
        events.close()
        assert cancel.is_set()
    assert children[0].wait(timeout=120) == 130
    checkpoint = load_checkpoint(tmp_path / "run" / "last.pt")
    assert seen.iteration <= checkpoint["metrics"]["iteration"] <= seen.iteration + 2


@pytest.mark.skipif(sys.platform == "win32", reason="no SIGINT for a child on Windows")
def test_a_child_is_asked_to_stop_once_however_often_stop_is_called():
    """A closing dock sets the run's cancel (its watcher stops the child) and stops the child
    itself: a second SIGINT would be the CLI's "Ctrl+C again aborts", without last.pt."""
    counting = (
        "import signal, sys, time\n"
        "seen = []\n"
        "signal.signal(signal.SIGINT, lambda *_: seen.append(1))\n"
        "print('ready', flush=True)\n"
        "time.sleep(1.5)\n"
        "print(len(seen))\n"
    )
    child = subprocess.Popen([sys.executable, "-c", counting], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    launch.stop_child(child)
    time.sleep(0.3)  # the first SIGINT has been handled when the second would come
    launch.stop_child(child)
    out, _ = child.communicate(timeout=30)
    assert out.strip() == "1"


def test_refused_inputs_are_a_training_input_error_with_the_clis_line(tmp_path):
    dataset = write_synthetic_dataset(tmp_path / "data", 2, size=(32, 32))
    for path in (dataset / "annotations").glob("*.pt"):
        path.unlink()  # classes, but no annotated image
    with pytest.raises(TrainingInputError, match="no annotated images") as refused:
        run_to_end(train_in_subprocess(dataset, tmp_path / "run", CONFIG, options()))
    assert "\n" not in str(refused.value) and "error:" not in str(refused.value)


def test_a_crash_is_an_error_naming_the_end_of_the_log(tmp_path, monkeypatch):
    crash = (
        "import sys; print('not an event'); print('Traceback (most recent call last):', "
        "file=sys.stderr); print('MemoryError: out of memory', file=sys.stderr); sys.exit(1)"
    )
    monkeypatch.setattr(launch, "train_command", lambda *_: [sys.executable, "-c", crash])
    with pytest.raises(TrainingProcessError, match="MemoryError: out of memory"):
        run_to_end(train_in_subprocess(tmp_path, tmp_path / "run", CONFIG, options()))
    assert "MemoryError" in (tmp_path / "run" / "train.log").read_text()

    monkeypatch.setattr(launch, "train_command", lambda *_: [sys.executable, "-c", "exit(3)"])
    with pytest.raises(TrainingProcessError, match="exit code 3"):  # nothing in the log
        run_to_end(train_in_subprocess(tmp_path, tmp_path / "run", CONFIG, options()))


def test_the_engine_on_a_thread_is_relayed_the_same_way_with_heartbeats(tmp_path, monkeypatch):
    def slow_train(dataset, run_dir, config, options, *, on_event, cancel):
        on_event(RunStarted(str(run_dir), "cpu", 1, 2, 4, 2))
        time.sleep(0.3)  # a step slower than poll_s: the relay yields None meanwhile
        on_event(IterationEnded(1, 1, 2, 1.5, {}, 0.01, 3.0, 1.0))
        if cancel.is_set():
            return RunFinished("cancelled", str(run_dir))
        raise RuntimeError("DataLoader worker exited unexpectedly")

    monkeypatch.setattr(engine, "train", slow_train)
    seen = []
    with pytest.raises(RuntimeError, match="DataLoader worker exited"):  # as itself, here
        for event in train_in_thread(tmp_path, tmp_path / "run", CONFIG, options(), poll_s=0.05):
            seen.append(event)
    assert [type(e) for e in seen if e is not None] == [RunStarted, IterationEnded]
    assert None in seen[1:-1]

    cancel = threading.Event()
    cancel.set()
    events = train_in_thread(tmp_path, tmp_path / "run", CONFIG, options(), cancel=cancel)
    assert run_to_end(events)[1].status == "cancelled"
