"""YOLO txt: 6-decimal normalised round trips, class lists of every tool, bad lines located."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from formats_helpers import CLASSES, SIZES, Plan, copy_images, given_plans, round_trip, write_plan

from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.formats import convert, export_dataset, import_dataset


@given_plans(25)
def test_store_to_yolo_to_store_is_exact_to_six_decimals(image_set: Path, plan: Plan) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        trip = round_trip("yolo", plan, image_set, Path(tmp))
        assert not trip.imported.problems
        for (_, expected, got), (height, width) in zip(trip.before_and_after(), SIZES, strict=True):
            assert (expected is None) == (got is None)
            if expected is None:
                continue
            assert got[1] == expected[1] and got[2] is True
            side = np.array([width, height, width, height])
            assert (np.abs(got[0] - expected[0]) <= 1e-6 * side).all()
        if trip.imported.images:
            assert [c.name for c in trip.copy.load_classes()] == list(CLASSES)


def test_written_files_follow_the_yolo_layout(image_set: Path, tmp_path: Path) -> None:
    plan = Plan(
        [
            (np.asarray([[0, 0, 15, 10], [3, 4, 9, 8]], np.float32), ["crystal", "cell"]),
            (np.zeros((0, 4), np.float32), []),
            None,
        ]
    )
    store = write_plan(tmp_path / "ds", plan, image_set)
    export_dataset(store.root, "yolo", tmp_path / "labels")
    labels = tmp_path / "labels"
    assert sorted(p.name for p in labels.iterdir()) == ["classes.txt", "img0.txt", "img1.txt"]
    assert (labels / "classes.txt").read_text().splitlines() == list(CLASSES)
    assert (labels / "img0.txt").read_text().splitlines() == [
        "1 0.250000 0.250000 0.500000 0.500000",
        "0 0.200000 0.300000 0.200000 0.200000",
    ]
    assert (labels / "img1.txt").read_text() == ""  # a reviewed negative: an empty file


def test_ultralytics_and_darknet_class_lists_and_quirks(image_set: Path, tmp_path: Path) -> None:
    dataset = copy_images(image_set, tmp_path / "ds")
    source = tmp_path / "export"
    (source / "labels" / "train").mkdir(parents=True)
    (source / "data.yaml").write_text(
        "path: .\ntrain: images/train\nnames:\n  0: nucleus\n  1: mitosis\n"
    )
    (source / "labels" / "train" / "img0.txt").write_text(
        "1 0.5 0.5 1.0 1.0\n"  # the whole image
        "\n"
        "0 0.25 0.25 0.5 0.5 0.93\n"  # a prediction line with a confidence
        "0 0.0 0.0 0.5 0.0 0.5 0.5\n"  # an Ultralytics polygon: its bounding box
    )
    (source / "labels" / "train" / "img1.txt").write_text("")
    report = import_dataset("yolo", source, dataset)

    store = AnnotationStore(dataset)
    img0 = store.load("img0")
    np.testing.assert_allclose(img0.boxes, [[0, 0, 30, 20], [0, 0, 15, 10], [0, 0, 15, 10]])
    assert img0.labels == ["mitosis", "nucleus", "nucleus"]
    assert store.load("img1").reviewed and len(store.load("img1")) == 0
    assert report.images == 2 and not report.problems
    assert [c.name for c in store.load_classes()] == ["nucleus", "mitosis"]


def test_obj_names_is_read_and_lists_are_not_labels(image_set: Path, tmp_path: Path) -> None:
    dataset = copy_images(image_set, tmp_path / "ds")
    source = tmp_path / "cvat"
    (source / "obj_train_data").mkdir(parents=True)
    (source / "obj.names").write_text("alpha\nbeta\n")
    (source / "train.txt").write_text("data/obj_train_data/img2.png\n")
    (source / "obj_train_data" / "img2.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    report = import_dataset("yolo", source, dataset)
    assert AnnotationStore(dataset).load("img2").labels == ["beta"]
    assert report.images == 1 and not report.problems


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("0 0.5 0.5 0.2", "expected 4 numbers"),
        ("x 0.5 0.5 0.2 0.2", "integer class"),
        ("7 0.5 0.5 0.2 0.2", "class 7"),
        ("0 0.5 0.5 0 0.2", "positive"),
        ("0 0.5 nan 0.1 0.2", "positive finite"),
    ],
)
def test_a_bad_line_is_reported_with_file_and_line_number(
    image_set: Path, tmp_path: Path, line: str, message: str
) -> None:
    dataset = copy_images(image_set, tmp_path / "ds")
    source = tmp_path / "labels"
    source.mkdir()
    (source / "classes.txt").write_text("cell\ncrystal\n")
    (source / "img0.txt").write_text(f"0 0.5 0.5 0.2 0.2\n{line}\n")
    (source / "img1.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    report = import_dataset("yolo", source, dataset)

    problem = report.problems[0]
    assert problem.file == str(source / "img0.txt") and problem.location == "line 2"
    assert message in problem.message
    store = AnnotationStore(dataset)
    assert store.load("img0") is None  # not imported with one box missing
    assert store.load("img1").labels == ["crystal"]


def test_labels_without_an_image_or_class_list_are_reported(
    image_set: Path, tmp_path: Path
) -> None:
    dataset = copy_images(image_set, tmp_path / "ds")
    source = tmp_path / "labels"
    source.mkdir()
    (source / "img0.txt").write_text("3 0.5 0.5 0.2 0.2\n")
    (source / "ghost.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    report = import_dataset("yolo", source, dataset)
    messages = [str(p) for p in report.problems]
    assert any("no classes.txt" in m for m in messages)
    assert any("ghost.txt" in m and "no image" in m for m in messages)
    assert AnnotationStore(dataset).load("img0").labels == ["3"]  # named by its number


def test_convert_finds_images_beside_the_labels(image_set: Path, tmp_path: Path) -> None:
    plan = Plan([(np.asarray([[2, 2, 12, 8]], np.float32), ["cell"]), None, None])
    store = write_plan(tmp_path / "project" / "images", plan, image_set)
    export_dataset(store.root, "yolo", tmp_path / "project" / "labels")
    report = convert("yolo", tmp_path / "project" / "labels", "coco", tmp_path / "out.json")
    assert report.images == 1 and not report.problems
    # Without images to read sizes from, YOLO cannot become pixels: reported, not guessed.
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    (lonely / "img0.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    report = convert("yolo", lonely, "coco", tmp_path / "out2.json")
    assert report.images == 0 and "no image" in str(report.problems[-1])
