"""COCO detection JSON: one file for the whole dataset.

Written so that pycocotools, CVAT, makesense, Label Studio and torchvision's references read
it back:

- ``bbox`` is ``[x, y, w, h]`` in float pixels, top-left corner, 0-indexed; the store's
  float32 corners survive the round trip bit for bit (``w = x2 - x1`` and ``x + w`` are exact
  in float64 for float32 inputs).
- ``info`` and ``licenses`` are present (pycocotools' ``loadRes`` raises ``KeyError: 'info'``
  without ``info``); every annotation has a unique ``id`` (from 1), ``area = w * h``,
  ``iscrowd: 0`` and ``segmentation: []``.
- Category ids run from 1 in the dataset's class-list order (torchvision keeps 0 for
  background).
- Reviewed images without boxes are listed in ``images`` with no annotations: that is how
  COCO says "negative". Images never annotated are left out, because COCO cannot tell
  "looked at, nothing there" from "not looked at" and a reader would take them as negatives.

Reading matches images by the base name of ``file_name``, skips ``iscrowd=1`` annotations
(counted in the report), ignores fields it does not know, and reports each annotation it
cannot use with its JSON path and id.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from napari_detlab import __version__
from napari_detlab.core.boxes import xywh_to_xyxy, xyxy_to_xywh
from napari_detlab.formats.base import (
    Format,
    FormatError,
    Problem,
    ReadResult,
    Record,
    SizeLookup,
    report_progress,
    write_file,
)

__all__ = ["COCO", "CocoFormat", "to_coco_dict"]

REQUIRED_LISTS = ("images", "annotations", "categories")


def to_coco_dict(records: Sequence[Record], classes: Sequence[str]) -> dict[str, object]:
    """The COCO dict of ``records``; every record needs its ``image_size``."""
    category_ids = {name: index + 1 for index, name in enumerate(classes)}
    images: list[dict[str, object]] = []
    annotations: list[dict[str, object]] = []
    for image_id, record in enumerate(records, start=1):
        height, width = record.image_size or (0, 0)
        images.append(
            {"id": image_id, "file_name": record.output_name, "width": width, "height": height}
        )
        for xywh, label in zip(xyxy_to_xywh(record.boxes).tolist(), record.labels, strict=True):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category_ids[label],
                    "bbox": xywh,
                    "area": xywh[2] * xywh[3],
                    "iscrowd": 0,
                    "segmentation": [],
                }
            )
    now = datetime.datetime.now(datetime.timezone.utc)
    return {
        "info": {
            "description": "exported by napari-detlab",
            "version": __version__,
            "year": now.year,
            "date_created": now.isoformat(timespec="seconds"),
        },
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": index, "name": name, "supercategory": ""} for name, index in category_ids.items()
        ],
    }


class CocoFormat(Format):
    name = "coco"
    title = "COCO detection JSON"
    target_is_file = True
    default_file_name = "annotations.json"

    def read(
        self,
        source: Path,
        size_of: SizeLookup,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> ReadResult:
        path = self._source_file(source)
        data = _load_json(path)
        file = str(path)
        missing = [key for key in REQUIRED_LISTS if not isinstance(data.get(key), list)]
        if missing:
            raise FormatError(
                f"{file}: not COCO detection JSON: no {' / '.join(repr(k) for k in missing)} list"
            )
        result = ReadResult(classes=[], records=[])
        problem = result.problems.append

        category_names = _read_categories(data, file, problem)
        result.classes = list(dict.fromkeys(category_names.values()))
        images = _read_images(data, file, problem)

        annotations = data["annotations"]
        total = len(annotations)
        boxes: dict[int, list[list[float]]] = {image_id: [] for image_id in images}
        labels: dict[int, list[str]] = {image_id: [] for image_id in images}
        unreadable: dict[int, int] = dict.fromkeys(images, 0)
        for index, annotation in enumerate(annotations):
            report_progress(on_progress, index + 1, total, every=5000)
            where = _annotation_path(index, annotation)
            if not isinstance(annotation, dict):
                problem(Problem(file, where, "not an object"))
                continue
            if annotation.get("iscrowd", 0) in (1, True):
                result.skipped["crowd annotations (iscrowd=1)"] += 1
                continue
            image_id, category_id = annotation.get("image_id"), annotation.get("category_id")
            if image_id not in images:
                problem(Problem(file, where, f"image_id {image_id!r} is not listed in 'images'"))
                continue
            bbox = annotation.get("bbox")
            try:
                if category_id not in category_names:
                    raise ValueError(f"category_id {category_id!r} is not in 'categories'")
                xyxy = _bbox_to_xyxy(bbox)
            except ValueError as error:
                problem(Problem(file, where, str(error)))
                unreadable[image_id] += 1
                continue
            boxes[image_id].append(xyxy)
            labels[image_id].append(category_names[category_id])

        for image_id, (file_name, size) in images.items():
            record = Record(
                stem=PurePosixPath(file_name).stem,
                file_name=file_name,
                boxes=np.asarray(boxes[image_id], dtype=np.float64).reshape(-1, 4),
                labels=labels[image_id],
                image_size=size,
                source=file,
                unreadable=unreadable[image_id],
            )
            result.records.append(record)
        return result

    def write(
        self,
        records: Sequence[Record],
        classes: Sequence[str],
        target: Path,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> tuple[list[Path], list[Problem]]:
        path = self.target_file(target)
        write_file(path, (json.dumps(to_coco_dict(records, classes), indent=2) + "\n").encode())
        report_progress(on_progress, len(records), len(records))
        return [path], []

    def _source_file(self, source: Path) -> Path:
        """The JSON file itself, or the only ``.json`` in a folder."""
        if source.is_file():
            return source
        if source.is_dir():
            candidates = sorted(source.glob("*.json"))
            if len(candidates) == 1:
                return candidates[0]
            raise FormatError(
                f"{source}: expected one COCO .json file in the folder, found {len(candidates)}"
            )
        raise FileNotFoundError(f"{source}: no such file")


def _load_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise FormatError(
            f"{path}: line {error.lineno}, column {error.colno}: not valid JSON ({error.msg})"
        ) from error
    except UnicodeDecodeError as error:
        raise FormatError(f"{path}: not a UTF-8 text file ({error.reason})") from error
    if not isinstance(data, dict):
        raise FormatError(
            f"{path}: expected a COCO object with 'images', got {type(data).__name__}"
        )
    return data


def _entries_by_id(
    data: dict[str, object], key: str, needed: tuple[str, ...], file: str, problem
) -> dict[object, dict[str, object]]:
    """The objects of ``data[key]`` by their ``id``; malformed and repeated ones reported."""
    entries: dict[object, dict[str, object]] = {}
    for index, entry in enumerate(data[key]):
        where = f"{key}[{index}]"
        if not isinstance(entry, dict) or any(field not in entry for field in needed):
            problem(Problem(file, where, f"needs {' and '.join(repr(f) for f in needed)}"))
        elif entry["id"] in entries:
            problem(Problem(file, where, f"id {entry['id']!r} is used twice; kept the first"))
        else:
            entries[entry["id"]] = entry
    return entries


def _read_categories(data: dict[str, object], file: str, problem) -> dict[object, str]:
    categories = _entries_by_id(data, "categories", ("id", "name"), file, problem)
    # Category ids order the class list, as the exporter wrote them from the class list.
    ordered = sorted(categories.items(), key=lambda item: _sort_key(item[0]))
    return {category_id: str(category["name"]) for category_id, category in ordered}


def _read_images(
    data: dict[str, object], file: str, problem
) -> dict[object, tuple[str, tuple[int, int] | None]]:
    images: dict[object, tuple[str, tuple[int, int] | None]] = {}
    for image_id, image in _entries_by_id(
        data, "images", ("id", "file_name"), file, problem
    ).items():
        file_name = PurePosixPath(str(image["file_name"]).replace("\\", "/")).name
        try:
            height, width = int(image.get("height") or 0), int(image.get("width") or 0)
        except (TypeError, ValueError):
            problem(Problem(file, f"images (id {image_id})", "width/height are not numbers"))
            height = width = 0
        images[image_id] = (file_name, (height, width) if height > 0 and width > 0 else None)
    return images


def _bbox_to_xyxy(bbox: object) -> list[float]:
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        raise ValueError(f"bbox {bbox!r}: expected [x, y, width, height]")
    try:
        xywh = np.asarray(bbox, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"bbox {bbox!r}: expected four numbers") from error
    if not np.isfinite(xywh).all():
        raise ValueError(f"bbox {bbox!r}: not finite")
    if xywh[2] <= 0 or xywh[3] <= 0:
        raise ValueError(f"bbox {bbox!r}: width and height must be positive")
    return xywh_to_xyxy(xywh)[0].tolist()


def _annotation_path(index: int, annotation: object) -> str:
    if isinstance(annotation, dict) and "id" in annotation:
        return f"annotations[{index}] (id {annotation['id']})"
    return f"annotations[{index}]"


def _sort_key(value: object) -> tuple[int, object]:
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))


COCO = CocoFormat()
