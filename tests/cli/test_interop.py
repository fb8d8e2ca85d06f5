"""``detlab import / export / convert``: files on disk, a progress bar, one-line errors, exit 2."""

from __future__ import annotations

import io
import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from napari_detlab.cli.interop import TextProgressBar
from napari_detlab.cli.main import main
from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """Three 20x30 PNGs: one with two boxes, one reviewed negative, one never annotated."""
    folder = tmp_path / "ds"
    folder.mkdir()
    for index in range(3):
        iio.imwrite(folder / f"img{index}.png", np.full((20, 30, 3), index, np.uint8))
    store = AnnotationStore(folder)
    store.save(
        "img0",
        ImageAnnotation([[1, 2, 11, 12], [0.5, 0, 30, 20]], ["cell", "crystal"], True, (20, 30)),
    )
    store.save("img1", ImageAnnotation([], [], reviewed=True, image_size=(20, 30)))
    return folder


def _fresh_copy(dataset: Path, target: Path) -> Path:
    target.mkdir()
    for image in AnnotationStore(dataset).images:
        (target / image.name).write_bytes(image.read_bytes())
    return target


@pytest.mark.parametrize("fmt", ["coco", "voc", "yolo", "tutorial"])
def test_export_then_import_gives_the_same_annotations(
    dataset: Path, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / f"out_{fmt}"
    assert main(["export", str(dataset), fmt, str(target)]) == 0
    out = capsys.readouterr().out
    assert "wrote 2 images (2 boxes, 1 negative)" in out and "left out 1" in out

    copy = _fresh_copy(dataset, tmp_path / "copy")
    assert main(["import", fmt, str(target), str(copy), "--quiet"]) == 0
    assert "imported 2 images" in capsys.readouterr().out
    original, imported = AnnotationStore(dataset), AnnotationStore(copy)
    assert imported.load("img0").labels == ["cell", "crystal"]
    np.testing.assert_allclose(imported.load("img0").boxes, original.load("img0").boxes, atol=0.5)
    assert imported.load("img1").reviewed and len(imported.load("img1")) == 0
    assert imported.load("img2") is None


def test_convert_shows_a_progress_bar_and_writes_the_target(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(dataset), "voc", str(tmp_path / "xml"), "-q"]) == 0
    capsys.readouterr()
    code = main(
        [
            "convert",
            "voc",
            str(tmp_path / "xml"),
            "coco",
            str(tmp_path / "c.json"),
            "--images",
            str(dataset),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert "[" in captured.err and "#" in captured.err and "writing 2/2" in captured.err
    data = json.loads((tmp_path / "c.json").read_text())
    assert [image["file_name"] for image in data["images"]] == ["img0.png", "img1.png"]


def test_import_keeps_existing_annotations_unless_overwrite(
    dataset: Path, tmp_path: Path, capsys
) -> None:
    main(["export", str(dataset), "coco", str(tmp_path / "a.json"), "-q"])
    store = AnnotationStore(dataset)
    store.save("img0", ImageAnnotation([[0, 0, 4, 4]], ["mine"], True, (20, 30)))
    assert main(["import", "coco", str(tmp_path / "a.json"), str(dataset), "-q"]) == 0
    assert "kept" in capsys.readouterr().out and store.load("img0").labels == ["mine"]
    assert (
        main(["import", "coco", str(tmp_path / "a.json"), str(dataset), "-q", "--overwrite"]) == 0
    )
    assert store.load("img0").labels == ["cell", "crystal"]


def test_partly_bad_input_imports_the_rest_and_warns_with_file_and_line(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "classes.txt").write_text("cell\n")
    (labels / "img0.txt").write_text("0 0.5 0.5 0.1 0.1\nnot a box\n")
    (labels / "img2.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    copy = _fresh_copy(dataset, tmp_path / "copy")
    assert main(["import", "yolo", str(labels), str(copy), "-q"]) == 0
    err = capsys.readouterr().err
    assert f"{labels / 'img0.txt'}: line 2:" in err
    assert AnnotationStore(copy).load("img2").labels == ["cell"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["import", "coco", "{missing}", "{dataset}"], "no such source"),
        (["import", "klingon", "{json}", "{dataset}"], "unknown format 'klingon'"),
        (["import", "coco", "{json}", "{missing}"], "no such dataset folder"),
        (["import", "coco", "{broken}", "{dataset}"], "line 1, column"),
        (["import", "coco", "{unmatched}", "{dataset}"], "the one annotated image, other.png"),
        (["export", "{missing}", "coco", "{out}"], "no such dataset folder"),
        (["convert", "yolo", "{dataset}", "coco", "{out}"], "nothing converted"),
        (["convert", "coco", "{json}", "coco", "{json}"], "onto itself"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    (tmp_path / "good.json").write_text(
        json.dumps({"images": [], "annotations": [], "categories": []})
    )
    (tmp_path / "broken.json").write_text("{'single': 'quotes'}")
    (tmp_path / "unmatched.json").write_text(
        json.dumps(
            {"images": [{"id": 1, "file_name": "other.png"}], "annotations": [], "categories": []}
        )
    )
    (dataset / "bad.txt").write_text("0 1 2\n")
    names = {
        "missing": tmp_path / "missing",
        "dataset": dataset,
        "json": tmp_path / "good.json",
        "broken": tmp_path / "broken.json",
        "unmatched": tmp_path / "unmatched.json",
        "out": tmp_path / "out.json",
    }
    files_before = sorted(dataset.rglob("*"))
    code = main([arg.format(**names) for arg in argv] + ["-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("detlab ") and "error:" in err[-1] and message in err[-1]
    assert "Traceback" not in "\n".join(err)
    assert sorted(dataset.rglob("*")) == files_before  # nothing written, nothing lost


def test_progress_bar_redraws_on_a_terminal_and_prints_tenths_in_a_log() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    bar = TextProgressBar(terminal, width=10)
    for done in range(0, 101, 25):
        bar(done, 100, "writing")
    assert terminal.getvalue().count("\r") == 5 and terminal.getvalue().endswith("100/100\n")
    assert "[#####.....] writing 50/100" in terminal.getvalue()

    log = io.StringIO()
    bar = TextProgressBar(log, width=10)
    for done in range(1, 1001):
        bar(done, 1000, "reading")
    assert len(log.getvalue().splitlines()) == 11  # 0/10 .. 10/10, not a thousand lines
