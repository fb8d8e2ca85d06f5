"""The annotation index: the same answers as reading every file, and never a stale one.

Another program (a script, a sync tool, a second napari) may add, delete or rewrite
annotation files at any time, also with the same size within the same clock tick; the
index must notice every change on the next question.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from index_helpers import HEIGHT, WIDTH, count_reads, relabel_in_place, write_dataset
from PIL import Image

from napari_detlab.core.anchors.dataset_boxes import DatasetBoxes
from napari_detlab.core.annotations import file_cache
from napari_detlab.core.annotations import store as store_module
from napari_detlab.core.annotations.annotation import AnnotationError, ImageAnnotation
from napari_detlab.core.annotations.file_cache import index_disabled
from napari_detlab.core.annotations.index import forget_indexes
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.atomic import UnsafeFileError


def _ask(question: Callable[[], object]) -> object:
    """The answer, or the words of the error it raised (a bad file stops some questions)."""
    try:
        return question()
    except AnnotationError as error:
        return ("error", str(error))


def _answers(root: Path) -> dict[str, object]:
    """Everything the docks and training ask of a whole dataset, from a new store."""
    store = AnnotationStore(root)
    errors: list[tuple[str, str]] = []
    annotated = [
        (image.name, ann.boxes.tolist(), ann.labels, ann.reviewed, ann.image_size)
        for image, ann in store.annotated(on_error=lambda i, e: errors.append((i.name, str(e))))
    ]
    return {
        "images": [p.name for p in store.images],
        "annotated": annotated,
        "errors": errors,
        "classes": store.class_names(),
        "counts": _ask(store.class_counts),
        "next": [store.next_unannotated(after) for after in (-1, 3, 11)],
        "trainable": _ask(store.trainable_stems),
        "anchor_boxes": _ask(
            lambda: [
                (item.image.name, item.boxes.tolist(), item.image_size)
                for item in DatasetBoxes.load(store).items
            ]
        ),
    }


def _counts(root: Path) -> dict[str, int]:
    return AnnotationStore(root).class_counts()


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """16 images: boxes of three classes, a negative, a file without ``image_size``, a
    file set aside as unreadable, and images never looked at."""
    return write_dataset(tmp_path, 16, 10, negative=4, no_size=7, seed=1)


def test_the_index_gives_the_answers_of_reading_every_file(dataset: Path) -> None:
    bad = dataset / "annotations" / "im12.pt"
    bad.write_bytes(b"not a pickle")
    with index_disabled():
        expected = _answers(dataset)
    forget_indexes()
    assert _answers(dataset) == expected  # cold
    assert _answers(dataset) == expected  # warm: the bad file's error remembered, same words
    assert [name for name, _ in expected["errors"]] == ["im12.png"]
    assert expected["counts"] == ("error", f"{bad}: not a readable .pt file (Weights only load "
                                  "failed)")  # fmt: skip
    bad.unlink()
    with index_disabled():
        expected = _answers(dataset)
    assert _answers(dataset) == expected
    assert len(expected["anchor_boxes"]) == 9 and expected["next"] == [10, 10, 12]
    assert sum(expected["counts"].values()) > 10


def test_a_refused_file_is_reported_as_before_also_when_asked_twice(dataset: Path) -> None:
    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("true",))

    path = dataset / "annotations" / "im3.pt"
    torch.save({"boxes": Payload(), "labels": []}, path)
    store = AnnotationStore(dataset)
    for _ in range(2):
        with pytest.raises(AnnotationError, match="refused") as caught:
            store.load("im3")
        assert str(caught.value).startswith(f"{path}: ")
        assert isinstance(caught.value.__cause__, UnsafeFileError)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the annotation files the store reads from disk."""
    return count_reads(monkeypatch)


def test_only_files_changed_since_the_last_question_are_read_again(
    dataset: Path, reads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_cache, "SETTLE_NS", 0)  # trust every stamp at once
    first = _counts(dataset)
    assert len(reads) == 10
    reads.clear()
    assert _counts(dataset) == first and reads == []
    store = AnnotationStore(dataset)
    store.save("im2.png", ImageAnnotation([[1, 1, 5, 5]], ["rock"], True, (HEIGHT, WIDTH)))
    (dataset / "annotations" / "im5.pt").unlink()
    relabel_in_place(dataset / "annotations" / "im6.pt", "rock")
    reads.clear()
    counts = _counts(dataset)
    assert sorted(reads) == ["im2.pt", "im6.pt"]  # deleted im5 is simply gone
    with index_disabled():
        assert counts == _counts(dataset)


def test_an_external_rewrite_of_the_same_size_in_the_same_tick_is_never_missed(
    dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system that keeps whole seconds and no change time: a same-size rewrite into
    the same inode within the second leaves the stamp as it was. The file had changed just
    before it was read, so the index does not trust that stamp and reads it again."""

    def coarse(status: os.stat_result) -> file_cache.Stamp:
        return (status.st_mtime_ns // 10**9 * 10**9, 0, status.st_ino, status.st_size)

    monkeypatch.setattr(file_cache, "stamp_of", coarse)
    monkeypatch.setattr(store_module, "stamp_of", coarse)
    path = dataset / "annotations" / "im1.pt"
    store = AnnotationStore(dataset)
    store.save("im1.png", ImageAnnotation([[1, 1, 9, 9]], ["cell"], True, (HEIGHT, WIDTH)))
    before = path.stat()
    assert AnnotationStore(dataset).class_counts()["cell"] >= 1
    assert store.load("im1").labels == ["cell"]
    relabel_in_place(path, "dust")  # as long as "cell"
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the same time
    after = path.stat()
    assert (after.st_size, after.st_ino, after.st_mtime_ns) == (
        before.st_size, before.st_ino, before.st_mtime_ns,
    )  # fmt: skip
    assert store.load("im1").labels == ["dust"]
    with index_disabled():
        expected = _counts(dataset)
    assert _counts(dataset) == expected


def test_files_added_removed_and_relabelled_by_another_program_show_at_once(
    dataset: Path,
) -> None:
    first = _answers(dataset)
    annotations = dataset / "annotations"
    torch.save(  # a new file written by a script, straight into place
        {"boxes": torch.tensor([[2.0, 2, 8, 8]]), "labels": ["ghost"], "reviewed": True,
         "image_size": [HEIGHT, WIDTH], "version": 2},
        annotations / "im13.pt",
    )  # fmt: skip
    (annotations / "im0.pt").unlink()
    relabel_in_place(annotations / "im8.pt", "renamed")
    later = _answers(dataset)
    assert later != first
    assert "ghost" in later["classes"] and "renamed" in later["classes"]
    assert "im0" not in later["trainable"] and "im13" in later["trainable"]
    assert _counts(dataset)["ghost"] == 1
    with index_disabled():
        assert _answers(dataset) == later


def test_an_annotation_checked_against_its_image_follows_the_image(
    dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """im7's file records no size: its boxes are held to the image header's, so a smaller
    image put in its place makes the same file an error."""
    monkeypatch.setattr(file_cache, "SETTLE_NS", 0)
    store = AnnotationStore(dataset)
    store.save("im7.png", ImageAnnotation([[30, 20, 50, 35]], ["cell"], True, None))
    assert store.load("im7").image_size == (HEIGHT, WIDTH)
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(dataset / "tmp.png")
    os.replace(dataset / "tmp.png", dataset / "im7.png")
    with pytest.raises(AnnotationError, match=re.escape("outside the 20x20 image")):
        store.load("im7")


def test_an_annotation_handed_out_can_be_edited_without_changing_the_next_answer(
    dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_cache, "SETTLE_NS", 0)
    store = AnnotationStore(dataset)
    first = store.load("im1")
    first.labels[0] = "scribbled"
    first.boxes[0, 0] = -99
    again = store.load("im1")
    assert "scribbled" not in again.labels and again.boxes[0, 0] != -99
