"""``detlab stats``: the known dataset's figures as JSON and as a table, and one-line refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from napari_detlab.cli.main import main
from stats_dataset import write_known_dataset


def test_json_holds_the_known_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_known_dataset(tmp_path / "data")
    assert main(["stats", str(folder), "--json", "--top", "1"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["images"] == {
        "total": 6, "annotated": 2, "model_accepted": 0, "negative": 1, "untouched": 2,
        "unreadable": 1,
    }  # fmt: skip
    assert figures["unreadable"][0]["image"] == str(folder / "img6.png")
    assert [(c["name"], c["boxes"], c["share"]) for c in figures["classes"]] == [
        ("cell", 3, 0.75),
        ("crystal", 1, 0.25),
        ("debris", 0, 0.0),
    ]
    sizes = figures["box_sizes"]
    assert sizes["bins"] == {"small": 2, "medium": 1, "large": 1}
    assert sizes["height"] == {"min": 10.0, "median": 35.0, "max": 100.0}
    assert sum(sizes["histogram"]["counts"]) == 4 and len(sizes["histogram"]["edges"]) == 21
    assert figures["top_images"] == [{"image": str(folder / "img1.png"), "boxes": 3}]


def test_the_table_reads_as_the_dock_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_known_dataset(tmp_path / "data")
    assert main(["stats", str(folder)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"{folder}: 2 annotated, 1 reviewed negative, 2 untouched of 6 images; "
        "1 image with an unreadable file; 4 boxes"
    )
    assert "img6.pt" in lines[1] and lines[1].startswith("  unreadable: ")
    assert lines[2].split() == ["class", "boxes", "share"]
    assert [line.split() for line in lines[3:6]] == [
        ["cell", "3", "75.0%"],
        ["crystal", "1", "25.0%"],
        ["debris", "0", "0.0%"],
    ]
    assert "small 2, medium 1, large 1" in "\n".join(lines)
    assert [line.split() for line in lines[-3:]] == [
        ["image", "boxes"],
        ["img1.png", "3"],
        ["img2.png", "1"],
    ]


@pytest.mark.parametrize("kind", ["missing", "no images", "a file"])
def test_a_bad_folder_is_one_line_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    target = tmp_path / "target"
    if kind == "no images":
        target.mkdir()
        (target / "notes.txt").write_text("no pictures here")
    elif kind == "a file":
        target.write_text("x")
    assert main(["stats", str(target)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("detlab stats: error: ") and str(target) in err[0]
    assert ("no images" if kind == "no images" else "not a folder") in err[0]
