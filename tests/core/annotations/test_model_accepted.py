"""Boxes accepted from the model in a batch: shown as not yet reviewed until a person does.

The mark is the file's ``"model_accepted": True``; the Annotator keeps it while the person
only looks (``n`` past the image writes nothing), and clears it on the first edit of the
image or when the person sets its reviewed mark (``k``, the check box). Checked on disk.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from annotator_screen import HEIGHT, WIDTH, on_disk, open_annotator, write_images

from napari_detlab.core.annotations.annotation import (
    MODEL_ACCEPTED_KEY,
    AnnotationError,
    ImageAnnotation,
    validate_annotation,
)
from napari_detlab.core.annotations.annotator import MODEL_ACCEPTED_STATUS
from napari_detlab.core.annotations.store import AnnotationStore


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Three images; img1 has one box accepted from the model, not yet reviewed."""
    folder = write_images(tmp_path / "images")
    accepted = ImageAnnotation([[1, 1, 11, 11]], ["object"], True, (HEIGHT, WIDTH))
    AnnotationStore(folder).save("img1", accepted.marked_from_model(True))
    return folder


def test_the_mark_is_shown_and_survives_looking(folder: Path) -> None:
    before = (folder / "annotations" / "img1.pt").read_bytes()
    annotator, screen = open_annotator(folder)
    assert MODEL_ACCEPTED_STATUS in screen.statuses[-1]
    assert screen.reviewed is False  # the check box: no person has reviewed it
    annotator.next_image()
    annotator.previous_image()
    assert (folder / "annotations" / "img1.pt").read_bytes() == before
    assert MODEL_ACCEPTED_STATUS in screen.statuses[-1]


def test_k_marks_the_image_reviewed_and_clears_the_mark(folder: Path) -> None:
    annotator, screen = open_annotator(folder)
    annotator.toggle_reviewed()
    data = on_disk(folder, "img1")
    assert MODEL_ACCEPTED_KEY not in data and data["reviewed"] is True
    assert data["boxes"].tolist() == [[1, 1, 11, 11]]
    assert screen.reviewed is True and screen.statuses[-1] == "Saved"
    annotator.undo()  # one undo puts the mark back, exactly
    assert on_disk(folder, "img1")[MODEL_ACCEPTED_KEY] is True


def test_an_edit_clears_the_mark(folder: Path) -> None:
    annotator, screen = open_annotator(folder)
    screen.draw("object", (20, 20, 30, 30))
    annotator.flush()
    data = on_disk(folder, "img1")
    assert MODEL_ACCEPTED_KEY not in data and len(data["boxes"]) == 2
    assert screen.statuses[-1] == "Saved"


def test_a_reload_after_a_batch_shows_the_mark(folder: Path) -> None:
    annotator, screen = open_annotator(folder)
    annotator.next_image()
    store = AnnotationStore(folder)
    marked = ImageAnnotation([[2, 2, 9, 9]], ["object"], True, (HEIGHT, WIDTH))
    store.save("img2", marked.marked_from_model(True))
    annotator.reload()
    assert MODEL_ACCEPTED_STATUS in screen.statuses[-1] and screen.reviewed is False


def test_a_mark_that_is_not_a_flag_is_refused() -> None:
    data = {"boxes": [[0, 0, 1, 1]], "labels": ["a"], MODEL_ACCEPTED_KEY: "yes"}
    with pytest.raises(AnnotationError, match=MODEL_ACCEPTED_KEY):
        validate_annotation(data, source="x.pt")
