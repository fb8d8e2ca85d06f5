"""Annotated images that cannot be decoded: refused before training, every one of them named.

What users bring: a JPEG cut short by an interrupted copy, a zero-byte ``.png``, a text file
with an image's name. Found up front, all of them are listed at once with the fix; an image
that breaks while a run goes on ends it with one line, not with the data loader's traceback.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_engine import quick_options, small_config

from napari_detlab.core.annotations.sample_data import write_synthetic_dataset
from napari_detlab.core.images import ImageReadError, read_image, unreadable_images
from napari_detlab.core.training.engine import train
from napari_detlab.core.training.events import EpochEnded
from napari_detlab.core.training.options import TrainingInputError


def break_images(folder: Path) -> dict[str, str]:
    """Truncate, empty and replace with text three annotated JPEGs; ``{name: reason}``."""
    truncated, empty, text = (folder / f"img_000{i}.jpg" for i in (1, 3, 4))
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    empty.write_bytes(b"")
    text.write_text("not an image, a note someone saved with the wrong name\n")
    return {
        truncated.name: "the file is cut short",
        empty.name: "the file is empty",
        text.name: "its content is not an image of a known format",
    }


@pytest.fixture
def broken_dataset(tmp_path) -> tuple[Path, dict[str, str]]:
    folder = write_synthetic_dataset(
        tmp_path / "data", 6, size=(64, 64), seed=5, max_objects=3, suffix=".jpg"
    )
    broken = break_images(folder)
    # An image nobody annotated does not train: broken or not, it is no reason to refuse.
    (folder / "zz_never_annotated.png").write_bytes(b"")
    return folder, broken


def test_every_broken_annotated_image_is_named_before_anything_is_written(broken_dataset, tmp_path):
    folder, broken = broken_dataset
    with pytest.raises(TrainingInputError) as refused:
        train(folder, tmp_path / "run", small_config(64), quick_options())
    message = str(refused.value)
    assert "\n" not in message
    assert "3 annotated image(s) cannot be read" in message
    for name, reason in broken.items():
        assert f"{name} ({reason})" in message
    assert "zz_never_annotated" not in message and "img_0000" not in message
    assert "delete it and its annotation file" in message  # the fix
    assert not (tmp_path / "run").exists()


def test_the_check_finds_exactly_the_files_that_cannot_be_decoded(tmp_path):
    rng = np.random.default_rng(0)
    good = {
        "photo.jpg": rng.integers(0, 255, (300, 400, 3), dtype=np.uint8),
        "tiny.jpg": rng.integers(0, 255, (5, 3, 3), dtype=np.uint8),  # under 8 px: no 1/8 scale
        "gray.jpeg": rng.integers(0, 255, (64, 48), dtype=np.uint8),
        "scan.png": rng.integers(0, 255, (40, 30, 3), dtype=np.uint8),
    }
    for name, pixels in good.items():
        Image.fromarray(pixels).save(tmp_path / name)
    Image.fromarray(good["photo.jpg"]).save(tmp_path / "progressive.jpg", progressive=True)
    Image.fromarray(good["photo.jpg"]).convert("CMYK").save(tmp_path / "cmyk.jpg")
    # Some cameras append data after the JPEG's end marker: decoded to be sure, and whole.
    trailer = (tmp_path / "photo.jpg").read_bytes() + b"maker notes after the image"
    (tmp_path / "trailer.jpg").write_bytes(trailer)
    png = tmp_path / "cut.png"
    Image.fromarray(good["scan.png"]).save(png)
    png.write_bytes(png.read_bytes()[:-40])
    progressive_cut = tmp_path / "progressive_cut.jpg"
    progressive_cut.write_bytes((tmp_path / "progressive.jpg").read_bytes()[:4000])
    (tmp_path / "empty.png").write_bytes(b"")
    paths = sorted(tmp_path.iterdir())

    found = unreadable_images(paths, threads=3)
    assert list(found) == [tmp_path / "cut.png", tmp_path / "empty.png", progressive_cut]
    assert found[tmp_path / "empty.png"] == "the file is empty"
    # The check agrees with what training decodes: read_image fails on exactly those.
    for path in paths:
        if path in found:
            with pytest.raises(ImageReadError):
                read_image(path)
        else:
            read_image(path)


def test_a_read_error_names_the_file_once(tmp_path):
    """Pillow repeats the path in its message; the user reads it once."""
    path = tmp_path / "notes.png"
    path.write_text("hello")
    with pytest.raises(ImageReadError) as error:
        read_image(path)
    assert str(error.value).count(str(path)) == 1
    assert str(error.value) == f"{path}: cannot be read as an image ({error.value.reason})"


def corrupt_inside(path: Path) -> None:
    """Zero 64 bytes in the middle of the file: it still ends as a whole PNG does."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("workers", [0, 1], ids=["in-process", "loader-worker"])
@pytest.mark.parametrize("broken", ["from the start", "after epoch 1"])
def test_an_image_the_check_lets_through_ends_the_run_with_one_line(
    tmp_path, caplog, workers, broken
):
    """A complete file with corrupt data inside passes the cheap check (its pixels are not
    decoded), as does a file that breaks during the run: the data loader meets it, and the run
    fails naming it and how to go on, with no traceback, also from a DataLoader worker."""
    folder = write_synthetic_dataset(tmp_path / "data", 4, size=(64, 64), seed=6, max_objects=3)
    images = sorted(folder.glob("img_*.png"))

    def break_them(event: object = None) -> None:
        if event is None or isinstance(event, EpochEnded):
            for image in images:
                corrupt_inside(image)

    if broken == "from the start":
        break_them()
        assert not unreadable_images(images)
    caplog.set_level(logging.WARNING)
    options = quick_options(epochs=3, num_workers=workers, val_fraction=0.0, batch_size=4)
    on_event = break_them if broken == "after epoch 1" else None
    finished = train(folder, tmp_path / "run", small_config(64), options, on_event=on_event)

    assert finished.status == "failed"
    first, *rest = finished.message.splitlines()
    assert not rest
    assert first.startswith(f"{folder / 'img_000'}")
    assert ": cannot be read as an image (" in first  # what the decoder said, in brackets
    assert "Traceback" not in first and "DataLoader worker" not in first
    last = tmp_path / "run" / "last.pt"
    assert first.endswith(f"resume from {last}" if broken == "after epoch 1" else "train again")
    assert last.is_file() == (broken == "after epoch 1")
    assert not [r for r in caplog.records if r.exc_info]  # nothing logged a traceback


def test_an_image_broken_after_a_check_is_named_by_the_next_one(tmp_path, monkeypatch):
    """The check keeps each image's verdict until the image changes: one that another
    program cuts short after a passing check is found by the next (files are trusted at
    once here, see tests/core/annotations/test_index.py for the settle window)."""
    from napari_detlab.core.annotations import file_cache

    monkeypatch.setattr(file_cache, "SETTLE_NS", 0)
    folder = write_synthetic_dataset(
        tmp_path / "data", 6, size=(64, 64), seed=5, max_objects=3, suffix=".jpg"
    )
    with pytest.raises(TrainingInputError, match="needs a run"):  # got past the image check
        _refuse_after_the_check(folder, tmp_path, monkeypatch)
    broken = break_images(folder)
    with pytest.raises(TrainingInputError) as refused:
        train(folder, tmp_path / "run", small_config(64), quick_options())
    for name, reason in broken.items():
        assert f"{name} ({reason})" in str(refused.value)


def _refuse_after_the_check(folder: Path, tmp_path: Path, monkeypatch) -> None:
    """Run training's input checks only: stop the run right after they pass."""
    from napari_detlab.core.training import engine

    real = engine._check_images

    def check_then_stop(store, images):
        real(store, images)
        raise TrainingInputError("the test needs a run to stop here")

    monkeypatch.setattr(engine, "_check_images", check_then_stop)
    try:
        train(folder, tmp_path / "run", small_config(64), quick_options())
    finally:
        monkeypatch.setattr(engine, "_check_images", real)
