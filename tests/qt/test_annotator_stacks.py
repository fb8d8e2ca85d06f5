"""A stack in the Annotator: napari's dims slider and n / b walk its planes, each saved alone."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
from annotator_drawing import draw, saved
from qtpy.QtCore import QEvent, Qt

from napari_detlab.core.boxes import napari_to_xyxy


@pytest.fixture
def stack_folder(tmp_path: Path) -> Path:
    """``a.tif``: 3 grey planes of 40 x 60, each of its own brightness; then ``b.png``."""
    folder = tmp_path / "stacks"
    folder.mkdir()
    planes = np.stack([np.full((40, 60), 1000 * (k + 1), np.uint16) for k in range(3)])
    planes[:, 10:20, 10:20] = 60000  # something to see
    tifffile.imwrite(folder / "a.tif", planes, photometric="minisblack")  # 3 pages
    iio.imwrite(folder / "b.png", np.zeros((40, 60, 3), np.uint8))
    return folder


def _plane_file(folder: Path, plane: int) -> Path:
    return folder / "annotations" / f"a.plane-{plane:04d}.pt"


def test_n_walks_the_planes_then_the_next_file_and_the_slider_follows(
    annotator, stack_folder, press
):
    viewer, widget = annotator(stack_folder)
    layer = viewer.layers["image"]
    assert layer.data.shape == (3, 40, 60)  # the whole stack under the dims slider
    assert viewer.dims.current_step[0] == 0
    assert widget.position_label.text() == "1 / 4"

    press(viewer, Qt.Key.Key_N)
    assert viewer.dims.current_step[0] == 1
    assert widget.current_path == stack_folder / "a.plane-0001.tif"
    press(viewer, Qt.Key.Key_N)
    press(viewer, Qt.Key.Key_N)  # past the last plane: the next file, a single image
    assert widget.current_path == stack_folder / "b.png"
    assert viewer.layers["image"].data.shape == (40, 60, 3)
    assert viewer.dims.ndim == 2
    press(viewer, Qt.Key.Key_B)  # back onto the stack's last plane
    assert widget.current_path == stack_folder / "a.plane-0002.tif"
    assert viewer.layers["image"].data.shape == (3, 40, 60)
    assert viewer.dims.current_step[0] == 2


def test_a_box_drawn_on_the_plane_the_slider_shows_is_saved_for_that_plane(
    annotator, stack_folder, qtbot, send_mouse
):
    viewer, widget = annotator(stack_folder)
    draw(viewer.layers["boxes: object"], (5, 6, 25, 30))
    qtbot.waitUntil(_plane_file(stack_folder, 0).is_file, timeout=1000)
    before = _plane_file(stack_folder, 0).read_bytes()

    viewer.dims.set_current_step(0, 2)  # the person moves the slider
    assert widget.current_path == stack_folder / "a.plane-0002.tif"
    layer = viewer.layers["boxes: object"]
    assert layer.nshapes == 0  # plane 2 has no boxes yet; plane 0's are not shown on it
    left = Qt.MouseButton.LeftButton
    send_mouse(viewer, QEvent.Type.MouseButtonPress, -40, -30, left)
    for step in (0.25, 0.5, 0.75, 1.0):
        send_mouse(viewer, QEvent.Type.MouseMove, -40 + 90 * step, -30 + 70 * step, left)
    send_mouse(viewer, QEvent.Type.MouseButtonRelease, 50, 40)
    qtbot.waitUntil(_plane_file(stack_folder, 2).is_file, timeout=1000)

    box = saved(stack_folder, "a.plane-0002")["boxes"].numpy()
    np.testing.assert_allclose(box, napari_to_xyxy(layer.data), atol=1e-4)
    assert _plane_file(stack_folder, 0).read_bytes() == before  # plane 0 untouched
    assert not _plane_file(stack_folder, 1).exists()
    assert not (stack_folder / "annotations" / "a.pt").exists()

    viewer.dims.set_current_step(0, 0)  # back: plane 0's box is shown again
    assert widget.current_path == stack_folder / "a.plane-0000.tif"
    np.testing.assert_allclose(
        napari_to_xyxy(viewer.layers["boxes: object"].data), [[5, 6, 25, 30]]
    )


def test_the_copy_key_copies_the_previous_planes_boxes(annotator, stack_folder, qtbot, press):
    viewer, widget = annotator(stack_folder)
    draw(viewer.layers["boxes: object"], (5, 6, 25, 30))  # plane 0
    viewer.dims.set_current_step(0, 1)
    press(
        viewer,
        Qt.Key.Key_V,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    assert widget.current_path == stack_folder / "a.plane-0001.tif"
    np.testing.assert_allclose(
        saved(stack_folder, "a.plane-0001")["boxes"].numpy(), [[5, 6, 25, 30]]
    )
    assert viewer.layers["boxes: object"].nshapes == 1
