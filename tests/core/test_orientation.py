"""Photos are read as they are meant to be seen: every EXIF orientation, as other tools do.

``read_image`` and ``image_size`` must agree with Pillow's ``ImageOps.exif_transpose`` (what
galleries, CVAT and OpenCV show) for all eight orientations and every kind of file, and
sizing a folder must not decode its images. Boxes follow the pixels exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageFile, ImageOps, PngImagePlugin

from napari_detlab.core.images import image_size, read_header, read_image
from napari_detlab.core.orientation import (
    orient_boxes,
    orient_pixels,
    orientation_value,
    oriented_size,
)
from oriented_photos import (
    BRIGHT,
    CORNER,
    OBJECT,
    ORIENTATIONS,
    SHOWN,
    STORED_SIZE,
    as_other_tools_show,
    block_box,
    stored_pixels,
    write_photo,
)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_a_photo_reads_as_exif_transpose_shows_it(tmp_path: Path, orientation: int) -> None:
    path = write_photo(tmp_path / "photo.jpg", orientation)
    expected = as_other_tools_show(path)
    shown_size, object_box, _ = SHOWN[orientation]
    assert expected.shape[:2] == shown_size  # the hand-made table agrees with Pillow
    pixels = read_image(path)
    np.testing.assert_array_equal(pixels, expected)
    assert pixels.flags.c_contiguous
    assert image_size(path) == shown_size
    assert read_header(path).stored_size == STORED_SIZE
    assert read_header(path).orientation == orientation
    assert block_box(pixels, BRIGHT) == object_box


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_boxes_move_with_the_pixels_to_the_known_answer(orientation: int) -> None:
    shown_size, object_box, corner_box = SHOWN[orientation]
    moved = orient_boxes([OBJECT, CORNER], STORED_SIZE, orientation)
    np.testing.assert_array_equal(moved, [object_box, corner_box])
    assert oriented_size(STORED_SIZE, orientation) == shown_size
    # Any box, not only the test blocks': the pixels it covers are the ones moved there.
    rng = np.random.default_rng(orientation)
    for _ in range(20):
        x1, x2 = sorted(rng.choice(STORED_SIZE[1] + 1, 2, replace=False))
        y1, y2 = sorted(rng.choice(STORED_SIZE[0] + 1, 2, replace=False))
        marked = np.zeros(STORED_SIZE, bool)
        marked[y1:y2, x1:x2] = True
        (bx1, by1, bx2, by2) = orient_boxes([[x1, y1, x2, y2]], STORED_SIZE, orientation)[0]
        expected = np.zeros(shown_size, bool)
        expected[int(by1) : int(by2), int(bx1) : int(bx2)] = True
        np.testing.assert_array_equal(orient_pixels(marked, orientation), expected)


def _tagged_tiff(path: Path, array: np.ndarray, orientation: int, **kwargs: object) -> Path:
    tifffile.imwrite(path, array, extratags=[(0x0112, "H", 1, orientation, True)], **kwargs)
    return path


def _tagged_pillow(path: Path, array: np.ndarray, orientation: int, **kwargs: object) -> Path:
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(path, exif=exif, **kwargs)
    return path


def test_grayscale_rgba_sixteen_bit_and_webp_photos_are_oriented(tmp_path: Path) -> None:
    """Every kind of image keeps its dtype and channels and is turned to the known answer,
    as Pillow turns it. (Pillow itself mis-turns grayscale TIFFs tagged 5-8: those are
    checked against the known answer only.)"""
    rgb = stored_pixels()
    gray16 = (rgb[..., 0].astype(np.uint16) * 257) // 3
    rgba = np.dstack([rgb, np.full(STORED_SIZE, 200, np.uint8)])
    as_pillow = [
        (_tagged_pillow(tmp_path / "gray.jpg", rgb[..., 0], 6, quality=100), 6),
        (_tagged_pillow(tmp_path / "rgba.png", rgba, 8), 8),
        (_tagged_pillow(tmp_path / "lossless.webp", rgb, 3, lossless=True), 3),
        (_tagged_tiff(tmp_path / "rgb.tiff", rgb, 7, photometric="rgb"), 7),
        (_tagged_tiff(tmp_path / "gray16_mirrored.tif", gray16, 2), 2),
    ]
    gray16_turned = _tagged_tiff(tmp_path / "gray16.tif", gray16, 5)
    for path, orientation in [*as_pillow, (gray16_turned, 5)]:
        pixels = read_image(path)
        if path != gray16_turned:
            np.testing.assert_array_equal(pixels, as_other_tools_show(path), err_msg=path.name)
        assert image_size(path) == pixels.shape[:2] == SHOWN[orientation][0], path.name
        assert block_box(pixels, pixels.max()) == SHOWN[orientation][1], path.name
    np.testing.assert_array_equal(read_image(gray16_turned), gray16.T)  # 5: transposed
    assert read_image(gray16_turned).dtype == np.uint16 and read_image(as_pillow[0][0]).ndim == 2
    assert read_image(as_pillow[1][0]).shape == (40, 24, 4)


def test_a_multi_page_tiff_gives_its_first_page_oriented(tmp_path: Path) -> None:
    pages = np.stack([stored_pixels()[..., 0] // 2 + k for k in range(3)])
    path = _tagged_tiff(tmp_path / "stack.tif", pages, 6, photometric="minisblack")
    np.testing.assert_array_equal(read_image(path), orient_pixels(pages[0], 6))
    assert image_size(path) == (40, 24)


@pytest.mark.parametrize("value", [0, 9, 255])
def test_an_orientation_outside_one_to_eight_leaves_the_pixels_as_stored(
    tmp_path: Path, value: int
) -> None:
    path = write_photo(tmp_path / "odd.jpg", value)
    np.testing.assert_array_equal(read_image(path), as_other_tools_show(path))
    assert image_size(path) == STORED_SIZE and read_header(path).orientation == 1
    assert orientation_value("junk") == orientation_value(None) == 1


def _png_chunks(data: bytes) -> list[bytes]:
    """A PNG's chunks (length, type, data, CRC), after the 8-byte signature."""
    chunks, position = [], 8
    while position < len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        chunks.append(data[position : position + 12 + length])
        position += 12 + length
    return chunks


def _move_after_pixels(path: Path, kind: bytes) -> None:
    """Rewrite a PNG with its ``kind`` chunk after the pixel data, as some writers place it."""
    data = path.read_bytes()
    chunks = _png_chunks(data)
    moved = [chunk for chunk in chunks if chunk[4:8] == kind]
    rest = [chunk for chunk in chunks if chunk[4:8] != kind]
    assert moved, f"no {kind!r} chunk to move"
    path.write_bytes(data[:8] + b"".join(rest[:-1] + moved + rest[-1:]))  # before IEND


def _count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    decoded: list[str] = []
    load = ImageFile.ImageFile.load

    def counting(self: ImageFile.ImageFile) -> object:
        decoded.append(str(self.format))
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting)
    return decoded


def test_sizing_a_folder_reads_headers_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """PNGs too: Pillow decodes a whole PNG to look for EXIF after the pixels, unless told
    there is none; a text chunk after the pixels that cannot hold an orientation is skipped."""
    rgb = stored_pixels()
    plain = tmp_path / "plain.png"
    Image.fromarray(rgb).save(plain)
    commented = tmp_path / "commented.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "written after the pixels")
    Image.fromarray(rgb).save(commented, pnginfo=info)
    _move_after_pixels(commented, b"tEXt")
    files = [
        plain,
        commented,
        _tagged_pillow(tmp_path / "early.png", rgb, 6),  # Pillow writes eXIf before IDAT
        write_photo(tmp_path / "photo.jpg", 8),
        _tagged_pillow(tmp_path / "photo.webp", rgb, 6, lossless=True),
        _tagged_tiff(tmp_path / "scan.tif", rgb[..., 0], 6),
    ]
    decoded = _count_decodes(monkeypatch)
    sizes = [image_size(path) for path in files]
    assert decoded == []
    assert sizes == [STORED_SIZE, STORED_SIZE, (40, 24), (40, 24), (40, 24), (40, 24)]


def test_exif_after_the_pixels_of_a_png_still_counts(tmp_path: Path) -> None:
    late = _tagged_pillow(tmp_path / "late.png", stored_pixels(), 6)
    _move_after_pixels(late, b"eXIf")
    assert _png_chunks(late.read_bytes())[-2][4:8] == b"eXIf"
    with Image.open(late) as image:
        assert "exif" not in image.info  # not seen before the pixels are read
        assert ImageOps.exif_transpose(image).size == (24, 40)  # (width, height)
    assert image_size(late) == (40, 24)
    np.testing.assert_array_equal(read_image(late), as_other_tools_show(late))


# A count past the end of the block; an orientation stored as a fraction (Pillow reads NaN).
DAMAGED_EXIF = {
    "truncated": b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff",
    "fraction": b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x05\x00\x00\x00\x01"
    b"\x00\x00\x00\x1a\x00\x00\x00\x00\x00\x00\x00\x06\x00\x00\x00\x00",
}


@pytest.mark.parametrize("damage", DAMAGED_EXIF)
@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_a_damaged_exif_block_reads_the_photo_as_stored(tmp_path: Path, damage: str) -> None:
    """A phone photo with a broken EXIF block still opens, as stored, as exif_transpose
    leaves it."""
    path = tmp_path / "damaged.jpg"
    Image.fromarray(stored_pixels()).save(path, exif=DAMAGED_EXIF[damage], quality=100)
    np.testing.assert_array_equal(read_image(path), as_other_tools_show(path))
    assert image_size(path) == STORED_SIZE


def test_an_exif_parser_failure_does_not_make_a_photo_unreadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_photo(tmp_path / "photo.jpg", 6)

    def broken(self: Image.Image) -> Image.Exif:
        raise SyntaxError("not a TIFF file")

    monkeypatch.setattr(Image.Image, "getexif", broken)
    assert read_image(path).shape[:2] == image_size(path) == STORED_SIZE
