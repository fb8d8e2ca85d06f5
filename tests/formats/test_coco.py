"""COCO detection JSON: exact float round trip, pycocotools compatibility, tolerant reading."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from formats_helpers import CLASSES, Plan, copy_images, given_plans, round_trip, write_plan
from pycocotools import coco as pycoco
from pycocotools.cocoeval import COCOeval

from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.formats import FormatError, convert, export_dataset, import_dataset


@given_plans(25)
def test_store_to_coco_to_store_is_bit_exact(image_set: Path, plan) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        trip = round_trip("coco", plan, image_set, Path(tmp))
        assert trip.exported.left_out_unreviewed == sum(a is None for a in plan.annotations)
        assert not trip.imported.problems
        for name, expected, got in trip.before_and_after():
            assert (expected is None) == (got is None), name
            if expected is not None:
                np.testing.assert_array_equal(got[0], expected[0])  # bit for bit
                assert got[1] == expected[1] and got[2] is True
        # COCO carries the whole class list, in order, even classes no box uses.
        if trip.imported.images:
            assert [c.name for c in trip.copy.load_classes()] == list(CLASSES)


def test_export_follows_the_coco_conventions(image_set: Path, tmp_path: Path) -> None:
    store = write_plan(tmp_path / "ds", _plan_with_everything(), image_set)
    export_dataset(store.root, "coco", tmp_path / "out")
    data = json.loads((tmp_path / "out" / "annotations.json").read_text())

    assert {"info", "licenses", "images", "annotations", "categories"} <= data.keys()
    assert [c["id"] for c in data["categories"]] == [1, 2, 3]
    assert [c["name"] for c in data["categories"]] == list(CLASSES)
    # img0 has boxes, img1 is a reviewed negative (listed, no annotations), img2 unannotated.
    assert [i["file_name"] for i in data["images"]] == ["img0.png", "img1.png"]
    assert data["images"][0]["width"] == 30 and data["images"][0]["height"] == 20
    ids = [a["id"] for a in data["annotations"]]
    assert len(set(ids)) == len(ids) == 2
    first = data["annotations"][0]
    assert first["bbox"] == pytest.approx([1.5, 2.0, 8.5, 10.0])
    assert first["area"] == pytest.approx(85.0)
    assert first["iscrowd"] == 0 and first["segmentation"] == [] and first["category_id"] == 1
    assert all(a["image_id"] == 1 for a in data["annotations"])


def test_exported_file_loads_and_evaluates_in_pycocotools(image_set: Path, tmp_path: Path) -> None:
    store = write_plan(tmp_path / "ds", _plan_with_everything(), image_set)
    export_dataset(store.root, "coco", tmp_path / "gt.json")
    gt = pycoco.COCO(str(tmp_path / "gt.json"))
    detections = [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "bbox": a["bbox"],
            "score": 0.9,
        }
        for a in gt.dataset["annotations"]
    ]
    evaluation = COCOeval(gt, gt.loadRes(detections), iouType="bbox")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    assert evaluation.stats[0] == pytest.approx(1.0)  # AP@[.5:.95] of the truth against itself


def test_real_tool_output_is_read_tolerantly(image_set: Path, tmp_path: Path) -> None:
    dataset = copy_images(image_set, tmp_path / "ds")
    coco = {  # no info/licenses, paths in file_name, extra fields, a crowd box, bad entries
        "images": [
            {
                "id": 10,
                "file_name": "train/images/img0.png",
                "width": 30,
                "height": 20,
                "flickr_url": "",
            },
            {"id": 11, "file_name": "C:\\data\\img1.png", "width": 64, "height": 48},
            {"id": 12, "file_name": "elsewhere.png", "width": 10, "height": 10},
            {"id": 13, "file_name": "img2.png"},
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 10,
                "category_id": 7,
                "bbox": [1, 2, 3, 4],
                "attributes": {"occluded": False},
            },
            {"id": 2, "image_id": 10, "category_id": 7, "bbox": [0, 0, 30, 20], "iscrowd": 1},
            {"id": 3, "image_id": 11, "category_id": 7, "bbox": [5, 5, -1, 4]},
            {"id": 4, "image_id": 99, "category_id": 7, "bbox": [5, 5, 1, 4]},
            {"id": 5, "image_id": 11, "category_id": 8, "bbox": [5, 5, 1, 4]},
            {"id": 6, "image_id": 11, "category_id": 7, "bbox": [5, 5, 1, 4]},
        ],
        "categories": [{"id": 7, "name": "nucleus", "supercategory": "cell"}],
    }
    (tmp_path / "cvat.json").write_text(json.dumps(coco))
    report = import_dataset("coco", tmp_path / "cvat.json", dataset)

    store = AnnotationStore(dataset)
    img0 = store.load("img0")
    np.testing.assert_array_equal(img0.boxes, [[1, 2, 4, 6]])
    assert img0.labels == ["nucleus"]
    # img1 has unreadable boxes: left unannotated rather than imported with boxes missing.
    assert store.load("img1") is None
    assert store.load("img2").reviewed and len(store.load("img2")) == 0  # listed: a negative
    assert report.skipped == {"crowd annotations (iscrowd=1)": 1}
    assert report.unmatched == ["elsewhere.png"]
    problems = [str(p) for p in report.problems]
    assert any("annotations[2] (id 3)" in p and "positive" in p for p in problems)
    assert any("annotations[3] (id 4)" in p and "image_id 99" in p for p in problems)
    assert any("annotations[4] (id 5)" in p and "category_id 8" in p for p in problems)
    assert any("img1.png" in p and "2 of its boxes" in p for p in problems)
    assert any("img1.png" in p and "2 of its boxes" in p for p in problems)
    assert all(str(tmp_path / "cvat.json") in p for p in problems)


def test_invalid_json_names_file_and_line(image_set: Path, tmp_path: Path) -> None:
    dataset = copy_images(image_set, tmp_path / "ds")
    (tmp_path / "broken.json").write_text('{\n  "images": [\n    {"id": 1,,}\n  ]\n}')
    with pytest.raises(FormatError, match=r"broken\.json: line 3, column"):
        import_dataset("coco", tmp_path / "broken.json", dataset)
    (tmp_path / "other.json").write_text('{"boxes": []}')
    with pytest.raises(
        FormatError, match=r"not COCO detection JSON: no .images. / .annotations. / .categories."
    ):
        import_dataset("coco", tmp_path / "other.json", dataset)


def test_import_keeps_different_existing_annotations_unless_asked(
    image_set: Path, tmp_path: Path
) -> None:
    source = write_plan(tmp_path / "a", _plan_with_everything(), image_set)
    export_dataset(source.root, "coco", tmp_path / "out.json")
    target = AnnotationStore(copy_images(image_set, tmp_path / "b"))
    mine = ImageAnnotation([[0, 0, 5, 5]], ["mine"], reviewed=True, image_size=(20, 30))
    target.save("img0", mine)

    report = import_dataset("coco", tmp_path / "out.json", target.root)
    assert report.kept_existing == ["img0.png"]
    assert target.load("img0").labels == ["mine"]

    report = import_dataset("coco", tmp_path / "out.json", target.root, overwrite=True)
    assert target.load("img0").labels == ["cell", "crystal"]
    assert report.images == 1 and report.unchanged == 1  # img1's negative was already there


def test_convert_coco_to_coco_keeps_every_float(image_set: Path, tmp_path: Path) -> None:
    source = write_plan(tmp_path / "a", _plan_with_everything(), image_set)
    export_dataset(source.root, "coco", tmp_path / "one.json")
    report = convert("coco", tmp_path / "one.json", "coco", tmp_path / "two.json")
    one = json.loads((tmp_path / "one.json").read_text())
    two = json.loads((tmp_path / "two.json").read_text())
    assert report.images == 2 and not report.problems
    assert one["annotations"] == two["annotations"] and one["images"] == two["images"]


def _plan_with_everything() -> Plan:
    return Plan(
        [
            (np.asarray([[1.5, 2, 10, 12], [0, 0, 30, 20]], np.float32), ["cell", "crystal"]),
            (np.zeros((0, 4), np.float32), []),
            None,
        ]
    )
