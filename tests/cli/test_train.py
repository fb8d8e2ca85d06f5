"""``detlab train`` from a terminal's point of view: output, files, exit codes, Ctrl+C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from napari_detlab.cli.main import main
from napari_detlab.core.annotations.sample_data import write_synthetic_dataset
from napari_detlab.core.model.builder import build_model
from napari_detlab.core.model.checkpoint import save_checkpoint
from napari_detlab.core.model.config import preset


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A 6-image dataset and a config JSON of the fast preset at 64 px."""
    root = tmp_path_factory.mktemp("train_cli")
    dataset = write_synthetic_dataset(root / "data", 6, size=(64, 64), seed=4, max_objects=3)
    config = preset("fast", ["cell", "crystal"]).replace(
        min_size=64, max_size=64, box_batch_size_per_image=32, rpn_post_nms_top_n_test=40,
        box_detections_per_img=40,
    )  # fmt: skip
    config.to_json(root / "small.json")
    return root, dataset, root / "small.json"


def one_line_error(capsys, code: int) -> str:
    captured = capsys.readouterr()
    assert code == 2, captured
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


def test_train_prints_progress_and_writes_the_run(workspace, tmp_path, capsys):
    _, dataset, config = workspace
    code = main([
        "train", str(dataset), "--output", str(tmp_path / "run"), "--config", str(config),
        "--max-iterations", "2", "--batch-size", "2", "--print-every", "1", "--num-workers", "0",
    ])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, out
    # 3 of these 6 names hash below the default 0.2 (the old shuffle held out 1).
    assert "training on cpu: 3 train / 3 val images, 2 iterations per epoch" in out
    assert err.startswith(
        "detlab train: starting point: from scratch: no pretrained weights for resnet18 on this "
        "machine (detlab weights download resnet18-imagenet)\n"
    )
    assert "epoch 1/20 iter 1/2 loss " in out and "epoch 1/20 iter 2/2 loss " in out
    assert "epoch 1/20 done: train loss" in out and "mAP@.5" in out
    assert out.strip().splitlines()[-1].startswith("completed: stopped after max_iterations=2")
    for name in ("config.json", "options.json", "metrics.jsonl", "last.pt", "best.pt"):
        assert (tmp_path / "run" / name).is_file(), name
    options = json.loads((tmp_path / "run" / "options.json").read_text())
    assert (options["max_iterations"], options["batch_size"]) == (2, 2)


def test_json_events_are_one_object_per_line(workspace, tmp_path, capsys):
    _, dataset, config = workspace
    code = main([
        "train", str(dataset), "--output", str(tmp_path / "run"), "--config", str(config),
        "--max-iterations", "1", "--eval-every", "0", "--json-events", "--stratify-split",
    ])  # fmt: skip
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert code == 0
    assert "detlab train: starting point: from scratch" in err  # stderr: stdout is for programs
    assert json.loads((tmp_path / "run" / "options.json").read_text())["stratify_split"] is True
    events = [json.loads(line) for line in lines]
    assert [e["type"] for e in events] == [
        "RunStarted",
        "IterationEnded",
        "EpochEnded",
        "RunFinished",
    ]
    assert events == [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]


def test_classes_default_to_the_datasets(workspace, tmp_path, capsys):
    """Without --config the preset gets the dataset's class list."""
    _, dataset, _ = workspace
    code = main([
        "train", str(dataset), "--output", str(tmp_path / "run"), "--preset", "fast",
        "--max-iterations", "1", "--eval-every", "0", "--batch-size", "1",
    ])  # fmt: skip
    capsys.readouterr()
    assert code == 0
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["classes"] == ["cell", "crystal"] and saved["min_size"] == 256


def test_missing_folder_is_one_line_exit_2(tmp_path, capsys):
    code = main(["train", str(tmp_path / "nowhere"), "--output", str(tmp_path / "run")])
    assert "nowhere: dataset folder not found" in one_line_error(capsys, code)


def test_dataset_without_annotations_is_one_line_exit_2(tmp_path, capsys):
    dataset = write_synthetic_dataset(tmp_path / "data", 2, size=(32, 32))
    for path in (dataset / "annotations").glob("*.pt"):
        path.unlink()
    code = main(["train", str(dataset), "--output", str(tmp_path / "run")])
    assert "no annotated images" in one_line_error(capsys, code)
    assert not (tmp_path / "run").exists()


def test_resume_with_other_classes_is_one_line_exit_2(workspace, tmp_path, capsys):
    _, dataset, _ = workspace
    config = preset("fast", ["cell"]).replace(min_size=64, max_size=64)
    checkpoint = save_checkpoint(
        tmp_path / "old" / "last.pt", model=build_model(config), config=config, epoch=1, metrics={}
    )
    code = main(
        ["train", str(dataset), "--output", str(tmp_path / "run"), "--resume", str(checkpoint)]
    )
    line = one_line_error(capsys, code)
    assert "['cell']" in line and "['cell', 'crystal']" in line
    assert not (tmp_path / "run").exists()


def test_corrupt_files_are_one_line_exit_2(workspace, tmp_path, capsys):
    _, dataset, config = workspace
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    code = main([
        "train", str(dataset), "--output", str(tmp_path / "run"), "--config", str(config),
        "--resume", str(broken),
    ])  # fmt: skip
    assert "broken.pt" in one_line_error(capsys, code)

    damaged = write_synthetic_dataset(tmp_path / "damaged", 2, size=(32, 32))
    (damaged / "annotations" / "img_0001.pt").write_bytes(b"\x00garbage")
    code = main(
        ["train", str(damaged), "--output", str(tmp_path / "run2"), "--config", str(config)]
    )
    assert "img_0001.pt" in one_line_error(capsys, code)


def test_ctrl_c_stops_cleanly_with_a_valid_checkpoint(workspace, tmp_path):
    _, dataset, config = workspace
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "napari_detlab.cli.main", "train", str(dataset), "--output",
         str(run_dir), "--config", str(config), "--epochs", "50", "--batch-size", "1",
         "--print-every", "1", "--num-workers", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    try:
        for line in process.stdout:
            if " iter 2/" in line:
                process.send_signal(signal.SIGINT)
                break
        out, err = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "cancelled" in out and "Traceback" not in err
    checkpoint = torch.load(run_dir / "last.pt", weights_only=True)
    assert checkpoint["metrics"]["iteration"] >= 2
    last_event = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert last_event["status"] == "cancelled"
