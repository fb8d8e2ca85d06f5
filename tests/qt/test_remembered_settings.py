"""What a person sets in the docks is kept for the next napari start: in napari's settings
(the plugin's own file beside napari's), shown again by a dock made later."""

from __future__ import annotations

from pathlib import Path

import yaml

from napari_detlab._qt.plugin_settings import detlab_settings
from napari_detlab._qt.review import ReviewWidget
from napari_detlab._qt.train_dock import TrainDockWidget


def on_disk(category: str) -> dict:
    """The plugin's settings file as napari reads it at its next start."""
    path = Path(detlab_settings().config_path)
    return (yaml.safe_load(path.read_text()) or {}).get(category, {}) if path.exists() else {}


def test_the_review_thresholds_come_back(make_napari_viewer) -> None:
    review = ReviewWidget(make_napari_viewer())
    review.score_slider.setValue(0.3)
    review.controls.class_agnostic_check.setChecked(True)
    assert on_disk("review") == {"score_threshold": 0.3, "class_agnostic": True}
    again = ReviewWidget(make_napari_viewer())
    assert again.thresholds.score_threshold == 0.3 and again.thresholds.class_agnostic
    assert again.thresholds.nms_iou == 0.5  # never changed: the default


def test_the_training_choices_come_back(make_napari_viewer) -> None:
    form = TrainDockWidget(make_napari_viewer()).train_form
    form.config_combo.setCurrentText("accurate")
    form.epochs_spin.setValue(7)
    form.val_spin.setValue(0.3)
    form.stratify_check.setChecked(True)
    remembered = on_disk("training")
    assert remembered["model"] == "accurate" and remembered["epochs"] == 7
    assert remembered["val_fraction"] == 0.3 and remembered["stratify_split"] is True
    again = TrainDockWidget(make_napari_viewer()).train_form
    assert again.config_combo.currentText() == "accurate"
    assert again.option_values()["epochs"] == 7 and again.option_values()["val_fraction"] == 0.3
    assert again.stratify_check.isChecked()


def test_the_box_edge_width_holds_across_images_and_starts(annotator, image_folder, press) -> None:
    from annotator_drawing import draw
    from qtpy.QtCore import Qt

    viewer, _ = annotator(image_folder)
    cells = viewer.layers["boxes: object"]
    draw(cells, (1, 1, 10, 10))
    cells.current_edge_width = 5  # what the layer controls' edge-width slider does
    press(viewer, Qt.Key.Key_N)
    draw(cells, (2, 2, 12, 12))
    press(viewer, Qt.Key.Key_B)  # boxes drawn again from the file keep the chosen width
    assert list(cells.edge_width) == [5] and cells.current_edge_width == 5
    assert on_disk("annotator")["box_edge_width"] == 5
    viewer2, _ = annotator(image_folder)  # a later start
    assert list(viewer2.layers["boxes: object"].edge_width) == [5]
