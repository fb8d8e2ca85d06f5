"""``torchrun`` training: two CPU processes with the Gloo backend run the same CLI command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from napari_detlab.core.annotations.sample_data import write_synthetic_dataset
from napari_detlab.core.model.config import preset
from napari_detlab.core.training.distributed import DistributedContext


def test_context_reads_torchrun_variables(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    alone = DistributedContext.from_env()
    assert (alone.enabled, alone.is_main, alone.world_size) == (False, True, 1)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    worker = DistributedContext.from_env()
    assert (worker.enabled, worker.is_main, worker.rank, worker.local_rank) == (True, False, 3, 1)
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    one = DistributedContext.from_env()  # torchrun --nproc_per_node 1: still a DDP job
    assert (one.enabled, one.is_main, one.world_size) == (True, True, 1)
    # Operations of a single process are no-ops, so the loop has one code path.
    tensor = torch.ones(2)
    assert alone.sum_(tensor) is tensor
    assert alone.broadcast_flags([True, False], torch.device("cpu")) == [True, False]


@pytest.mark.slow
def test_torchrun_two_cpu_processes_train_with_gloo(tmp_path):
    dataset = write_synthetic_dataset(tmp_path / "data", 6, size=(64, 64), seed=5, max_objects=3)
    config = preset("fast", ["cell", "crystal"]).replace(
        min_size=64, max_size=64, box_batch_size_per_image=32, rpn_post_nms_top_n_test=40,
        box_detections_per_img=40,
    )  # fmt: skip
    config.to_json(tmp_path / "small.json")
    run_dir = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "napari_detlab.cli.main", "train", str(dataset), "--output", str(run_dir),
        "--config", str(tmp_path / "small.json"), "--batch-size", "1", "--val-fraction", "0.34",
        "--max-iterations", "3", "--num-workers", "0", "--json-events",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=420)
    assert result.returncode == 0, result.stderr[-3000:]

    # Only rank 0 prints: one copy of each event.
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    kinds = [e["type"] for e in events]
    assert kinds.count("RunStarted") == 1 and kinds.count("RunFinished") == 1
    started = events[0]
    assert "x2 processes (gloo DDP)" in started["device"]
    # 4 training images, 1 per step per rank: the DistributedSampler halves each epoch.
    assert started["iterations_per_epoch"] == 2
    assert [e["iteration"] for e in events if e["type"] == "IterationEnded"] == [1, 2, 3]
    epochs = [e for e in events if e["type"] == "EpochEnded"]
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert all("map_50" in e["metrics"] for e in epochs)  # rank 0 evaluated the val split
    assert events[-1]["status"] == "completed"
    # Rank 0 wrote the run's files, once.
    checkpoint = torch.load(run_dir / "last.pt", weights_only=True)
    assert checkpoint["metrics"]["iteration"] == 3 and checkpoint["epoch"] == 2
    assert not any(key.startswith("module.") for key in checkpoint["model"])
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["type"] for line in lines] == kinds
