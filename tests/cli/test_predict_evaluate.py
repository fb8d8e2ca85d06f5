"""``detlab predict`` and ``detlab evaluate`` from a terminal's point of view."""

from __future__ import annotations

import json

import pytest
import torch

from napari_detlab.cli.main import main
from napari_detlab.core.annotations.sample_data import write_synthetic_dataset
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.model.builder import build_model
from napari_detlab.core.model.checkpoint import save_checkpoint
from napari_detlab.core.model.config import preset
from napari_detlab.core.model.predict import Prediction, write_prediction


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    dataset = write_synthetic_dataset(root / "data", 3, size=(64, 80), negatives=1, seed=2)
    torch.manual_seed(0)
    config = preset("fast", ["cell", "crystal"]).replace(
        min_size=64, max_size=96, rpn_post_nms_top_n_test=40, box_detections_per_img=40
    )
    checkpoint = save_checkpoint(
        root / "run" / "best.pt", model=build_model(config, load_weights=False), config=config,
        epoch=1, metrics={},
    )  # fmt: skip
    return root, dataset, checkpoint


def _one_line_error(capsys, code):
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


def test_predict_then_evaluate_as_json(workspace, capsys):
    root, dataset, checkpoint = workspace
    preds = root / "preds"
    code = main(
        ["predict", str(checkpoint), str(dataset), "--output", str(preds), "--device", "cpu"]
    )
    captured = capsys.readouterr()
    assert code == 0 and "wrote 3 prediction file(s)" in captured.out
    assert "predict: 3/3" in captured.err
    assert sorted(p.name for p in preds.glob("*.pt")) == [
        "img_0000.pt",
        "img_0001.pt",
        "img_0002.pt",
    ]

    assert main(["evaluate", str(preds), str(dataset), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"map", "map_50", "map_75", "mar_100", "per_class", "per_class_50"} <= set(metrics)
    assert 0.0 <= metrics["map"] < 0.5 and metrics["images"] == 3  # an untrained model


def test_evaluate_perfect_predictions_reads_one(workspace, tmp_path, capsys):
    _, dataset, _ = workspace
    for image, annotation in AnnotationStore(dataset).annotated():
        scores = [1.0] * len(annotation)
        write_prediction(
            tmp_path, image.stem, Prediction(annotation.boxes, annotation.labels, scores)
        )
    assert main(["evaluate", str(tmp_path), str(dataset), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["map"] == pytest.approx(1.0) and metrics["map_50"] == pytest.approx(1.0)
    assert main(["evaluate", str(tmp_path), str(dataset)]) == 0
    table = capsys.readouterr().out
    assert "mAP @[.50:.95]   1.000" in table and "crystal" in table


def test_bad_input_is_one_line_and_exit_2(workspace, tmp_path, capsys):
    _, dataset, checkpoint = workspace
    out = ["--output", str(tmp_path / "out")]
    line = _one_line_error(capsys, main(["predict", str(checkpoint), str(tmp_path / "nope"), *out]))
    assert "nope" in line
    (tmp_path / "empty").mkdir()
    line = _one_line_error(
        capsys, main(["predict", str(checkpoint), str(tmp_path / "empty"), *out])
    )
    assert "no images" in line
    (tmp_path / "corrupt.pt").write_bytes(checkpoint.read_bytes()[:1000])
    line = _one_line_error(
        capsys, main(["predict", str(tmp_path / "corrupt.pt"), str(dataset), *out])
    )
    assert "corrupt.pt" in line

    class Evil:
        def __reduce__(self):
            return (print, ("code ran",))

    torch.save({"format": "napari-detlab-checkpoint", "x": Evil()}, tmp_path / "evil.pt")
    line = _one_line_error(capsys, main(["predict", str(tmp_path / "evil.pt"), str(dataset), *out]))
    assert "refused" in line and "code ran" not in capsys.readouterr().out
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())

    (tmp_path / "a_file").write_text("")
    args = ["predict", str(checkpoint), str(dataset), "--output", str(tmp_path / "a_file")]
    assert "not a folder" in _one_line_error(capsys, main(args))
    if not torch.cuda.is_available():
        line = _one_line_error(
            capsys, main(["predict", str(checkpoint), str(dataset), *out, "--device", "cuda"])
        )
        assert "no CUDA" in line

    preds = tmp_path / "mismatch"
    write_prediction(preds, "img_0000", Prediction([[1, 1, 9, 9]], ["dog"], [0.9]))
    line = _one_line_error(capsys, main(["evaluate", str(preds), str(dataset), "--json"]))
    assert "class mismatch" in line and "'dog'" in line
    line = _one_line_error(capsys, main(["evaluate", str(tmp_path / "none"), str(dataset)]))
    assert "none" in line
