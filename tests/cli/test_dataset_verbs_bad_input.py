"""Every ``detlab`` verb that reads a dataset meets a real folder's mistakes the same way:
two images with one stem, an image that does not decode, a full disk, nothing annotated."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from failing_writes import disk_full_after, leftovers
from napari_detlab.cli.main import main
from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.model.predict import Prediction, write_prediction

HEIGHT, WIDTH = 128, 160
BOX = [[10.0, 10.0, 60.0, 50.0]]


def _dataset(folder: Path, annotated: tuple[str, ...], unannotated: tuple[str, ...] = ()) -> Path:
    """160x128 images; each of ``annotated`` with one ``cell`` box."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in annotated + unannotated:
        iio.imwrite(folder / name, rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8))
    store = AnnotationStore(folder)
    for name in annotated:
        store.save(name, ImageAnnotation(BOX, ["cell"], True, (HEIGHT, WIDTH)))
    return folder


def _with_shared_stem(folder: Path) -> Path:
    """b.png annotated, and a.jpg / a.png with the one annotation file they would share."""
    _dataset(folder, ("b.png",), ("a.jpg", "a.png"))
    torch.save({"boxes": torch.tensor(BOX), "labels": ["cell"]}, folder / "annotations" / "a.pt")
    return folder


def _error_line(capsys: pytest.CaptureFixture[str], code: int, *, alone: bool = True) -> str:
    """The error line of a verb that exited with 2; ``alone``: it is all stderr holds."""
    captured = capsys.readouterr()
    assert code == 2, captured
    lines = captured.err.strip().splitlines()
    assert "Traceback" not in captured.err and (len(lines) == 1 or not alone), captured.err
    return lines[-1]


# -- two images, one stem: one rule in every verb --------------------------------------------------
@pytest.mark.parametrize("verb", ["anchors", "evaluate", "train"])
def test_verbs_that_need_every_file_refuse_a_shared_stem_naming_both_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], verb: str
) -> None:
    dataset = _with_shared_stem(tmp_path / "ds")
    predictions = tmp_path / "predictions"
    write_prediction(predictions, "b", Prediction(np.array(BOX, np.float32), ["cell"], [0.9]))
    argv = {
        "anchors": ["anchors", str(dataset), "--preset", "fast"],
        "evaluate": ["evaluate", str(predictions), str(dataset)],
        "train": ["train", str(dataset), "--output", str(tmp_path / "run"), "--epochs", "1"],
    }[verb]
    # train may say first which weights it starts from
    line = _error_line(capsys, main(argv), alone=verb != "train")
    assert line.startswith(f"detlab {verb}: error: {dataset / 'annotations' / 'a.pt'}: ")
    assert "images a.jpg and a.png" in line and "rename one of them" in line
    assert not (tmp_path / "run" / "last.pt").exists()


def test_stats_counts_both_images_of_a_shared_stem_as_unreadable_naming_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = _with_shared_stem(tmp_path / "ds")
    assert main(["stats", str(dataset), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["images"] == {
        "total": 3, "annotated": 1, "model_accepted": 0, "negative": 0, "untouched": 0,
        "unreadable": 2,
    }  # fmt: skip
    assert [Path(entry["image"]).name for entry in figures["unreadable"]] == ["a.jpg", "a.png"]
    assert all("images a.jpg and a.png" in entry["reason"] for entry in figures["unreadable"])


def test_export_leaves_out_a_shared_stem_and_writes_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = _with_shared_stem(tmp_path / "ds")
    assert main(["export", str(dataset), "voc", str(tmp_path / "xml"), "-q"]) == 0
    captured = capsys.readouterr()
    (warning,) = captured.err.strip().splitlines()  # the pair is named once
    assert warning.startswith("detlab export: warning: ") and "images a.jpg and a.png" in warning
    assert "wrote 1 image (1 box, 0 negatives)" in captured.out and "1 problem" in captured.out
    assert sorted(p.name for p in (tmp_path / "xml").iterdir()) == ["b.xml"]


# -- what export must not write --------------------------------------------------------------------
def test_export_skips_an_image_that_cannot_be_decoded_and_says_which_and_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = _dataset(tmp_path / "ds", ("a.png", "b.png", "c.png"))
    broken = dataset / "b.png"
    broken.write_bytes(broken.read_bytes()[:200])  # a copy cut short
    assert main(["export", str(dataset), "coco", str(tmp_path / "out.json"), "-q"]) == 0
    captured = capsys.readouterr()
    (warning,) = captured.err.strip().splitlines()
    assert warning.startswith(f"detlab export: warning: {broken}: cannot be read as an image (")
    assert warning.endswith("; left out")
    assert "wrote 2 images (2 boxes, 0 negatives)" in captured.out and "1 problem" in captured.out
    data = json.loads((tmp_path / "out.json").read_text())
    assert [image["file_name"] for image in data["images"]] == ["a.png", "c.png"]


def test_export_names_a_box_outside_an_unsized_files_image_and_does_not_write_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = _dataset(tmp_path / "ds", ("a.png",), ("b.png",))
    bad = dataset / "annotations" / "b.pt"
    torch.save({"boxes": torch.tensor([[500.0, 500, 540, 560]]), "labels": ["cell"]}, bad)
    assert main(["export", str(dataset), "yolo", str(tmp_path / "labels"), "-q"]) == 0
    (warning,) = capsys.readouterr().err.strip().splitlines()
    assert f"{bad}: " in warning and "box 0 [500.0, 500.0, 540.0, 560.0]" in warning
    assert "outside the 160x128 image" in warning
    assert sorted(p.name for p in (tmp_path / "labels").iterdir()) == ["a.txt", "classes.txt"]


@pytest.mark.parametrize("fmt", ["coco", "yolo"])
def test_an_export_of_nothing_annotated_is_one_line_and_exit_2_and_no_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    dataset = _dataset(tmp_path / "ds", (), ("a.png", "b.png"))
    target = tmp_path / ("out.json" if fmt == "coco" else "labels")
    line = _error_line(capsys, main(["export", str(dataset), fmt, str(target), "-q"]))
    assert line == (
        f"detlab export: error: {dataset}: nothing annotated to export; draw boxes (or mark "
        "images reviewed) in the Annotator, or import annotations, first"
    )
    assert not target.exists()


# -- a full disk, a folder that cannot be written --------------------------------------------------
def test_a_full_disk_during_export_is_one_line_naming_the_file_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = _dataset(tmp_path / "ds", tuple(f"img{i}.png" for i in range(10)))
    target = tmp_path / "xml"
    disk_full_after(monkeypatch, 3)
    line = _error_line(capsys, main(["export", str(dataset), "voc", str(target), "-q"]))
    monkeypatch.undo()
    prefix = f"detlab export: error: {target}{'/'}"
    assert line.startswith(prefix) and ".xml: cannot be written (No space left on device)" in line
    named = Path(line.removeprefix("detlab export: error: ").split(": ")[0])
    assert not named.exists()
    written = sorted(target.glob("*.xml"))
    assert len(written) == 3 and leftovers(target) == []
    assert all(ET.parse(path).getroot().findtext("object/name") == "cell" for path in written)


def test_a_full_disk_during_import_is_one_line_naming_the_file_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = _dataset(tmp_path / "ds", (), tuple(f"img{i}.png" for i in range(10)))
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "classes.txt").write_text("cell\n")
    for i in range(10):
        (labels / f"img{i}.txt").write_text("0 0.5 0.5 0.25 0.25\n")
    disk_full_after(monkeypatch, 6)
    line = _error_line(capsys, main(["import", "yolo", str(labels), str(dataset), "-q"]))
    monkeypatch.undo()
    assert line.startswith(f"detlab import: error: {dataset / 'annotations'}/img")
    assert ".pt: cannot be written (No space left on device)" in line
    store = AnnotationStore(dataset)
    written = sorted(store.annotations_dir.glob("*.pt"))
    assert len(written) == 6 and leftovers(dataset) == []
    assert all(len(store.load(path.stem)) == 1 for path in written)


def test_a_dataset_folder_that_cannot_be_written_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Tests run as root, whom ``chmod`` does not stop: a file where ``annotations/`` should
    be makes the folder as unwritable."""
    dataset = _dataset(tmp_path / "ds", (), ("a.png",))
    (dataset / "annotations").write_text("in the way")
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "a.txt").write_text("0 0.5 0.5 0.25 0.25\n")
    line = _error_line(capsys, main(["import", "yolo", str(labels), str(dataset), "-q"]))
    assert line.startswith(f"detlab import: error: {dataset / 'annotations' / 'a.pt'}: cannot be")
    assert (dataset / "annotations").read_text() == "in the way"
