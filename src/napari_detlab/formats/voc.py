"""Pascal VOC XML: one ``<stem>.xml`` per image, as labelImg, CVAT and makesense write it.

Coordinates
-----------
VOC counts pixels from 1 and its boxes are inclusive: ``xmin=1, xmax=10`` covers the first
ten pixel columns. The store's boxes are continuous pixel edges from 0 (the first ten columns
are ``x1=0, x2=10``). The mapping used both ways is therefore::

    write:  xmin = round(x1) + 1    ymin = round(y1) + 1    xmax = round(x2)    ymax = round(y2)
    read:   x1 = xmin - 1           y1 = ymin - 1           x2 = xmax           y2 = ymax

with ``round`` halves up, ``xmin`` clamped to ``[1, width]`` and ``xmax`` to
``[xmin, width]`` (a box keeps at least one pixel). A box on whole pixels comes back exactly;
any box comes back within half a pixel, which is VOC's precision; VOC -> store -> VOC gives the
same integers. Real files with float coordinates (CVAT) are read as floats with the same
mapping; ``xmin=0`` (0-based writers) is clipped to the image.

``<size>`` (width, height, depth 3) is always written, because MMDetection otherwise decodes
the image and swaps the axes; when a file lacks it (or says 0) the size is read from the image
header. ``difficult`` is kept per box. A reviewed image without boxes is an XML file with no
``<object>``. Errors name the file and the line.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from xml.parsers import expat

import numpy as np

from napari_detlab.formats.base import (
    FilePerImageFormat,
    Problem,
    ReadResult,
    Record,
    SizeLookup,
    parse_float,
)

__all__ = ["VOC", "VocFormat", "voc_pixels", "xyxy_from_voc"]

_TRUE = {"1", "true", "yes"}


def voc_pixels(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Store xyxy boxes as VOC's 1-based inclusive integer ``xmin, ymin, xmax, ymax``."""
    rounded = np.floor(np.asarray(boxes, dtype=np.float64) + 0.5).astype(np.int64)
    out = np.empty_like(rounded)
    limits = (width, height)
    for axis in (0, 1):
        low = np.clip(rounded[:, axis] + 1, 1, limits[axis])
        out[:, axis] = low
        out[:, axis + 2] = np.clip(rounded[:, axis + 2], low, limits[axis])
    return out


def xyxy_from_voc(pixels: np.ndarray) -> np.ndarray:
    """VOC's ``xmin, ymin, xmax, ymax`` (1-based, inclusive) as store xyxy edges."""
    b = np.asarray(pixels, dtype=np.float64).reshape(-1, 4)
    return np.stack([b[:, 0] - 1, b[:, 1] - 1, b[:, 2], b[:, 3]], axis=1)


class VocFormat(FilePerImageFormat):
    name = "voc"
    title = "Pascal VOC XML"
    suffix = ".xml"

    def read_file(self, path: Path, size_of: SizeLookup, result: ReadResult) -> Record | None:
        return _read_file(path, size_of, result.problems)

    def encode(self, record: Record, classes: Sequence[str], folder: Path) -> bytes:
        return _to_xml(record, folder.name)


def _to_xml(record: Record, folder: str) -> bytes:
    height, width = record.image_size or (0, 0)
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = folder
    ET.SubElement(root, "filename").text = record.output_name
    ET.SubElement(ET.SubElement(root, "source"), "database").text = "Unknown"
    size = ET.SubElement(root, "size")
    ET.SubElement(size, "width").text = str(width)
    ET.SubElement(size, "height").text = str(height)
    ET.SubElement(size, "depth").text = "3"
    ET.SubElement(root, "segmented").text = "0"
    pixels = voc_pixels(record.boxes, width, height).tolist()
    for label, corners, difficult in zip(
        record.labels, pixels, record.difficult_flags(), strict=True
    ):
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = label
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "1" if difficult else "0"
        bndbox = ET.SubElement(obj, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), corners, strict=True):
            ET.SubElement(bndbox, tag).text = str(value)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=False) + b"\n"


def _parse_with_lines(path: Path) -> tuple[ET.Element, dict[ET.Element, int]]:
    """Parse ``path`` keeping each element's line, so errors can point at it."""
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    lines: dict[ET.Element, int] = {}

    def start(tag: str, attributes: dict[str, str]) -> None:
        lines[builder.start(tag, attributes)] = parser.CurrentLineNumber

    parser.StartElementHandler = start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    with open(path, "rb") as handle:
        parser.ParseFile(handle)
    return builder.close(), lines


def _read_file(path: Path, size_of: SizeLookup, problems: list[Problem]) -> Record | None:
    file = str(path)
    try:
        root, lines = _parse_with_lines(path)
    except expat.ExpatError as error:
        problems.append(
            Problem(
                file,
                f"line {error.lineno}, column {error.offset + 1}",
                "not valid XML: " + expat.ErrorString(error.code),
            )
        )
        return None
    except OSError as error:
        problems.append(Problem(file, "", f"cannot be read ({error.strerror})"))
        return None

    def line(element: ET.Element) -> str:
        return f"line {lines.get(element, '?')}"

    if root.tag != "annotation":
        problems.append(Problem(file, line(root), f"root is <{root.tag}>, not <annotation>"))
        return None
    file_name = (root.findtext("filename") or "").strip() or None
    record = Record(stem=path.stem, file_name=file_name, source=file)
    record.image_size = _declared_size(root) or size_of(record)
    if record.image_size is None:
        problems.append(
            Problem(file, line(root), "no <size> and no image found to read it from: skipped")
        )
        return None

    boxes: list[list[float]] = []
    labels: list[str] = []
    difficult: list[bool] = []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        bndbox = obj.find("bndbox")
        if not name or bndbox is None:
            problems.append(Problem(file, line(obj), "<object> needs a <name> and a <bndbox>"))
            record.unreadable += 1
            continue
        try:
            pixels = [
                parse_float(_child_text(bndbox, tag)) for tag in ("xmin", "ymin", "xmax", "ymax")
            ]
        except ValueError as error:
            problems.append(Problem(file, line(bndbox), f"bad <bndbox>: {error}"))
            record.unreadable += 1
            continue
        xyxy = xyxy_from_voc(np.asarray(pixels))[0]
        if xyxy[2] <= xyxy[0] or xyxy[3] <= xyxy[1]:
            problems.append(Problem(file, line(bndbox), f"empty box {pixels}"))
            record.unreadable += 1
            continue
        boxes.append(xyxy.tolist())
        labels.append(name)
        difficult.append((obj.findtext("difficult") or "0").strip().lower() in _TRUE)
    record.boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    record.labels = labels
    record.difficult = difficult
    return record


def _child_text(parent: ET.Element, tag: str) -> str:
    text = parent.findtext(tag)
    if text is None:
        raise ValueError(f"missing <{tag}>")
    return text


def _declared_size(root: ET.Element) -> tuple[int, int] | None:
    """``(height, width)`` from ``<size>``, or ``None`` when absent, zero or junk."""
    size = root.find("size")
    if size is None:
        return None
    try:
        width = math.floor(parse_float(size.findtext("width")))
        height = math.floor(parse_float(size.findtext("height")))
    except ValueError:
        return None
    return (height, width) if width > 0 and height > 0 else None


VOC = VocFormat()
