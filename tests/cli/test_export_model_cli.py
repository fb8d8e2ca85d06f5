"""``detlab export-model`` from a terminal: a model file that torch loads alone, or one line."""

from __future__ import annotations

import json

import pytest
import torch

from failing_writes import disk_full, fail_writes, temp_files
from napari_detlab.cli.main import main
from napari_detlab.core.model.checkpoint import load_checkpoint
from tiny_detector import tiny_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("export_cli")
    return tiny_checkpoint(root / "run" / "best.pt", min_size=64, max_size=96, boxes=40)


def _error_line(capsys, code):
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("detlab export-model: error: ")
    return lines[0].removeprefix("detlab export-model: error: ")


def test_export_writes_a_torchscript_model_and_its_sidecar_beside_the_checkpoint(
    checkpoint, capsys
):
    assert main(["export-model", str(checkpoint), "--format", "torchscript"]) == 0
    model_file = checkpoint.with_name("best.torchscript.pt")
    sidecar = checkpoint.with_name("best.torchscript.pt.json")
    assert str(model_file) in capsys.readouterr().out
    assert json.loads(sidecar.read_text())["classes"]["2"] == "crystal"
    with torch.inference_mode():
        _, detections = torch.jit.load(str(model_file))([torch.rand(3, 50, 70)])
    assert set(detections[0]) == {"boxes", "labels", "scores"} and len(detections[0]["boxes"])
    assert not temp_files(checkpoint.parent)


def test_bad_input_is_one_line_with_exit_code_2(checkpoint, tmp_path, capsys):
    not_a_checkpoint = tmp_path / "notes.pt"
    not_a_checkpoint.write_text("not a checkpoint")
    cases = {
        "no such checkpoint file": ["export-model", str(tmp_path / "missing.pt")],
        "not a checkpoint": ["export-model", str(not_a_checkpoint)],
        "unknown export format 'tflite'": ["export-model", str(checkpoint), "--format", "tflite"],
        "is a folder": ["export-model", str(checkpoint), "--output", str(tmp_path)],
        "is the checkpoint itself": ["export-model", str(checkpoint), "-o", str(checkpoint)],
        "cannot write": ["export-model", str(checkpoint), "-o", str(not_a_checkpoint / "m.pt")],
    }
    for expected, argv in cases.items():
        assert expected in _error_line(capsys, main(argv)), argv
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.pt"]
    assert load_checkpoint(checkpoint)["epoch"] == 1  # not overwritten by an export


def test_a_full_disk_leaves_no_model_file(checkpoint, tmp_path, capsys, monkeypatch):
    fail_writes(monkeypatch, disk_full)
    line = _error_line(
        capsys, main(["export-model", str(checkpoint), "-o", str(tmp_path / "m.pt")])
    )
    assert line.startswith(f"{tmp_path / 'm.pt'}: cannot write (No space left on device)")
    assert list(tmp_path.iterdir()) == []


def test_onnx_export_says_where_it_differs(checkpoint, tmp_path, capsys):
    pytest.importorskip("onnx")
    assert (
        main(["export-model", str(checkpoint), "--format", "onnx", "-o", str(tmp_path / "m.onnx")])
        == 0
    )
    assert "note: some image sizes" in capsys.readouterr().err
    assert (tmp_path / "m.onnx").stat().st_size > 1000
    assert json.loads((tmp_path / "m.onnx.json").read_text())["model_format"] == "onnx"
