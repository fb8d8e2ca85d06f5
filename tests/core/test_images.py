"""Images of every common kind open; a broken one says which file it is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_detlab.core.images import (
    ImageReadError,
    contrast_for,
    image_size,
    list_images,
    read_image,
    to_float_rgb,
)

H, W = 12, 20


def _gradient(channels: int | None, dtype: type = np.uint8) -> np.ndarray:
    """A deterministic image with distinct values, so a lossless read can be checked exactly."""
    top = np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else 1.0
    ramp = np.linspace(0, top, H * W).reshape(H, W)
    if channels is None:
        return ramp.astype(dtype)
    return np.stack([np.roll(ramp, k, axis=1) for k in range(channels)], axis=-1).astype(dtype)


@pytest.mark.parametrize(
    ("name", "array"),
    [
        ("rgb.png", _gradient(3)),
        ("rgba.png", _gradient(4)),
        ("gray.png", _gradient(None)),
        ("gray16.png", _gradient(None, np.uint16)),
        ("rgb.tif", _gradient(3)),
        ("gray16.tiff", _gradient(None, np.uint16)),
        ("rgb16.tif", _gradient(3, np.uint16)),
        ("float.tif", _gradient(None, np.float32)),
        ("rgb.bmp", _gradient(3)),
    ],
)
def test_lossless_formats_read_exactly(tmp_path: Path, name: str, array: np.ndarray) -> None:
    path = tmp_path / name
    if path.suffix in (".tif", ".tiff"):
        tifffile.imwrite(path, array)
    else:
        Image.fromarray(array).save(path)
    read = read_image(path)
    assert read.dtype == array.dtype
    np.testing.assert_array_equal(read, array)
    assert image_size(path) == (H, W)


def test_jpeg_rgb_and_gray(tmp_path: Path) -> None:
    rgb, gray = tmp_path / "photo.jpg", tmp_path / "gray.JPEG"
    Image.fromarray(_gradient(3)).save(rgb, quality=95)
    Image.fromarray(_gradient(None)).save(gray, quality=95)
    assert read_image(rgb).shape == (H, W, 3)
    assert read_image(gray).shape == (H, W)
    assert np.abs(read_image(rgb).astype(int) - _gradient(3)).mean() < 4  # lossy, but close
    assert image_size(rgb) == image_size(gray) == (H, W)


@pytest.mark.parametrize(
    ("mode", "shape"),
    [("P", (H, W, 3)), ("LA", (H, W)), ("1", (H, W)), ("CMYK", (H, W, 3))],
)
def test_unusual_pillow_modes_become_plain_arrays(
    tmp_path: Path, mode: str, shape: tuple[int, ...]
) -> None:
    """Palette, gray+alpha, bilevel and CMYK files (CMYK must not pass as RGBA)."""
    suffix = ".jpg" if mode == "CMYK" else ".png"
    path = tmp_path / f"image{suffix}"
    Image.fromarray(_gradient(3)).convert(mode).save(path)
    assert read_image(path).shape == shape


def test_multi_page_tiff_gives_the_first_page(tmp_path: Path) -> None:
    pages = np.stack([_gradient(None) // 2 + k for k in range(5)])
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, pages, photometric="minisblack")
    assert len(tifffile.TiffFile(path).pages) == 5
    np.testing.assert_array_equal(read_image(path), pages[0])
    assert image_size(path) == (H, W)


@pytest.mark.parametrize("channels", [3, 4])
def test_channel_first_tiff_is_moved_to_channel_last(tmp_path: Path, channels: int) -> None:
    array = _gradient(channels)
    path = tmp_path / "planar.tif"
    tifffile.imwrite(path, np.moveaxis(array, -1, 0), photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(read_image(path), array)
    assert image_size(path) == (H, W)


def test_single_channel_tiff_is_two_dimensional(tmp_path: Path) -> None:
    path = tmp_path / "one.tif"
    tifffile.imwrite(path, _gradient(None)[..., None], photometric="minisblack")
    assert read_image(path).shape == (H, W)


@pytest.mark.parametrize(
    ("name", "content"),
    [("broken.png", b"\x89PNG\r\n\x1a\n garbage"), ("empty.jpg", b""), ("text.tif", b"hello")],
)
def test_broken_file_raises_image_read_error_naming_it(
    tmp_path: Path, name: str, content: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=name):
        read_image(path)
    with pytest.raises(ImageReadError, match=name):
        image_size(path)


def test_truncated_jpeg_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "cut.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:400])
    with pytest.raises(ImageReadError, match=r"cut\.jpg"):
        read_image(path)


def test_list_images_natural_order_and_filters(tmp_path: Path) -> None:
    for name in ("img10.png", "img2.PNG", "img1.jpg", "Img3.tif", "img01.png", ".hidden.png",
                 "notes.txt", "scan.v2.tiff", "a.jpeg"):  # fmt: skip
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "folder.png").mkdir()
    names = [p.name for p in list_images(tmp_path)]
    assert names == ["a.jpeg", "img1.jpg", "img01.png", "img2.PNG", "Img3.tif", "img10.png",
                     "scan.v2.tiff"]  # fmt: skip
    with pytest.raises(FileNotFoundError):
        list_images(tmp_path / "nowhere")


def test_to_float_rgb_ranges() -> None:
    u8 = to_float_rgb(np.array([[0, 255]], np.uint8))
    assert u8.shape == (1, 2, 3) and u8.dtype == np.float32
    np.testing.assert_array_equal(u8[0, :, 0], [0, 1])
    # 12-bit data in a 16-bit container is stretched to its own range, not divided by 65535.
    u16 = to_float_rgb(np.array([[100, 4095]], np.uint16))
    np.testing.assert_allclose(u16[0, :, 1], [0, 1])
    rgba = to_float_rgb(np.dstack([_gradient(3), np.zeros((H, W), np.uint8)]))
    np.testing.assert_allclose(rgba, _gradient(3) / 255, atol=1e-7)
    # A float TIFF with NaN pixels still gives finite input in [0, 1].
    floats = to_float_rgb(np.array([[np.nan, 2.0, 4.0]], np.float32))
    assert np.isfinite(floats).all() and floats.min() == 0 and floats.max() == 1
    assert to_float_rgb(np.ones((2, 2), bool)).min() == 1  # all-white stays white
    flat = to_float_rgb(np.full((2, 2), 700, np.uint16))
    assert np.isfinite(flat).all() and 0 <= flat.min() <= flat.max() <= 1
    for array in (_gradient(None, np.uint16), _gradient(3, np.float32), _gradient(4)):
        out = to_float_rgb(array)
        assert out.shape == (H, W, 3) and out.min() >= 0 and out.max() <= 1
        assert out.flags.c_contiguous


def test_contrast_for_8_bit_is_the_full_range_and_wider_images_their_percentiles() -> None:
    assert contrast_for(np.zeros((4, 4, 3), np.uint8)) == ((0.0, 255.0), (0.0, 255.0))
    rng = np.random.default_rng(0)
    cells = rng.integers(1000, 4000, (1200, 1200)).astype(np.uint16)  # a 12-bit camera
    full, (low, high) = contrast_for(cells)
    assert full == (0.0, 65535.0) and 1000 <= low < 1050 and 3950 < high <= 4000
    floats = rng.uniform(-2.0, 3.0, (50, 50)).astype(np.float32)
    full, (low, high) = contrast_for(floats)
    assert full[0] <= low < high <= full[1] and full[0] >= -2.0 and full[1] <= 3.0
    flat = np.full((8, 8), 7.0, np.float32)
    full, (low, high) = contrast_for(flat)
    assert (low, high) == (7.0, 8.0) and full == (7.0, 8.0)  # a slider that can still move
