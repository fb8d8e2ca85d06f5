"""``detlab predict`` and ``detlab evaluate`` from a terminal's point of view."""

from __future__ import annotations

import json

import pytest
import torch

from evaluation_scene import COCO_CELL_AP, PREDICTIONS, write_scene
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


def test_evaluate_reports_each_split_apart_with_ap_table_and_confusion(tmp_path, capsys):
    """On the hand-known scene: the split comes from the checkpoint each prediction names."""
    store, preds = write_scene(tmp_path / "data")
    assert main(["evaluate", str(preds), str(store.root), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["images"] == 3 and {"map", "per_class", "per_class_50"} <= set(data)
    assert list(data["splits"]) == ["validation", "training", "new"]
    assert data["split_sources"] == [str(tmp_path / "data" / "run" / "best.pt")]
    val = data["splits"]["validation"]
    assert val["images"] == 1 and val["counts"] == {"tp": 1, "fp": 2, "missed": 2}
    assert val["confusion"]["counts"] == [[1, 1, 0], [0, 0, 1], [1, 0, 0]]
    assert val["confusion"]["cross_class"] == [
        {"truth": "cell", "predicted": "crystal", "count": 1}
    ]
    aps = {row["class"]: (row["ap"], row["ap50"]) for row in val["per_class"]}
    assert aps == {"cell": pytest.approx((COCO_CELL_AP,) * 2), "crystal": pytest.approx((0.5, 0.5))}
    assert val["pr_curves"]["cell"]["precision"] == [1.0, 0.5]

    plots = tmp_path / "plots"
    assert main(["evaluate", str(preds), str(store.root), "--plots", str(plots)]) == 0
    text = capsys.readouterr().out
    assert "validation (1 image) · training (1 image) · new (1 image)" in text
    assert "== validation (1 image): 1 TP · 2 FP · 2 missed" in text
    assert "truth \\ predicted" in text and "false positive" in text
    assert sorted(p.name for p in plots.iterdir()) == [
        "pr_new.svg", "pr_training.svg", "pr_validation.svg"
    ]  # fmt: skip
    svg = (plots / "pr_validation.svg").read_text()
    assert ">recall</text>" in svg and ">precision</text>" in svg
    assert "cell: AP 0.50, 2 objects" in svg and svg.count("<polyline") == 2


def test_evaluate_by_a_split_given_by_hand_and_bad_thresholds_are_one_line(tmp_path, capsys):
    store, preds = write_scene(tmp_path / "data")
    split = tmp_path / "split.json"
    split.write_text('{"train": ["v1", "t1", "n1"], "val": []}')
    assert main(["evaluate", str(preds), str(store.root), "--json", "--split", str(split)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data["splits"]) == ["training"] and data["splits"]["training"]["images"] == 3
    args = ["evaluate", str(preds), str(store.root)]
    assert "--match-iou must be between 0 and 1" in _one_line_error(
        capsys, main([*args, "--match-iou", "1.5"])
    )
    assert "holds no split" in _one_line_error(
        capsys, main([*args, "--split", str(preds / "v1.pt")])
    )
    # Predictions that name no checkpoint: their split is unknown, and said so.
    write_prediction(tmp_path / "bare", "v1", PREDICTIONS["v1"])
    assert main(["evaluate", str(tmp_path / "bare"), str(store.root), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data["splits"]) == ["unknown"] and data["split_sources"] == []
