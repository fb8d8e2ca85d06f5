"""Exporting a dataset with a stack: each exported plane is a PNG of its own, named by file and
plane, that the labels name; single images are exported as before; import finds the planes."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.formats.dataset_io import export_dataset, import_dataset
from stack_images import HEIGHT, WIDTH, block_of, plane_pixels, write_stack


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """``a.tif`` (3 planes: plane 1 boxed, plane 2 a reviewed negative, plane 0 untouched)
    and ``b.png`` with a box."""
    folder = tmp_path / "data"
    write_stack(folder / "a.tif", 3, dtype=np.uint16)
    iio.imwrite(folder / "b.png", np.zeros((HEIGHT, WIDTH, 3), np.uint8))
    store = AnnotationStore(folder)
    store.save("a.plane-0001", ImageAnnotation([block_of(1)], ["cell"], True))
    store.save("a.plane-0002", ImageAnnotation([], [], True))
    store.save("b", ImageAnnotation([[1, 1, 9, 9]], ["cell"], True))
    return folder


def _exported_planes(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.glob("*.png"))


def test_coco_names_each_plane_png_written_beside_the_json(dataset, tmp_path):
    target = tmp_path / "out" / "coco.json"
    report = export_dataset(dataset, "coco", target)
    assert report.images == 3 and report.boxes == 2
    assert _exported_planes(target.parent) == ["a.plane-0001.png", "a.plane-0002.png"]
    for plane in (1, 2):  # the plane's own pixels, 16 bits as stored
        pixels = iio.imread(target.parent / f"a.plane-{plane:04d}.png")
        np.testing.assert_array_equal(pixels, plane_pixels(plane, np.uint16))
    coco = json.loads(target.read_text())
    names = sorted(image["file_name"] for image in coco["images"])
    assert names == ["a.plane-0001.png", "a.plane-0002.png", "b.png"]
    by_name = {image["file_name"]: image["id"] for image in coco["images"]}
    [box] = [a for a in coco["annotations"] if a["image_id"] == by_name["a.plane-0001.png"]]
    x1, y1, x2, y2 = block_of(1)
    assert box["bbox"] == [x1, y1, x2 - x1, y2 - y1]

    # imported into a copy of the dataset without annotations: the boxes find their planes
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copy(dataset / "a.tif", fresh / "a.tif")
    shutil.copy(dataset / "b.png", fresh / "b.png")
    import_dataset("coco", target, fresh)
    store = AnnotationStore(fresh)
    np.testing.assert_array_equal(store.load("a.plane-0001").boxes, [block_of(1)])
    assert store.load("a.plane-0002").reviewed and store.load("a.plane-0000") is None


@pytest.mark.parametrize("name", ["voc", "yolo"])
def test_voc_and_yolo_write_the_planes_beside_their_label_files(dataset, tmp_path, name):
    target = tmp_path / name
    export_dataset(dataset, name, target)
    assert _exported_planes(target) == ["a.plane-0001.png", "a.plane-0002.png"]
    suffix = ".xml" if name == "voc" else ".txt"
    labels = sorted(p.name for p in target.glob(f"*{suffix}") if p.name != "classes.txt")
    assert labels == [f"a.plane-0001{suffix}", f"a.plane-0002{suffix}", f"b{suffix}"]
    if name == "voc":
        root = ET.parse(target / "a.plane-0001.xml").getroot()
        assert root.findtext("filename") == "a.plane-0001.png"
        assert ET.parse(target / "b.xml").getroot().findtext("filename") == "b.png"
