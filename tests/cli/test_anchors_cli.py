"""``detlab anchors``: the coverage figures as JSON, suggestions, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from napari_detlab.cli.main import main
from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.model.config import ModelConfig, preset

# Under the fast preset a 256x256 image is not resized: the square 64 px anchor of level 2
# (stride 16) centred at (128, 128) is exactly the first box; the 2x190 line fits nothing.
EXACT = [96.0, 96.0, 160.0, 160.0]
LINE = [10.0, 10.0, 12.0, 200.0]


def _dataset(folder: Path, images: int = 3) -> Path:
    folder.mkdir()
    store = AnnotationStore(folder)
    for i in range(images):
        path = folder / f"img{i}.png"
        iio.imwrite(path, np.zeros((256, 256, 3), np.uint8))
        store.save(
            path,
            ImageAnnotation(
                boxes=np.array([EXACT, LINE], np.float32),
                labels=["cell", "debris"],
                reviewed=True,
                image_size=(256, 256),
            ),
        )
    iio.imwrite(folder / "unlabelled.png", np.zeros((256, 256, 3), np.uint8))  # not counted
    return folder


def _run_json(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_json_reports_known_coverage(tmp_path, capsys):
    folder = _dataset(tmp_path / "data")
    report = _run_json(capsys, ["anchors", str(folder), "--preset", "fast", "--json"])
    assert report["boxes"] == 6 and report["images"] == 3
    assert report["recall_07"] == 0.5
    assert report["share_below_03"] == 0.5 and report["share_03_07"] == 0.0
    assert report["per_class"]["cell"]["recall_07"] == 1.0
    assert report["per_class"]["debris"]["recall_07"] == 0.0
    assert report["per_level"][2] >= 3  # the exact boxes' best anchor is on level 2
    assert report["uncaught_total"] == 3
    assert {row["label"] for row in report["uncaught"]} == {"debris"}
    assert all(row["box_index"] == 1 for row in report["uncaught"])
    assert report["uncaught"][0]["image"].endswith(".png")
    for key in ("bpr", "mean_best_iou", "anchors_per_target", "per_size"):
        assert key in report
    assert "suggestion" not in report


def _figures(boxes, recall, below, mean_iou):
    return {"boxes": boxes, "recall_07": recall, "share_03_07": None if recall is None else 0.0,
            "share_below_03": below, "no_positive": 0, "mean_placed_iou": mean_iou}  # fmt: skip


def _uncaught(folder: Path, i: int) -> dict:
    return {"image": str(folder / f"img{i}.png"), "image_index": i, "box_index": 1,
            "label": "debris", "best_iou": 0.0733, "num_positive": 126, "best_level": 0,
            "box": LINE, "reason": "below_bg"}  # fmt: skip


def test_json_is_exactly_what_scripts_read(tmp_path, capsys):
    """Every key, value and the key order, on a dataset with a known answer."""
    folder = _dataset(tmp_path / "data")
    assert main(["anchors", str(folder), "--preset", "fast", "--json"]) == 0
    lines, cells = _figures(3, 0.0, 1.0, 0.07333333045244217), _figures(3, 1.0, 0.0, 1.0)
    expected = {
        "dataset": str(folder), "config": "preset:fast",
        **_figures(6, 0.5, 0.5, 0.5366666316986084),
        "images": 3, "fg_thresh": 0.7, "bg_thresh": 0.3, "mean_positives": 63.5,
        "per_class": {"cell": cells, "debris": lines},
        "per_size": {"small": lines, "medium": cells, "large": _figures(0, None, None, None)},
        "per_level": [3, 0, 3, 0, 0],
        "bpr": 0.5, "anchors_per_target": 4.5, "mean_best_iou": 0.5366666666666666,
        "tiny_boxes": 3, "uncaught_total": 3,
        "uncaught": [_uncaught(folder, i) for i in range(3)],
        "anchor_sizes": [[16.0], [32.0], [64.0], [128.0], [256.0]],
        "aspect_ratios": [[0.5, 1.0, 2.0]] * 5,
    }  # fmt: skip
    assert capsys.readouterr().out == json.dumps(expected, indent=2) + "\n"


def test_text_is_exactly_as_before(tmp_path, capsys):
    folder = _dataset(tmp_path / "data")
    assert main(["anchors", str(folder), "--preset", "fast"]) == 0
    uncaught = "".join(
        f"  {folder / f'img{i}.png'} box 1 (debris): best IoU 0.073, below_bg\n" for i in range(3)
    )
    assert capsys.readouterr().out == (
        "6 boxes in 3 images (preset:fast)\n"
        "recall@0.7: 50.0%   [0.3, 0.7): 0.0%   < 0.3: 50.0%   no positive anchor: 0\n"
        "shape-only: BPR 50.0%, anchors/target 4.50, mean best IoU 0.537\n"
        "  class cell: 3 boxes, recall 100.0%\n"
        "  class debris: 3 boxes, recall 0.0%\n"
        "  small: 3 boxes, recall 0.0%\n"
        "  medium: 3 boxes, recall 100.0%\n"
        "  large: 0 boxes, recall n/a\n"
        "3 uncaught boxes; worst:\n" + uncaught
    )


def test_limit_caps_the_uncaught_list(tmp_path, capsys):
    folder = _dataset(tmp_path / "data")
    report = _run_json(
        capsys, ["anchors", str(folder), "--preset", "fast", "--limit", "1", "--json"]
    )
    assert len(report["uncaught"]) == 1 and report["uncaught_total"] == 3


def test_config_file_and_suggestion_written(tmp_path, capsys):
    folder = _dataset(tmp_path / "data")
    config_path = tmp_path / "config.json"
    preset("fast", ["cell", "debris"]).replace(min_size=128, max_size=256).to_json(config_path)
    out = tmp_path / "suggested.json"
    report = _run_json(
        capsys,
        ["anchors", str(folder), "--config", str(config_path), "--suggest",
         "--save-suggestion", str(out), "--json"],
    )  # fmt: skip
    assert report["config"] == str(config_path)
    suggestion = report["suggestion"]
    assert len(suggestion["anchor_sizes"]) == 5
    assert all(len(level) == 1 for level in suggestion["anchor_sizes"])
    assert all(len(level) == 3 for level in suggestion["aspect_ratios"])
    saved = ModelConfig.from_json(out)
    assert saved.anchor_sizes == suggestion["anchor_sizes"]
    assert saved.min_size == 128  # everything but the anchors is the given config
    assert "after" in suggestion and "before" in suggestion


def test_text_output(tmp_path, capsys):
    folder = _dataset(tmp_path / "data")
    assert main(["anchors", str(folder), "--preset", "fast"]) == 0
    out = capsys.readouterr().out
    assert "6 boxes in 3 images" in out and "recall@0.7: 50.0%" in out


@pytest.mark.parametrize(
    ("argv_tail", "message"),
    [
        (["--config", "missing.json"], "no such config file"),
        (["--save-suggestion", "x.json"], "needs --suggest"),
    ],
)
def test_bad_options_exit_2_with_one_line(tmp_path, capsys, argv_tail, message):
    folder = _dataset(tmp_path / "data")
    assert main(["anchors", str(folder), *argv_tail]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_missing_or_empty_dataset_exits_2(tmp_path, capsys):
    assert main(["anchors", str(tmp_path / "nope"), "--json"]) == 2
    assert "not a folder" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    iio.imwrite(empty / "a.png", np.zeros((20, 20, 3), np.uint8))
    assert main(["anchors", str(empty), "--json"]) == 2
    assert "no annotated boxes" in capsys.readouterr().err


def test_invalid_anchor_config_exits_2(tmp_path, capsys):
    folder = _dataset(tmp_path / "data")
    config_path = tmp_path / "bad.json"
    preset("fast", ["cell"]).replace(anchor_sizes=[[16], [32]]).to_json(config_path)
    assert main(["anchors", str(folder), "--config", str(config_path)]) == 2
    assert "feature map" in capsys.readouterr().err
