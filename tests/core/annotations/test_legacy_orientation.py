"""Annotations made before orientation was honoured: converted exactly, nothing lost.

Files of version 1 hold boxes in a photo's stored pixels. On a photo whose EXIF orientation is
not 1 they are moved onto the photo as shown when read, and written as version 2 at the next
save; for every other image nothing changes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from napari_detlab.core.annotations.annotation import AnnotationError, ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.images import read_header, read_image
from oriented_photos import (
    BRIGHT,
    CORNER,
    GREY,
    OBJECT,
    ORIENTATIONS,
    SHOWN,
    STORED_SIZE,
    mean_inside,
    save_version_1,
    stored_pixels,
    write_photo,
)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_a_version_1_file_is_moved_onto_the_photo_as_shown(
    tmp_path: Path, orientation: int
) -> None:
    photo = write_photo(tmp_path / "photo.jpg", orientation)
    store = AnnotationStore(tmp_path)
    written = save_version_1(store.path_for(photo), reviewed=True, difficult=[False, True])
    before = written.read_bytes()
    shown_size, object_box, corner_box = SHOWN[orientation]

    loaded = store.load(photo)
    np.testing.assert_array_equal(loaded.boxes, [object_box, corner_box])
    assert loaded.image_size == shown_size and loaded.labels == ["head", "tag"]
    assert loaded.reviewed and loaded.extra == {"difficult": [False, True]}
    pixels = read_image(photo)  # the boxes cover their objects on the image the user sees
    assert mean_inside(pixels, loaded.boxes[0]) > BRIGHT - 10
    assert abs(mean_inside(pixels, loaded.boxes[1]) - GREY) < 10
    assert store.load("photo").same_as(loaded)  # by stem, as training and Review ask
    assert written.read_bytes() == before  # reading alone never rewrites a file

    store.save(photo, loaded)  # the next save writes version 2, in the shown pixels
    data = torch.load(written, weights_only=True)
    assert data["version"] == 2 and data["image_size"] == list(shown_size)
    np.testing.assert_array_equal(data["boxes"].numpy(), [object_box, corner_box])
    again = store.load(photo)  # not turned a second time
    np.testing.assert_array_equal(again.boxes, loaded.boxes)
    assert again.image_size == shown_size


def test_a_version_1_file_without_a_size_uses_the_photos_stored_size(tmp_path: Path) -> None:
    photo = write_photo(tmp_path / "photo.jpg", 6)
    store = AnnotationStore(tmp_path)
    save_version_1(store.path_for(photo), image_size=None)
    loaded = store.load(photo)
    np.testing.assert_array_equal(loaded.boxes, SHOWN[6][1:])
    # A file without a size is held to the image's own (store rule); it comes back carrying
    # that size, as shown.
    assert loaded.image_size == read_header(photo).size


def test_a_version_1_file_is_checked_against_the_size_it_was_written_for(tmp_path: Path) -> None:
    """The grey block lies beyond the turned photo's 24-pixel width in stored pixels: valid
    there, and inside the photo once moved. A box outside the stored frame is still refused."""
    photo = write_photo(tmp_path / "photo.jpg", 8)
    store = AnnotationStore(tmp_path)
    save_version_1(store.path_for(photo))
    assert CORNER[2] > SHOWN[8][0][1]
    np.testing.assert_array_equal(store.load(photo).boxes, SHOWN[8][1:])
    save_version_1(store.path_for(photo), [(30.0, 20.0, 45.0, 24.0)], ["tag"])
    with pytest.raises(AnnotationError, match=r"outside the 40x24 image"):
        store.load(photo)


def test_nothing_changes_for_images_without_an_orientation(tmp_path: Path) -> None:
    """Orientation 1, a PNG without EXIF, a file of version 2 and an unreadable image."""
    write_photo(tmp_path / "upright.jpg", 1)
    Image.fromarray(stored_pixels()).save(tmp_path / "scan.png")
    write_photo(tmp_path / "new.jpg", 6)
    (tmp_path / "broken.jpg").write_bytes(b"not a photo")
    store = AnnotationStore(tmp_path)
    for stem in ("upright", "scan", "broken"):
        save_version_1(store.path_for(stem), note="kept")
    store.save("new", ImageAnnotation([OBJECT], ["head"], True, SHOWN[6][0]))
    for stem in ("upright", "scan", "broken"):
        loaded = store.load(stem)
        np.testing.assert_array_equal(loaded.boxes, [OBJECT, CORNER])  # bit for bit
        assert loaded.image_size == STORED_SIZE and loaded.extra == {"note": "kept"}
    np.testing.assert_array_equal(store.load("new").boxes, [OBJECT])  # version 2: as written
