"""The Import / export button, built directly on a session, driven through its menu actions.

The jobs run in napari's thread pool: each test waits for the worker to end, then checks the
files on disk, the notifications and what the docks were told through the session.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QApplication, QToolButton, QWidget

from napari_detlab._layers import class_layer_name
from napari_detlab._qt.session import DetlabSession, session_for
from napari_detlab._qt.widgets.interop_menu import build_interop_menu
from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore

JOB_TIMEOUT_MS = 60_000


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "ds"
    folder.mkdir()
    for index in range(2):
        iio.imwrite(folder / f"img{index}.png", np.full((20, 30, 3), 50 * index, np.uint8))
    return folder


class Docks:
    """Stands in for the docks: records what the button asks of them through the session."""

    def __init__(self, session: DetlabSession) -> None:
        self.calls: list[tuple[object, ...]] = []
        session.flush_requested.connect(lambda: self.calls.append(("flush",)))
        session.open_folder_requested.connect(lambda path: self.calls.append(("open", path)))
        session.show_image_requested.connect(lambda path, _: self.calls.append(("show", path)))
        session.annotations_changed.connect(lambda path: self.calls.append(("changed", path)))


@pytest.fixture
def session(folder: Path) -> DetlabSession:
    """The dataset open, its second image on screen."""
    session = DetlabSession()
    session.open_dataset(folder)
    session.set_image(1, folder / "img1.png")
    return session


@pytest.fixture
def parent(qtbot) -> QWidget:
    """The dock the button sits in (kept alive by the test, as a dock is by napari)."""
    widget = QWidget()
    qtbot.addWidget(widget)
    return widget


def _coco(path: Path, boxes: list[list[float]], name: str = "nucleus") -> Path:
    path.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "img0.png", "width": 30, "height": 20}],
                "annotations": [
                    {
                        "id": i + 1,
                        "image_id": 1,
                        "category_id": 1,
                        "bbox": box,
                        "area": 1,
                        "iscrowd": 0,
                    }
                    for i, box in enumerate(boxes)
                ],
                "categories": [{"id": 1, "name": name}],
            }
        )
    )
    return path


def _action(menu_button, text: str):
    return next(a for a in menu_button.menu().actions() if a.text().startswith(text))


def _enabled(button) -> bool:
    return all(action.isEnabled() for action in button.menu().actions())


def _run(qtbot, button, text: str) -> None:
    """Trigger an action and wait until its job ends (the menu is enabled again)."""
    _action(button, text).trigger()
    qtbot.waitUntil(lambda: button.worker is None, timeout=JOB_TIMEOUT_MS)
    assert _enabled(button)


def test_import_runs_in_the_background_and_reopens_at_the_image_for_a_new_class(
    parent, qtbot, session: DetlabSession, folder: Path, tmp_path: Path, notifications
) -> None:
    docks = Docks(session)
    source = _coco(tmp_path / "labels.json", [[1, 2, 10, 8], [5, 5, 3, 3]])
    asked: list[str] = []
    button = build_interop_menu(
        parent, session, ask_path=lambda kind, *_: asked.append(kind) or str(source)
    )

    _action(button, "Import COCO").trigger()
    assert button.worker is not None and not _enabled(button)  # running, menu disabled
    qtbot.waitUntil(lambda: button.worker is None, timeout=JOB_TIMEOUT_MS)

    assert asked == ["open_file"] and _enabled(button)
    assert AnnotationStore(folder).load("img0").labels == ["nucleus", "nucleus"]
    # Edits written first; then, as the class list grew, the folder reopened at the image.
    assert docks.calls == [("flush",), ("open", folder), ("show", folder / "img1.png")]
    assert any("imported 1 image (2 boxes" in text for text in notifications)


def test_import_asks_before_replacing_different_boxes(
    parent, qtbot, session: DetlabSession, folder: Path, tmp_path: Path, notifications
) -> None:
    AnnotationStore(folder).save("img0", ImageAnnotation([[0, 0, 4, 4]], ["mine"], True, (20, 30)))
    session.set_image(0, folder / "img0.png")
    docks = Docks(session)
    source = _coco(tmp_path / "labels.json", [[1, 2, 10, 8]], name="mine")
    answers = iter([False, True])
    questions: list[str] = []

    def confirm(question: str) -> bool:
        questions.append(question)
        assert AnnotationStore(folder).load("img0").boxes.tolist() == [[0, 0, 4, 4]]
        return next(answers)

    button = build_interop_menu(parent, session, ask_path=lambda *_: str(source), confirm=confirm)
    _run(qtbot, button, "Import COCO")
    assert AnnotationStore(folder).load("img0").boxes.tolist() == [[0, 0, 4, 4]]  # said no
    assert any("kept (overwrite to replace them): img0.png" in t for t in notifications)
    _run(qtbot, button, "Import COCO")
    assert AnnotationStore(folder).load("img0").boxes.tolist() == [[1, 2, 11, 10]]  # said yes
    assert len(questions) == 2 and "img0.png" in questions[0]
    # No new class: the image on screen is announced as changed, for the Annotator to redraw.
    changed = [call for call in docks.calls if call[0] != "flush"]
    assert changed == [("changed", folder / "img0.png")] * 2
    assert any("imported 1 image (1 box" in text for text in notifications)


def test_export_from_the_menu_writes_the_format(
    parent, qtbot, session: DetlabSession, folder: Path, tmp_path: Path, notifications
) -> None:
    AnnotationStore(folder).save("img1", ImageAnnotation([[3, 3, 9, 9]], ["cell"], True, (20, 30)))
    docks = Docks(session)
    target = tmp_path / "voc"
    button = build_interop_menu(
        parent, session, ask_path=lambda kind, *_: str(target) if kind == "folder" else None
    )
    _run(qtbot, button, "Export Pascal VOC")
    assert (target / "img1.xml").is_file()
    assert "<xmin>4</xmin>" in (target / "img1.xml").read_text()
    assert docks.calls == [("flush",)]
    assert any(f"wrote 1 image (1 box, 0 negatives) as voc to {target}" in t for t in notifications)


def test_a_failed_import_is_an_error_notification_and_the_menu_comes_back(
    parent, qtbot, session: DetlabSession, folder: Path, tmp_path: Path, notifications
) -> None:
    docks = Docks(session)
    broken = tmp_path / "labels.json"
    broken.write_text("{not json")
    button = build_interop_menu(parent, session, ask_path=lambda *_: str(broken))
    _run(qtbot, button, "Import COCO")
    assert any(t.startswith("Import failed:") and "not valid JSON" in t for t in notifications)
    assert docks.calls == [("flush",)] and not (folder / "annotations").exists()


def test_menu_without_a_dataset_or_a_chosen_path_does_nothing(
    parent, qtbot, folder: Path, notifications
) -> None:
    session = DetlabSession()
    docks = Docks(session)
    button = build_interop_menu(
        parent, session, ask_path=lambda *_: pytest.fail("asked for a path")
    )
    for action in button.menu().actions():
        action.trigger()  # a warning, no dialog, no crash
    assert any("Open an image folder before importing" in text for text in notifications)
    session.open_dataset(folder)
    button = build_interop_menu(parent, session, ask_path=lambda *_: None)  # the user cancels
    for action in button.menu().actions():
        action.trigger()
    assert button.worker is None and docks.calls == []
    assert not (folder / "annotations").exists()


def test_the_menu_offers_every_format_both_ways(parent) -> None:
    button = build_interop_menu(parent, DetlabSession())
    texts = [action.text() for action in button.menu().actions()]
    for title in ("COCO", "VOC", "YOLO", "tutorial"):
        assert any(t.startswith("Import") and title in t for t in texts), texts
        assert any(t.startswith("Export") and title in t for t in texts), texts


def test_viewer_stays_responsive_and_the_activity_dock_shows_progress_to_the_total(
    parent, make_napari_viewer, qtbot, tmp_path: Path, notifications
) -> None:
    from napari._qt.widgets.qt_progress_bar import QtLabeledProgressBar

    count = 300
    dataset, targets = tmp_path / "many", tmp_path / "target"
    dataset.mkdir()
    targets.mkdir()
    for index in range(count):
        iio.imwrite(dataset / f"img{index:03d}.png", np.zeros((16, 24), np.uint8))
        (targets / f"img{index:03d}.json").write_text(
            json.dumps({"labels": ["cell"], "boxes": [[1, 2, 9, 10]]})
        )
    viewer = make_napari_viewer()
    session = session_for(viewer)
    session.open_dataset(dataset)
    button = build_interop_menu(parent, session, ask_path=lambda *_: str(targets))

    ticks: list[tuple[float, bool]] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append((time.perf_counter(), _enabled(button))))
    timer.start(10)
    # What the job told napari's progress object at each step, and what the activity dock's
    # bar for it showed as the job returned. (The dock's bar is not read at each step: napari
    # 0.9 runs the event loop while it adds a bar, before it connects the bar to the progress
    # object, so a quick first stage may pass while the bar still shows the job's name. The
    # user then sees the next stage; nothing of ours is missing.)
    stages: list[tuple[str, int, int]] = []
    at_end: list[tuple[str, int, int]] = []

    def record_stage(event) -> None:
        stages.append((_label(progress.desc), progress.n, progress.total))

    def record_dock_bar_at_end(*_) -> None:  # the bar closes when the worker finishes
        for window in QApplication.topLevelWidgets():
            for bar in window.findChildren(QtLabeledProgressBar):
                if bar.progress is progress:
                    shown = bar.qt_progress_bar
                    text = _label(bar.description_label.text())
                    at_end.append((text, shown.value(), shown.maximum()))

    start = time.perf_counter()
    _action(button, "Import tutorial").trigger()
    returned = time.perf_counter()
    progress = button.worker.pbar
    progress.events.value.connect(record_stage)
    button.worker.returned.connect(record_dock_bar_at_end)
    qtbot.waitUntil(lambda: button.worker is None, timeout=JOB_TIMEOUT_MS)
    end = time.perf_counter()
    timer.stop()

    assert len(AnnotationStore(dataset).trainable_stems()) == count
    assert any(f"imported {count} images" in text for text in notifications)
    # The trigger came straight back, and the GUI thread kept ticking while the job ran,
    # with the menu disabled.
    assert returned - start < 0.5
    during = [t for t, enabled in ticks if start < t < end]
    assert len(during) >= 5, (len(during), end - start)
    assert not any(enabled for t, enabled in ticks if returned < t < end - 0.1)
    gaps = np.diff([start, *during, end])
    assert gaps.max() < 1.0, gaps.max()
    # The job's bar went through both stages and reached the total, and the activity dock
    # showed it there.
    assert list(dict.fromkeys(text for text, _, _ in stages)) == [
        "Import tutorial JSON targets: reading",
        "Import tutorial JSON targets: writing",
    ]
    assert stages[-1] == ("Import tutorial JSON targets: writing", count, count)
    assert at_end == [("Import tutorial JSON targets: writing", count, count)], at_end


def test_the_annotator_redraws_what_the_menu_imported(
    parent, make_napari_viewer, qtbot, folder: Path, tmp_path: Path
) -> None:
    """End to end with the real Annotator listening to the session (once it builds the
    button as ``build_interop_menu(self, self.session)``)."""
    annotator_module = pytest.importorskip("napari_detlab._qt.annotator")
    viewer = make_napari_viewer()
    annotator = annotator_module.AnnotatorWidget(viewer)
    (own,) = [b for b in annotator.findChildren(QToolButton) if b.text() == "Import / export"]
    assert [a.text() for a in own.menu().actions()] == [
        a.text() for a in build_interop_menu(parent, DetlabSession()).menu().actions()
    ]  # the dock carries the menu, for every format
    session = session_for(viewer)
    assert session.request_open_folder(folder)
    source = _coco(tmp_path / "labels.json", [[1, 2, 10, 8], [5, 5, 3, 3]])
    answers = iter([True])
    button = build_interop_menu(
        parent, session, ask_path=lambda *_: str(source), confirm=lambda _: next(answers)
    )
    _run(qtbot, button, "Import COCO")  # a new class: the folder reopens at the same image
    assert session.image_index == 0 and viewer.layers[class_layer_name("nucleus")].nshapes == 2
    _coco(source, [[2, 3, 9, 9]])
    _run(qtbot, button, "Import COCO")  # different boxes, replaced: the image is redrawn
    np.testing.assert_allclose(
        viewer.layers[class_layer_name("nucleus")].data[0].max(axis=0), [12, 11]
    )


def test_closing_the_dock_during_an_import_stops_it_without_calling_back(
    qtbot, session: DetlabSession, folder: Path, tmp_path: Path
) -> None:
    targets = tmp_path / "target"
    targets.mkdir()
    for index in range(200):
        iio.imwrite(folder / f"more{index:03d}.png", np.zeros((8, 8), np.uint8))
        (targets / f"more{index:03d}.json").write_text('{"labels": ["x"], "boxes": [[1, 1, 5, 5]]}')
    session.open_dataset(folder)
    dock = QWidget()
    button = build_interop_menu(dock, session, ask_path=lambda *_: str(targets))
    _action(button, "Import tutorial").trigger()
    worker = button.worker
    dock.deleteLater()  # napari closes the dock: the button goes with it
    qtbot.waitUntil(lambda: not worker.is_running, timeout=JOB_TIMEOUT_MS)
    qtbot.wait(50)  # whatever the worker's end queued for the GUI thread runs, and finds
    assert worker.abort_requested  # nothing to call back into: the job was told to stop


def _label(description: str) -> str:
    """A progress description as the user reads it (tqdm and napari end it with ": ")."""
    return description.removesuffix(": ")
