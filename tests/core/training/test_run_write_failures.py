"""A run folder that stops taking writes (a full disk, a read-only folder) during training.

What the person must see: the file that could not be written and why, at once rather than an
epoch later, and every file written before it intact (``last.pt`` above all, to resume from),
with no half-written file left behind. In the train dock the message arrives from the child
process as the notification's text.
"""

from __future__ import annotations

import errno
import time
from pathlib import Path

import pytest
import torch
from test_engine import Recorder, quick_options, small_config

import napari_detlab.core.training.launch as launch
from failing_writes import disk_full, fail_writes, read_only, snapshot, temp_files
from napari_detlab.core.annotations.sample_data import write_synthetic_dataset
from napari_detlab.core.atomic import WriteError
from napari_detlab.core.training.background_save import CheckpointWriter
from napari_detlab.core.training.engine import train
from napari_detlab.core.training.events import EpochEnded, IterationEnded
from napari_detlab.core.training.launch import train_in_subprocess
from napari_detlab.core.training.options import TrainingInputError
from napari_detlab.core.training.progress import RunProgress


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """6 annotated 64x64 scenes: 2 training steps per epoch."""
    root = tmp_path_factory.mktemp("write_failures")
    return write_synthetic_dataset(root / "data", 6, size=(64, 64), seed=8, max_objects=3)


@pytest.fixture
def one_epoch(dataset, tmp_path) -> tuple[Path, dict[str, bytes]]:
    """A run folder after one completed epoch, and its files' bytes."""
    run_dir = tmp_path / "run"
    finished = train(dataset, run_dir, small_config(64), quick_options(eval_every=0))
    assert finished.status == "completed", finished.message
    return run_dir, snapshot(run_dir)


def resume(run_dir: Path, epochs: int):
    return quick_options(epochs=epochs, eval_every=0, resume=str(run_dir / "last.pt"))


def test_a_full_disk_at_a_checkpoint_ends_the_run_at_once_naming_it(
    dataset, one_epoch, monkeypatch
):
    run_dir, before = one_epoch
    fail_writes(monkeypatch, disk_full, {"last.pt"})  # the real ENOSPC of /dev/full
    recorder = Recorder()
    with pytest.raises(WriteError) as failed:
        train(dataset, run_dir, small_config(64), resume(run_dir, 6), on_event=recorder)

    error, last = failed.value, run_dir / "last.pt"
    assert isinstance(error, OSError) and error.errno == errno.ENOSPC
    assert error.filename == str(last)
    assert str(error) == (
        f"{last}: cannot write (No space left on device); the disk is full; free some space or "
        f"choose another folder; {last} is intact: resume from it"
    )
    # Epoch 2's checkpoint failed; the run stopped in epoch 3 instead of training on to 6.
    assert [e.epoch for e in recorder.of(EpochEnded)] == [2]
    assert max(e.iteration for e in recorder.of(IterationEnded)) <= 6
    assert (run_dir / "last.pt").read_bytes() == before["last.pt"]
    assert not temp_files(run_dir)  # the half-written temp file was removed
    # The first run's events are still there; the second's were appended after them.
    assert (run_dir / "metrics.jsonl").read_bytes().startswith(before["metrics.jsonl"])


def test_a_read_only_run_folder_is_named_and_nothing_in_it_changes(dataset, one_epoch, monkeypatch):
    run_dir, before = one_epoch
    fail_writes(monkeypatch, read_only)
    with pytest.raises(WriteError) as failed:
        train(dataset, run_dir, small_config(64), resume(run_dir, 2))
    assert failed.value.errno == errno.EROFS
    assert str(failed.value).startswith(
        f"{run_dir / 'config.json'}: cannot write (Read-only file system); the folder is on a "
        "read-only file system; choose another folder"
    )
    assert snapshot(run_dir) == before


def test_a_full_disk_under_the_event_log_names_it(dataset, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").symlink_to("/dev/full")  # every write: ENOSPC
    with pytest.raises(WriteError) as failed:
        train(dataset, run_dir, small_config(64), quick_options(max_iterations=1))
    assert failed.value.errno == errno.ENOSPC
    assert failed.value.filename == str(run_dir / "metrics.jsonl")
    assert not (run_dir / "last.pt").exists() and not temp_files(run_dir)


def test_the_train_dock_is_told_which_file_its_training_process_could_not_write(
    dataset, one_epoch, monkeypatch
):
    """The dock's path: ``detlab train`` in a child process whose files may not grow past
    20 MB (``RLIMIT_FSIZE``, which binds root too): writing ``last.pt`` fails with the
    kernel's ``EFBIG``, the child exits with code 2 and one line, and the dock's model turns
    that into the notification."""
    run_dir, before = one_epoch
    limit = "import resource; resource.setrlimit(resource.RLIMIT_FSIZE, (20_000_000,) * 2); "
    command = launch.train_command

    def limited(*args, **kwargs) -> list[str]:
        python, flag, code, *rest = command(*args, **kwargs)
        return [python, flag, limit + code, *rest]

    monkeypatch.setattr(launch, "train_command", limited)
    progress = RunProgress(run_dir)
    with pytest.raises(TrainingInputError) as stopped:
        for event in train_in_subprocess(dataset, run_dir, small_config(64), resume(run_dir, 3)):
            if event is not None:
                progress.update(event)

    notice, last = progress.fail(stopped.value), run_dir / "last.pt"
    assert notice.level == "error"
    assert notice.text == (
        f"Training stopped: {last}: cannot write (File too large); the file is larger than this "
        f"system allows; choose another folder; {last} is intact: resume from it "
        f"(run folder kept: {run_dir})"
    )
    assert last.read_bytes() == before["last.pt"]
    assert not temp_files(run_dir)


def test_the_checkpoint_writer_reports_a_failed_write_without_waiting(tmp_path, monkeypatch):
    """What lets the loop stop within an iteration of the failure: a cheap look each step
    that raises once the background write has failed, and never blocks before."""
    writer = CheckpointWriter()
    model = torch.nn.Linear(4, 2)
    writer.save(tmp_path / "ok.pt", model=model, config=small_config(64), epoch=1, metrics={})
    writer.wait()
    writer.raise_failure()  # nothing pending, nothing failed
    fail_writes(monkeypatch, read_only)
    writer.save(tmp_path / "last.pt", model=model, config=small_config(64), epoch=2, metrics={})
    deadline = time.monotonic() + 30
    with pytest.raises(WriteError, match=r"last\.pt: cannot write \(Read-only file system\)"):
        while time.monotonic() < deadline:
            writer.raise_failure()
            time.sleep(0.01)
    writer.raise_failure()  # reported once
    writer.close()
    assert not (tmp_path / "last.pt").exists() and not temp_files(tmp_path)
