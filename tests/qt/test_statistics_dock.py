"""The Dataset statistics dock in a real viewer beside the Annotator: live figures and jumps."""

from __future__ import annotations

import numpy as np
import pytest

from napari_detlab._qt.statistics_dock import StatisticsWidget
from napari_detlab.core.boxes import xyxy_to_napari
from napari_detlab.core.images import read_image
from stats_dataset import annotation, write_known_dataset


@pytest.fixture
def docks(annotator, qtbot, tmp_path):
    """The Annotator on the known dataset (showing img1) and the statistics dock, read."""
    folder = write_known_dataset(tmp_path / "data")
    viewer, annotator = annotator(folder)
    stats = StatisticsWidget(viewer)
    viewer.window.add_dock_widget(stats, name="Dataset statistics")
    qtbot.waitUntil(lambda: stats.statistics is not None and not stats.busy, timeout=30_000)
    return viewer, annotator, stats, folder


def table_rows(table) -> list[list[str]]:
    return [
        [table.item(r, c).text() for c in range(table.columnCount())]
        for r in range(table.rowCount())
    ]


def test_figures_follow_a_box_drawn_and_saved_in_the_annotator(docks, qtbot):
    viewer, annotator, stats, folder = docks
    assert "2 annotated" in stats.counts_label.text()
    assert "2 untouched" in stats.counts_label.text()
    assert table_rows(stats.class_table) == [
        ["cell", "3", "75.0%"],
        ["crystal", "1", "25.0%"],
        ["debris", "0", "0.0%"],
    ]
    assert table_rows(stats.image_table) == [["img1.png", "3"], ["img2.png", "1"]]
    assert stats.size_histogram.counts.sum() == 4
    assert stats.message_label.text() == "Unreadable annotation file: img6.png"
    assert "img6.pt" in stats.message_label.toolTip()  # the store's reason, naming the file

    stats.counts_label.linkActivated.emit("untouched")  # the user clicks "2 untouched"
    assert annotator.current_path == folder / "img4.png"
    layer = viewer.layers["boxes: debris"]
    layer.add_rectangles(xyxy_to_napari(np.array([[10.0, 10.0, 60.0, 50.0]])))  # as drawn
    # no flush: the Annotator's autosave writes it, and the dock hears of it from the session

    qtbot.waitUntil(lambda: stats.statistics.annotated == 3, timeout=5_000)
    assert "3 annotated" in stats.counts_label.text()
    assert "1 untouched" in stats.counts_label.text()
    assert table_rows(stats.class_table)[2] == ["debris", "1", "20.0%"]
    assert table_rows(stats.image_table)[-1] == ["img4.png", "1"]
    assert stats.size_histogram.counts.sum() == 5
    assert stats.statistics.size_bins["medium"] == 2  # 50 x 40 pixels


def test_clicking_an_image_row_shows_that_image_in_the_annotator(docks):
    viewer, annotator, stats, folder = docks
    row = next(r for r, cells in enumerate(table_rows(stats.image_table)) if cells[0] == "img2.png")
    stats.image_table.cellClicked.emit(row, 0)
    assert annotator.current_path == folder / "img2.png"
    np.testing.assert_array_equal(viewer.layers["image"].data, read_image(folder / "img2.png"))
    assert viewer.layers["boxes: cell"].nshapes == 1


def test_clicking_a_class_goes_to_the_next_image_with_that_class(docks):
    _, annotator, stats, folder = docks
    cell = next(r for r, cells in enumerate(table_rows(stats.class_table)) if cells[0] == "cell")
    stats.class_table.cellClicked.emit(cell, 0)
    assert annotator.current_path == folder / "img2.png"  # after img1, on screen
    stats.class_table.cellClicked.emit(cell, 0)
    assert annotator.current_path == folder / "img1.png"  # wraps around


def test_files_another_dock_wrote_are_found_by_their_stamps(docks, qtbot):
    _, _, stats, folder = docks
    store = stats.store
    store.save("img5.png", annotation([[0, 0, 150, 150]], ["crystal"]))  # an import, say
    store.save("img3.png", annotation([[0, 0, 20, 20]], ["crystal"]))
    stats.session.annotations_changed.emit(folder / "img3.png")  # it names one image only
    qtbot.waitUntil(lambda: stats.statistics.annotated == 4, timeout=10_000)
    assert table_rows(stats.class_table)[1] == ["crystal", "3", "50.0%"]
    assert "0 reviewed negative" in stats.counts_label.text()


def test_behind_another_tab_the_figures_wait_until_it_is_chosen(docks, qtbot):
    viewer, annotator, stats, folder = docks
    stats.set_overlay_visible(False)
    annotator.go_to(3)  # img4, untouched
    viewer.layers["boxes: cell"].add_rectangles(xyxy_to_napari(np.array([[0.0, 0.0, 9.0, 9.0]])))
    annotator.flush()  # the dock hears of it in an event-loop turn of its own
    qtbot.waitUntil(lambda: stats.tracker.figures(folder / "img4.png").boxes == 1)  # current...
    assert "2 annotated" in stats.counts_label.text()  # ...but not drawn
    stats.set_overlay_visible(True)
    assert "3 annotated" in stats.counts_label.text()
    assert table_rows(stats.class_table)[0] == ["cell", "4", "80.0%"]


def test_a_class_added_in_the_annotator_joins_the_table_with_the_next_save(docks, qtbot):
    viewer, annotator, stats, _ = docks
    annotator.annotator.add_class("spore", "#00ff00")
    viewer.layers["boxes: cell"].add_rectangles(xyxy_to_napari(np.array([[0.0, 0.0, 9.0, 9.0]])))
    annotator.flush()
    qtbot.waitUntil(lambda: ["spore", "0", "0.0%"] in table_rows(stats.class_table), timeout=10_000)
    assert table_rows(stats.class_table)[0] == ["cell", "4", "80.0%"]
