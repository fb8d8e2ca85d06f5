"""Pre-labels in a real viewer: the model's boxes proposed on unannotated images, predicted
ahead of ``n``, never saved until accepted (a real Shift-A, an edit), declined by a real
Delete; and "Next most informative" going to the image the model is least sure of. The
model is a stand-in given to the session, as a test's predictor, not a trained network."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
from annotator_drawing import saved
from qtpy.QtCore import Qt

from napari_detlab._layers import PROPOSAL_FACE_ALPHA, PROPOSALS_LAYER
from napari_detlab.core.model.predict import Prediction

SHIFT = Qt.KeyboardModifier.ShiftModifier


class StandIn:
    """Two sure boxes (an ``object``, a ``cell``) and a faint one per image, except on the
    image it is ``unsure`` of. Records every image it is asked for."""

    def __init__(self, unsure: str = "img3") -> None:
        self.asked: list[str] = []
        self.unsure = unsure

    def __call__(self, image: Path) -> Prediction:
        self.asked.append(image.stem)
        sure = 0.55 if image.stem == self.unsure else 0.95
        return Prediction(
            boxes=[[5, 5, 20, 20], [30, 10, 50, 30], [0, 0, 4, 4]],
            labels=["object", "cell", "object"],
            scores=[0.9, sure, 0.2],  # 0.2: below the Review's threshold, never proposed
        )


def _with_model(widget, tmp_path, unsure: str = "img3") -> StandIn:
    model = StandIn(unsure)
    widget.session.make_predictor = lambda checkpoint: model
    widget.session.set_checkpoint(tmp_path / "best.pt")  # as the train dock does
    return model


def _file(folder: Path, stem: str) -> Path:
    return folder / "annotations" / f"{stem}.pt"


def test_proposals_are_predicted_ahead_shown_apart_and_saved_only_when_accepted(
    annotator, image_folder, press, qtbot, tmp_path
) -> None:
    viewer, widget = annotator(image_folder)
    model = _with_model(widget, tmp_path)
    qtbot.waitUntil(lambda: PROPOSALS_LAYER in viewer.layers, timeout=5000)
    proposals = viewer.layers[PROPOSALS_LAYER]
    qtbot.waitUntil(lambda: proposals.nshapes == 2, timeout=5000)
    # filled and translucent, where the class layers' boxes are hollow
    assert np.allclose(proposals.face_color[:, 3], PROPOSAL_FACE_ALPHA)
    assert viewer.layers.selection.active is viewer.layers["boxes: object"]  # still drawing
    # the next unannotated images are predicted without anyone pressing n
    qtbot.waitUntil(lambda: model.asked == ["img1", "img2", "img3"], timeout=5000)

    press(viewer, Qt.Key.Key_N)
    assert proposals.nshapes == 2  # at once: predicted ahead, n waits for nothing
    assert not _file(image_folder, "img1").exists()  # left without accepting: nothing saved
    press(viewer, Qt.Key.Key_A, SHIFT)  # accept them all
    on_disk = saved(image_folder, "img2")
    assert sorted(on_disk["labels"]) == ["cell", "object"]
    assert sorted(on_disk["boxes"].numpy().tolist()) == [[5, 5, 20, 20], [30, 10, 50, 30]]
    assert proposals.nshapes == 0
    assert viewer.layers["boxes: cell"].nshapes == 1  # the model's class joined the list
    press(viewer, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # one undo step
    assert not _file(image_folder, "img2").exists()

    press(viewer, Qt.Key.Key_B)
    assert proposals.nshapes == 2 and not _file(image_folder, "img1").exists()
    press(viewer, Qt.Key.Key_K)  # reviewed, no objects: the image is annotated now
    press(viewer, Qt.Key.Key_N)
    press(viewer, Qt.Key.Key_B)
    assert proposals.nshapes == 0  # an annotated image gets no proposals
    assert model.asked == ["img1", "img2", "img3"]  # each image predicted once


def _drag(viewer, send_mouse, qtbot, start, end) -> None:
    """A real left-button drag on the canvas from image point ``start`` to ``end`` (x, y).

    Where the canvas centre falls in the image is read from napari's cursor after a move
    there, so the drag lands on the image points whatever the canvas's size.
    """
    from qtpy.QtCore import QEvent

    send_mouse(viewer, QEvent.Type.MouseMove, 0, 0)
    qtbot.wait(50)  # napari handles a burst of moves as one
    row, col = viewer.cursor.position[-2:]
    zoom = viewer.camera.zoom

    def screen(point):
        return (point[0] - col) * zoom, (point[1] - row) * zoom

    left = Qt.MouseButton.LeftButton
    send_mouse(viewer, QEvent.Type.MouseMove, *screen(start))  # hover first, as a hand does
    qtbot.wait(50)
    send_mouse(viewer, QEvent.Type.MouseButtonPress, *screen(start), left)
    for step in np.linspace(0, 1, 5)[1:]:
        at = np.asarray(start) + step * (np.asarray(end) - np.asarray(start))
        send_mouse(viewer, QEvent.Type.MouseMove, *screen(at), left)
        qtbot.wait(50)
    send_mouse(viewer, QEvent.Type.MouseButtonRelease, *screen(end))


def test_an_edited_proposal_is_accepted_and_a_deleted_one_declined(
    annotator, image_folder, press, send_mouse, qtbot, tmp_path
) -> None:
    viewer, widget = annotator(image_folder)
    _with_model(widget, tmp_path)
    qtbot.waitUntil(lambda: PROPOSALS_LAYER in viewer.layers, timeout=5000)
    proposals = viewer.layers[PROPOSALS_LAYER]
    qtbot.waitUntil(lambda: proposals.nshapes == 2, timeout=5000)
    viewer.layers.selection.active = proposals
    proposals.mode = "select"
    proposals.selected_data = {list(proposals.features["label"]).index("cell")}
    press(viewer, Qt.Key.Key_Delete)
    assert proposals.nshapes == 1
    assert not _file(image_folder, "img1").exists()  # declining saves nothing

    # dragging the other one by (3, 2) image pixels with the mouse accepts it as moved
    proposals.selected_data = set()
    _drag(viewer, send_mouse, qtbot, (12.5, 12.5), (15.5, 14.5))
    qtbot.waitUntil(lambda: _file(image_folder, "img1").exists(), timeout=2000)
    on_disk = saved(image_folder, "img1")
    assert on_disk["labels"] == ["object"]
    assert np.allclose(on_disk["boxes"].numpy(), [[8, 7, 23, 22]], atol=0.1)  # as dropped
    assert proposals.nshapes == 0


def test_next_most_informative_goes_to_the_image_the_model_is_unsure_of(
    annotator, tmp_path, qtbot
) -> None:
    folder = tmp_path / "six"
    folder.mkdir()
    for index in range(6):
        iio.imwrite(folder / f"img{index + 1}.png", np.full((40, 60, 3), index * 30, np.uint8))
    _, widget = annotator(folder)
    model = _with_model(widget, tmp_path, unsure="img6")
    qtbot.waitUntil(lambda: len(model.asked) == 4, timeout=5000)  # this image and 3 ahead
    label_next = widget.prelabels.label_next
    label_next.next_button.click()  # img6 not predicted yet: the sure ones tie, in order
    qtbot.waitUntil(lambda: label_next.reason_label.text().startswith("img2"), timeout=5000)
    assert widget.current_path.name == "img2.png"
    assert "no undecided box" in label_next.reason_label.text()
    assert "of 3 predicted images; 2 not predicted yet" in label_next.reason_label.text()

    label_next.predict_all_button.click()  # every unannotated image, in the background
    qtbot.waitUntil(lambda: len(model.asked) == 6, timeout=5000)
    label_next.next_button.click()
    qtbot.waitUntil(lambda: label_next.reason_label.text().startswith("img6"), timeout=5000)
    assert widget.current_path.name == "img6.png"
    reason = label_next.reason_label.text()
    assert reason.startswith("img6.png: 1 box with scores in 0.3-0.7 (the least sure of 5")


def test_next_most_informative_also_ranks_the_prediction_files_of_detlab_predict(
    annotator, image_folder, qtbot
) -> None:
    from napari_detlab.core.model.predict import write_prediction

    _, widget = annotator(image_folder)  # no checkpoint chosen in this session
    for stem, score in (("img2", 0.97), ("img3", 0.5)):
        prediction = Prediction(boxes=[[5, 5, 20, 20]], labels=["object"], scores=[score])
        write_prediction(image_folder / "predictions", stem, prediction, image_size=(40, 60))
    label_next = widget.prelabels.label_next
    label_next.next_button.click()
    qtbot.waitUntil(lambda: label_next.reason_label.text().startswith("img"), timeout=5000)
    assert widget.current_path.name == "img3.png"
    assert label_next.reason_label.text() == (
        "img3.png: 1 box with scores in 0.3-0.7 (the least sure of 2 predicted images)"
    )


def test_a_checkpoint_chosen_in_the_train_dock_brings_proposals(
    annotator, image_folder, qtbot, tmp_path
) -> None:
    from napari_detlab._qt.train_dock import TrainDockWidget

    viewer, widget = annotator(image_folder)
    model = StandIn()
    widget.session.make_predictor = lambda checkpoint: model
    dock = TrainDockWidget(viewer)
    viewer.window.add_dock_widget(dock, name="Train / predict")
    checkpoint = tmp_path / "runs" / "best.pt"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"")  # the stand-in never reads it
    dock.predict_panel.checkpoint_row.edit.setText(str(checkpoint))
    qtbot.waitUntil(lambda: PROPOSALS_LAYER in viewer.layers, timeout=5000)
    qtbot.waitUntil(lambda: viewer.layers[PROPOSALS_LAYER].nshapes == 2, timeout=5000)
    assert "2 proposals from best.pt: Shift-A accepts all" in widget.prelabels.status_label.text()


def test_a_checkpoint_that_cannot_predict_is_reported_once_and_proposals_can_be_off(
    annotator, image_folder, press, qtbot, tmp_path, notifications
) -> None:
    from napari_detlab.core.model.checkpoint import CheckpointError

    viewer, widget = annotator(image_folder)
    asked = []

    def broken(image: Path) -> Prediction:
        asked.append(image)
        raise CheckpointError(f"{tmp_path / 'old.pt'}: weights do not fit the stored config")

    widget.session.make_predictor = lambda checkpoint: broken
    widget.session.set_checkpoint(tmp_path / "old.pt")
    qtbot.waitUntil(lambda: any("Pre-labels stopped" in n for n in notifications), timeout=5000)
    assert any("old.pt: weights do not fit" in n for n in notifications)
    press(viewer, Qt.Key.Key_N)
    qtbot.wait(100)
    assert len(asked) == 1  # not tried again on every n
    assert PROPOSALS_LAYER not in viewer.layers

    _with_model(widget, tmp_path)  # a good checkpoint next
    qtbot.waitUntil(lambda: PROPOSALS_LAYER in viewer.layers, timeout=5000)
    qtbot.waitUntil(lambda: viewer.layers[PROPOSALS_LAYER].nshapes == 2, timeout=5000)
    widget.prelabels.enabled.setChecked(False)  # the person annotates without them
    assert viewer.layers[PROPOSALS_LAYER].nshapes == 0
    assert "Proposals off" in widget.prelabels.status_label.text()
    press(viewer, Qt.Key.Key_N)
    assert viewer.layers[PROPOSALS_LAYER].nshapes == 0


def test_a_new_checkpoint_while_the_old_model_predicts_is_no_error(
    annotator, image_folder, qtbot, tmp_path, notifications
) -> None:
    """Training ends (a new checkpoint) while the old model is on an image: its model is
    closed under it, and the person sees the new model's proposals, not an error."""
    import threading

    from napari_detlab.core.assist.prelabels import PredictorClosedError

    viewer, widget = annotator(image_folder)
    busy, release = threading.Event(), threading.Event()

    def old_model(image: Path) -> Prediction:
        busy.set()
        release.wait(5)
        raise PredictorClosedError("old.pt was closed")  # what a closed model answers

    widget.session.make_predictor = lambda checkpoint: old_model
    widget.session.set_checkpoint(tmp_path / "old.pt")
    qtbot.waitUntil(busy.is_set, timeout=5000)
    new_model = _with_model(widget, tmp_path)  # the train dock's new best.pt
    release.set()
    qtbot.waitUntil(lambda: PROPOSALS_LAYER in viewer.layers, timeout=5000)
    qtbot.waitUntil(lambda: viewer.layers[PROPOSALS_LAYER].nshapes == 2, timeout=5000)
    assert new_model.asked[0] == "img1"
    assert not any("Pre-labels stopped" in n for n in notifications)
