"""The Review dock's figures by split, in a real viewer, on a dataset with known answers."""

from __future__ import annotations

from qtpy.QtGui import QColor

from evaluation_scene import COCO_CELL_AP, write_scene
from napari_detlab._qt.annotator import AnnotatorWidget
from napari_detlab._qt.review import ReviewWidget
from napari_detlab.core.evaluation.pr_plot import curve_color


def _cells(table) -> list[list[str]]:
    return [
        [table.item(r, c).text() for c in range(table.columnCount())]
        for r in range(table.rowCount())
    ]


def _painted_pixels(widget, color: str) -> int:
    image = widget.grab().toImage()
    target = QColor(color).rgb()
    return sum(
        image.pixel(x, y) == target for x in range(image.width()) for y in range(image.height())
    )


def test_the_dock_shows_each_split_its_ap_table_curves_and_confusion(
    make_napari_viewer, tmp_path, qtbot
):
    _store, _predictions = write_scene(tmp_path / "data")
    viewer = make_napari_viewer()
    annotator = AnnotatorWidget(viewer)
    viewer.window.add_dock_widget(annotator, name="Annotator")
    review = ReviewWidget(viewer)
    viewer.window.add_dock_widget(review, name="Review predictions")
    annotator.open_folder(tmp_path / "data")
    annotator.go_to(0)
    review.refresh_dataset_metrics()  # scored in a worker thread
    qtbot.waitUntil(lambda: not review.busy, timeout=20_000)
    panel = review.split_figures

    text = panel.splits_label.text()
    assert "validation (1 image) · training (1 image) · new (1 image)" in text
    # The line over the split mixes them, and says so: one image was trained on.
    mixed = "All 3 images (training images included, see the split below): "
    assert review.dataset_label.text().startswith(mixed)
    assert str(tmp_path / "data" / "run" / "best.pt") in text
    # The dock scores its kept boxes (score >= 0.5): the crystal at 0.3 is not among them.
    assert _cells(panel.ap_table) == [
        ["validation", "cell", f"{COCO_CELL_AP:.2f}", f"{COCO_CELL_AP:.2f}", "2"],
        ["validation", "crystal", "0.00", "0.00", "1"],
        ["training", "cell", "1.00", "1.00", "1"],
        ["training", "crystal", "–", "–", "0"],
        ["new", "cell", "–", "–", "0"],
        ["new", "crystal", "1.00", "1.00", "1"],
    ]
    assert panel.chosen == "validation"  # the honest split first
    assert _cells(panel.confusion) == [["1", "1", "0"], ["0", "0", "1"], ["1", "0", "–"]]
    headers = [panel.confusion.verticalHeaderItem(r).text() for r in range(3)]
    assert headers == ["true cell", "true crystal", "false positive"]
    assert panel.confusion.horizontalHeaderItem(2).text() == "missed"
    assert panel.pr_plot.legend() == ["cell: AP 0.50, 2 objects", "crystal: AP 0.50, 1 object"]
    assert _painted_pixels(panel.pr_plot, curve_color(0)) > 50  # the cell curve is drawn
    assert _painted_pixels(panel.pr_plot, curve_color(1)) > 50

    panel.ap_table.cellClicked.emit(2, 0)  # a training row: its split is shown below
    assert panel.chosen == "training"
    assert _cells(panel.confusion) == [["1", "0", "0"], ["0", "0", "0"], ["0", "0", "–"]]
    assert panel.pr_plot.legend() == ["cell: AP 1.00, 1 object", "crystal: AP –, 0 objects"]

    review.score_slider.setValue(0.2)  # the crystal on C is kept now: a true positive
    review.refresh_dataset_metrics()
    qtbot.waitUntil(lambda: not review.busy, timeout=20_000)
    assert panel.chosen == "training"  # the choice survives an update
    panel.choose("validation")
    assert _cells(panel.confusion) == [["1", "1", "0"], ["0", "1", "0"], ["1", "0", "–"]]
    assert _cells(panel.ap_table)[1][2:4] == ["0.50", "0.50"]

    # Another run's split, chosen by hand: every image trained there.
    other = tmp_path / "other_split.json"
    other.write_text('{"train": ["v1", "t1", "n1"], "val": []}')
    assert panel.use_split_from(other)
    qtbot.waitUntil(lambda: not review.busy, timeout=20_000)
    assert panel.splits_label.text().startswith("training (3 images)<br>split from: ")
    assert str(other) in panel.splits_label.text()
    assert [row[0] for row in _cells(panel.ap_table)] == ["training", "training"]
    assert panel.use_split_from(None)  # back to the checkpoints' own
    qtbot.waitUntil(lambda: not review.busy, timeout=20_000)
    assert panel.splits_label.text().startswith("validation (1 image) · training (1 image)")

    # A split that trained on none of them: the dataset line is just the images' figures.
    untrained = tmp_path / "untrained_split.json"
    untrained.write_text('{"train": ["elsewhere"], "val": ["v1", "t1", "n1"]}')
    assert panel.use_split_from(untrained)
    qtbot.waitUntil(lambda: not review.busy, timeout=20_000)
    assert panel.splits_label.text().startswith("validation (3 images)<br>")
    assert review.dataset_label.text().startswith("3 images: ")
