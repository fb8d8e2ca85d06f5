"""Fixtures for the widget tests: tiny image folders of every kind a user brings."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
from napari.utils.notifications import notification_manager

from napari_detlab._qt.napari_internals import viewer_canvas


def write_images(folder: Path, count: int = 3, size: tuple[int, int] = (40, 60)) -> list[Path]:
    """``count`` small RGB PNGs named ``img1.png`` ... with distinct pixels."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"img{i + 1}.png"
        iio.imwrite(path, rng.integers(0, 255, (*size, 3), dtype=np.uint8))
        paths.append(path)
    return paths


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Three 40x60 RGB PNGs, nothing annotated."""
    write_images(tmp_path / "images")
    return tmp_path / "images"


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    """One image of each kind: RGB JPEG, grayscale PNG, RGBA PNG, 16-bit TIFF, a broken file."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    rng = np.random.default_rng(1)
    iio.imwrite(folder / "a_rgb.jpg", rng.integers(0, 255, (30, 50, 3), dtype=np.uint8))
    iio.imwrite(folder / "b_gray.png", rng.integers(0, 255, (32, 48), dtype=np.uint8))
    (folder / "c_broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not an image")
    iio.imwrite(folder / "d_rgba.png", rng.integers(0, 255, (36, 44, 4), dtype=np.uint8))
    tifffile.imwrite(folder / "e_16bit.tif", rng.integers(1000, 4000, (40, 40), dtype=np.uint16))
    return folder


@pytest.fixture
def annotator(make_napari_viewer):
    """A viewer with the Annotator docked; call it with a folder to open."""
    from napari_detlab._qt.annotator import AnnotatorWidget

    def make(folder: Path) -> tuple[object, AnnotatorWidget]:
        viewer = make_napari_viewer()
        widget = AnnotatorWidget(viewer)
        viewer.window.add_dock_widget(widget, name="Annotator")
        widget.open_folder(folder)
        return viewer, widget

    return make


@pytest.fixture
def notifications():
    """Every napari notification shown during the test, as text."""
    seen: list[str] = []

    def record(notification) -> None:
        seen.append(str(notification.message))

    notification_manager.notification_ready.connect(record)
    yield seen
    notification_manager.notification_ready.disconnect(record)


@pytest.fixture
def press():
    """``press(viewer, key, modifier=None)``: a real key press on the canvas.

    It goes through Qt, vispy and napari's keymap lookup, as a user's would; ``modifier`` is
    a ``Qt.KeyboardModifier`` (none by default).
    """
    return _press


def _press(viewer, key, modifier=None) -> None:
    from qtpy.QtCore import Qt
    from qtpy.QtTest import QTest

    held = Qt.KeyboardModifier.NoModifier if modifier is None else modifier
    QTest.keyClick(viewer_canvas(viewer).native, key, held)


@pytest.fixture
def send_mouse():
    """``send_mouse(viewer, kind, dx, dy, buttons=None)``: a real Qt mouse event on the canvas.

    ``(dx, dy)`` are screen pixels from the canvas centre, ``kind`` a ``QEvent.Type`` (press,
    move, release) and ``buttons`` the buttons held (none by default). Presses and releases
    use the left button, as a user drawing would.
    """
    return _send_mouse


def _send_mouse(viewer, kind, dx: float, dy: float, buttons=None) -> None:
    from qtpy.QtCore import QEvent, QPointF, Qt
    from qtpy.QtGui import QMouseEvent
    from qtpy.QtWidgets import QApplication

    canvas = viewer_canvas(viewer).native
    held = Qt.MouseButton.NoButton if buttons is None else buttons
    at = QPointF(canvas.width() / 2 + dx, canvas.height() / 2 + dy)
    button = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else Qt.MouseButton.LeftButton
    event = QMouseEvent(
        kind, at, canvas.mapToGlobal(at), button, held, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(canvas, event)
