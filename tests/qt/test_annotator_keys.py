"""The Annotator from the keyboard, in a real viewer: real key presses, files on disk, and
keys a person changes in napari's Preferences (the plugin's settings)."""

from __future__ import annotations

from pathlib import Path

import yaml
from annotator_drawing import draw, saved
from qtpy.QtCore import Qt

from napari_detlab._qt.plugin_settings import detlab_settings

CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier
ALT = Qt.KeyboardModifier.AltModifier


def file_of(folder: Path, stem: str) -> Path:
    return folder / "annotations" / f"{stem}.pt"


def boxes_of(folder: Path, stem: str) -> list[list[float]]:
    return saved(folder, stem)["boxes"].numpy().tolist()


def test_copy_undo_redo_and_reviewed_by_key(annotator, image_folder, press) -> None:
    viewer, widget = annotator(image_folder)
    draw(viewer.layers["boxes: object"], (1, 1, 10, 10), (20, 5, 30, 25))
    press(viewer, Qt.Key.Key_N)
    press(viewer, Qt.Key.Key_V, CTRL | SHIFT)  # copy the previous image's boxes
    assert boxes_of(image_folder, "img2") == [[1, 1, 10, 10], [20, 5, 30, 25]]
    assert viewer.layers["boxes: object"].nshapes == 2
    press(viewer, Qt.Key.Key_Z, CTRL)  # one undo takes the whole copy back
    assert not file_of(image_folder, "img2").exists()
    assert viewer.layers["boxes: object"].nshapes == 0
    press(viewer, Qt.Key.Key_Z, CTRL | SHIFT)  # redo
    assert len(boxes_of(image_folder, "img2")) == 2
    press(viewer, Qt.Key.Key_Z, CTRL)
    press(viewer, Qt.Key.Key_Y, CTRL)  # the second redo key
    assert len(boxes_of(image_folder, "img2")) == 2

    press(viewer, Qt.Key.Key_N)
    press(viewer, Qt.Key.Key_K)  # reviewed: an empty image becomes a negative
    assert (
        saved(image_folder, "img3")["reviewed"] is True
        and saved(image_folder, "img3")["labels"] == []
    )
    assert widget.reviewed_checkbox.isChecked()
    press(viewer, Qt.Key.Key_K)
    assert not file_of(image_folder, "img3").exists()
    assert not widget.reviewed_checkbox.isChecked()


def test_a_class_is_chosen_by_its_number(annotator, image_folder, press) -> None:
    viewer, widget = annotator(image_folder)
    widget.annotator.add_class("cat")
    viewer.layers.selection.active = viewer.layers["image"]  # any layer chosen: still works
    press(viewer, Qt.Key.Key_2, CTRL)
    cats = viewer.layers["boxes: cat"]
    assert viewer.layers.selection.active is cats and cats.mode == "add_rectangle"
    assert widget.class_list.selected() == "cat"
    press(viewer, Qt.Key.Key_3, CTRL)  # no third class: nothing changes, the dock says so
    assert viewer.layers.selection.active is cats
    assert "No class 3" in widget.status_label.text()
    press(viewer, Qt.Key.Key_1, CTRL)
    assert viewer.layers.selection.active is viewer.layers["boxes: object"]


def test_arrow_keys_move_and_resize_the_selected_boxes(annotator, image_folder, press) -> None:
    viewer, widget = annotator(image_folder)
    layer = viewer.layers["boxes: object"]
    draw(layer, (10, 10, 20, 20), (40, 25, 50, 35))
    layer.mode = "select"
    layer.selected_data = {0}
    press(viewer, Qt.Key.Key_Right)  # 10 image pixels by default
    press(viewer, Qt.Key.Key_Down, ALT)  # one pixel
    press(viewer, Qt.Key.Key_Right, SHIFT)  # 10 pixels wider
    widget.flush()
    assert sorted(boxes_of(image_folder, "img1")) == [[20, 11, 40, 21], [40, 25, 50, 35]]
    assert len(layer.selected_data) == 1  # still selected, for the next press
    for _ in range(10):
        press(viewer, Qt.Key.Key_Right)  # stops at the image's right edge (60 pixels)
    widget.flush()
    assert [40, 11, 60, 21] in boxes_of(image_folder, "img1")
    layer.selected_data = set()
    press(viewer, Qt.Key.Key_Left)
    assert "Select boxes first" in widget.status_label.text()


def test_keys_set_in_preferences_are_bound_shown_and_checked(
    annotator, image_folder, press, notifications
) -> None:
    viewer, widget = annotator(image_folder)
    assert "n / b: next / previous image" in widget.keys_label.text()
    assert widget.next_button.toolTip() == "Key: n"
    settings = detlab_settings()
    settings.annotator_keys.next_image = "m"  # as napari's Preferences dialog does
    press(viewer, Qt.Key.Key_N)
    assert widget.index == 0  # n is free again
    press(viewer, Qt.Key.Key_M)
    assert widget.index == 1
    assert "m / b: next / previous image" in widget.keys_label.text()
    assert widget.next_button.toolTip() == "Key: m"
    saved_settings = yaml.safe_load(Path(settings.config_path).read_text())
    assert saved_settings["annotator_keys"]["next_image"] == "m"  # kept for the next start

    settings.annotator_keys.toggle_reviewed = "b"  # clashes with "previous image"
    assert any("set for both previous image and mark reviewed" in n for n in notifications)
    press(viewer, Qt.Key.Key_N)  # the defaults are bound until it is fixed
    assert widget.index == 2


def test_the_dock_remembers_the_folder_and_the_autosave_delay(
    annotator, image_folder, qtbot
) -> None:
    viewer, widget = annotator(image_folder)
    settings = detlab_settings()
    assert settings.annotator.last_folder == str(image_folder)
    settings.annotator.autosave_delay_ms = 50
    draw(viewer.layers["boxes: object"], (1, 1, 10, 10))
    assert widget._save_timer.interval() == 50
    qtbot.waitUntil(lambda: file_of(image_folder, "img1").exists(), timeout=2000)


def test_the_manifest_declares_every_key_with_the_cores_default() -> None:
    """Preferences shows what the manifest declares; the dock falls back on the core's
    defaults: the two must not drift apart."""
    from napari_detlab.core.annotations.keymap import ANNOTATOR_KEYS

    declared = type(detlab_settings().annotator_keys)().model_dump()
    assert declared == {a.name: a.key for a in ANNOTATOR_KEYS}
