"""The annotation store: what lands on disk, what a bad file says, and that nothing is lost."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from napari_detlab.core import atomic
from napari_detlab.core.annotations.annotation import (
    AnnotationError,
    ImageAnnotation,
    sanitize_boxes,
)
from napari_detlab.core.annotations.store import (
    AnnotationStore,
    ClassInUseError,
    ClassSpec,
    stem_of,
)
from napari_detlab.core.atomic import UnsafeFileError, atomic_write_bytes, safe_torch_load

HEIGHT, WIDTH = 40, 60


@pytest.fixture
def store(tmp_path: Path) -> AnnotationStore:
    """Five small images, none annotated yet."""
    for name in ("img1.png", "img2.jpg", "img3.png", "img10.png", "scan.v2.tif"):
        Image.fromarray(np.zeros((HEIGHT, WIDTH, 3), np.uint8)).save(tmp_path / name)
    return AnnotationStore(tmp_path)


def _annotation(boxes: object, labels: list[str], **kwargs: object) -> ImageAnnotation:
    return ImageAnnotation(boxes, labels, reviewed=True, image_size=(HEIGHT, WIDTH), **kwargs)


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_saved_file_is_the_documented_dict_and_loads_with_weights_only(
    store: AnnotationStore,
) -> None:
    boxes = [[1.5, 2, 10, 20], [30, 5, 59.25, 39]]
    path = store.save(store.images[0], _annotation(boxes, ["cell", "crystal"]))
    assert path == store.root / "annotations" / "img1.pt"
    data = torch.load(path, weights_only=True)  # plain torch, no project code
    assert data["boxes"].dtype == torch.float32 and data["boxes"].shape == (2, 4)
    np.testing.assert_array_equal(data["boxes"].numpy(), np.float32(boxes))
    assert data["labels"] == ["cell", "crystal"]
    assert data["reviewed"] is True
    assert data["image_size"] == [HEIGHT, WIDTH]
    assert data["version"] == 2  # boxes in the pixels shown (EXIF orientation applied)
    loaded = store.load("img1")
    assert loaded is not None and loaded.same_as(_annotation(boxes, ["cell", "crystal"]))


def test_writes_leave_no_temporary_files(store: AnnotationStore) -> None:
    for i in range(20):
        store.save(store.images[i % 3], _annotation([[0, 0, 5 + i, 5]], ["cell"]))
    store.save_classes([ClassSpec("cell", "#ff0000")])
    assert _files(store.annotations_dir) == ["classes.json", "img1.pt", "img2.pt", "img3.pt"]


def test_new_files_are_readable_by_others_not_private(store: AnnotationStore) -> None:
    """``mkstemp`` makes 0600 files; a shared dataset folder needs the usual permissions."""
    path = store.save(store.images[0], _annotation([], []))
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o666 & ~atomic._current_umask()


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_failure_mid_write_keeps_the_old_file(
    store: AnnotationStore, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    image = store.images[0]
    path = store.save(image, _annotation([[1, 1, 9, 9]], ["cell"]))
    before = path.read_bytes()

    def crash(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, failing, crash)
    with pytest.raises(OSError, match="disk full"):
        store.save(image, _annotation([[2, 2, 8, 8], [3, 3, 7, 7]], ["cell", "cell"]))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert _files(store.annotations_dir) == ["img1.pt"]
    loaded = store.load(image)
    assert loaded is not None and loaded.labels == ["cell"]


def test_interrupt_mid_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl+C (or the viewer closing) during a write: old content, no temp file."""
    target = tmp_path / "a.json"
    atomic_write_bytes(target, b"old")
    real_fdopen = os.fdopen

    class Interrupting:
        def __init__(self, handle: object) -> None:
            self.handle = handle

        def __enter__(self) -> Interrupting:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()  # type: ignore[attr-defined]

        def write(self, data: bytes) -> None:
            self.handle.write(data[:2])  # type: ignore[attr-defined]
            raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode: Interrupting(real_fdopen(fd, mode)))
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(target, b"new content")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert _files(tmp_path) == ["a.json"]


def test_reviewed_negative_keeps_an_empty_file_untouched_image_has_none(
    store: AnnotationStore,
) -> None:
    negative, untouched = store.images[0], store.images[1]
    path = store.save(negative, _annotation(np.zeros((0, 4)), []))
    data = torch.load(path, weights_only=True)
    assert data["boxes"].shape == (0, 4) and data["labels"] == [] and data["reviewed"] is True
    assert not store.has(untouched) and store.load(untouched) is None
    assert [image.name for image, _ in store.annotated()] == [negative.name]


def _write_raw(store: AnnotationStore, stem: str, data: object) -> Path:
    path = store.annotations_dir / f"{stem}.pt"
    path.parent.mkdir(exist_ok=True)
    torch.save(data, path)
    return path


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"boxes": torch.tensor([[1.0, 2, float("nan"), 4]]), "labels": ["a"]}, "non-finite"),
        ({"boxes": torch.tensor([[1.0, 2, 3, float("inf")]]), "labels": ["a"]}, "non-finite"),
        ({"boxes": torch.tensor([[5.0, 2, 5, 4]]), "labels": ["a"]}, "box 0 has x1 >= x2"),
        (
            {"boxes": torch.tensor([[0.0, 0, 1, 1], [1, 9, 3, 4]]), "labels": ["a", "a"]},
            "box 1 has y1 >= y2",
        ),
        ({"boxes": torch.tensor([[1.0, 2, 3, 4]]), "labels": ["a", "b"]}, "1 boxes but 2 labels"),
        (
            {"boxes": torch.zeros(2, 4) + torch.tensor([0, 0, 1, 1]), "labels": []},
            "2 boxes but 0 labels",
        ),
        (
            {
                "boxes": torch.tensor([[1.0, 2, 70, 4]]),
                "labels": ["a"],
                "image_size": [HEIGHT, WIDTH],
            },
            "lies outside the 60x40 image",
        ),
        ({"boxes": torch.zeros(1, 3), "labels": ["a"]}, "shape (N, 4)"),
        ({"boxes": "1 2 3 4", "labels": ["a"]}, "'boxes'"),
        ({"boxes": torch.tensor([[1.0, 2, 3, 4]]), "labels": [3]}, "label 0 is int"),
        ({"boxes": torch.tensor([[1.0, 2, 3, 4]]), "labels": "a"}, "got one string"),
        ({"boxes": torch.tensor([[1.0, 2, 3, 4]]), "labels": [""]}, "empty class name"),
        ({"labels": []}, "missing key 'boxes'"),
        ([1, 2, 3], "expected a dict"),
        ({"boxes": torch.zeros(0, 4), "labels": [], "image_size": [5]}, "'image_size'"),
    ],
)
def test_bad_files_name_the_file_and_the_problem(
    store: AnnotationStore, data: object, problem: str
) -> None:
    path = _write_raw(store, "img3", data)
    with pytest.raises(AnnotationError) as caught:
        store.load("img3")
    assert str(path) in str(caught.value)
    assert problem in str(caught.value)


def test_unreadable_and_unsafe_files_are_annotation_errors(
    store: AnnotationStore, tmp_path: Path
) -> None:
    bad = store.annotations_dir / "img1.pt"
    bad.parent.mkdir(exist_ok=True)
    bad.write_text("not a pickle")
    with pytest.raises(AnnotationError, match=re.escape(f"{bad}: not a readable .pt file")):
        store.load("img1")

    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    _write_raw(store, "img2", {"boxes": Payload(), "labels": []})
    with pytest.raises(AnnotationError, match="refused") as caught:
        store.load("img2")
    assert isinstance(caught.value.__cause__, UnsafeFileError)
    assert not marker.exists()


def test_annotated_can_skip_bad_files_and_report_them(store: AnnotationStore) -> None:
    store.save(store.images[0], _annotation([[0, 0, 4, 4]], ["cell"]))
    (store.annotations_dir / "img2.pt").write_bytes(b"")
    with pytest.raises(AnnotationError, match=r"img2\.pt"):
        list(store.annotated())
    reported: list[str] = []
    good = list(store.annotated(on_error=lambda image, error: reported.append(image.name)))
    assert [image.name for image, _ in good] == ["img1.png"]
    assert reported == ["img2.jpg"]
    # One broken file must not hide the class list from the Annotator.
    assert [c.name for c in store.load_classes()] == ["cell"]


def test_sub_pixel_overshoot_is_clipped_on_save_and_load(store: AnnotationStore) -> None:
    path = store.save(store.images[0], _annotation([[-0.4, -1.0, 60.6, 40.9]], ["cell"]))
    np.testing.assert_array_equal(torch.load(path, weights_only=True)["boxes"], [[0, 0, 60, 40]])
    _write_raw(
        store,
        "img2",
        {"boxes": torch.tensor([[-0.5, 3, 10, 40.5]]), "labels": ["a"], "image_size": [40, 60]},
    )
    loaded = store.load("img2")
    assert loaded is not None
    np.testing.assert_array_equal(loaded.boxes, [[0, 3, 10, 40]])


def test_overshoot_beyond_tolerance_is_refused_and_old_file_kept(store: AnnotationStore) -> None:
    path = store.save(store.images[0], _annotation([[1, 1, 5, 5]], ["cell"]))
    before = path.read_bytes()
    with pytest.raises(AnnotationError, match="outside the 60x40 image"):
        store.save(store.images[0], _annotation([[1, 1, 65, 5]], ["cell"]))
    assert path.read_bytes() == before


def test_box_inside_overshoot_margin_clips_to_nothing_and_is_refused(
    store: AnnotationStore,
) -> None:
    with pytest.raises(AnnotationError, match="x1 >= x2"):
        store.save(store.images[0], _annotation([[60.2, 1, 60.8, 5]], ["cell"]))
    assert not store.has(store.images[0])


def test_sanitize_boxes_clips_and_flags_clicks(store: AnnotationStore) -> None:
    boxes, keep = sanitize_boxes([[-3, 2, 20, 50], [5, 5, 5, 5], [1, 1, 1.5, 9]], (HEIGHT, WIDTH))
    np.testing.assert_array_equal(boxes[0], [0, 2, 20, 40])
    np.testing.assert_array_equal(keep, [True, False, False])


def test_file_names_stems_and_paths_address_the_same_file(store: AnnotationStore) -> None:
    expected = store.annotations_dir / "img2.pt"
    assert store.path_for("img2") == expected
    assert store.path_for("img2.jpg") == expected
    assert store.path_for(store.root / "img2.jpg") == expected
    # A stem with a dot is not cut at the dot.
    assert store.path_for("scan.v2") == store.annotations_dir / "scan.v2.pt"
    assert store.path_for(store.root / "scan.v2.tif") == store.annotations_dir / "scan.v2.pt"
    assert stem_of("IMG_1.JPG") == "IMG_1"


def test_images_are_in_natural_order(store: AnnotationStore) -> None:
    assert [p.name for p in store.images] == [
        "img1.png",
        "img2.jpg",
        "img3.png",
        "img10.png",
        "scan.v2.tif",
    ]


def test_class_list_persists_in_order_with_colours(store: AnnotationStore) -> None:
    classes = [ClassSpec("crystal", "#00ffff"), ClassSpec("cell", "#ff00ff")]
    store.save_classes(classes)
    saved = json.loads((store.annotations_dir / "classes.json").read_text())
    assert saved == {
        "classes": [{"name": "crystal", "color": "#00ffff"}, {"name": "cell", "color": "#ff00ff"}]
    }
    assert AnnotationStore(store.root).load_classes() == classes
    # A label used in a file but missing from the list is shown rather than hidden.
    store.save(store.images[0], _annotation([[0, 0, 3, 3]], ["debris"]))
    names = [c.name for c in AnnotationStore(store.root).load_classes()]
    assert names == ["crystal", "cell", "debris"]
    with pytest.raises(ValueError, match="unique: a class named 'a' exists already"):
        store.save_classes([ClassSpec("a", "#000000"), ClassSpec("a", "#111111")])


def test_rename_class_rewrites_every_file(store: AnnotationStore) -> None:
    store.save_classes([ClassSpec("cel", "#ff00ff"), ClassSpec("crystal", "#00ffff")])
    store.save(store.images[0], _annotation([[0, 0, 3, 3], [4, 4, 9, 9]], ["cel", "crystal"]))
    store.save(store.images[2], _annotation([[0, 0, 3, 3], [5, 5, 6, 6]], ["cel", "cel"]))
    assert store.rename_class("cel", "cell") == 3
    assert torch.load(store.path_for("img1"), weights_only=True)["labels"] == ["cell", "crystal"]
    assert torch.load(store.path_for("img3"), weights_only=True)["labels"] == ["cell", "cell"]
    assert [(c.name, c.color) for c in store.load_classes()] == [
        ("cell", "#ff00ff"),
        ("crystal", "#00ffff"),
    ]
    with pytest.raises(ValueError, match="exists already"):
        store.rename_class("cell", "crystal")
    with pytest.raises(ValueError, match="no class named"):
        store.rename_class("ghost", "spirit")
    with pytest.raises(ValueError, match="empty"):
        store.rename_class("cell", "  ")


def test_remove_class_is_guarded_while_boxes_use_it(store: AnnotationStore) -> None:
    store.save_classes([ClassSpec("cell", "#ff00ff"), ClassSpec("crystal", "#00ffff")])
    path = store.save(
        store.images[0], _annotation([[0, 0, 3, 3], [4, 4, 9, 9]], ["cell", "crystal"])
    )
    before = path.read_bytes()
    with pytest.raises(ClassInUseError, match="used by 1 boxes"):
        store.remove_class("crystal")
    assert path.read_bytes() == before
    assert [c.name for c in store.load_classes()] == ["cell", "crystal"]
    assert store.remove_class("crystal", delete_boxes=True) == 1
    loaded = store.load(store.images[0])
    assert loaded is not None and loaded.labels == ["cell"]
    np.testing.assert_array_equal(loaded.boxes, [[0, 0, 3, 3]])
    assert [c.name for c in store.load_classes()] == ["cell"]
    # An unused class goes without a guard.
    store.save_classes([*store.load_classes(), ClassSpec("spare", "#123456")])
    assert store.remove_class("spare") == 0
    assert [c.name for c in store.load_classes()] == ["cell"]
    with pytest.raises(AnnotationError, match="no class named 'ghost'"):
        store.remove_class("ghost")


def test_next_unannotated_wraps_around(store: AnnotationStore) -> None:
    assert store.next_unannotated() == 0
    for index in (0, 1, 3):
        store.save(store.images[index], _annotation([], []))
    assert store.next_unannotated() == 2
    assert store.next_unannotated(after=2) == 4
    assert store.next_unannotated(after=4) == 2  # wraps to the start
    for index in (2, 4):
        store.save(store.images[index], _annotation([], []))
    assert store.next_unannotated(after=1) is None
    store.delete(store.images[3])
    assert store.next_unannotated(after=3) == 3  # the current image itself, last


def test_safe_torch_load_refuses_code_and_reports_plain_garbage(tmp_path: Path) -> None:
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pt"
    torch.save({"x": Payload()}, evil)
    with pytest.raises(UnsafeFileError, match=r"evil.pt: refused to load.*system"):
        safe_torch_load(evil)
    assert not marker.exists()
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.pt: not a readable \.pt file") as caught:
        safe_torch_load(empty)
    assert not isinstance(caught.value, UnsafeFileError)
    with pytest.raises(FileNotFoundError):
        safe_torch_load(tmp_path / "missing.pt")


def test_same_as_can_ignore_the_order_of_the_boxes() -> None:
    interleaved = _annotation([[1, 1, 5, 5], [2, 2, 6, 6], [3, 3, 7, 7]], ["b", "a", "b"])
    grouped = _annotation([[2, 2, 6, 6], [1, 1, 5, 5], [3, 3, 7, 7]], ["a", "b", "b"])
    assert interleaved.same_as(grouped, ordered=False) and not interleaved.same_as(grouped)
    relabelled = _annotation([[2, 2, 6, 6], [1, 1, 5, 5], [3, 3, 7, 7]], ["b", "a", "b"])
    assert not interleaved.same_as(relabelled, ordered=False)  # a box changed class
    unreviewed = ImageAnnotation(interleaved.boxes, interleaved.labels, reviewed=False)
    assert not interleaved.same_as(unreviewed, ordered=False)
    assert not interleaved.same_as(None, ordered=False)


def test_quarantine_sets_a_bad_file_aside_and_never_overwrites_one(store: AnnotationStore) -> None:
    store.annotations_dir.mkdir()
    store.path_for("img1").write_bytes(b"first bad file")
    assert store.quarantine("img1") == store.annotations_dir / "img1.pt.unreadable"
    assert not store.has("img1") and store.load("img1") is None  # the store no longer sees it
    store.path_for("img1").write_bytes(b"second bad file")
    assert store.quarantine("img1.png") == store.annotations_dir / "img1.pt.unreadable.2"
    assert (store.annotations_dir / "img1.pt.unreadable").read_bytes() == b"first bad file"
    assert _files(store.annotations_dir) == ["img1.pt.unreadable", "img1.pt.unreadable.2"]
