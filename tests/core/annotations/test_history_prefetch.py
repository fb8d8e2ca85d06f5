"""The Annotator's Qt-free helpers: undo snapshots and the neighbour-image prefetcher."""

from __future__ import annotations

import threading
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.history import AnnotationHistory
from napari_detlab.core.annotations.prefetch import ImagePrefetcher
from napari_detlab.core.images import ImageReadError, read_image


def test_history_pops_the_last_state_per_image_and_is_bounded() -> None:
    history = AnnotationHistory(depth=2)
    for n in range(3):
        history.push("a", ImageAnnotation(np.ones((n, 4)) * [0, 0, 1, 1], ["x"] * n))
    history.push("b", ImageAnnotation())
    assert len(history.pop("a")) == 2
    assert len(history.pop("a")) == 1
    assert history.pop("a") is None  # the oldest fell off (depth 2)
    assert history.can_undo("b") and not history.can_undo("a")


def test_history_snapshots_do_not_change_with_the_live_annotation() -> None:
    history = AnnotationHistory()
    live = ImageAnnotation(np.array([[0, 0, 5, 5]]), ["x"])
    history.push("a", live)
    live.boxes[0, 2] = 99
    live.labels.append("y")
    snapshot = history.pop("a")
    assert snapshot.boxes[0, 2] == 5 and snapshot.labels == ["x"]


def test_prefetcher_returns_the_same_pixels_and_reports_broken_files(tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    iio.imwrite(good, np.arange(48, dtype=np.uint8).reshape(4, 4, 3))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"nope")
    prefetcher = ImagePrefetcher()
    try:
        prefetcher.prefetch([good, broken])
        np.testing.assert_array_equal(prefetcher.get(good), read_image(good))
        with pytest.raises(ImageReadError, match=r"broken\.png"):
            prefetcher.get(broken)
        np.testing.assert_array_equal(prefetcher.get(tmp_path / "good.png"), read_image(good))
    finally:
        prefetcher.shutdown()


def test_prefetcher_decodes_in_the_background_and_forgets_far_images(tmp_path: Path) -> None:
    read: list[tuple[str, str]] = []
    started, release = threading.Event(), threading.Event()

    def reader(path: Path) -> np.ndarray:
        read.append((path.name, threading.current_thread().name))
        started.set()
        release.wait(5)
        return np.zeros((2, 2), np.uint8)

    prefetcher = ImagePrefetcher(reader)
    try:
        prefetcher.prefetch([tmp_path / "a.png", tmp_path / "b.png"])
        assert started.wait(5)  # a is being decoded by the worker, b waits in the queue
        prefetcher.prefetch([tmp_path / "c.png"])  # a and b are no longer neighbours
        assert set(prefetcher._futures) == {tmp_path / "c.png"}
        release.set()
        prefetcher.get(tmp_path / "c.png")
        names = [name for name, _ in read]
        assert "b.png" not in names  # cancelled before it started
        assert read[0] == ("a.png", read[0][1]) and read[0][1].startswith("detlab-prefetch")
    finally:
        prefetcher.shutdown()
