"""Pascal VOC XML: integer-pixel round trips, labelImg/CVAT quirks, errors with file and line."""

from __future__ import annotations

import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from formats_helpers import Plan, copy_images, given_plans, round_trip, store_contents, write_plan

from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.formats import convert, export_dataset, import_dataset
from napari_detlab.formats.voc import voc_pixels, xyxy_from_voc


@given_plans(20, integer=True)
def test_whole_pixel_boxes_come_back_exactly(image_set: Path, plan: Plan) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        trip = round_trip("voc", plan, image_set, Path(tmp))
        assert not trip.imported.problems and not trip.imported.unmatched
        assert _comparable(store_contents(trip.copy)) == _comparable(store_contents(trip.original))


@given_plans(20)
def test_any_box_comes_back_rounded_to_the_pixel_and_stays_there(
    image_set: Path, plan: Plan
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        trip = round_trip("voc", plan, image_set, Path(tmp))
        assert not trip.imported.problems
        for _, expected, got in trip.before_and_after():
            assert (expected is None) == (got is None)
            if expected is None:
                continue
            assert got[1] == expected[1] and got[2] is True
            # Within half a pixel of what was drawn, on whole pixels, never empty.
            np.testing.assert_allclose(got[0], expected[0], atol=0.5 + 1e-4)
            np.testing.assert_array_equal(got[0], np.round(got[0]))
            assert (got[0][:, 2:] > got[0][:, :2]).all()
        # VOC -> store -> VOC writes the same integers.
        again = export_dataset(trip.copy.root, "voc", Path(tmp) / "xml2")
        assert again.images == trip.exported.images
        for first in sorted(trip.written.glob("*.xml")):
            assert _boxes_in(first) == _boxes_in(Path(tmp) / "xml2" / first.name)


def test_pixel_mapping_is_one_based_and_inclusive() -> None:
    # The first ten pixel columns: store edges 0..10, VOC pixels 1..10.
    pixels = voc_pixels(np.array([[0.0, 0.0, 10.0, 5.0]]), width=30, height=20)
    assert pixels.tolist() == [[1, 1, 10, 5]]
    assert xyxy_from_voc(pixels).tolist() == [[0.0, 0.0, 10.0, 5.0]]
    # Halves round up; a sub-pixel box keeps one pixel; the image border clamps.
    assert voc_pixels(np.array([[2.5, 0.4, 2.6, 20.7]]), 30, 20).tolist() == [[4, 1, 4, 20]]


def test_written_xml_has_what_labelimg_and_mmdetection_expect(
    image_set: Path, tmp_path: Path
) -> None:
    plan = Plan(
        [
            (np.asarray([[0, 0, 10, 5]], np.float32), ["red blood cell"]),
            (np.zeros((0, 4), np.float32), []),
            None,
        ]
    )
    store = write_plan(tmp_path / "ds", plan, image_set)
    report = export_dataset(store.root, "voc", tmp_path / "xml")
    assert sorted(p.name for p in (tmp_path / "xml").iterdir()) == ["img0.xml", "img1.xml"]
    assert report.negatives == 1 and report.left_out_unreviewed == 1
    root = ET.parse(tmp_path / "xml" / "img0.xml").getroot()
    assert root.findtext("filename") == "img0.png"
    assert [root.findtext(f"size/{k}") for k in ("width", "height", "depth")] == ["30", "20", "3"]
    assert root.findtext("object/name") == "red blood cell"
    assert root.findtext("object/difficult") == "0"
    assert [root.findtext(f"object/bndbox/{k}") for k in ("xmin", "ymin", "xmax", "ymax")] == [
        "1", "1", "10", "5",
    ]  # fmt: skip
    negative = ET.parse(tmp_path / "xml" / "img1.xml").getroot()
    assert negative.find("object") is None and negative.findtext("size/width") == "64"


REAL_TOOL_XML = """<?xml version="1.0" encoding="utf-8"?>
<annotation verified="yes">
  <folder>JPEGImages</folder>
  <filename>img0.png</filename>
  <path>C:\\Users\\me\\img0.png</path>
  <source><database>Unknown</database><annotation>CVAT</annotation></source>
  <object>
    <name>cell</name>
    <pose>Unspecified</pose>
    <truncated>1</truncated>
    <occluded>0</occluded>
    <difficult>1</difficult>
    <bndbox><xmin>3.5</xmin><ymin>2.25</ymin><xmax>12.75</xmax><ymax>9.0</ymax></bndbox>
    <attributes><attribute><name>rotation</name><value>0.0</value></attribute></attributes>
  </object>
  <object>
    <name>crystal</name>
    <bndbox><xmin>0</xmin><ymin>1</ymin><xmax>31</xmax><ymax>20</ymax></bndbox>
  </object>
</annotation>
"""


def test_real_tool_files_are_read_tolerantly(image_set: Path, tmp_path: Path) -> None:
    dataset = copy_images(image_set, tmp_path / "ds")
    xml = tmp_path / "xml"
    xml.mkdir()
    # CVAT-like: floats, no <size> (read from the image), extra fields, 0-based xmin.
    (xml / "frame_000.xml").write_text(REAL_TOOL_XML)
    # labelImg-like negative for img1, <size> present but zero (some tools write that).
    (xml / "img1.xml").write_text(
        "<annotation><filename>img1.png</filename><size><width>0</width>"
        "<height>0</height><depth>3</depth></size></annotation>"
    )
    report = import_dataset("voc", xml, dataset)

    store = AnnotationStore(dataset)
    img0 = store.load("img0")
    np.testing.assert_allclose(img0.boxes, [[2.5, 1.25, 12.75, 9.0], [0, 0, 30, 20]])
    assert img0.labels == ["cell", "crystal"] and img0.image_size == (20, 30)
    assert store.load("img1").reviewed and len(store.load("img1")) == 0
    assert report.images == 2 and report.clipped_boxes == 1 and not report.problems
    assert report.skipped == {}
    assert img0.extra["difficult"] == [True, False]


def test_difficult_survives_a_voc_to_voc_convert(image_set: Path, tmp_path: Path) -> None:
    xml = tmp_path / "xml"
    xml.mkdir()
    (xml / "img0.xml").write_text(REAL_TOOL_XML)
    report = convert("voc", xml, "voc", tmp_path / "out", images=image_set)
    assert report.images == 1
    root = ET.parse(tmp_path / "out" / "img0.xml").getroot()
    assert [o.findtext("difficult") for o in root.iter("object")] == ["1", "0"]
    assert root.findtext("size/width") == "30"  # read from the image header


def test_difficult_survives_voc_to_store_to_voc(image_set: Path, tmp_path: Path) -> None:
    xml = tmp_path / "xml"
    xml.mkdir()
    (xml / "img0.xml").write_text(REAL_TOOL_XML)
    dataset = copy_images(image_set, tmp_path / "ds")
    report = import_dataset("voc", xml, dataset)
    assert report.images == 1 and not report.skipped
    export_dataset(dataset, "voc", tmp_path / "out")
    root = ET.parse(tmp_path / "out" / "img0.xml").getroot()
    assert [o.findtext("difficult") for o in root.iter("object")] == ["1", "0"]


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("<annotation>\n<filename>img0.png</filename>\n<object>\n</annotation>", "line 4", "XML"),
        (
            "<annotation>\n<size><width>30</width><height>20</height></size>\n<object>\n"
            "<name>cell</name>\n<bndbox><xmin>a</xmin><ymin>1</ymin><xmax>5</xmax>"
            "<ymax>5</ymax></bndbox>\n</object>\n</annotation>",
            "line 5",
            "bndbox",
        ),
        (
            "<annotation>\n<size><width>30</width><height>20</height></size>\n"
            "<object><bndbox/></object>\n</annotation>",
            "line 3",
            "<name>",
        ),
        ("<notvoc/>", "line 1", "<annotation>"),
    ],
)
def test_bad_files_are_reported_with_file_and_line(
    image_set: Path, tmp_path: Path, text: str, where: str, what: str
) -> None:
    dataset = copy_images(image_set, tmp_path / "ds")
    xml = tmp_path / "xml"
    xml.mkdir()
    (xml / "img0.xml").write_text(text)
    (xml / "img2.xml").write_text("<annotation><filename>img2.png</filename></annotation>")
    report = import_dataset("voc", xml, dataset)
    assert report.images == 1  # the good file is still imported
    problem = report.problems[0]
    assert problem.file == str(xml / "img0.xml")
    assert problem.location.startswith(where) and what in problem.message
    # An image with a box that could not be read is not imported with the box missing.
    assert AnnotationStore(dataset).load("img0") is None
    assert all(p.file == str(xml / "img0.xml") for p in report.problems)


def _comparable(contents: dict) -> dict:
    return {
        name: None if value is None else (value[0].tolist(), value[1], value[2])
        for name, value in contents.items()
    }


def _boxes_in(path: Path) -> list[tuple[str, list[str]]]:
    root = ET.parse(path).getroot()
    return [
        (
            obj.findtext("name"),
            [obj.findtext(f"bndbox/{k}") for k in ("xmin", "ymin", "xmax", "ymax")],
        )
        for obj in root.iter("object")
    ]
