"""The Annotator's model on a stack: n / b go plane by plane then file by file, each plane's
boxes go to its own file, and copying takes the previous plane's boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from annotator_screen import on_disk, open_annotator, write_images

from stack_images import block_of, plane_pixels, write_stack


def _folder(tmp_path: Path) -> Path:
    folder = write_images(tmp_path / "images", ("a.png", "c.png"))
    write_stack(folder / "b.tif", 3)
    return folder


def test_n_and_b_go_over_the_planes_of_a_file_then_to_the_next_file(tmp_path):
    folder = _folder(tmp_path)
    annotator, screen = open_annotator(folder)
    seen = [annotator.current_path.name]
    for _ in range(5):
        annotator.next_image()
        seen.append(annotator.current_path.name)
    assert seen == [
        "a.png", "b.plane-0000.tif", "b.plane-0001.tif", "b.plane-0002.tif", "c.png", "c.png"
    ]  # fmt: skip
    np.testing.assert_array_equal(screen.shown[3].pixels, plane_pixels(2))
    annotator.previous_image()
    assert annotator.current_path.name == "b.plane-0002.tif"


def test_boxes_drawn_on_a_plane_are_saved_for_that_plane_only(tmp_path):
    folder = _folder(tmp_path)
    annotator, screen = open_annotator(folder)
    annotator.next_image()
    annotator.next_image()  # plane 1
    screen.draw("object", block_of(1))
    annotator.next_image()  # saved on leaving
    assert on_disk(folder, "b.plane-0001")["boxes"].numpy().tolist() == [list(block_of(1))]
    assert on_disk(folder, "b.plane-0000") is None and on_disk(folder, "b.plane-0002") is None
    assert on_disk(folder, "b") is None
    annotator.previous_image()
    assert screen.boxes["object"].tolist() == [list(block_of(1))]


def test_copy_previous_takes_the_boxes_of_the_previous_plane_of_the_stack(tmp_path):
    folder = _folder(tmp_path)
    annotator, screen = open_annotator(folder)
    screen.draw("object", (1, 1, 5, 5))  # on a.png, the file before the stack
    annotator.next_image()
    annotator.next_image()
    screen.draw("object", block_of(1))  # plane 1
    annotator.next_image()  # plane 2
    assert annotator.copy_previous() == 1
    assert on_disk(folder, "b.plane-0002")["boxes"].numpy().tolist() == [list(block_of(1))]
    assert on_disk(folder, "b.plane-0001")["boxes"].numpy().tolist() == [list(block_of(1))]
    assert screen.boxes["object"].tolist() == [list(block_of(1))]
