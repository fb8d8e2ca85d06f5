"""``detlab train`` and ``detlab predict`` on a full disk or a read-only folder, from a terminal.

One line on stderr naming the file that could not be written, exit code 2, and the files
written before it byte for byte as they were.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import test_train
import torch

from failing_writes import disk_full, fail_writes, read_only, snapshot, temp_files
from napari_detlab.cli.main import main
from napari_detlab.core.model.builder import build_model
from napari_detlab.core.model.checkpoint import save_checkpoint
from napari_detlab.core.model.config import ModelConfig
from napari_detlab.core.model.predict import load_prediction

workspace = test_train.workspace  # a fixture: 6 images, the fast preset at 64 px in a file


@pytest.fixture(scope="module")
def checkpoint(workspace) -> Path:
    """A checkpoint of the workspace's small config (untrained: predictions are predictions)."""
    root, _, config_file = workspace
    config = ModelConfig.from_json(config_file)
    torch.manual_seed(0)
    model = build_model(config, load_weights=False)
    return save_checkpoint(root / "model.pt", model=model, config=config, epoch=1, metrics={})


def only_error_line(capsys, code: int, verb: str) -> str:
    """The one error line on stderr (what a user sees), checked to be the only one besides
    the run's opening line saying what it starts from."""
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if ": starting point: " not in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"detlab {verb}: error: ")
    return lines[0].removeprefix(f"detlab {verb}: error: ")


def test_train_on_a_full_disk_names_last_pt_and_keeps_the_previous_one(
    workspace, tmp_path, capsys, monkeypatch
):
    _, dataset, config = workspace
    run = tmp_path / "run"
    common = ["train", str(dataset), "--output", str(run), "--config", str(config),
              "--batch-size", "2", "--eval-every", "0", "--num-workers", "0"]  # fmt: skip
    assert main([*common, "--epochs", "1"]) == 0
    before = snapshot(run)
    capsys.readouterr()

    fail_writes(monkeypatch, disk_full, {"last.pt"})
    code = main([*common, "--epochs", "3", "--resume", str(run / "last.pt")])
    line = only_error_line(capsys, code, "train")
    assert line.startswith(f"{run / 'last.pt'}: cannot write (No space left on device)")
    assert line.endswith(f"{run / 'last.pt'} is intact: resume from it")
    assert (run / "last.pt").read_bytes() == before["last.pt"]
    assert not temp_files(run)


@pytest.fixture
def predicted(workspace, checkpoint, tmp_path, capsys) -> tuple[Path, list[str], dict]:
    """A folder of 6 predictions; the command that wrote them; their bytes."""
    out = tmp_path / "predictions"
    command = ["predict", str(checkpoint), str(workspace[1]), "--output", str(out), "--quiet"]
    assert main(command) == 0
    capsys.readouterr()
    before = snapshot(out)
    assert len(before) == 6
    return out, command, before


def test_predict_on_a_disk_that_fills_up_keeps_the_earlier_predictions(
    predicted, capsys, monkeypatch
):
    out, command, before = predicted
    fail_writes(monkeypatch, disk_full, {"img_0002.pt"})  # the disk fills up at the third
    line = only_error_line(capsys, main(command), "predict")
    assert line.startswith(f"{out / 'img_0002.pt'}: cannot write (No space left on device)")
    after = snapshot(out)
    assert set(after) == set(before)
    for name in ("img_0002.pt", "img_0003.pt", "img_0004.pt", "img_0005.pt"):
        assert after[name] == before[name], name  # not reached, or failed: as they were
    for name in ("img_0000.pt", "img_0001.pt"):
        load_prediction(out / name)  # written again before the disk filled up, and whole
    assert not temp_files(out)


def test_predict_into_a_read_only_folder_changes_nothing(predicted, capsys, monkeypatch):
    out, command, before = predicted
    fail_writes(monkeypatch, read_only)
    line = only_error_line(capsys, main(command), "predict")
    assert line == (
        f"{out / 'img_0000.pt'}: cannot write (Read-only file system); the folder is on a "
        "read-only file system; choose another folder"
    )
    assert snapshot(out) == before


def test_an_output_folder_under_a_file_is_one_line(workspace, checkpoint, tmp_path, capsys):
    _, dataset, config = workspace
    (tmp_path / "a_file").write_text("")
    out = tmp_path / "a_file" / "predictions"
    code = main(["predict", str(checkpoint), str(dataset), "--output", str(out), "--quiet"])
    assert only_error_line(capsys, code, "predict").startswith(
        f"{out}: cannot write (Not a directory); part of that path is a file, not a folder"
    )
    run = tmp_path / "a_file" / "run"
    code = main(["train", str(dataset), "--output", str(run), "--config", str(config)])
    assert only_error_line(capsys, code, "train").startswith(
        f"{run}: cannot write (Not a directory)"
    )
