"""Import and export meet a real folder's mistakes: boxes outside images that files do not size,
images that do not decode, two images with one stem, a full disk, nothing to export."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from failing_writes import disk_full_after, leftovers
from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.formats import (
    ExportReport,
    Failed,
    FormatError,
    Problem,
    TargetWriteError,
    convert,
    drain,
    export_dataset,
    export_steps,
    import_dataset,
)

HEIGHT, WIDTH = 128, 160  # the 160x128 image
GOOD = [[10.0, 10.0, 50.0, 40.0]]
FORMATS = ["coco", "voc", "yolo", "tutorial"]


def _dataset(folder: Path, count: int = 3, names: tuple[str, ...] = ()) -> AnnotationStore:
    """``count`` 160x128 PNGs (``img0.png`` ...), each with one box, plus unannotated ``names``."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"img{i}.png" for i in range(count)] + list(names):
        iio.imwrite(folder / name, rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8))
    store = AnnotationStore(folder)
    for i in range(count):
        store.save(f"img{i}", ImageAnnotation(GOOD, ["cell"], True, (HEIGHT, WIDTH)))
    return store


def _raw(store: AnnotationStore, stem: str, data: dict) -> Path:
    """An annotation file another tool wrote (no ``image_size`` unless given)."""
    path = store.path_for(stem)
    torch.save(data, path)
    return path


def _exported_stems(fmt: str, target: Path) -> list[str]:
    """The images a format's files name."""
    if fmt == "coco":
        data = json.loads((target / "annotations.json").read_text())
        return sorted(Path(image["file_name"]).stem for image in data["images"])
    suffix = {"voc": ".xml", "yolo": ".txt", "tutorial": ".json"}[fmt]
    return sorted(p.stem for p in target.glob(f"*{suffix}") if p.name != "classes.txt")


# -- boxes outside the image --------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_export_never_writes_a_box_outside_its_image(tmp_path: Path, fmt: str) -> None:
    store = _dataset(tmp_path / "ds")
    # The file: no image_size, and COCO's [500, 500, 40, 60] for a 160x128 image.
    outside = {"boxes": torch.tensor([[500.0, 500, 540, 560]]), "labels": ["x"]}
    unsized = _raw(store, "img1", outside)
    # A file that says 200x200 about the same 160x128 image, with a box where 200 px fit.
    missized = _raw(
        store, "img2",
        {"boxes": torch.tensor([[150.0, 10, 190, 40]]), "labels": ["x"], "image_size": [200, 200]},
    )  # fmt: skip
    report = export_dataset(store.root, fmt, tmp_path / "out")
    assert _exported_stems(fmt, tmp_path / "out") == ["img0"] and report.images == 1
    by_file = {problem.file: problem.message for problem in report.problems}
    assert set(by_file) == {str(unsized), str(missized)}
    assert (
        "box 0 [500.0, 500.0, 540.0, 560.0] lies outside the 160x128 image" in by_file[str(unsized)]
    )
    assert "img2.png is 160x128, not 200x200 as the file says" in by_file[str(missized)]
    assert all(message.endswith("left out") for message in by_file.values())


def test_a_box_within_a_pixel_of_the_border_is_clipped_not_refused(tmp_path: Path) -> None:
    store = _dataset(tmp_path / "ds", count=1)
    _raw(store, "img0", {"boxes": torch.tensor([[-0.5, 10, 160.6, 128.9]]), "labels": ["x"]})
    report = export_dataset(store.root, "coco", tmp_path / "out.json")
    assert not report.problems
    data = json.loads((tmp_path / "out.json").read_text())
    assert data["annotations"][0]["bbox"] == [0.0, 10.0, 160.0, 118.0]


# -- images that cannot be decoded ----------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_export_leaves_out_an_annotated_image_that_cannot_be_decoded(
    tmp_path: Path, fmt: str
) -> None:
    store = _dataset(tmp_path / "ds", count=4)
    truncated = store.root / "img1.png"
    truncated.write_bytes(truncated.read_bytes()[:300])  # a copy cut short: the header survives
    garbage = store.root / "img3.png"
    garbage.write_text("not an image at all")
    report = export_dataset(store.root, fmt, tmp_path / "out")
    assert _exported_stems(fmt, tmp_path / "out") == ["img0", "img2"] and report.images == 2
    problems = {problem.file: problem.message for problem in report.problems}
    assert set(problems) == {str(truncated), str(garbage)}
    assert all(
        message.startswith("cannot be read as an image (") and message.endswith("; left out")
        for message in problems.values()
    )


# -- nothing to export ----------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_an_export_of_nothing_annotated_is_refused_and_writes_nothing(
    tmp_path: Path, fmt: str
) -> None:
    store = _dataset(tmp_path / "ds", count=0, names=("a.png", "b.png"))
    target = tmp_path / "out"
    with pytest.raises(FormatError, match="nothing annotated to export; draw boxes"):
        export_dataset(store.root, fmt, target)
    assert not target.exists()
    store.save("a", ImageAnnotation(reviewed=False, image_size=(HEIGHT, WIDTH)))  # no boxes
    with pytest.raises(FormatError, match="nothing annotated to export"):
        export_dataset(store.root, fmt, target)
    assert not target.exists()


def test_an_export_whose_every_image_is_left_out_says_why(tmp_path: Path) -> None:
    store = _dataset(tmp_path / "ds", count=1)
    (store.root / "img0.png").write_text("not an image")
    with pytest.raises(FormatError) as caught:
        export_dataset(store.root, "coco", tmp_path / "out.json")
    message = str(caught.value)
    assert "nothing annotated to export: every annotated image was left out (1 problem;" in message
    assert "img0.png: cannot be read as an image" in message and "\n" not in message
    assert not (tmp_path / "out.json").exists()


# -- two images, one stem ------------------------------------------------------------------------
def test_export_leaves_out_images_that_share_a_stem_once_naming_both(tmp_path: Path) -> None:
    store = _dataset(tmp_path / "ds", count=1, names=("a.jpg", "a.png"))
    shared = _raw(store, "a", {"boxes": torch.tensor(GOOD), "labels": ["cell"]})
    report = export_dataset(store.root, "yolo", tmp_path / "out")
    assert _exported_stems("yolo", tmp_path / "out") == ["img0"]
    (problem,) = report.problems
    assert problem.file == str(shared) and "images a.jpg and a.png" in problem.message
    assert report.left_out_unreviewed == 0 and report.images == 1


@pytest.mark.parametrize("fmt", ["tutorial", "coco"])
def test_import_gives_nothing_to_images_that_share_a_stem(tmp_path: Path, fmt: str) -> None:
    store = _dataset(tmp_path / "ds", count=0, names=("a.jpg", "a.png", "b.png"))
    source = tmp_path / "labels"
    source.mkdir()
    if fmt == "tutorial":
        for stem in "ab":
            (source / f"{stem}.json").write_text(json.dumps({"labels": ["x"], "boxes": GOOD}))
        where = str(source / "a.json")
    else:
        images = [{"id": i, "file_name": name} for i, name in enumerate(("a.png", "b.png"), 1)]
        annotations = [
            {"id": i, "image_id": i, "category_id": 1, "bbox": [10, 10, 40, 30]} for i in (1, 2)
        ]
        categories = [{"id": 1, "name": "x"}]
        (source / "c.json").write_text(json.dumps(
            {"images": images, "annotations": annotations, "categories": categories}
        ))  # fmt: skip
        where = str(source / "c.json")
    report = import_dataset(fmt, source, store.root)
    assert report.images == 1 and store.load("b").labels == ["x"]
    assert not store.path_for("a").exists()
    (problem,) = report.problems
    assert problem.file == where
    assert problem.message.startswith("not imported: images a.jpg and a.png")


# -- a full disk, a folder that cannot be written --------------------------------------------------
def test_a_full_disk_stops_an_export_at_one_named_file_and_keeps_the_others_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _dataset(tmp_path / "ds", count=12)
    target = tmp_path / "xml"
    disk_full_after(monkeypatch, 5)
    with pytest.raises(TargetWriteError) as caught:
        export_dataset(store.root, "voc", target)
    monkeypatch.undo()
    failed = Path(caught.value.filename)
    assert str(caught.value).startswith(f"{failed}: cannot be written (No space left on device)")
    assert failed.parent == target and not failed.exists() and "\n" not in str(caught.value)
    written = sorted(target.glob("*.xml"))
    assert len(written) == 5 and leftovers(target) == []
    for path in written:  # each one whole
        assert ET.parse(path).getroot().find("object/bndbox/xmax").text == "50"


def test_a_full_disk_keeps_the_previous_coco_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _dataset(tmp_path / "ds", count=2)
    target = tmp_path / "out.json"
    export_dataset(store.root, "coco", target)
    before = target.read_bytes()
    store.save("img1", ImageAnnotation(GOOD * 2, ["cell"] * 2, True, (HEIGHT, WIDTH)))
    disk_full_after(monkeypatch, 0)
    with pytest.raises(TargetWriteError, match=f"{target}: cannot be written"):
        export_dataset(store.root, "coco", target)
    monkeypatch.undo()
    assert target.read_bytes() == before and leftovers(tmp_path) == []


def test_a_full_disk_stops_an_import_at_one_named_file_and_keeps_the_others_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _dataset(tmp_path / "ds", count=0, names=tuple(f"p{i}.png" for i in range(10)))
    targets = tmp_path / "target"
    targets.mkdir()
    for i in range(10):
        (targets / f"p{i}.json").write_text(json.dumps({"labels": ["x"], "boxes": GOOD}))
    disk_full_after(monkeypatch, 4)
    with pytest.raises(TargetWriteError) as caught:
        import_dataset("tutorial", targets, store.root)
    monkeypatch.undo()
    failed = Path(caught.value.filename)
    assert failed.parent == store.annotations_dir and failed.suffix == ".pt"
    assert not failed.exists() and "No space left on device" in str(caught.value)
    written = sorted(store.annotations_dir.glob("*.pt"))
    assert len(written) == 4 and leftovers(store.root) == []
    for path in written:  # each one whole, and the store reads it
        assert store.load(path.stem).labels == ["x"]


def test_a_target_under_a_file_is_one_error_naming_it(tmp_path: Path) -> None:
    store = _dataset(tmp_path / "ds", count=1)
    plain = tmp_path / "plain.txt"
    plain.write_text("a file, not a folder")
    for fmt, target in (("voc", plain / "xml"), ("coco", plain / "out.json")):
        with pytest.raises(TargetWriteError, match=f"^{target}: cannot be written"):
            export_dataset(store.root, fmt, target)
    # A dataset whose annotations/ cannot be made: the import names the file it was writing.
    other = _dataset(tmp_path / "other", count=0, names=("a.png",))
    (other.root / "annotations").write_text("in the way")
    targets = tmp_path / "target"
    targets.mkdir()
    (targets / "a.json").write_text(json.dumps({"labels": ["x"], "boxes": GOOD}))
    with pytest.raises(TargetWriteError, match=f"^{other.path_for('a')}: cannot be written"):
        import_dataset("tutorial", targets, other.root)
    assert (other.root / "annotations").read_text() == "in the way"


# -- convert ---------------------------------------------------------------------------------------
def test_convert_fits_boxes_to_their_image_as_import_does(tmp_path: Path) -> None:
    layout = tmp_path / "tutorial"
    (layout / "input").mkdir(parents=True)
    (layout / "target").mkdir()
    iio.imwrite(layout / "input" / "a.png", np.zeros((40, 60, 3), np.uint8))
    boxes = [[10, 10, 20, 20], [-5, 3, 30, 50], [70, 1, 90, 9]]  # inside, past, wholly outside
    (layout / "target" / "a.json").write_text(json.dumps({"labels": ["x"] * 3, "boxes": boxes}))
    report = convert("tutorial", layout / "target", "coco", tmp_path / "a.json")
    data = json.loads((tmp_path / "a.json").read_text())
    assert [a["bbox"] for a in data["annotations"]] == [[10, 10, 10, 10], [0, 3, 30, 37]]
    assert report.clipped_boxes == 1 and report.boxes == 2
    (problem,) = report.problems
    assert "box 2 [70.0, 1.0, 90.0, 9.0] lies wholly outside the 60x40 image a.png" in str(problem)


# -- counts in plain English -----------------------------------------------------------------------
def test_reports_say_one_image_one_box_one_problem() -> None:
    report = ExportReport(
        format="coco", target=Path("out.json"), images=1, boxes=1, negatives=1,
        left_out_unreviewed=1, clipped_boxes=1, skipped=Counter({"crowd annotations": 1}),
        problems=[Problem("a.pt", "", "broken")],
    )  # fmt: skip
    assert report.summary(with_problems=False).splitlines() == [
        "wrote 1 image (1 box, 1 negative) as coco to out.json",
        "left out 1 image never annotated",
        "1 box reaching outside the image clipped to its border",
        "skipped crowd annotations: 1",
        "1 problem",
    ]
    many = ExportReport(format="coco", target=Path("o"), images=2, boxes=0, negatives=2)
    assert many.summary().splitlines() == ["wrote 2 images (0 boxes, 2 negatives) as coco to o"]


def test_the_menus_export_of_nothing_fails_with_the_same_line_and_no_file(tmp_path: Path) -> None:
    store = _dataset(tmp_path / "ds", count=0, names=("a.png",))
    _, outcome = drain(export_steps(store, "coco", tmp_path / "out.json"))
    assert isinstance(outcome, Failed) and "nothing annotated to export" in str(outcome)
    assert not (tmp_path / "out.json").exists()
