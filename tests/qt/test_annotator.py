"""The Annotator in a real viewer: keys, drawing, files on disk, classes, undo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from qtpy.QtCore import Qt

from napari_detlab._qt.annotator import AUTOSAVE_DELAY_MS, AnnotatorWidget
from napari_detlab._qt.session import session_for
from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore, ClassInUseError, ClassSpec
from napari_detlab.core.boxes import xyxy_to_napari
from napari_detlab.core.images import read_image


def draw(layer, *xyxy: tuple[float, float, float, float]) -> None:
    """Add rectangles the way the drawing tool does: one data event on the layer."""
    layer.add_rectangles(xyxy_to_napari(np.array(xyxy, dtype=float)))


def saved(folder: Path, stem: str) -> dict:
    """The annotation file as anyone would read it."""
    return torch.load(folder / "annotations" / f"{stem}.pt", weights_only=True)


def test_n_and_b_navigate_while_a_shapes_layer_is_drawing(annotator, image_folder, qtbot, press):
    viewer, widget = annotator(image_folder)
    boxes = viewer.layers["boxes: object"]
    assert viewer.layers.selection.active is boxes
    assert boxes.mode == "add_rectangle"  # the state in which Shapes binds `b` itself

    press(viewer, Qt.Key.Key_N)
    assert widget.index == 1
    assert widget.position_label.text() == "2 / 3"
    second = read_image(image_folder / "img2.png")
    np.testing.assert_array_equal(viewer.layers["image"].data, second)
    press(viewer, Qt.Key.Key_B)
    assert widget.index == 0
    assert widget.position_label.text() == "1 / 3"

    # a layer the user adds later, selected, does not swallow the keys either
    points = viewer.add_points(name="my points")
    viewer.layers.selection.active = points
    press(viewer, Qt.Key.Key_N)
    assert widget.index == 1
    assert session_for(viewer).image_index == 1
    assert session_for(viewer).image_path == image_folder / "img2.png"


def test_image_layer_is_reused_not_recreated(annotator, image_folder):
    viewer, widget = annotator(image_folder)
    image_layer = viewer.layers["image"]
    widget.next_image()
    assert viewer.layers["image"] is image_layer
    assert len(viewer.layers) == 2


def test_drawn_box_is_on_disk_within_a_second(annotator, image_folder, qtbot):
    viewer, widget = annotator(image_folder)
    draw(viewer.layers["boxes: object"], (5, 6, 25, 30))
    path = image_folder / "annotations" / "img1.pt"
    qtbot.waitUntil(path.is_file, timeout=1000)
    data = saved(image_folder, "img1")
    assert data["boxes"].dtype == torch.float32
    np.testing.assert_allclose(data["boxes"].numpy(), [[5, 6, 25, 30]])
    assert data["labels"] == ["object"]
    assert data["reviewed"] is True
    assert widget.reviewed_checkbox.isChecked()


def test_moved_and_deleted_boxes_are_saved(annotator, image_folder, qtbot):
    viewer, widget = annotator(image_folder)
    layer = viewer.layers["boxes: object"]
    draw(layer, (5, 6, 25, 30), (30, 2, 50, 12))
    widget.flush()

    shift = np.array([3.0, 4.0])  # drag both by (x+4, y+3): vertices are (row, col)
    moved = [np.asarray(v) + shift for v in layer.data]
    layer.data = moved
    qtbot.waitUntil(
        lambda: np.allclose(saved(image_folder, "img1")["boxes"][0].numpy(), [9, 9, 29, 33]),
        timeout=1000,
    )
    layer.selected_data = {0}
    layer.remove_selected()  # what the Delete key does
    qtbot.waitUntil(lambda: len(saved(image_folder, "img1")["labels"]) == 1, timeout=1000)
    np.testing.assert_allclose(saved(image_folder, "img1")["boxes"].numpy(), [[34, 5, 54, 15]])


def test_rotated_or_dragged_shape_is_saved_as_its_hull(annotator, image_folder):
    viewer, widget = annotator(image_folder)
    diamond = np.array([[10.0, 20.0], [20.0, 35.0], [30.0, 20.0], [20.0, 5.0]])  # (row, col)
    viewer.layers["boxes: object"].add_polygons([diamond])
    widget.flush()
    np.testing.assert_allclose(saved(image_folder, "img1")["boxes"].numpy(), [[5, 10, 35, 30]])


def test_box_outside_is_clipped_and_a_click_ignored(annotator, image_folder, notifications):
    viewer, widget = annotator(image_folder)  # images are 60 wide, 40 high
    layer = viewer.layers["boxes: object"]
    draw(layer, (50, 30, 70, 55), (10, 10, 10.3, 10.3))
    widget.flush()
    np.testing.assert_allclose(saved(image_folder, "img1")["boxes"].numpy(), [[50, 30, 60, 40]])
    assert layer.nshapes == 1  # the stray click is gone from the layer too
    assert any("smaller than 1 pixel" in text for text in notifications)


def test_navigation_saves_before_the_image_changes(annotator, image_folder):
    viewer, widget = annotator(image_folder)
    draw(viewer.layers["boxes: object"], (1, 2, 11, 12))
    widget.next_image()  # well before the autosave timer fires
    assert saved(image_folder, "img1")["labels"] == ["object"]
    assert viewer.layers["boxes: object"].nshapes == 0  # img2 has no boxes


def test_untouched_images_get_no_file(annotator, image_folder):
    _, widget = annotator(image_folder)
    widget.next_image()
    widget.next_image()
    widget.previous_image()
    assert sorted(p.name for p in (image_folder / "annotations").iterdir()) == ["classes.json"]


def test_reviewed_checkbox_writes_an_empty_negative(annotator, image_folder):
    _, widget = annotator(image_folder)
    widget.reviewed_checkbox.setChecked(True)
    data = saved(image_folder, "img1")
    assert data["boxes"].shape == (0, 4)
    assert data["reviewed"] is True
    widget.reviewed_checkbox.setChecked(False)  # changed their mind: unreviewed again
    assert not (image_folder / "annotations" / "img1.pt").exists()


def test_reopening_the_folder_shows_exactly_what_was_drawn(make_napari_viewer, image_folder):
    viewer = make_napari_viewer()
    widget = AnnotatorWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.open_folder(image_folder)
    widget.annotator.add_class("crystal", "#00ff00")
    drawn = {
        "object": np.array([[1.25, 2.5, 20.75, 30.125], [30.3, 1.7, 59.9, 39.1]]),
        "crystal": np.array([[10.0, 10.0, 12.5, 13.5]]),
    }
    for name, boxes in drawn.items():
        draw(viewer.layers[f"boxes: {name}"], *boxes)
    viewer.close()  # immediately: the pending autosave must not be lost

    viewer2 = make_napari_viewer()
    widget2 = AnnotatorWidget(viewer2)
    widget2.open_folder(image_folder)
    assert [c.name for c in widget2.classes] == ["object", "crystal"]
    assert widget2.classes[1].color == "#00ff00"
    for name, boxes in drawn.items():
        layer = viewer2.layers[f"boxes: {name}"]
        hulls = [(v[:, 1].min(), v[:, 0].min(), v[:, 1].max(), v[:, 0].max()) for v in layer.data]
        shown = np.array(hulls)  # (row, col) vertices back to xyxy, by hand
        np.testing.assert_allclose(shown, boxes, atol=1e-4)


def test_class_add_rename_and_remove_with_guard(annotator, image_folder):
    viewer, widget = annotator(image_folder)
    widget.annotator.add_class("cat")
    assert "boxes: cat" in viewer.layers
    draw(viewer.layers["boxes: cat"], (1, 1, 10, 10))
    widget.next_image()

    assert widget.annotator.rename_class("cat", "lynx") == 1
    assert "boxes: lynx" in viewer.layers and "boxes: cat" not in viewer.layers
    assert saved(image_folder, "img1")["labels"] == ["lynx"]
    assert [c.name for c in AnnotationStore(image_folder).load_classes()] == ["object", "lynx"]

    with pytest.raises(ClassInUseError):
        widget.annotator.remove_class("lynx")
    assert saved(image_folder, "img1")["labels"] == ["lynx"]  # the guard changed nothing
    assert "boxes: lynx" in viewer.layers

    assert widget.annotator.remove_class("lynx", delete_boxes=True) == 1
    assert "boxes: lynx" not in viewer.layers
    assert saved(image_folder, "img1")["labels"] == []
    assert [c.name for c in AnnotationStore(image_folder).load_classes()] == ["object"]


def test_class_colour_is_applied_and_persisted(annotator, image_folder):
    viewer, widget = annotator(image_folder)
    draw(viewer.layers["boxes: object"], (1, 1, 10, 10))
    widget.annotator.set_class_color("object", "#0000ff")
    np.testing.assert_allclose(viewer.layers["boxes: object"].edge_color[0], [0, 0, 1, 1])
    assert AnnotationStore(image_folder).load_classes()[0].color == "#0000ff"


def test_relabelling_moves_selected_boxes_to_another_class(annotator, image_folder):
    viewer, widget = annotator(image_folder)
    widget.annotator.add_class("dog")
    objects = viewer.layers["boxes: object"]
    draw(objects, (1, 1, 10, 10), (20, 20, 30, 30))
    objects.selected_data = {1}
    assert widget.move_selected_to_class("dog") == 1
    data = saved(image_folder, "img1")
    assert sorted(data["labels"]) == ["dog", "object"]
    dog_box = data["boxes"][data["labels"].index("dog")].numpy()
    np.testing.assert_allclose(dog_box, [20, 20, 30, 30])
    assert viewer.layers["boxes: dog"].nshapes == 1 and objects.nshapes == 1


def test_undo_restores_the_previous_boxes_and_saves(annotator, image_folder, qtbot, press):
    viewer, widget = annotator(image_folder)
    layer = viewer.layers["boxes: object"]
    draw(layer, (1, 1, 10, 10))
    widget.flush()
    draw(layer, (20, 20, 30, 30))
    widget.flush()
    assert len(saved(image_folder, "img1")["labels"]) == 2

    press(viewer, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_allclose(saved(image_folder, "img1")["boxes"].numpy(), [[1, 1, 10, 10]])
    assert layer.nshapes == 1
    widget.undo()
    assert not (image_folder / "annotations" / "img1.pt").exists()  # back to never touched
    assert layer.nshapes == 0


def test_every_kind_of_image_opens_and_a_broken_one_is_skipped(
    annotator, mixed_folder, notifications
):
    viewer, widget = annotator(mixed_folder)
    shown = []
    for _ in range(5):
        shown.append((widget.current_path.name, viewer.layers["image"].data.shape))
        widget.next_image()
    assert [name for name, _ in shown] == [
        "a_rgb.jpg", "b_gray.png", "d_rgba.png", "e_16bit.tif", "e_16bit.tif",
    ]  # fmt: skip
    assert dict(shown)["d_rgba.png"] == (36, 44, 4)
    assert any("c_broken.png" in text for text in notifications)
    low, high = viewer.layers["image"].contrast_limits  # 16-bit, values 1000..4000
    assert 900 <= low < high <= 4100
    draw(viewer.layers["boxes: object"], (1, 1, 10, 10))
    widget.previous_image()
    assert widget.current_path.name == "d_rgba.png"  # skips the broken file backwards too
    assert saved(mixed_folder, "e_16bit")["image_size"] == [40, 40]


def test_next_unannotated_jumps_over_annotated_images(annotator, image_folder):
    store = AnnotationStore(image_folder)
    store.save("img2", ImageAnnotation(reviewed=True, image_size=(40, 60)))
    viewer, widget = annotator(image_folder)
    draw(viewer.layers["boxes: object"], (1, 1, 10, 10))
    widget.next_unannotated()
    assert widget.current_path.name == "img3.png"
    widget.next_unannotated()  # img1 now has boxes, img2 is a negative: nothing left
    assert widget.current_path.name == "img3.png"


def test_annotation_written_by_another_dock_is_reloaded(annotator, image_folder):
    viewer, _ = annotator(image_folder)
    store = AnnotationStore(image_folder)
    store.save("img1", ImageAnnotation(np.array([[2, 3, 12, 13]]), ["object"], True, (40, 60)))
    session_for(viewer).annotations_changed.emit(image_folder / "img1.png")
    layer = viewer.layers["boxes: object"]
    assert layer.nshapes == 1
    np.testing.assert_allclose(layer.data[0].min(axis=0), [3, 2])


def test_deleting_a_class_layer_by_hand_keeps_its_saved_boxes(annotator, image_folder):
    viewer, widget = annotator(image_folder)
    draw(viewer.layers["boxes: object"], (1, 1, 10, 10))
    viewer.layers.remove("boxes: object")
    widget.next_image()
    widget.previous_image()
    assert saved(image_folder, "img1")["labels"] == ["object"]
    assert viewer.layers["boxes: object"].nshapes == 1


def test_autosave_waits_for_the_debounce(annotator, image_folder, qtbot):
    viewer, _ = annotator(image_folder)
    draw(viewer.layers["boxes: object"], (1, 1, 10, 10))
    path = image_folder / "annotations" / "img1.pt"
    assert not path.exists()  # debounced, not written on every event
    qtbot.wait(AUTOSAVE_DELAY_MS + 300)
    assert path.exists()


def test_an_unreadable_annotation_file_is_set_aside_not_overwritten(
    annotator, image_folder, notifications
):
    bad = image_folder / "annotations" / "img1.pt"
    bad.parent.mkdir()
    bad.write_bytes(b"not a torch file")
    viewer, widget = annotator(image_folder)
    aside = image_folder / "annotations" / "img1.pt.unreadable"
    assert aside.read_bytes() == b"not a torch file"
    assert any("img1.pt" in text for text in notifications)
    draw(viewer.layers["boxes: object"], (1, 1, 10, 10))
    widget.flush()
    assert saved(image_folder, "img1")["labels"] == ["object"]
    assert aside.read_bytes() == b"not a torch file"


@pytest.mark.parametrize("answer", ["Cancel", "Yes"])
def test_remove_button_asks_before_deleting_boxes(annotator, image_folder, monkeypatch, answer):
    from qtpy.QtWidgets import QMessageBox

    viewer, widget = annotator(image_folder)
    widget.annotator.add_class("cat")
    draw(viewer.layers["boxes: cat"], (1, 1, 10, 10))
    widget.flush()
    asked = []

    def question(*args, **kwargs):
        asked.append(args[2])
        return getattr(QMessageBox.StandardButton, answer)

    monkeypatch.setattr(QMessageBox, "question", question)
    widget.class_list.combo.setCurrentText("cat")
    widget.class_list.remove_selected()
    assert asked and "used by 1 boxes" in asked[0]
    kept = answer == "Cancel"
    assert ("boxes: cat" in viewer.layers) == kept
    assert saved(image_folder, "img1")["labels"] == (["cat"] if kept else [])


def test_closing_the_window_saves_a_pending_edit(make_napari_viewer, image_folder):
    from qtpy.QtGui import QCloseEvent
    from qtpy.QtWidgets import QApplication

    viewer = make_napari_viewer()
    widget = AnnotatorWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.open_folder(image_folder)
    draw(viewer.layers["boxes: object"], (1, 2, 11, 12))
    # the close event the window's close button sends, before the autosave timer fires
    QApplication.sendEvent(widget.window(), QCloseEvent())
    assert saved(image_folder, "img1")["labels"] == ["object"]


def test_a_box_drawn_with_the_mouse_is_saved_after_release(
    annotator, image_folder, qtbot, send_mouse
):
    from qtpy.QtCore import QEvent

    from napari_detlab.core.boxes import napari_to_xyxy

    viewer, _ = annotator(image_folder)
    left = Qt.MouseButton.LeftButton
    # around the canvas centre, where the image is; the drag keeps the button down
    send_mouse(viewer, QEvent.Type.MouseButtonPress, -40, -30, left)
    for step in (0.25, 0.5, 0.75, 1.0):
        send_mouse(viewer, QEvent.Type.MouseMove, -40 + 90 * step, -30 + 70 * step, left)
    qtbot.wait(AUTOSAVE_DELAY_MS + 200)  # button still down: nothing half-drawn is written
    path = image_folder / "annotations" / "img1.pt"
    assert not path.exists()
    send_mouse(viewer, QEvent.Type.MouseButtonRelease, 50, 40)
    qtbot.waitUntil(path.is_file, timeout=1000)

    layer = viewer.layers["boxes: object"]
    assert layer.nshapes == 1
    box = saved(image_folder, "img1")["boxes"].numpy()
    np.testing.assert_allclose(box, napari_to_xyxy(layer.data), atol=1e-4)
    assert box[0, 2] - box[0, 0] > 1 and box[0, 3] - box[0, 1] > 1


def test_a_stray_click_outside_the_image_writes_nothing(annotator, image_folder, notifications):
    viewer, widget = annotator(image_folder)
    draw(viewer.layers["boxes: object"], (-20, -20, -10, -10))  # clipped to nothing
    widget.flush()
    assert not (image_folder / "annotations" / "img1.pt").exists()  # not a "negative"
    assert not widget.reviewed_checkbox.isChecked()
    assert any("smaller than 1 pixel" in text for text in notifications)


def test_keys_work_on_a_labels_layer_which_keeps_its_own_undo(annotator, image_folder, press):
    viewer, widget = annotator(image_folder)
    labels = viewer.add_labels(np.zeros((40, 60), np.uint8), name="my labels")
    viewer.layers.selection.active = labels
    press(viewer, Qt.Key.Key_N)
    assert widget.index == 1
    press(viewer, Qt.Key.Key_B)  # Labels binds `b` too (preserve labels)
    assert widget.index == 0
    assert not any(getattr(f, "__name__", "") == "detlab_undo" for f in labels.keymap.values())


def test_teardown_gives_the_keys_back(annotator, image_folder, press):
    viewer, widget = annotator(image_folder)
    widget.teardown()
    assert not any(f.__name__.startswith("detlab_") for f in viewer.keymap.values())
    shown = viewer.layers["image"].data.copy()
    press(viewer, Qt.Key.Key_N)
    np.testing.assert_array_equal(viewer.layers["image"].data, shown)


def test_removing_the_dock_leaves_the_viewer_working(make_napari_viewer, image_folder, press):
    viewer = make_napari_viewer()
    widget = AnnotatorWidget(viewer)
    dock = viewer.window.add_dock_widget(widget)
    widget.open_folder(image_folder)
    draw(viewer.layers["boxes: object"], (1, 2, 11, 12))
    viewer.window.remove_dock_widget(dock)  # saves the pending box
    assert not any(f.__name__.startswith("detlab_") for f in viewer.keymap.values())
    viewer.layers.clear()  # would reach a deleted widget if anything were left connected
    viewer.add_points()
    press(viewer, Qt.Key.Key_N)
    assert saved(image_folder, "img1")["labels"] == ["object"]


def test_browsing_never_rewrites_files_in_another_order(annotator, image_folder):
    store = AnnotationStore(image_folder)
    store.save_classes([ClassSpec("a", "#ff0000"), ClassSpec("b", "#00ff00")])
    interleaved = ImageAnnotation(
        np.array([[1, 1, 5, 5], [2, 2, 6, 6], [3, 3, 7, 7]]),
        ["b", "a", "b"],
        True,
        (40, 60),
        extra={"source": "another tool"},
    )
    store.save("img1", interleaved)
    before = (image_folder / "annotations" / "img1.pt").stat().st_mtime_ns
    viewer, widget = annotator(image_folder)
    widget.next_image()
    widget.previous_image()
    assert (image_folder / "annotations" / "img1.pt").stat().st_mtime_ns == before
    draw(viewer.layers["boxes: a"], (10, 10, 20, 20))  # a real edit keeps the other keys
    widget.flush()
    data = saved(image_folder, "img1")
    assert sorted(data["labels"]) == ["a", "a", "b", "b"] and data["source"] == "another tool"


def test_buttons_navigate_and_each_class_hides_on_its_own(annotator, image_folder):
    viewer, widget = annotator(image_folder)
    widget.annotator.add_class("crystal", "#00ff00")
    cells, crystals = viewer.layers["boxes: object"], viewer.layers["boxes: crystal"]
    draw(crystals, (5, 5, 20, 20))
    cells.visible = False  # the eye of one class in the layer list
    widget.next_button.click()
    assert (widget.index, widget.position_label.text()) == (1, "2 / 3")
    assert not cells.visible and crystals.visible  # the choice holds on every image
    widget.previous_button.click()
    assert (widget.index, widget.position_label.text()) == (0, "1 / 3")
    assert not cells.visible and crystals.visible
    assert saved(image_folder, "img1")["labels"] == ["crystal"]  # hidden or not, all saved
    widget.unannotated_button.click()  # img1 has a file now: the next without one is img2
    assert widget.index == 1


def test_the_session_reaches_the_annotator_and_hears_its_writes(annotator, image_folder, tmp_path):
    viewer, widget = annotator(image_folder)
    session = session_for(viewer)
    heard: list[Path] = []
    session.annotation_saved.connect(heard.append)
    draw(viewer.layers["boxes: object"], (1, 2, 11, 12))
    session.request_flush()  # another dock is about to read the files
    assert saved(image_folder, "img1")["labels"] == ["object"]
    assert heard == [image_folder / "img1.png"]
    assert session.request_image(image_folder / "img3.png", 0)
    assert widget.index == 2 and session.image_path == image_folder / "img3.png"
    other = tmp_path / "other"
    other.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(other / name)
    assert session.request_open_folder(other)
    assert widget.store is session.store and widget.store.root == other
    assert widget.position_label.text() == "1 / 2"
