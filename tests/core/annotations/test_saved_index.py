"""The index written to disk: a new process answers from it, and never with a stale box.

Each test plays two processes with :func:`forget_indexes` (the in-memory index is dropped,
the file ``annotations/.detlab-index.pt`` stays), and another program changes the files in
between: the answers must be those of reading every file.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from index_helpers import HEIGHT, WIDTH, count_reads, relabel_in_place, write_dataset

from napari_detlab.core.annotations import file_cache, saved_index
from napari_detlab.core.annotations import store as store_module
from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.file_cache import index_disabled
from napari_detlab.core.annotations.index import forget_indexes
from napari_detlab.core.annotations.saved_index import INDEX_FILENAME, read_saved_index
from napari_detlab.core.annotations.statistics import dataset_statistics
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.atomic import WriteError
from napari_detlab.formats.dataset_io import export_dataset


def _answers(root: Path) -> dict[str, object]:
    """What the docks ask first after opening a folder, from a new store."""
    store = AnnotationStore(root)
    return {
        "annotated": [
            (image.name, ann.boxes.tolist(), ann.labels, ann.reviewed, ann.image_size)
            for image, ann in store.annotated(on_error=lambda image, error: None)
        ],
        "classes": store.class_names(),
        "counts": store.class_counts(),
        "next": store.next_unannotated(),
        "statistics": dataset_statistics(store).to_dict(),
    }


def _expected(root: Path) -> dict[str, object]:
    with index_disabled():
        return _answers(root)


def _new_process_answers(root: Path) -> dict[str, object]:
    forget_indexes()
    return _answers(root)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the annotation files the store reads from disk."""
    return count_reads(monkeypatch)


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every stamp trusted at once (the files were written well before they are asked
    about), and the index written after any read."""
    monkeypatch.setattr(file_cache, "SETTLE_NS", 0)
    monkeypatch.setattr(saved_index, "SAVE_AFTER_READS", 1)


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """12 images, the first 8 annotated (im3 a reviewed negative), one of them (im6)
    without ``image_size``: its boxes are held to its image's header."""
    write_dataset(tmp_path, 12, 8, negative=3, no_size=6, seed=3)
    forget_indexes()
    return tmp_path


@pytest.mark.usefixtures("settled")
def test_a_new_process_answers_from_the_saved_index_without_reading_the_files(
    dataset: Path, reads: list[str]
) -> None:
    expected = _expected(dataset)
    reads.clear()
    assert _new_process_answers(dataset) == expected  # the first process: reads every file
    assert len(reads) >= 8
    saved = read_saved_index(dataset / "annotations")
    # im6's answer depends on its image's header: it is not kept, and read again each time.
    assert sorted(saved) == [f"im{i}.pt" for i in range(8) if i != 6]
    reads.clear()
    assert _new_process_answers(dataset) == expected
    assert reads == ["im6.pt"]


@pytest.mark.usefixtures("settled")
def test_files_changed_added_and_deleted_between_processes_are_read_again(
    dataset: Path, reads: list[str]
) -> None:
    _new_process_answers(dataset)
    annotations = dataset / "annotations"
    saved_before = (annotations / INDEX_FILENAME).read_bytes()
    relabel_in_place(annotations / "im1.pt", "renamed")  # same inode
    (annotations / "im2.pt").unlink()
    torch.save(
        {"boxes": torch.tensor([[2.0, 2, 8, 8]]), "labels": ["ghost"], "reviewed": True,
         "image_size": [HEIGHT, WIDTH], "version": 2},
        annotations / "im10.pt",
    )  # fmt: skip
    expected = _expected(dataset)
    reads.clear()
    later = _new_process_answers(dataset)
    assert later == expected
    assert "renamed" in later["classes"] and "ghost" in later["counts"]
    assert "im2.png" not in [name for name, *_ in later["annotated"]]
    assert sorted(reads) == ["im1.pt", "im10.pt", "im6.pt"]
    assert (annotations / INDEX_FILENAME).read_bytes() != saved_before  # written again


def test_a_file_rewritten_in_the_same_tick_as_its_reading_is_not_kept(
    dataset: Path, monkeypatch: pytest.MonkeyPatch, reads: list[str]
) -> None:
    """A file system that keeps whole seconds and no change time, and another program
    rewriting a file with the same size into the same inode within that second: the stamp
    stays as it was. A file that had changed less than SETTLE_NS before it was read is
    never written into the index, so the next process reads it again and sees the rewrite."""
    monkeypatch.setattr(saved_index, "SAVE_AFTER_READS", 1)

    def coarse(status: os.stat_result) -> file_cache.Stamp:
        return (status.st_mtime_ns // 10**9 * 10**9, 0, status.st_ino, status.st_size)

    monkeypatch.setattr(file_cache, "stamp_of", coarse)
    monkeypatch.setattr(store_module, "stamp_of", coarse)
    for other in (dataset / "annotations").glob("im*.pt"):  # written long ago
        os.utime(other, ns=(other.stat().st_atime_ns, other.stat().st_mtime_ns - 10**10))
    path = dataset / "annotations" / "im1.pt"
    AnnotationStore(dataset).save(
        "im1.png", ImageAnnotation([[1, 1, 9, 9]], ["cell"], True, (HEIGHT, WIDTH))
    )
    before = path.stat()
    assert "cell" in _new_process_answers(dataset)["counts"]
    kept = read_saved_index(dataset / "annotations")
    assert "im0.pt" in kept and "im1.pt" not in kept
    relabel_in_place(path, "dust")  # as long as "cell"
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert coarse(path.stat()) == coarse(before)
    expected = _expected(dataset)
    assert _new_process_answers(dataset) == expected
    assert expected["counts"] == AnnotationStore(dataset).class_counts()
    assert AnnotationStore(dataset).load("im1").labels == ["dust"]


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def _damaged_indexes(folder: Path) -> dict[str, object]:
    """What may lie under the index's name: garbage, a cut-off copy, another program's
    file, a file of another version, one whose columns do not fit, one with a box no
    annotation file could hold, and a pickle that would run code."""
    good = (folder / INDEX_FILENAME).read_bytes()
    data = torch.load(folder / INDEX_FILENAME, weights_only=True)
    outside = {**data, "boxes": data["boxes"] + 1000}
    return {
        "garbage": b"not an index",
        "cut off": good[: len(good) // 2],
        "foreign": {"boxes": torch.zeros(3, 4), "labels": ["a", "b", "c"]},
        "newer": {**data, "version": 99},
        "misfit": {**data, "counts": data["counts"] + 1},
        "outside": outside,
        "unsafe": {**data, "names": _Payload(folder / "marker")},
    }


@pytest.mark.usefixtures("settled")
@pytest.mark.parametrize(
    "damage", ["garbage", "cut off", "foreign", "newer", "misfit", "outside", "unsafe"]
)
def test_a_damaged_or_foreign_index_is_ignored_and_written_anew(
    dataset: Path, damage: str, reads: list[str]
) -> None:
    expected = _expected(dataset)
    _new_process_answers(dataset)
    folder = dataset / "annotations"
    content = _damaged_indexes(folder)[damage]
    if isinstance(content, bytes):
        (folder / INDEX_FILENAME).write_bytes(content)
    else:
        torch.save(content, folder / INDEX_FILENAME)
    assert read_saved_index(folder) == {}
    reads.clear()
    assert _new_process_answers(dataset) == expected
    assert len(reads) >= 8  # every file read again
    assert not (folder / "marker").exists()
    assert len(read_saved_index(folder)) == 7  # and the index written anew


@pytest.mark.usefixtures("settled")
def test_a_folder_that_cannot_be_written_still_answers(
    dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(path: Path, data: object) -> None:
        raise WriteError(30, "Read-only file system", str(path))

    monkeypatch.setattr(saved_index, "atomic_torch_save", refuse)
    expected = _expected(dataset)
    assert _new_process_answers(dataset) == expected
    assert _answers(dataset) == expected
    assert not (dataset / "annotations" / INDEX_FILENAME).exists()


@pytest.mark.usefixtures("settled")
def test_the_index_file_is_no_annotation_and_survives_tidy(dataset: Path, tmp_path: Path) -> None:
    _new_process_answers(dataset)
    index = dataset / "annotations" / INDEX_FILENAME
    assert index.is_file()
    old = os.stat(index).st_mtime - 7200
    os.utime(index, (old, old))  # older than any temporary tidy removes
    store = AnnotationStore(dataset)
    assert store.tidy() == [] and index.is_file()
    names = [image.name for image, _ in store.annotated()]
    assert names == [f"im{i}.png" for i in range(8)]
    report = export_dataset(store, "coco", tmp_path / "exported")
    exported = (tmp_path / "exported").rglob("*")
    assert not any("detlab-index" in path.name for path in exported)
    assert report.left_out_unreviewed == 4
