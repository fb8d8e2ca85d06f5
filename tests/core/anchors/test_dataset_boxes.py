"""DatasetBoxes: a store's boxes read once, then kept current one written file at a time."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from napari_detlab.core.anchors.coverage import ImageBoxes
from napari_detlab.core.anchors.dataset_boxes import DatasetBoxes, read_image_boxes
from napari_detlab.core.annotations.annotation import AnnotationError, ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.boxes import BoxRecord
from napari_detlab.core.images import ImageReadError

BOX = [10.0, 20.0, 50.0, 60.0]


def _save(store: AnnotationStore, name: str, boxes: int, *, size: bool = True) -> None:
    annotation = ImageAnnotation(
        np.array([BOX] * boxes, np.float32).reshape(-1, 4), ["cell"] * boxes, reviewed=True,
        image_size=(80, 100) if size else None,
    )  # fmt: skip
    store.save(store.root / name, annotation)


@pytest.fixture
def store(tmp_path) -> AnnotationStore:
    """a: 2 boxes; b: a negative; c: 1 box, no size in its file (90x120 image); d: no file."""
    for name, shape in (("a", (80, 100)), ("b", (80, 100)), ("c", (90, 120)), ("d", (80, 100))):
        iio.imwrite(tmp_path / f"{name}.png", np.zeros((*shape, 3), np.uint8))
    store = AnnotationStore(tmp_path)
    _save(store, "a.png", 2)
    _save(store, "b.png", 0)
    _save(store, "c.png", 1, size=False)
    return store


def _names(dataset: DatasetBoxes) -> list[tuple[str, int]]:
    return [(Path(item.image).stem, len(item.boxes)) for item in dataset.items]


def test_load_reads_images_with_boxes_in_store_order(store):
    dataset = DatasetBoxes.load(store)
    assert _names(dataset) == [("a", 2), ("c", 1)]  # b is a negative, d has no file
    a, c = dataset.items
    assert isinstance(a, BoxRecord) and a.labels == ["cell", "cell"]
    assert a.image == store.root / "a.png" and a.image_size == (80, 100)  # from the file
    assert c.image_size == (90, 120)  # from the image header
    np.testing.assert_array_equal(a.boxes, [BOX, BOX])


def test_update_after_a_file_changes_keeps_its_position(store):
    dataset = DatasetBoxes.load(store)
    _save(store, "a.png", 3)
    dataset.update(store.root / "a.png")
    assert _names(dataset) == [("a", 3), ("c", 1)]
    assert _names(dataset) == _names(DatasetBoxes.load(store))  # as a fresh load says


def test_update_after_a_file_appears_puts_the_image_last(store):
    dataset = DatasetBoxes.load(store)
    _save(store, "d.png", 1)
    dataset.update(store.root / "d.png")
    _save(store, "b.png", 2)  # the negative gets boxes: new to the list, so last too
    dataset.update("b.png")  # a file name names the image as well as a path does
    assert _names(dataset) == [("a", 2), ("c", 1), ("d", 1), ("b", 2)]
    # the documented difference: a fresh load lists the images in the store's order
    assert _names(DatasetBoxes.load(store)) == [("a", 2), ("b", 2), ("c", 1), ("d", 1)]


def test_update_after_a_file_is_emptied_or_deleted_drops_the_image(store):
    dataset = DatasetBoxes.load(store)
    _save(store, "a.png", 0)
    dataset.update(store.root / "a.png")
    assert _names(dataset) == [("c", 1)]
    store.delete("c.png")
    dataset.update(store.root / "c.png")
    assert len(dataset) == 0 and not dataset


def test_update_after_a_file_becomes_unreadable_drops_the_image(store):
    dataset = DatasetBoxes.load(store)
    store.path_for("a.png").write_bytes(b"not a torch file")
    dataset.update(store.root / "a.png")
    assert _names(dataset) == [("c", 1)]
    with pytest.raises(AnnotationError, match=r"a\.pt"):  # a full load names the bad file
        DatasetBoxes.load(store)


def test_update_with_boxes_just_read_does_not_read_again(store, monkeypatch):
    dataset = DatasetBoxes.load(store)
    fresh = read_image_boxes(store, store.root / "a.png")
    monkeypatch.setattr(store, "load", lambda image: pytest.fail(f"{image} read twice"))
    dataset.update(store.root / "a.png", fresh)
    assert dataset.items[0] is fresh


def test_update_makes_a_new_list_for_workers_holding_the_old_one(store):
    dataset = DatasetBoxes.load(store)
    held = dataset.items
    _save(store, "a.png", 0)
    dataset.update(store.root / "a.png")
    assert _names(dataset) == [("c", 1)] and len(held) == 2


def test_read_image_boxes_without_file_store_or_size(store, tmp_path):
    none = read_image_boxes(store, store.root / "d.png")  # no file: no boxes, header's size
    assert len(none.boxes) == 0 and none.image_size == (80, 100)
    assert read_image_boxes(None, store.root / "a.png").image_size == (80, 100)  # no store
    store.path_for("c.png").write_bytes(b"garbage")
    assert len(read_image_boxes(store, store.root / "c.png").boxes) == 0  # unreadable: none
    (tmp_path / "broken.png").write_bytes(b"not an image")
    with pytest.raises(ImageReadError):  # no size anywhere: nothing to place anchors by
        read_image_boxes(store, tmp_path / "broken.png")


def test_image_boxes_from_annotation_prefers_the_files_size(store):
    annotation = ImageAnnotation(np.array([BOX], np.float32), ["x"], image_size=(7, 9))
    boxes = ImageBoxes.from_annotation(store.root / "c.png", annotation)
    assert boxes.image_size == (7, 9) and boxes.labels == ["x"]
    assert ImageBoxes.from_annotation(store.root / "c.png").image_size == (90, 120)
    unlabelled = ImageBoxes(np.array([BOX, BOX]), image="x", image_size=(80.0, 100.0))
    assert unlabelled.labels == ["", ""] and unlabelled.image_size == (80, 100)
    assert unlabelled.boxes.dtype == np.float32
