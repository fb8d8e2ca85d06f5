"""``kill -9`` while ``detlab train`` writes a checkpoint, then ``--resume``: nothing stale left.

A real training process is frozen (SIGSTOP) the moment a ``last.pt`` write is seen under way,
checked to be still mid-write (its hidden temp file present), and killed with SIGKILL: the
write is cut off for certain, not by luck of timing. The previous ``last.pt`` is whole, and
resuming from it removes the dead write's temp file once it is older than the threshold
(an hour: a younger one may be another process's write in progress, so it is kept).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import test_train

from failing_writes import temp_files
from napari_detlab.cli.main import main
from napari_detlab.core.atomic import STALE_AFTER_S
from napari_detlab.core.model.checkpoint import load_checkpoint

workspace = test_train.workspace  # a fixture: 6 images, the fast preset at 64 px in a file


def freeze_during_a_checkpoint_write(process: subprocess.Popen, run_dir: Path) -> list[Path]:
    """Stop ``process`` while it writes ``last.pt`` over an earlier one; the temp files then.

    Each epoch is one step and one checkpoint, so writes come every second or two; a write
    that ends between seeing it and stopping the process is let go, and the next one tried.
    """
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if (run_dir / "last.pt").is_file() and temp_files(run_dir):
            process.send_signal(signal.SIGSTOP)
            while not stopped(process.pid):
                time.sleep(0.001)
            writing = temp_files(run_dir)
            if writing:
                return writing
            process.send_signal(signal.SIGCONT)
        time.sleep(0.002)
    process.kill()
    raise AssertionError(f"no checkpoint write seen: {process.communicate()[1][-2000:]}")


def stopped(pid: int) -> bool:
    """Whether every thread of ``pid`` has stopped (state ``T`` in ``/proc``)."""
    threads = Path(f"/proc/{pid}/task").iterdir()
    return all((t / "stat").read_text().rsplit(")", 1)[1].split()[0] == "T" for t in threads)


def test_a_write_cut_off_by_kill_9_is_cleaned_up_by_the_resumed_run(workspace, tmp_path):
    _, dataset, config = workspace  # 6 images: one step per epoch, hence a checkpoint
    run_dir = tmp_path / "run"
    common = ["train", str(dataset), "--output", str(run_dir), "--config", str(config),
              "--batch-size", "6", "--val-fraction", "0", "--eval-every", "0",
              "--num-workers", "0"]  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "napari_detlab.cli.main", *common, "--epochs", "500"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    try:
        cut_off = freeze_during_a_checkpoint_write(process, run_dir)
        process.kill()  # SIGKILL, delivered to the stopped process
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    assert temp_files(run_dir) == cut_off and all(p.name.startswith(".last.pt.") for p in cut_off)
    epoch = load_checkpoint(run_dir / "last.pt")["epoch"]  # the previous last.pt is whole

    # An hour later, the person resumes the run.
    hour_ago = time.time() - STALE_AFTER_S - 60
    for path in cut_off:
        os.utime(path, (hour_ago, hour_ago))
    resumed = [*common, "--epochs", str(epoch + 1), "--resume", str(run_dir / "last.pt")]
    assert main(resumed) == 0
    assert not temp_files(run_dir)
    assert load_checkpoint(run_dir / "last.pt")["epoch"] == epoch + 1
