"""Stacks as planes: what a folder lists, what each plane reads, where its boxes are stored."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import torch

from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.images import (
    ImageReadError,
    image_size,
    read_image,
    read_stack,
    unreadable_images,
)
from napari_detlab.core.stacks import PlaneStack, plane_count, plane_path, split_plane
from napari_detlab.core.training.dataset import DetectionDataset
from napari_detlab.core.training.options import TrainingInputError
from stack_images import BRIGHT, DARK, HEIGHT, WIDTH, block_of, plane_pixels, write_stack


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A z-stack of 3 (a page per plane), a single PNG, an RGB TIFF, a stack of 4 written as
    one page of planar samples, a T x Z stack of 2 x 2 and a z-stack of 2 RGB planes."""
    folder = tmp_path / "images"
    write_stack(folder / "a.tif", 3)
    iio.imwrite(folder / "b.png", np.zeros((HEIGHT, WIDTH, 3), np.uint8))
    tifffile.imwrite(folder / "c_rgb.tif", np.zeros((HEIGHT, WIDTH, 3), np.uint8))
    write_stack(folder / "d.tif", 4, pages=False)
    tz = np.stack([plane_pixels(k) for k in range(4)]).reshape(2, 2, HEIGHT, WIDTH)
    tifffile.imwrite(folder / "e_tz.tif", tz, photometric="minisblack")
    zrgb = np.zeros((2, HEIGHT, WIDTH, 3), np.uint8)
    zrgb[1, ..., 0] = 255
    tifffile.imwrite(folder / "f_zrgb.tif", zrgb)
    return folder


def test_a_folder_lists_each_plane_of_a_stack_in_order_and_single_images_as_files(folder):
    names = [image.name for image in AnnotationStore(folder).images]
    assert names == [
        "a.plane-0000.tif", "a.plane-0001.tif", "a.plane-0002.tif",
        "b.png",
        "c_rgb.tif",  # a trailing axis of 3 is colour: one image
        "d.plane-0000.tif", "d.plane-0001.tif", "d.plane-0002.tif", "d.plane-0003.tif",
        "e_tz.plane-0000.tif", "e_tz.plane-0001.tif", "e_tz.plane-0002.tif", "e_tz.plane-0003.tif",
        "f_zrgb.plane-0000.tif", "f_zrgb.plane-0001.tif",
    ]  # fmt: skip


@pytest.mark.parametrize("stack", ["a", "d", "e_tz"])
def test_each_plane_reads_its_own_pixels_and_size(folder, stack):
    for plane in range(plane_count(folder / f"{stack}.tif")):
        path = plane_path(folder / f"{stack}.tif", plane)
        np.testing.assert_array_equal(read_image(path), plane_pixels(plane))
        assert image_size(path) == (HEIGHT, WIDTH)
    stack_pixels = read_stack(plane_path(folder / f"{stack}.tif", 1))
    assert stack_pixels.shape[1:] == (HEIGHT, WIDTH)
    np.testing.assert_array_equal(stack_pixels[1], plane_pixels(1))


def test_colour_planes_stay_colour(folder):
    second = read_image(folder / "f_zrgb.plane-0001.tif")
    assert second.shape == (HEIGHT, WIDTH, 3) and second[0, 0].tolist() == [255, 0, 0]
    assert read_image(folder / "c_rgb.tif").shape == (HEIGHT, WIDTH, 3)


def test_each_plane_has_its_own_annotation_file_and_single_images_keep_theirs(folder):
    store = AnnotationStore(folder)
    second = folder / "a.plane-0001.tif"
    written = store.save(second, ImageAnnotation([block_of(1)], ["cell"], True))
    assert written == folder / "annotations" / "a.plane-0001.pt"
    on_disk = torch.load(written, weights_only=True)
    np.testing.assert_array_equal(on_disk["boxes"].numpy(), [block_of(1)])
    assert store.load(folder / "a.plane-0000.tif") is None  # the other planes are untouched
    assert store.load(folder / "a.plane-0002.tif") is None
    assert not (folder / "annotations" / "a.pt").exists()
    assert store.save("b.png", ImageAnnotation([], [], True)) == folder / "annotations" / "b.pt"
    assert [image.name for image, _ in store.annotated()] == ["a.plane-0001.tif", "b.png"]
    assert store.next_unannotated(after=0) == 2


def test_a_box_outside_a_plane_is_refused_as_for_any_image(folder):
    from napari_detlab.core.annotations.annotation import AnnotationError

    store = AnnotationStore(folder)
    with pytest.raises(AnnotationError, match=r"a\.plane-0002\.pt"):
        store.save("a.plane-0002", ImageAnnotation([[0, 0, WIDTH + 20, 10]], ["cell"], True))


def test_training_reads_the_plane_each_annotation_belongs_to(folder):
    store = AnnotationStore(folder)
    for plane in (0, 2):
        store.save(f"a.plane-{plane:04d}", ImageAnnotation([block_of(plane)], ["cell"], True))
    dataset = DetectionDataset(store, None, ["cell"])
    assert dataset.stems == ["a.plane-0000", "a.plane-0002"]
    for index, plane in enumerate((0, 2)):
        image, target, _ = dataset[index]
        x1, y1, x2, y2 = (int(v) for v in target["boxes"][0])
        assert (x1, y1, x2, y2) == block_of(plane)
        np.testing.assert_allclose(image[:, y1:y2, x1:x2].numpy(), BRIGHT / 255, rtol=1e-6)
        other_x1, other_y1, other_x2, other_y2 = block_of(1)  # plane 1's block is dark here
        np.testing.assert_allclose(
            image[:, other_y1:other_y2, other_x1:other_x2].numpy(), DARK / 255, rtol=1e-6
        )


def test_a_real_file_named_like_a_plane_is_that_file(tmp_path):
    write_stack(tmp_path / "a.tif", 3)
    real = tmp_path / "a.plane-0001.tif"
    tifffile.imwrite(real, np.full((10, 12), 7, np.uint8))
    assert split_plane(real) is None
    assert read_image(real).shape == (10, 12)
    assert split_plane(tmp_path / "a.plane-0002.tif") == (tmp_path / "a.tif", 2)
    assert split_plane(tmp_path / "gone.plane-0002.tif") is None  # no such stack


def test_a_plane_past_the_end_or_a_broken_stack_is_named_unreadable(tmp_path):
    write_stack(tmp_path / "a.tif", 3)
    with pytest.raises(ImageReadError, match=r"a\.plane-0005\.tif: .*3 plane"):
        read_image(tmp_path / "a.plane-0005.tif")
    (tmp_path / "b.tif").write_bytes(b"II*\x00 not really a tiff")
    assert plane_count(tmp_path / "b.tif") == 1  # listed as one image...
    assert list(unreadable_images([tmp_path / "b.tif"])) == [tmp_path / "b.tif"]  # ...unreadable


def test_the_plane_count_follows_the_file(tmp_path):
    path = write_stack(tmp_path / "a.tif", 3)
    assert plane_count(path) == 3
    write_stack(path, 5)  # rewritten by another program: counted again
    assert plane_count(path) == 5
    assert [p.name for p in AnnotationStore(tmp_path).images][-1] == "a.plane-0004.tif"


def test_a_stack_is_decoded_plane_by_plane_as_the_slider_asks(tmp_path):
    write_stack(tmp_path / "a.tif", 5)
    decoded: list[str] = []

    def reader(path: Path) -> np.ndarray:
        decoded.append(path.name)
        return read_image(path)

    planes = [plane_path(tmp_path / "a.tif", k) for k in range(5)]
    stack = PlaneStack(planes, reader, plane_pixels(0), keep=2)
    assert stack.shape == (5, HEIGHT, WIDTH) and stack.dtype == np.uint8 and len(stack) == 5
    np.testing.assert_array_equal(stack[3], plane_pixels(3))  # napari's slice at plane 3
    np.testing.assert_array_equal(stack[(3, slice(None), slice(None))], plane_pixels(3))
    assert decoded == ["a.plane-0003.tif"]  # one plane decoded, once
    np.testing.assert_array_equal(
        stack[1:3, 0:2], np.stack([plane_pixels(1), plane_pixels(2)])[:, 0:2]
    )
    assert decoded == ["a.plane-0003.tif", "a.plane-0001.tif", "a.plane-0002.tif"]
    np.testing.assert_array_equal(np.asarray(stack)[4], plane_pixels(4))
    assert len(read_stack(planes[2])) == 5


LAYOUTS = {  # what tifffile writes, and the planes a person means
    "grey": (np.zeros((20, 30), np.uint16), {}, 1),
    "rgb": (np.zeros((20, 30, 3), np.uint8), {}, 1),
    "z5": (np.zeros((5, 20, 30), np.uint8), {}, 5),
    "z3 grey in one page": (
        np.zeros((3, 20, 30), np.uint8),
        {"photometric": "minisblack", "planarconfig": "separate"},
        3,
    ),
    "planar colour": (np.zeros((3, 20, 30), np.uint8), {"photometric": "rgb"}, 1),
    "planar colour stack": (np.zeros((2, 3, 20, 30), np.uint8), {"photometric": "rgb"}, 2),
    "imagej z4": (np.zeros((4, 20, 30), np.uint8), {"imagej": True}, 4),
    "imagej contiguous": (np.zeros((4, 20, 30), np.uint8), {"imagej": True, "contiguous": True}, 4),
    "imagej grey": (np.zeros((20, 30), np.uint8), {"imagej": True}, 1),
    "no description": (np.zeros((20, 30), np.uint8), {"description": None, "metadata": None}, 1),
}


@pytest.mark.parametrize("byteorder", ["<", ">"])
@pytest.mark.parametrize("bigtiff", [False, True])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_planes_are_counted_right_for_every_tiff_layout(tmp_path, layout, bigtiff, byteorder):
    data, options, planes = LAYOUTS[layout]
    if options.get("imagej") and (bigtiff or byteorder == ">"):
        pytest.skip("ImageJ files are classic little-endian TIFFs")
    path = tmp_path / "s.tif"
    tifffile.imwrite(path, data, bigtiff=bigtiff, byteorder=byteorder, **options)
    assert plane_count(path) == planes


def test_trainings_image_check_keeps_a_planes_verdict_until_its_stack_changes(
    tmp_path, monkeypatch
):
    from napari_detlab.core.annotations import file_cache
    from napari_detlab.core.training import engine

    monkeypatch.setattr(file_cache, "SETTLE_NS", 0)  # trust stamps at once
    checked: list[str] = []

    def counting(paths, **kwargs):
        checked.extend(path.name for path in paths)
        return unreadable_images(paths, **kwargs)

    monkeypatch.setattr(engine, "unreadable_images", counting)
    write_stack(tmp_path / "a.tif", 3)
    store = AnnotationStore(tmp_path)
    engine._check_images(store, store.images)
    assert checked == ["a.plane-0000.tif", "a.plane-0001.tif", "a.plane-0002.tif"]
    engine._check_images(store, store.images)
    assert len(checked) == 3  # nothing decoded again
    (tmp_path / "a.tif").write_bytes(b"II*\x00broken")  # the stack is replaced by a bad file
    with pytest.raises(TrainingInputError, match=r"a\.plane-0000\.tif"):
        engine._check_images(store, store.images)
