"""The train dock tells the person when an image's confident objects filled the model's cap
on detections per image and it was predicted again with room for more."""

from __future__ import annotations

from napari_detlab._qt.train_dock import TrainDockWidget
from napari_detlab.core.model.checkpoint import save_checkpoint
from napari_detlab.core.model.predict import load_prediction
from tiny_detector import noise_images, small_detector

CAP = 5


def test_the_dock_says_an_image_was_predicted_again_with_room(
    make_napari_viewer, tmp_path, qtbot, notifications
) -> None:
    images = noise_images(tmp_path / "images", [(90, 120), (80, 100)])
    model, config = small_detector(CAP, confident=True)
    checkpoint = save_checkpoint(
        tmp_path / "best.pt", model=model, config=config, epoch=1, metrics=None
    )
    dock = TrainDockWidget(make_napari_viewer())
    dock.predict_panel.checkpoint_row.edit.setText(str(checkpoint))

    assert dock.predict(images, tmp_path / "predictions")
    qtbot.waitUntil(lambda: not dock.is_predicting(), timeout=60_000)

    found = {path.stem: len(load_prediction(path)) for path in dock.predicted}
    assert set(found) == {"im0", "im1"} and min(found.values()) > CAP
    told = [text for text in notifications if "predicted again" in text]
    assert len(told) == 1, notifications
    assert told[0].startswith("2 image(s) held more confident objects than the model keeps")
    assert f"im0.png: {CAP} confident detections filled" in told[0]
    assert f"room for more: {found['im0']}" in told[0]
