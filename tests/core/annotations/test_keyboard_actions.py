"""The actions behind the Annotator's keys, without a viewer: redo, copy the previous image's
boxes, toggle "reviewed", and nudging boxes with the arrow keys. Checked on the files a user
would find in ``annotations/``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from annotator_screen import HEIGHT, WIDTH, on_disk, open_annotator, write_images

from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.copying import boxes_not_yet_in
from napari_detlab.core.annotations.history import AnnotationHistory
from napari_detlab.core.boxes import nudged_boxes


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_images(tmp_path / "images")


def boxes_on_disk(folder: Path, stem: str) -> list[list[float]]:
    saved = on_disk(folder, stem)
    return [] if saved is None else saved["boxes"].numpy().tolist()


# -- redo ---------------------------------------------------------------------------------------
def test_redo_puts_back_what_undo_took_and_saves_it(folder: Path) -> None:
    annotator, screen = open_annotator(folder)
    for box in [(1, 1, 10, 10), (20, 20, 30, 30)]:  # two edits, two undo steps
        screen.draw("object", box)
        annotator.flush()
    for _ in range(2):
        annotator.undo()
    assert on_disk(folder, "img1") is None
    annotator.redo()
    assert boxes_on_disk(folder, "img1") == [[1, 1, 10, 10]]
    annotator.redo()
    assert boxes_on_disk(folder, "img1") == [[1, 1, 10, 10], [20, 20, 30, 30]]
    assert len(screen.boxes["object"]) == 2
    annotator.redo()
    assert screen.statuses[-1] == "Nothing to redo"
    annotator.undo()  # and undo again after a redo
    assert boxes_on_disk(folder, "img1") == [[1, 1, 10, 10]]


def test_a_new_edit_after_undo_forgets_the_redo(folder: Path) -> None:
    annotator, screen = open_annotator(folder)
    screen.draw("object", (1, 1, 10, 10))
    annotator.flush()
    annotator.undo()
    screen.draw("object", (5, 5, 15, 15))
    annotator.flush()
    annotator.redo()
    assert screen.statuses[-1] == "Nothing to redo"
    assert boxes_on_disk(folder, "img1") == [[5, 5, 15, 15]]


def test_redo_is_per_image_and_bounded() -> None:
    history = AnnotationHistory(depth=2)
    one = ImageAnnotation([[0, 0, 1, 1]], ["x"])
    history.push("a", ImageAnnotation())
    assert history.undo("a", one) is not None
    assert history.can_redo("a") and not history.can_redo("b")
    assert history.redo("b", one) is None
    assert len(history.redo("a", ImageAnnotation())) == 1
    history.clear()
    assert not history.can_redo("a") and not history.can_undo("a")


# -- copy the previous image's boxes ----------------------------------------------------------
def test_copy_previous_adds_its_boxes_clipped_as_one_undo_step(tmp_path: Path) -> None:
    folder = write_images(tmp_path / "images")
    write_images(folder, ("img2.png",))  # same size; a smaller third image:
    small = folder / "img3.png"
    import imageio.v3 as iio

    iio.imwrite(small, np.zeros((20, 30, 3), np.uint8))
    annotator, screen = open_annotator(folder)
    screen.draw("object", (1, 1, 10, 10), (20, 15, 50, 35))
    annotator.add_class("cat")
    screen.draw("cat", (2, 2, 8, 8))
    annotator.next_image()
    screen.draw("object", (40, 30, 55, 38))  # drawn before copying: kept
    assert annotator.copy_previous() == 3
    assert sorted(map(tuple, boxes_on_disk(folder, "img2"))) == sorted(
        [(40, 30, 55, 38), (1, 1, 10, 10), (20, 15, 50, 35), (2, 2, 8, 8)]
    )
    assert on_disk(folder, "img2")["labels"].count("cat") == 1
    assert len(screen.boxes["object"]) == 3 and len(screen.boxes["cat"]) == 1
    assert annotator.copy_previous() == 0  # pressing again adds nothing
    annotator.undo()  # one step takes the whole copy back
    assert boxes_on_disk(folder, "img2") == [[40, 30, 55, 38]]
    annotator.redo()
    annotator.next_image()  # 20 x 30: boxes are clipped to it, the one outside dropped
    assert annotator.copy_previous() == 3
    got = boxes_on_disk(folder, "img3")
    assert [1, 1, 10, 10] in got and [20, 15, 30, 20] in got and [2, 2, 8, 8] in got
    assert all(x2 <= 30 and y2 <= 20 for _, _, x2, y2 in got)


def test_copy_previous_on_the_first_or_after_an_empty_image_says_so(folder: Path) -> None:
    annotator, screen = open_annotator(folder)
    assert annotator.copy_previous() == 0
    assert screen.statuses[-1] == "No previous image to copy from"
    annotator.next_image()
    assert annotator.copy_previous() == 0
    assert screen.told("info")[-1] == "img1.png has no boxes to copy"
    assert on_disk(folder, "img2") is None  # nothing written


def test_a_copied_box_matching_one_of_another_class_is_still_added() -> None:
    here = ImageAnnotation([[0, 0, 10, 10]], ["cat"])
    there = ImageAnnotation([[0, 0, 10, 10], [0, 0, 10.2, 10]], ["dog", "cat"])
    added = boxes_not_yet_in(here, there, (HEIGHT, WIDTH))
    assert added.labels == ["dog"]


# -- reviewed by key ----------------------------------------------------------------------------
def test_toggle_reviewed_marks_and_unmarks_an_empty_image(folder: Path) -> None:
    annotator, screen = open_annotator(folder)
    annotator.toggle_reviewed()
    assert on_disk(folder, "img1")["reviewed"] is True and screen.reviewed
    annotator.toggle_reviewed()
    assert on_disk(folder, "img1") is None and not screen.reviewed
    screen.draw("object", (1, 1, 10, 10))
    annotator.toggle_reviewed()  # an image with boxes stays reviewed
    assert screen.reviewed and on_disk(folder, "img1")["reviewed"] is True


# -- arrow keys ----------------------------------------------------------------------------------
def test_moving_keeps_the_size_and_stops_at_the_border() -> None:
    boxes = np.array([[0, 0, 10, 10], [50, 5, 60, 20]], float)
    moved = nudged_boxes(boxes, move=(-5, 3), image_size=(HEIGHT, WIDTH))
    np.testing.assert_array_equal(moved, [[0, 3, 10, 13], [45, 8, 55, 23]])
    moved = nudged_boxes(boxes, move=(5, 100), image_size=(HEIGHT, WIDTH))
    np.testing.assert_array_equal(moved, [[5, 30, 15, 40], [50, 25, 60, 40]])


def test_resizing_moves_the_far_edges_within_the_image_and_keeps_a_pixel() -> None:
    boxes = np.array([[10, 10, 20, 20]], float)
    np.testing.assert_array_equal(nudged_boxes(boxes, grow=(1, -1)), [[10, 10, 21, 19]])
    np.testing.assert_array_equal(
        nudged_boxes(boxes, grow=(-50, 100), image_size=(HEIGHT, WIDTH)), [[10, 10, 11, 40]]
    )
