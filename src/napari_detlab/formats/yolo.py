"""YOLO txt: one ``<stem>.txt`` per image plus a class list.

Each line is ``class cx cy w h``: a 0-based index into the class list and the box centre and
size divided by the image width and height, printed with 6 decimals (as labelImg, CVAT and
Ultralytics write them). A reviewed image without boxes is an empty file. The round trip is
exact to that precision: a corner comes back within ``1e-6`` of the image's side.

Writing puts ``classes.txt`` beside the label files. Reading takes the class list from
``classes.txt``, ``obj.names`` (CVAT, darknet) or the ``names`` of ``data.yaml`` /
``dataset.yaml`` (Ultralytics), in that order, and accepts lines with a trailing confidence
(predictions) or an Ultralytics polygon (its bounding box is used). Pixel boxes need each
image's size, read from the image header: the image with the label's stem, in the dataset on
import, under the source folder (or ``--images``) on convert. Bad lines are reported with file
and line number and the rest of the file is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from napari_detlab.core.boxes import cxcywh_to_xyxy, xyxy_to_cxcywh
from napari_detlab.formats.base import (
    FilePerImageFormat,
    Problem,
    ReadResult,
    Record,
    SizeLookup,
    write_file,
)

__all__ = ["YOLO", "YoloFormat", "read_class_list"]

CLASS_LIST_NAMES = ("classes.txt", "obj.names", "data.yaml", "dataset.yaml")
# Text files in YOLO folders that are not labels: class lists and darknet's image lists.
NOT_LABELS = {"classes.txt", "train.txt", "val.txt", "valid.txt", "test.txt", "readme.txt"}


def read_class_list(source: Path) -> tuple[list[str], Path | None]:
    """The class names of a YOLO folder and the file they came from (``None``: not found)."""
    folder = source if source.is_dir() else source.parent
    for name in CLASS_LIST_NAMES:
        candidates = [folder / name, *sorted(folder.rglob(name))]
        for path in candidates:
            if path.is_file():
                names = _yaml_names(path) if path.suffix == ".yaml" else _text_names(path)
                if names is not None:
                    return names, path
    return [], None


def _text_names(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip()]


def _yaml_names(path: Path) -> list[str] | None:
    """``names`` of an Ultralytics ``data.yaml`` as a list or ``{index: name}``; else ``None``."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return None
    names = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, list):
        return [str(name) for name in names]
    if isinstance(names, dict) and all(isinstance(key, int) for key in names):
        return [str(names[key]) for key in sorted(names)]
    return None


class YoloFormat(FilePerImageFormat):
    name = "yolo"
    title = "YOLO txt"
    suffix = ".txt"

    def source_files(self, folder: Path) -> list[Path]:
        return [p for p in super().source_files(folder) if p.name.lower() not in NOT_LABELS]

    def start_reading(self, source: Path, result: ReadResult) -> None:
        classes, class_file = read_class_list(source)
        result.classes = classes
        if class_file is None:
            result.problems.append(
                Problem(
                    str(source),
                    "",
                    "no classes.txt, obj.names or data.yaml: classes are named by their number",
                )
            )

    def read_file(self, path: Path, size_of: SizeLookup, result: ReadResult) -> Record | None:
        return _read_file(path, result, size_of)

    def encode(self, record: Record, classes: Sequence[str], folder: Path) -> bytes:
        return _to_lines(record, classes).encode("utf-8")

    def write_extras(self, classes: Sequence[str], target: Path) -> list[Path]:
        names = "".join(f"{name}\n" for name in classes).encode("utf-8")
        return [write_file(target / "classes.txt", names)]


def _to_lines(record: Record, classes: Sequence[str]) -> str:
    index_of = {name: index for index, name in enumerate(classes)}
    height, width = record.image_size or (1, 1)
    normalised = xyxy_to_cxcywh(record.boxes) / np.array([width, height, width, height])
    return "".join(
        f"{index_of[label]} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n"
        for label, (cx, cy, w, h) in zip(record.labels, normalised.tolist(), strict=True)
    )


def _read_file(path: Path, result: ReadResult, size_of: SizeLookup) -> Record | None:
    file = str(path)
    record = Record(stem=path.stem, source=file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        result.problems.append(Problem(file, "", f"cannot be read as text ({error})"))
        return None
    size = size_of(record)
    if size is None:
        result.problems.append(
            Problem(file, "", "no image with this name to read its size: skipped")
        )
        return None
    record.image_size = size
    height, width = size
    boxes: list[np.ndarray] = []
    labels: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            label, cxcywh = _parse_line(line, result.classes)
        except ValueError as error:
            result.problems.append(Problem(file, f"line {number}", f"{error}: {line.strip()!r}"))
            record.unreadable += 1
            continue
        boxes.append(cxcywh_to_xyxy(cxcywh * np.array([width, height, width, height]))[0])
        labels.append(label)
    record.boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    record.labels = labels
    return record


def _parse_line(line: str, classes: list[str]) -> tuple[str, np.ndarray]:
    """Class name and normalised ``cx, cy, w, h`` of one label line."""
    parts = line.split()
    try:
        index = int(parts[0])
        values = np.asarray([float(v) for v in parts[1:]], dtype=np.float64)
    except (ValueError, IndexError) as error:
        raise ValueError("expected 'class cx cy w h' with an integer class") from error
    if len(values) in (4, 5):  # a box, or a box with a confidence
        cxcywh = values[:4]
    elif len(values) >= 6 and len(values) % 2 == 0:  # a polygon: x y pairs
        xs, ys = values[0::2], values[1::2]
        cxcywh = xyxy_to_cxcywh([xs.min(), ys.min(), xs.max(), ys.max()])[0]
    else:
        raise ValueError(f"expected 4 numbers after the class, got {len(values)}")
    if not np.isfinite(cxcywh).all() or cxcywh[2] <= 0 or cxcywh[3] <= 0:
        raise ValueError("width and height must be positive finite numbers")
    if index < 0 or (classes and index >= len(classes)):
        raise ValueError(f"class {index} is not in the class list of {len(classes)} names")
    if not classes:
        return str(index), cxcywh
    return classes[index], cxcywh


YOLO = YoloFormat()
