"""The hub of one viewer's docks: state told to newcomers, requests answered, docks let go."""

from __future__ import annotations

import pytest
from qtpy.QtWidgets import QWidget

from napari_detlab._qt.session import DetlabSession, session_for
from napari_detlab.core.model.config import preset


def test_a_subscriber_is_told_the_current_state_then_every_change(tmp_path):
    session = DetlabSession()
    session.open_dataset(tmp_path)
    session.set_image(2, tmp_path / "c.png")
    session.set_config(preset("fast", ["cell"]))
    seen: list[tuple] = []
    unsubscribe = session.subscribe(
        dataset_changed=lambda store: seen.append(("dataset", store.root)),
        image_changed=lambda index, path: seen.append(("image", index, path.name)),
        checkpoint_changed=lambda path: seen.append(("checkpoint", path)),
    )
    # state known now is replayed, in the order docks need it; no checkpoint yet: nothing
    assert seen == [("dataset", tmp_path), ("image", 2, "c.png")]
    session.set_checkpoint(tmp_path / "best.pt")
    assert seen[-1] == ("checkpoint", tmp_path / "best.pt")
    unsubscribe()
    session.set_image(0, tmp_path / "a.png")
    assert seen[-1] == ("checkpoint", tmp_path / "best.pt")  # no longer connected


def test_a_new_dataset_forgets_the_image_and_the_old_predictions(tmp_path):
    (tmp_path / "b").mkdir()
    session = DetlabSession()
    session.open_dataset(tmp_path)
    session.set_image(0, tmp_path / "a.png")
    session.set_predictions(tmp_path / "predictions")
    store = session.open_dataset(tmp_path / "b")
    assert session.store is store and session.dataset == tmp_path / "b"
    assert session.image_path is None and session.predictions_dir is None
    with pytest.raises(FileNotFoundError):
        session.open_dataset(tmp_path / "missing")
    assert session.store is store  # a refused folder changes nothing


def test_requests_reach_a_listener_and_say_when_nobody_listens(tmp_path):
    session = DetlabSession()
    assert not session.request_image(tmp_path / "a.png", 3)
    assert not session.request_open_folder(tmp_path)
    asked: list[tuple] = []
    unsubscribe = session.subscribe(
        show_image_requested=lambda path, box: asked.append((path.name, box)),
        flush_requested=lambda: asked.append(("flush",)),
    )
    assert session.listens("show_image_requested")
    assert session.request_image(tmp_path / "a.png", 3)
    session.request_flush()
    assert asked == [("a.png", 3), ("flush",)]
    unsubscribe()
    assert not session.listens("show_image_requested")


def test_subscribing_to_a_signal_that_does_not_exist_is_refused():
    with pytest.raises(TypeError, match="no signal 'dataset_change'"):
        DetlabSession().subscribe(dataset_change=print)


def test_an_attached_widget_is_let_go_once_when_closed(qtbot, tmp_path):
    session = DetlabSession()
    widget = QWidget()
    qtbot.addWidget(widget)
    torn_down: list[bool] = []
    seen: list[object] = []
    session.attach(widget, teardown=lambda: torn_down.append(True), dataset_changed=seen.append)
    session.open_dataset(tmp_path)
    assert len(seen) == 1
    widget.close()
    widget.close()
    assert torn_down == [True]
    session.open_dataset(tmp_path)
    assert len(seen) == 1  # disconnected with the teardown


def test_napari_removing_a_dock_tears_it_down(make_napari_viewer, tmp_path):
    """napari un-parents a removed dock's widget instead of closing it: that ends it too."""
    viewer = make_napari_viewer()
    session = session_for(viewer)
    widget = QWidget()
    torn_down: list[bool] = []
    session.attach(widget, teardown=lambda: torn_down.append(True), flush_requested=print)
    dock = viewer.window.add_dock_widget(widget, name="probe")
    assert torn_down == [] and session.listens("flush_requested")
    viewer.window.remove_dock_widget(dock)
    assert torn_down == [True]
    assert not session.listens("flush_requested")


def test_each_viewer_has_its_own_session(make_napari_viewer):
    first, second = make_napari_viewer(), make_napari_viewer()
    assert session_for(first) is session_for(first)
    assert session_for(first) is not session_for(second)


def test_docks_hear_of_a_save_later_one_per_event_loop_turn_and_once_per_file(qtbot, tmp_path):
    """A save returns before any dock reacts; each dock then reacts in a turn of its own (the
    user's input and the repaint come in between), once however often the file was saved,
    and a dock that closed meanwhile hears nothing."""
    from qtpy.QtWidgets import QApplication

    session = DetlabSession()
    heard: list[tuple[str, str]] = []
    widgets = {}
    for name in ("statistics", "review", "anchors"):
        widgets[name] = QWidget()
        qtbot.addWidget(widgets[name])
        session.attach(
            widgets[name], annotation_saved=lambda path, dock=name: heard.append((dock, path.name))
        )
    session.annotation_saved.emit(tmp_path / "a.png")
    session.annotation_saved.emit(tmp_path / "a.png")  # saved again before anyone's turn
    session.annotation_saved.emit(tmp_path / "b.png")
    widgets["anchors"].close()
    assert heard == []  # the saves returned at once
    turns = []
    while len(turns) < 10 and len(heard) < 4:
        QApplication.processEvents()  # one turn of the event loop
        turns.append(len(heard))
    assert turns[:4] == [1, 2, 3, 4]  # one reaction per turn
    assert heard == [
        ("statistics", "a.png"), ("review", "a.png"), ("statistics", "b.png"), ("review", "b.png")
    ]  # fmt: skip
    qtbot.wait(50)
    assert len(heard) == 4  # nothing twice, nothing for the closed dock
