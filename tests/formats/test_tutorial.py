"""The tutorial's JSON targets: exact round trips, its old .pt files, the real heads dataset."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from formats_helpers import (
    HEADS,
    Plan,
    copy_images,
    given_plans,
    round_trip,
    store_contents,
    write_plan,
)

from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.formats import convert, export_dataset, import_dataset
from napari_detlab.formats.tutorial import read_tutorial_target


@given_plans(20)
def test_store_to_tutorial_to_store_is_bit_exact(image_set: Path, plan: Plan) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        trip = round_trip("tutorial", plan, image_set, Path(tmp))
        assert not trip.imported.problems
        for _, expected, got in trip.before_and_after():
            assert (expected is None) == (got is None)
            if expected is not None:
                np.testing.assert_array_equal(got[0], expected[0])
                assert got[1] == expected[1] and got[2] is True


def test_negatives_are_empty_targets(image_set: Path, tmp_path: Path) -> None:
    plan = Plan([(np.asarray([[1, 2, 3, 4]], np.float32), ["cell"]), (np.zeros((0, 4)), []), None])
    store = write_plan(tmp_path / "ds", plan, image_set)
    export_dataset(store.root, "tutorial", tmp_path / "target")
    assert json.loads((tmp_path / "target" / "img0.json").read_text()) == {
        "labels": ["cell"],
        "boxes": [[1.0, 2.0, 3.0, 4.0]],
    }
    assert json.loads((tmp_path / "target" / "img1.json").read_text()) == {
        "labels": [],
        "boxes": [],
    }
    assert not (tmp_path / "target" / "img2.json").exists()


def test_old_pt_targets_and_bad_files(image_set: Path, tmp_path: Path) -> None:
    dataset = copy_images(image_set, tmp_path / "ds")
    target = tmp_path / "target"
    target.mkdir()
    torch.save(  # the tutorial's first version: numpy string labels, float64 arrays
        {
            "labels": np.array(["cell", "crystal"]),
            "boxes": [np.array([1.0, 2, 5, 6]), np.array([0.5, 0, 9, 9])],
        },
        target / "img0.pt",
    )
    (target / "img1.json").write_text('{"labels": ["cell"], "boxes": []}')
    report = import_dataset("tutorial", tmp_path, dataset)  # the parent of target/ works too
    store = AnnotationStore(dataset)
    np.testing.assert_array_equal(store.load("img0").boxes, [[1, 2, 5, 6], [0.5, 0, 9, 9]])
    assert store.load("img0").labels == ["cell", "crystal"]
    assert store.load("img1") is None
    (problem,) = report.problems
    assert problem.file == str(target / "img1.json") and "1 labels" in problem.message


@pytest.mark.skipif(not HEADS.is_dir(), reason="the shared heads dataset is not here")
def test_heads_dataset_survives_tutorial_coco_voc_yolo_and_back(tmp_path: Path) -> None:
    dataset = _link_images(HEADS / "input", tmp_path / "heads")
    report = import_dataset("tutorial", HEADS / "target", dataset)
    assert report.images == 20 and report.boxes == 177 and not report.problems

    store = AnnotationStore(dataset)
    for fmt in ("coco", "voc", "yolo"):
        export_dataset(dataset, fmt, tmp_path / fmt)
    convert("coco", tmp_path / "coco" / "annotations.json", "tutorial", tmp_path / "from_coco")
    for image, annotation in store.annotated():
        boxes, labels = read_tutorial_target(tmp_path / "from_coco" / f"{image.stem}.json")
        np.testing.assert_array_equal(boxes.astype(np.float32), annotation.boxes)
        assert labels == annotation.labels == ["head"] * len(labels)
    # Every format lands on the same boxes, to its own precision.
    for fmt, atol in (("voc", 0.5), ("yolo", 1e-6 * 1200)):
        copy = AnnotationStore(_link_images(dataset, tmp_path / f"back_{fmt}"))
        import_dataset(fmt, tmp_path / fmt, copy.root)
        for name, (boxes, labels, _) in store_contents(store).items():
            got = store_contents(copy)[name]
            np.testing.assert_allclose(got[0], boxes, atol=atol)
            assert got[1] == labels


def _link_images(source: Path, target: Path) -> Path:
    """The images of ``source`` in a new folder: hard links where possible, else copies."""
    target.mkdir()
    for image in AnnotationStore(source).images:
        try:
            os.link(image, target / image.name)
        except OSError:
            shutil.copy2(image, target / image.name)
    return target
