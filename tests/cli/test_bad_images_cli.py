"""A folder with broken files, from a terminal: one line per problem, each file named once.

``detlab train`` refuses before writing anything and names every broken annotated image;
``detlab predict`` skips unreadable images with one warning line each and goes on;
``detlab evaluate`` names every prediction file it cannot read. No tracebacks anywhere.
"""

from __future__ import annotations

import logging

import pytest
import torch

from napari_detlab.cli.main import main
from napari_detlab.core.annotations.sample_data import write_synthetic_dataset
from napari_detlab.core.model.builder import build_model
from napari_detlab.core.model.checkpoint import save_checkpoint
from napari_detlab.core.model.config import preset


@pytest.fixture
def broken_folder(tmp_path):
    """5 annotated JPEGs, two of them broken (one cut short, one empty), and a config."""
    dataset = write_synthetic_dataset(
        tmp_path / "data", 5, size=(64, 64), seed=12, max_objects=2, suffix=".jpg"
    )
    cut = dataset / "img_0001.jpg"
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    (dataset / "img_0003.jpg").write_bytes(b"")
    config = preset("fast", ["cell", "crystal"]).replace(min_size=64, max_size=64)
    config.to_json(tmp_path / "small.json")
    return dataset, tmp_path / "small.json", config


def test_train_names_every_broken_image_in_one_line(broken_folder, tmp_path, capsys):
    dataset, config_file, _ = broken_folder
    run = tmp_path / "run"
    code = main(["train", str(dataset), "--output", str(run), "--config", str(config_file)])
    captured = capsys.readouterr()
    assert code == 2 and "Traceback" not in captured.err
    assert captured.err.strip() == (
        f"detlab train: error: {dataset}: 2 annotated image(s) cannot be read: img_0001.jpg "
        "(the file is cut short), img_0003.jpg (the file is empty); replace each with a "
        "readable copy, or delete it and its annotation file from "
        f"{dataset / 'annotations'}, then train again"
    )
    assert not run.exists()


def test_predict_warns_once_per_unreadable_image_and_goes_on(
    broken_folder, tmp_path, capsys, caplog
):
    dataset, _, config = broken_folder
    torch.manual_seed(0)
    checkpoint = save_checkpoint(
        tmp_path / "model.pt", model=build_model(config, load_weights=False), config=config,
        epoch=1, metrics={},
    )  # fmt: skip
    caplog.set_level(logging.WARNING)
    out = tmp_path / "predictions"
    code = main(["predict", str(checkpoint), str(dataset), "--output", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0 and "wrote 3 prediction file(s)" in captured.out
    assert captured.err.splitlines() == [
        f"detlab predict: warning: skipped {dataset / 'img_0001.jpg'}: cannot be read as an "
        "image (the file is cut short)",
        f"detlab predict: warning: skipped {dataset / 'img_0003.jpg'}: cannot be read as an "
        "image (the file is empty)",
    ]
    assert not caplog.records  # no second line per image from a logger

    # evaluate: two prediction files broken in two ways, both named in one line.
    (out / "img_0000.pt").write_bytes(b"")
    (out / "img_0002.pt").write_bytes((out / "img_0002.pt").read_bytes()[:300])
    code = main(["evaluate", str(out), str(dataset)])
    captured = capsys.readouterr()
    assert code == 2 and "Traceback" not in captured.err
    (line,) = captured.err.strip().splitlines()
    assert line.startswith(
        f"detlab evaluate: error: {out}: 2 prediction file(s) cannot be read: img_0000.pt ("
    )
    assert ", img_0002.pt (" in line and line.endswith("; predict those images again")
    assert str(out / "img_0000.pt") not in line  # named by the folder, then by file name


def test_export_names_a_broken_annotation_file_once(broken_folder, tmp_path, capsys):
    dataset, _, _ = broken_folder
    bad = dataset / "annotations" / "img_0002.pt"
    bad.write_bytes(b"\x00garbage")
    assert main(["export", str(dataset), "yolo", str(tmp_path / "yolo")]) == 0
    # (the folder's broken images are warned about too, each on a line of its own)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    about_bad = [line for line in warnings if str(bad) in line]
    assert len(about_bad) == 1 and about_bad[0].count(str(bad)) == 1
