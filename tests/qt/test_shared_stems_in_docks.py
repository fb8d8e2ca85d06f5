"""Two images with one stem (``a.jpg``, ``a.png``) in real docks: the Annotator never writes
their one file, the AnchorViewer and the Review say why they leave them out."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from qtpy.QtCore import Qt

from napari_detlab._qt.anchor_viewer import AnchorViewerWidget
from napari_detlab._qt.annotator import AnnotatorWidget
from napari_detlab._qt.review import ReviewWidget
from napari_detlab._qt.session import session_for
from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.boxes import xyxy_to_napari
from napari_detlab.core.model.config import preset
from napari_detlab.core.model.predict import Prediction, write_prediction

BOX = np.array([[10.0, 10.0, 40.0, 40.0]], np.float32)


def _folder(folder: Path, *, shared_file: bool) -> Path:
    """a.jpg, a.png and b.png (b annotated); ``shared_file``: an ``a.pt`` another tool wrote."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.jpg", "a.png", "b.png"):
        iio.imwrite(folder / name, rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    store = AnnotationStore(folder)
    store.save("b.png", ImageAnnotation(BOX, ["cell"], reviewed=True, image_size=(64, 64)))
    if shared_file:
        torch.save({"boxes": torch.from_numpy(BOX), "labels": ["cell"]}, store.path_for("a"))
    return folder


def test_the_annotator_refuses_to_save_either_image_and_saves_the_others(
    make_napari_viewer, tmp_path, qtbot, notifications, press
):
    folder = _folder(tmp_path / "data", shared_file=False)
    viewer = make_napari_viewer()
    widget = AnnotatorWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Annotator")
    widget.open_folder(folder)
    assert any("would share one annotation file" in text for text in notifications)

    for name in ("a.jpg", "a.png"):
        assert session_for(viewer).image_path == folder / name
        before = len(notifications)
        viewer.layers["boxes: cell"].add_rectangles(xyxy_to_napari(BOX.astype(float)))
        qtbot.waitUntil(lambda before=before: len(notifications) > before, timeout=2000)
        refusal = notifications[-1]
        assert f"Could not save the boxes of {name}" in refusal
        assert "images a.jpg and a.png" in refusal and "rename one of them" in refusal
        assert not (folder / "annotations" / "a.pt").exists()
        press(viewer, Qt.Key.Key_N)

    assert session_for(viewer).image_path == folder / "b.png"
    viewer.layers["boxes: cell"].add_rectangles(xyxy_to_napari(BOX.astype(float) + 5))
    widget.flush()
    assert len(AnnotationStore(folder).load("b")) == 2  # the other images work as usual
    assert not (folder / "annotations" / "a.pt").exists()


def test_the_anchor_viewer_names_both_images(make_napari_viewer, tmp_path, qtbot):
    folder = _folder(tmp_path / "data", shared_file=True)
    viewer = make_napari_viewer()
    session = session_for(viewer)
    session.set_config(preset("fast", ["cell"]))
    session.open_dataset(folder)
    widget = AnchorViewerWidget(viewer)
    qtbot.addWidget(widget)
    try:
        qtbot.waitUntil(lambda: "a.jpg and a.png" in widget.error_label.text(), timeout=30000)
        assert "rename one of them" in widget.error_label.text()
        assert widget.model.report is None  # no figures that silently merge the two images
    finally:
        widget.teardown()


def test_the_review_figures_leave_the_pair_out_and_say_so(make_napari_viewer, tmp_path, qtbot):
    folder = _folder(tmp_path / "data", shared_file=True)
    for stem in ("a", "b"):
        write_prediction(folder / "predictions", stem, Prediction(BOX, ["cell"], [0.9], (64, 64)))
    viewer = make_napari_viewer()
    annotator = AnnotatorWidget(viewer)
    viewer.window.add_dock_widget(annotator, name="Annotator")
    review = ReviewWidget(viewer)
    viewer.window.add_dock_widget(review, name="Review predictions")
    annotator.open_folder(folder)
    review.refresh_dataset_metrics()
    qtbot.waitUntil(
        lambda: not review.busy and "left out" in review.dataset_label.text(), timeout=10000
    )
    text = review.dataset_label.text()
    assert text.startswith("1 image: 1 TP")  # b alone is scored
    assert "left out: a.jpg and a.png" in text
    assert set(review.dataset_review.per_image) == {"b"}
