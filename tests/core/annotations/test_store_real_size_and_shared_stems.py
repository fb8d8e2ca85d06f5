"""The store's two rules about images themselves: boxes fit the real image when the file does
not record its size, and two images with one stem (``a.jpg``, ``a.png``) get no file."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from napari_detlab.core.annotations.annotation import AnnotationError, ImageAnnotation
from napari_detlab.core.annotations.annotator import Annotator
from napari_detlab.core.annotations.store import AmbiguousImageError, AnnotationStore

HEIGHT, WIDTH = 128, 160  # the 160x128 image


def _images(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        iio.imwrite(folder / name, np.zeros((HEIGHT, WIDTH, 3), np.uint8))
    return folder


def _raw(store: AnnotationStore, stem: str, data: dict) -> Path:
    """An annotation file as another tool writes it: no ``image_size`` unless given."""
    path = store.annotations_dir / f"{stem}.pt"
    path.parent.mkdir(exist_ok=True)
    torch.save(data, path)
    return path


def _files(store: AnnotationStore) -> list[str]:
    folder = store.annotations_dir
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# -- boxes against the real image ------------------------------------------------------------
def test_a_file_without_a_size_is_held_to_the_real_image_and_named_when_a_box_lies_outside(
    tmp_path: Path,
) -> None:
    store = AnnotationStore(_images(tmp_path, "a.png", "b.png"))
    # COCO's bbox [500, 500, 40, 60] of the issue, as corners: far outside 160x128.
    bad = _raw(store, "a", {"boxes": torch.tensor([[500.0, 500, 540, 560]]), "labels": ["x"]})
    with pytest.raises(AnnotationError) as caught:
        store.load("a.png")
    message = str(caught.value)
    assert str(bad) in message and "box 0 [500.0, 500.0, 540.0, 560.0]" in message
    assert "outside the 160x128 image" in message and "read from the image" in message
    # One bad file is reported by a scan that asks for reports; the other image still loads.
    _raw(store, "b", {"boxes": torch.tensor([[-0.5, 2, 160.5, 128.4]]), "labels": ["x"]})
    reported: list[str] = []
    good = list(store.annotated(on_error=lambda image, error: reported.append(str(error))))
    assert reported == [message]
    ((image, annotation),) = good
    assert image.name == "b.png" and annotation.image_size == (HEIGHT, WIDTH)  # from the header
    np.testing.assert_array_equal(annotation.boxes, [[0, 2, 160, 128]])  # within 1 px: clipped


def test_a_file_that_records_its_size_is_judged_by_it_as_before(tmp_path: Path) -> None:
    store = AnnotationStore(_images(tmp_path, "a.png"))
    _raw(
        store, "a",
        {"boxes": torch.tensor([[150.0, 2, 190, 30]]), "labels": ["x"], "image_size": [40, 200]},
    )  # fmt: skip
    assert store.load("a").image_size == (40, 200)  # the file's word, not the header's


def test_saving_without_a_size_checks_the_real_image_and_writes_nothing_bad(
    tmp_path: Path,
) -> None:
    store = AnnotationStore(_images(tmp_path, "a.png"))
    with pytest.raises(AnnotationError, match=r"box 0 .* outside the 160x128 image"):
        store.save("a.png", ImageAnnotation([[100, 100, 200, 120]], ["x"], reviewed=True))
    assert _files(store) == []
    path = store.save("a.png", ImageAnnotation([[100, 100, 160.5, 120]], ["x"], reviewed=True))
    data = torch.load(path, weights_only=True)
    np.testing.assert_array_equal(data["boxes"], [[100, 100, 160, 120]])
    assert "image_size" not in data  # written as given; the size is known, never invented


def test_without_a_readable_image_a_file_without_a_size_loads_unchecked(tmp_path: Path) -> None:
    store = AnnotationStore(tmp_path)
    (tmp_path / "a.png").write_bytes(b"not an image")  # the Annotator reports this image
    _raw(store, "a", {"boxes": torch.tensor([[500.0, 500, 540, 560]]), "labels": ["x"]})
    assert store.load("a").image_size is None


# -- one stem, two images ----------------------------------------------------------------------
def test_the_store_reads_writes_and_deletes_a_shared_stems_file_for_neither_image(
    tmp_path: Path,
) -> None:
    store = AnnotationStore(_images(tmp_path, "a.jpg", "a.png", "b.png"))
    assert store.duplicate_stems() == ["a"]
    assert [p.name for p in store.images_named("a")] == ["a.jpg", "a.png"]
    box = ImageAnnotation([[1, 1, 9, 9]], ["x"], reviewed=True, image_size=(HEIGHT, WIDTH))
    for image in ("a.jpg", "a.png", "a", tmp_path / "a.png"):
        with pytest.raises(AmbiguousImageError) as caught:
            store.save(image, box)
        assert "images a.jpg and a.png" in str(caught.value) and "rename one" in str(caught.value)
    assert store.load("a.png") is None and _files(store) == []  # nothing written, nothing read
    store.save("b.png", box)  # the other images work as usual
    assert store.load("b").labels == ["x"]

    shared = _raw(store, "a", {"boxes": torch.tensor([[1.0, 1, 9, 9]]), "labels": ["x"]})
    for image in ("a.jpg", "a.png"):
        with pytest.raises(AmbiguousImageError, match=str(shared)):
            store.load(image)
    with pytest.raises(AmbiguousImageError):
        store.delete("a.jpg")
    assert shared.is_file()
    with pytest.raises(AmbiguousImageError):  # a scan that cannot skip refuses, as training does
        list(store.annotated())
    reported: list[tuple[str, str]] = []
    kept = list(store.annotated(on_error=lambda image, e: reported.append((image.name, str(e)))))
    assert [image.name for image, _ in kept] == ["b.png"]
    assert len(reported) == 1 and reported[0][0] == "a.jpg"  # once for the pair
    assert "a.jpg and a.png" in reported[0][1]


class _Screen:
    """The Annotator's Drawing, as a dict of boxes per class."""

    def __init__(self) -> None:
        self.boxes: dict[str, np.ndarray] = {}
        self.notices: list[tuple[str, str]] = []

    def boxes_of(self, class_name: str) -> np.ndarray:
        return self.boxes.get(class_name, np.zeros((0, 4)))

    def discard(self, class_name: str, indices: np.ndarray) -> None:
        self.boxes[class_name] = np.delete(self.boxes[class_name], indices, axis=0)


def test_the_annotator_refuses_to_save_a_shared_stem_and_names_both_files(tmp_path: Path) -> None:
    folder = _images(tmp_path, "a.jpg", "a.png", "b.png")
    screen = _Screen()
    annotator = Annotator(screen)
    annotator.notice.connect(lambda level, text: screen.notices.append((level, text)))
    try:
        annotator.open(AnnotationStore(folder))
        assert annotator.current_path.name == "a.jpg"
        screen.boxes = {"object": np.array([[5.0, 5, 20, 20]])}
        assert not annotator.flush()
        errors = [text for level, text in screen.notices if level == "error"]
        assert errors and "a.jpg and a.png" in errors[-1] and "a.jpg" in errors[-1]
        assert not (folder / "annotations" / "a.pt").exists()
        annotator.next_image()  # a.png: the same refusal
        screen.boxes = {"object": np.array([[6.0, 6, 21, 21]])}
        assert not annotator.flush() and not (folder / "annotations" / "a.pt").exists()
        annotator.next_image()  # b.png works normally
        screen.boxes = {"object": np.array([[7.0, 7, 22, 22]])}
        assert annotator.flush()
        assert AnnotationStore(folder).load("b").labels == ["object"]
    finally:
        annotator.close()


def test_the_annotator_leaves_a_shared_file_where_it_is(tmp_path: Path) -> None:
    """A file the pair would share is not broken: never set aside as ``.unreadable``."""
    folder = _images(tmp_path, "a.jpg", "a.png")
    store = AnnotationStore(folder)
    shared = _raw(store, "a", {"boxes": torch.tensor([[1.0, 1, 9, 9]]), "labels": ["x"]})
    before = shared.read_bytes()
    screen = _Screen()
    annotator = Annotator(screen)
    annotator.notice.connect(lambda level, text: screen.notices.append((level, text)))
    try:
        annotator.open(store)
        annotator.next_image()
        annotator.previous_image()
        assert len(annotator.saved) == 0  # shown without boxes
    finally:
        annotator.close()
    assert shared.read_bytes() == before and _files(store) == ["a.pt", "classes.json"]
    errors = [text for level, text in screen.notices if level == "error"]
    assert len(errors) == 3 and all("a.jpg and a.png" in text for text in errors)
