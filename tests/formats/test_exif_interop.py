"""Phone photos and other tools: boxes go out and come in on the object the photo shows.

CVAT, galleries and OpenCV show a photo with its EXIF orientation applied (here: Pillow's
``exif_transpose``). A box drawn in napari-detlab on what the user sees must be exported onto
the same object there, and labels made there must be imported onto it here, for all eight
orientations.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.images import image_size, read_image
from napari_detlab.formats import export_dataset, import_dataset
from oriented_photos import (
    BRIGHT,
    ORIENTATIONS,
    as_other_tools_show,
    block_box,
    mean_inside,
    write_photo,
)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_a_box_drawn_on_a_photo_is_exported_onto_the_object_other_tools_show(
    tmp_path: Path, orientation: int
) -> None:
    dataset = tmp_path / "photos"
    photo = write_photo(dataset / "photo.jpg", orientation)
    drawn = block_box(read_image(photo), BRIGHT)  # around the object, as the user sees it
    shown = ImageAnnotation([drawn], ["head"], reviewed=True, image_size=image_size(photo))
    AnnotationStore(dataset).save(photo, shown)
    elsewhere = as_other_tools_show(photo)
    height, width = elsewhere.shape[:2]
    where = block_box(elsewhere, BRIGHT)

    export_dataset(dataset, "coco", tmp_path / "coco")
    coco = json.loads((tmp_path / "coco" / "annotations.json").read_text())
    assert (coco["images"][0]["height"], coco["images"][0]["width"]) == (height, width)
    x, y, w, h = coco["annotations"][0]["bbox"]
    assert (x, y, x + w, y + h) == where
    assert mean_inside(elsewhere, (x, y, x + w, y + h)) > BRIGHT - 10

    export_dataset(dataset, "yolo", tmp_path / "yolo")  # normalised by the size shown
    _, cx, cy, bw, bh = (float(v) for v in (tmp_path / "yolo" / "photo.txt").read_text().split())
    box = np.array([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]) * ([width, height] * 2)
    np.testing.assert_allclose(box, where, atol=1e-4)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_labels_from_other_tools_are_imported_onto_the_object(
    tmp_path: Path, orientation: int
) -> None:
    """COCO with the shown size (as CVAT writes it) and YOLO normalised by it: no size
    mismatch, nothing clipped or dropped, the box on the object the user sees."""
    elsewhere = as_other_tools_show(write_photo(tmp_path / "shown.jpg", orientation))
    height, width = elsewhere.shape[:2]
    x1, y1, x2, y2 = where = block_box(elsewhere, BRIGHT)
    coco = tmp_path / "cvat.json"
    coco.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "photo.jpg", "width": width, "height": height}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1)}],
        "categories": [{"id": 1, "name": "head"}],
    }))  # fmt: skip
    yolo = tmp_path / "yolo"
    yolo.mkdir()
    (yolo / "classes.txt").write_text("head\n")
    (yolo / "photo.txt").write_text(
        f"0 {(x1 + x2) / 2 / width:.6f} {(y1 + y2) / 2 / height:.6f} "
        f"{(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}\n"
    )
    for fmt, source, atol in (("coco", coco, 0), ("yolo", yolo, 1e-4)):
        dataset = tmp_path / f"from_{fmt}"
        photo = write_photo(dataset / "photo.jpg", orientation)
        report = import_dataset(fmt, source, dataset)
        assert not report.problems and report.boxes == 1 and report.clipped_boxes == 0, fmt
        loaded = AnnotationStore(dataset).load(photo)
        assert loaded.image_size == (height, width)
        np.testing.assert_allclose(loaded.boxes, [where], atol=atol)
        assert mean_inside(read_image(photo), loaded.boxes[0]) > BRIGHT - 10
