"""The Review dock's "Accept all above threshold…" and "Undo batch" in a real viewer.

The known answer (review_setup's image a, and b with two predictions): at score 0.5 and NMS
0.5, image a keeps predictions 0, 3 and 2, of which 0 and 2 repeat its ground truth, so one
box is added; b keeps its 0.9 box. "2 boxes on 2 images".
"""

from __future__ import annotations

import numpy as np
import torch
from qtpy.QtCore import Qt
from test_review_dock import review_setup  # noqa: F401  (the fixture)

from napari_detlab._qt.statistics_dock import StatisticsWidget
from napari_detlab.core.annotations.annotator import MODEL_ACCEPTED_STATUS
from napari_detlab.core.model.predict import Prediction, write_prediction


def _press_button(qtbot, panel, button) -> None:
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.worker is None, timeout=20_000)


def test_accept_all_writes_marked_files_the_annotator_says_so_and_undo_restores(
    review_setup,  # noqa: F811
    qtbot,
    press,
):
    viewer, annotator, review, folder = review_setup()
    boxes = np.array([[10, 10, 30, 30], [50, 50, 70, 70]], np.float32)
    write_prediction(
        folder / "predictions", "b",
        Prediction(boxes, ["cell", "cell"], np.array([0.9, 0.4], np.float32), (100, 100)),
    )  # fmt: skip
    stats = StatisticsWidget(viewer)
    viewer.window.add_dock_widget(stats, name="Dataset statistics")
    qtbot.waitUntil(lambda: stats.statistics is not None and not stats.busy, timeout=30_000)
    review.score_slider.setValue(0.5)
    review.nms_slider.setValue(0.5)
    a_file, b_file = folder / "annotations" / "a.pt", folder / "annotations" / "b.pt"
    a_before = a_file.read_bytes()
    panel = review.batch
    questions: list[str] = []
    panel._confirm = lambda question: questions.append(question) or True

    _press_button(qtbot, panel, panel.accept_button)
    assert len(questions) == 1 and "Accept 2 boxes on 2 images?" in questions[0]
    a = torch.load(a_file, weights_only=True)
    b = torch.load(b_file, weights_only=True)
    assert a["model_accepted"] is True and b["model_accepted"] is True
    assert len(a["boxes"]) == 4 and b["boxes"].tolist() == [[10, 10, 30, 30]]
    # The Annotator, on image a, reloaded it and says what it is
    assert MODEL_ACCEPTED_STATUS in annotator.status_label.text()
    assert not annotator.reviewed_checkbox.isChecked()
    assert viewer.layers["boxes: cell"].nshapes == 3
    # The statistics count both images apart from the person's annotations
    qtbot.waitUntil(lambda: stats.statistics.model_accepted == 2, timeout=10_000)
    assert "0 annotated" in stats.counts_label.text()
    assert "2 accepted from model, not yet reviewed" in stats.counts_label.text()

    # Undo: both files exactly as before (b had none)
    _press_button(qtbot, panel, panel.undo_button)
    assert a_file.read_bytes() == a_before and not b_file.exists()
    assert MODEL_ACCEPTED_STATUS not in annotator.status_label.text()
    assert viewer.layers["boxes: cell"].nshapes == 2
    qtbot.waitUntil(lambda: stats.statistics.model_accepted == 0, timeout=10_000)
    assert "1 annotated" in stats.counts_label.text()
    assert "accepted from model" not in stats.counts_label.text()


def test_undo_keeps_an_image_the_person_reviewed_since(review_setup, qtbot, press):  # noqa: F811
    viewer, annotator, review, folder = review_setup()
    review.score_slider.setValue(0.5)
    panel = review.batch
    panel._confirm = lambda question: True
    _press_button(qtbot, panel, panel.accept_button)
    a_file = folder / "annotations" / "a.pt"
    assert torch.load(a_file, weights_only=True)["model_accepted"] is True

    press(viewer, Qt.Key.Key_K)  # the person marks the image reviewed
    reviewed = torch.load(a_file, weights_only=True)
    assert "model_accepted" not in reviewed and len(reviewed["boxes"]) == 4
    assert MODEL_ACCEPTED_STATUS not in annotator.status_label.text()
    after_review = a_file.read_bytes()

    _press_button(qtbot, panel, panel.undo_button)
    assert a_file.read_bytes() == after_review  # their review is not lost
    assert "a.png" in panel.status.text() and "changed since" in panel.status.text()
