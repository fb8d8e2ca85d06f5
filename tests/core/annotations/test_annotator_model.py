"""The Annotator's rules without a viewer: what lands on disk as a person browses and draws.

A :class:`~annotator_screen.Screen` stands in for the dock: it shows what the model announces
(the boxes per class, the reviewed box, notices) and is the model's :class:`Drawing`, so a test
"draws" by changing its boxes and then does what the dock does (flush, ``n``, undo...). Every
check is on the files a user would find in ``annotations/``.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from annotator_screen import HEIGHT, WIDTH, Screen, files, on_disk, open_annotator, write_images

from napari_detlab.core.annotations import store as store_module
from napari_detlab.core.annotations.annotation import AnnotationError, ImageAnnotation
from napari_detlab.core.annotations.annotator import Annotator
from napari_detlab.core.annotations.prefetch import ImagePrefetcher
from napari_detlab.core.annotations.store import (
    DEFAULT_CLASS,
    DEFAULT_COLORS,
    AnnotationStore,
    ClassInUseError,
    ClassSpec,
)
from napari_detlab.core.images import read_image
from oriented_photos import OBJECT, SHOWN, as_other_tools_show, save_version_1, write_photo


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Three 40x60 RGB PNGs, nothing annotated."""
    return write_images(tmp_path / "images")


# -- opening ------------------------------------------------------------------------------------
def test_opening_shows_the_first_image_with_the_default_class(folder: Path) -> None:
    annotator, screen = open_annotator(folder)
    assert annotator.index == 0 and annotator.current_path == folder / "img1.png"
    shown = screen.shown[-1]
    np.testing.assert_array_equal(shown.pixels, read_image(folder / "img1.png"))
    assert len(shown.annotation) == 0 and screen.statuses[-1] == "Not annotated yet"
    assert annotator.classes == [ClassSpec(DEFAULT_CLASS, DEFAULT_COLORS[0])] == screen.classes
    assert AnnotationStore(folder).load_classes() == annotator.classes  # saved with the dataset


def test_opening_keeps_the_saved_class_list_and_writes_nothing(folder: Path) -> None:
    store = AnnotationStore(folder)
    store.save_classes([ClassSpec("cell", "#ff0000")])
    store.save("img2", ImageAnnotation([[1, 1, 5, 5]], ["debris"], True, (HEIGHT, WIDTH)))
    before = store.classes_path.read_bytes()
    annotator, _ = open_annotator(folder)
    assert [c.name for c in annotator.classes] == ["cell", "debris"]  # a label met in a file
    assert store.classes_path.read_bytes() == before


def test_an_unreadable_class_list_is_reported_and_replaced_by_the_default(folder: Path) -> None:
    (folder / "annotations").mkdir()
    (folder / "annotations" / "classes.json").write_text("{not json")
    annotator, screen = open_annotator(folder)
    assert any("classes.json" in text for text in screen.told("error"))
    assert [c.name for c in annotator.classes] == [DEFAULT_CLASS]


def test_a_folder_without_images_or_with_twin_stems_is_reported(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    annotator, screen = open_annotator(empty)
    assert annotator.current_path is None and "no images found" in screen.told("warning")[0]
    twins = write_images(tmp_path / "twins", ("a.png", "a.jpg", "b.png"))
    _, screen = open_annotator(twins)
    assert any("a exist with two extensions" in text for text in screen.told("warning"))


# -- the write policy ---------------------------------------------------------------------------
def test_an_untouched_image_gets_no_file(folder: Path) -> None:
    annotator, screen = open_annotator(folder)
    annotator.next_image()
    annotator.next_image()
    annotator.previous_image()
    assert files(folder) == ["classes.json"] and screen.saved == []


def test_drawn_boxes_are_clipped_saved_and_reported(folder: Path) -> None:
    annotator, screen = open_annotator(folder)
    screen.draw("object", (50, 30, 70, 55), (10, 10, 10.3, 10.3))
    assert annotator.flush()
    data = on_disk(folder, "img1")
    np.testing.assert_allclose(data["boxes"].numpy(), [[50, 30, 60, 40]])  # clipped to 60x40
    assert data["labels"] == ["object"] and data["reviewed"] is True
    assert data["image_size"] == [HEIGHT, WIDTH]
    assert len(screen.boxes["object"]) == 1  # the click is gone from the screen too
    assert screen.told("info") == ["Ignored 1 box(es) smaller than 1 pixel (a click, not a drag)"]
    assert screen.reviewed and screen.saved == [folder / "img1.png"]
    assert screen.statuses[-1] == "Saved"


def test_navigation_saves_before_the_image_changes(folder: Path) -> None:
    annotator, screen = open_annotator(folder)
    screen.draw("object", (1, 2, 11, 12))
    annotator.next_image()
    assert on_disk(folder, "img1")["labels"] == ["object"]
    assert annotator.index == 1 and screen.boxes == {}  # img2 has no boxes


def test_an_emptied_unreviewed_image_loses_its_file(folder: Path) -> None:
    annotator, screen = open_annotator(folder)
    screen.draw("object", (1, 1, 10, 10))
    annotator.flush()
    screen.boxes["object"] = np.zeros((0, 4))  # the user deletes the box
    annotator.flush()
    assert on_disk(folder, "img1")["reviewed"] is True  # still looked at: a negative example
    annotator.set_reviewed(False)  # changed their mind: never looked at
    assert on_disk(folder, "img1") is None and not screen.reviewed


def test_marking_reviewed_writes_an_empty_negative(folder: Path) -> None:
    annotator, _ = open_annotator(folder)
    annotator.set_reviewed(True)
    data = on_disk(folder, "img1")
    assert data["boxes"].shape == (0, 4) and data["reviewed"] is True


def test_an_image_with_boxes_stays_reviewed(folder: Path) -> None:
    annotator, screen = open_annotator(folder)
    screen.draw("object", (1, 1, 10, 10))
    annotator.flush()
    annotator.set_reviewed(False)
    assert screen.reviewed and on_disk(folder, "img1")["reviewed"] is True
    assert "delete its boxes first" in screen.told("info")[0]


def test_a_deleted_layer_keeps_its_saved_boxes(folder: Path) -> None:
    store = AnnotationStore(folder)
    store.save_classes([ClassSpec("a", "#ff0000"), ClassSpec("b", "#00ff00")])
    store.save("img1", ImageAnnotation([[1, 1, 5, 5]], ["a"], True, (HEIGHT, WIDTH)))
    annotator, screen = open_annotator(folder)
    screen.deleted.add("a")  # the user removed the layer "boxes: a"
    screen.draw("b", (20, 20, 30, 30))
    annotator.next_image()
    data = on_disk(folder, "img1")
    assert data["labels"] == ["a", "b"]
    np.testing.assert_allclose(data["boxes"].numpy(), [[1, 1, 5, 5], [20, 20, 30, 30]])
    annotator.previous_image()
    assert "a" not in screen.deleted and len(screen.boxes["a"]) == 1  # shown again


def test_browsing_never_rewrites_a_file_whose_boxes_are_in_another_order(folder: Path) -> None:
    store = AnnotationStore(folder)
    store.save_classes([ClassSpec("a", "#ff0000"), ClassSpec("b", "#00ff00")])
    interleaved = ImageAnnotation(
        [[1, 1, 5, 5], [2, 2, 6, 6], [3, 3, 7, 7]], ["b", "a", "b"], True, (HEIGHT, WIDTH),
        extra={"source": "another tool"},
    )  # fmt: skip
    path = store.save("img1", interleaved)
    before = path.stat().st_mtime_ns
    annotator, screen = open_annotator(folder)
    annotator.next_image()
    annotator.previous_image()
    assert path.stat().st_mtime_ns == before and screen.saved == []
    screen.draw("a", (10, 10, 20, 20))  # a real edit keeps the other tool's keys
    annotator.flush()
    data = on_disk(folder, "img1")
    assert sorted(data["labels"]) == ["a", "a", "b", "b"] and data["source"] == "another tool"


def test_a_phone_photo_is_shown_upright_and_its_old_boxes_follow(tmp_path: Path) -> None:
    """An orientation-6 photo shows as other tools show it; a box saved by the previous
    version (stored pixels) is on its object; browsing keeps the old file, an edit writes
    version 2 in the pixels shown."""
    folder = tmp_path / "photos"
    photo = write_photo(folder / "photo.jpg", 6)
    old = save_version_1(AnnotationStore(folder).path_for(photo), (OBJECT,), ("head",))
    before = old.read_bytes()
    annotator, screen = open_annotator(folder)
    shown_size, object_box, corner_box = SHOWN[6]
    np.testing.assert_array_equal(screen.shown[-1].pixels, as_other_tools_show(photo))
    np.testing.assert_array_equal(screen.boxes["head"], [object_box])
    assert annotator.image_size == shown_size
    assert annotator.flush() and old.read_bytes() == before  # nothing changed: not rewritten
    screen.draw("head", corner_box)  # drawn where the user sees the grey block
    assert annotator.flush()
    data = on_disk(folder, "photo")
    assert data["version"] == 2 and data["image_size"] == list(shown_size)
    np.testing.assert_array_equal(data["boxes"].numpy(), [object_box, corner_box])


def test_a_failed_write_is_reported_and_nothing_is_lost(folder: Path, monkeypatch) -> None:
    annotator, screen = open_annotator(folder)
    screen.draw("object", (1, 1, 10, 10))

    def full_disk(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store_module, "atomic_torch_save", full_disk)
    assert not annotator.flush()
    assert screen.statuses[-1] == "NOT SAVED" and "disk full" in screen.told("error")[0]
    assert on_disk(folder, "img1") is None and len(screen.boxes["object"]) == 1
    monkeypatch.undo()
    assert annotator.flush()  # the next try writes what is still drawn
    assert on_disk(folder, "img1")["labels"] == ["object"]


# -- navigation ---------------------------------------------------------------------------------
def test_a_broken_image_is_skipped_both_ways_and_reported_once(tmp_path: Path) -> None:
    folder = write_images(tmp_path / "mixed", ("a.png", "c.png"))
    (folder / "b_broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not an image")
    annotator, screen = open_annotator(folder)
    annotator.next_image()
    assert annotator.current_path.name == "c.png"
    annotator.previous_image()
    assert annotator.current_path.name == "a.png"
    warnings = screen.told("warning")
    assert len(warnings) == 1 and "b_broken.png" in warnings[0]
    assert [shown.path.name for shown in screen.shown] == ["a.png", "c.png", "a.png"]


def test_no_readable_image_in_that_direction_stays_put(tmp_path: Path) -> None:
    folder = write_images(tmp_path / "tail", ("a.png",))
    (folder / "b_broken.png").write_bytes(b"not an image")
    annotator, screen = open_annotator(folder)
    assert not annotator.go_to(1, step=1)
    assert annotator.current_path.name == "a.png"
    assert screen.statuses[-1] == "No readable image in that direction"


def test_the_ends_of_the_folder_say_so(folder: Path) -> None:
    annotator, screen = open_annotator(folder)
    annotator.previous_image()
    assert annotator.index == 0 and screen.statuses[-1] == "First image"
    annotator.go_to(2)
    annotator.next_image()
    assert annotator.index == 2 and screen.statuses[-1] == "Last image"


def test_next_unannotated_jumps_over_annotated_images(folder: Path) -> None:
    AnnotationStore(folder).save("img2", ImageAnnotation(reviewed=True, image_size=(40, 60)))
    annotator, screen = open_annotator(folder)
    screen.draw("object", (1, 1, 10, 10))
    annotator.next_unannotated()
    assert annotator.current_path.name == "img3.png"
    annotator.next_unannotated()  # img1 has boxes now, img2 is a negative: only img3 is left
    assert annotator.current_path.name == "img3.png" and screen.told("info") == []
    annotator.set_reviewed(True)
    annotator.next_unannotated()
    assert screen.told("info") == ["Every image has been annotated or marked reviewed"]


def test_show_goes_to_an_image_of_the_dataset_only(folder: Path, tmp_path: Path) -> None:
    annotator, _ = open_annotator(folder)
    assert annotator.show(folder / "img3.png") and annotator.index == 2
    assert not annotator.show(tmp_path / "elsewhere.png") and annotator.index == 2
    assert annotator.shows(folder / "img3.png") and not annotator.shows(folder / "img1.png")


def test_the_neighbours_are_prefetched_and_n_reads_nothing_new(folder: Path) -> None:
    reads: list[str] = []
    lock = threading.Lock()

    def reader(path: Path) -> np.ndarray:
        with lock:
            reads.append(path.name)
        return read_image(path)

    annotator, _ = open_annotator(folder)
    annotator.prefetcher = ImagePrefetcher(reader)
    annotator.go_to(1)
    assert reads == ["img2.png"]  # decoded on the spot: nothing was prefetched yet
    annotator.prefetch_neighbours()
    deadline = time.monotonic() + 30
    while len(reads) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)  # the background thread decodes both neighbours
    assert sorted(reads) == ["img1.png", "img2.png", "img3.png"]
    annotator.next_image()
    annotator.prefetcher.shutdown()
    assert len(reads) == 3 and annotator.index == 2  # n decoded nothing new


# -- a broken annotation file, undo, reload -----------------------------------------------------
def test_a_corrupt_file_is_set_aside_and_the_image_shows_without_boxes(folder: Path) -> None:
    bad = folder / "annotations" / "img1.pt"
    bad.parent.mkdir()
    bad.write_bytes(b"not a torch file")
    annotator, screen = open_annotator(folder)
    aside = folder / "annotations" / "img1.pt.unreadable"
    assert aside.read_bytes() == b"not a torch file" and not bad.exists()
    assert "Renamed to img1.pt.unreadable" in screen.told("error")[0]
    assert len(screen.shown[-1].annotation) == 0
    screen.draw("object", (1, 1, 10, 10))
    annotator.flush()
    assert on_disk(folder, "img1")["labels"] == ["object"]
    assert aside.read_bytes() == b"not a torch file"  # never overwritten


def test_undo_restores_the_previous_boxes_and_saves(folder: Path) -> None:
    annotator, screen = open_annotator(folder)
    screen.draw("object", (1, 1, 10, 10))
    annotator.flush()
    screen.draw("object", (20, 20, 30, 30))
    annotator.flush()
    annotator.undo()
    np.testing.assert_allclose(on_disk(folder, "img1")["boxes"].numpy(), [[1, 1, 10, 10]])
    assert len(screen.boxes["object"]) == 1
    annotator.undo()
    assert on_disk(folder, "img1") is None and screen.boxes == {}  # back to never touched
    annotator.undo()
    assert screen.statuses[-1] == "Nothing to undo"


def test_undo_brings_back_a_class_met_in_the_old_state(folder: Path) -> None:
    annotator, screen = open_annotator(folder)
    annotator.add_class("cat")
    screen.draw("cat", (1, 1, 10, 10))
    annotator.flush()
    annotator.remove_class("cat", delete_boxes=True)  # forgets the history of every image
    assert annotator.history.pop("img1") is None
    # a snapshot naming a class the list no longer has
    annotator.history.push("img1", ImageAnnotation([[1, 1, 9, 9]], ["dog"], True, (40, 60)))
    annotator.undo()
    assert on_disk(folder, "img1")["labels"] == ["dog"]
    assert [c.name for c in screen.classes] == ["object", "dog"]  # a layer to show it in
    listed = json.loads((folder / "annotations" / "classes.json").read_text())["classes"]
    assert [c["name"] for c in listed] == ["object", "dog"]  # saved with the dataset


def test_a_file_another_dock_wrote_is_reloaded_without_saving(folder: Path) -> None:
    annotator, screen = open_annotator(folder)
    store = AnnotationStore(folder)
    store.save("img1", ImageAnnotation([[2, 3, 12, 13]], ["nucleus"], True, (HEIGHT, WIDTH)))
    assert annotator.shows(folder / "img1.png")
    annotator.reload()
    np.testing.assert_allclose(screen.boxes["nucleus"], [[2, 3, 12, 13]])
    assert "nucleus" in [c.name for c in annotator.classes] and screen.saved == []
    assert annotator.flush() and screen.saved == []  # what is shown is what is on disk


# -- classes ------------------------------------------------------------------------------------
def test_classes_are_added_and_recoloured_with_the_dataset(folder: Path) -> None:
    annotator, screen = open_annotator(folder)
    spec = annotator.add_class("  cat ")
    assert spec == ClassSpec("cat", DEFAULT_COLORS[1])  # the next palette colour, name trimmed
    annotator.set_class_color("cat", "#0000ff")
    assert AnnotationStore(folder).load_classes()[1] == ClassSpec("cat", "#0000ff")
    assert screen.classes == annotator.classes
    with pytest.raises(AnnotationError, match="exists already"):
        annotator.add_class("cat")  # the store's rule
    annotator.ensure_class("cat")
    annotator.ensure_class("dog")
    assert [c.name for c in AnnotationStore(folder).load_classes()] == ["object", "cat", "dog"]


def test_rename_moves_the_labels_in_every_file(folder: Path) -> None:
    annotator, screen = open_annotator(folder)
    annotator.add_class("cat")
    screen.draw("cat", (1, 1, 10, 10))
    annotator.next_image()
    screen.draw("cat", (2, 2, 12, 12))
    assert annotator.rename_class("cat", "lynx") == 2  # the unsaved box on screen too
    assert on_disk(folder, "img1")["labels"] == on_disk(folder, "img2")["labels"] == ["lynx"]
    assert [c.name for c in AnnotationStore(folder).load_classes()] == ["object", "lynx"]
    assert screen.renamed == [("cat", "lynx")] and [c.name for c in screen.classes][1] == "lynx"
    assert annotator.saved.labels == ["lynx"]


def test_remove_refuses_while_boxes_use_the_class_unless_told(folder: Path) -> None:
    annotator, screen = open_annotator(folder)
    annotator.add_class("cat")
    screen.draw("cat", (1, 1, 10, 10))
    annotator.flush()
    with pytest.raises(ClassInUseError, match="used by 1 boxes"):
        annotator.remove_class("cat")
    assert on_disk(folder, "img1")["labels"] == ["cat"]  # the guard changed nothing
    assert [c.name for c in annotator.classes] == ["object", "cat"]
    assert annotator.remove_class("cat", delete_boxes=True) == 1
    assert on_disk(folder, "img1")["labels"] == []
    assert [c.name for c in AnnotationStore(folder).load_classes()] == ["object"]
    assert annotator.remove_class("object") == 0  # the last class leaves the default one
    assert annotator.classes == [ClassSpec(DEFAULT_CLASS, DEFAULT_COLORS[0])]


def test_class_changes_need_an_open_dataset(folder: Path) -> None:
    annotator = Annotator(Screen())
    with pytest.raises(AnnotationError, match="open a folder"):
        annotator.add_class("cat")
    assert annotator.flush() and annotator.current_path is None
