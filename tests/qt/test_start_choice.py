"""The train dock's "Start from" row in a real viewer: choosing where the weights start, the
line saying what the next run starts from, and the Download button against a local server
(127.0.0.1 only): a download that lands, a wrong file, a server that is down, a Cancel."""

from __future__ import annotations

import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from qtpy.QtCore import Qt, QTimer

import napari_detlab.core.model.weights_catalog as weights_catalog
from napari_detlab._qt.session import session_for
from napari_detlab._qt.train_dock import TrainDockWidget
from napari_detlab._qt.widgets.train_form import ANCHOR_VIEWER_CHOICE
from napari_detlab.core.annotations.store import AnnotationStore, ClassSpec
from napari_detlab.core.model.config import preset
from napari_detlab.core.model.weights_catalog import KnownWeights
from weights_server import WeightsServer, hashed_name, unused_port, weights_payload

NAME = "resnet18-imagenet"  # what the fast preset's "best present" suggests downloading


@pytest.fixture
def serve_resnet18(monkeypatch):
    """``serve_resnet18(url)``: the catalog's ResNet-18 ImageNet weights come from ``url``."""
    real = weights_catalog.known_weights

    def serve(url: str) -> None:
        fake = KnownWeights(NAME, "resnet18", "imagenet", url)
        catalog = [fake, *(w for w in real() if w.name != NAME)]
        monkeypatch.setattr(weights_catalog, "known_weights", lambda: catalog)

    return serve


@pytest.fixture
def dock(make_napari_viewer, torch_home):
    """A viewer with the train dock on the fast preset (ResNet-18), nothing downloaded."""

    def make() -> TrainDockWidget:
        viewer = make_napari_viewer()
        widget = TrainDockWidget(viewer)
        viewer.window.add_dock_widget(widget, name="Train / predict")
        widget.train_form.config_combo.setCurrentText("fast")
        return widget

    return make


def _titles(combo) -> list[str]:
    return [combo.itemText(i) for i in range(combo.count())]


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_the_download_button_fetches_the_weights_and_the_next_run_starts_from_them(
    dock, serve_resnet18, torch_home, qtbot, notifications
):
    body = weights_payload(700_000)  # 2.8 MB: three 1 MiB chunks
    name = hashed_name(body, stem="resnet18")
    with WeightsServer({name: body}, chunk_delay_s=0.02) as server:
        serve_resnet18(server.url(name))
        widget = dock()
        choice = widget.train_form.start_choice
        assert choice.start() == "best"
        assert _titles(choice.combo) == [
            "best present (now: from scratch)",
            "from scratch",
            "ImageNet backbone: not here",
        ]
        assert choice.line.text().startswith(
            "Next run's starting point: from scratch: no pretrained weights for resnet18"
        )
        assert choice.download_button.isEnabled()

        ticks: list[float] = []
        timer = QTimer()
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
        timer.start(20)
        qtbot.mouseClick(choice.download_button, Qt.MouseButton.LeftButton)
        worker = choice.worker
        assert worker is not None and choice.cancel_button.isEnabled()
        assert not choice.download_button.isEnabled()  # one download at a time
        qtbot.waitUntil(lambda: not choice.is_downloading(), timeout=60_000)
        timer.stop()

    assert (torch_home / name).read_bytes() == body and _files(torch_home) == [name]
    # napari's activity dock counted the MB up to the total.
    assert worker.pbar.n == worker.pbar.total == 3
    assert "resnet18-imagenet: 2.7 of 2.7 MB" in worker.pbar.desc
    assert [text for text in notifications if NAME in text] == [
        f"Downloaded {NAME} to {torch_home / name}"
    ]
    # The choices and the line read again: the next run starts from the ImageNet backbone.
    assert choice.line.text() == f"Next run's starting point: ImageNet backbone ({name})"
    assert _titles(choice.combo)[::2] == [
        "best present (now: ImageNet backbone)",
        "ImageNet backbone: here",
    ]
    assert not choice.download_button.isEnabled() and not choice.cancel_button.isEnabled()
    assert widget.model_config(["cell"]).pretrained == "imagenet"
    # The GUI kept running during the download.
    assert len(ticks) >= 10 and max(np.diff(ticks)) < 1.0


@pytest.mark.parametrize("failure", ["wrong hash", "server down"])
def test_a_failed_download_is_one_notification_and_leaves_no_file(
    dock, serve_resnet18, torch_home, qtbot, notifications, failure
):
    body = weights_payload()
    name = hashed_name(body, stem="resnet18", right_hash=False)
    with WeightsServer({name: body}) as server:
        down = f"http://127.0.0.1:{unused_port()}/{hashed_name(body, stem='resnet18')}"
        serve_resnet18(server.url(name) if failure == "wrong hash" else down)
        widget = dock()
        choice = widget.train_form.start_choice
        qtbot.mouseClick(choice.download_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not choice.is_downloading(), timeout=60_000)

    assert _files(torch_home) == []
    (message,) = [text for text in notifications if NAME in text]
    assert message.startswith(f"Download of {NAME} failed: http://127.0.0.1:")
    reason = "SHA-256 starts" if failure == "wrong hash" else "without a network, copy resnet18-"
    assert reason in message
    assert choice.line.text().startswith("Next run's starting point: from scratch: no pretrained")
    assert choice.download_button.isEnabled()  # it can be tried again


def test_cancel_midway_leaves_no_file(dock, serve_resnet18, torch_home, qtbot, notifications):
    body = weights_payload(1_000_000)  # 4 MB, sent slowly: about 3 s
    name = hashed_name(body, stem="resnet18")
    with WeightsServer({name: body}, chunk_delay_s=0.05) as server:
        serve_resnet18(server.url(name))
        widget = dock()
        choice = widget.train_form.start_choice
        qtbot.mouseClick(choice.download_button, Qt.MouseButton.LeftButton)
        worker = choice.worker
        qtbot.waitUntil(lambda: worker.pbar.n >= 1, timeout=30_000)  # the first MB is in
        qtbot.mouseClick(choice.cancel_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not choice.is_downloading(), timeout=30_000)

    assert worker.pbar.n < worker.pbar.total
    assert _files(torch_home) == []  # neither the file nor its temporary
    assert [text for text in notifications if NAME in text] == [
        f"Download of {NAME} cancelled; nothing was kept"
    ]
    assert choice.download_button.isEnabled()


def test_the_dock_trains_what_the_form_chooses(dock, tmp_path, notifications):
    """The start and the validation split chosen in the form reach the run; a start whose
    file is missing is refused before a run folder is made."""
    folder = tmp_path / "photos"
    folder.mkdir()
    iio.imwrite(folder / "a.png", np.zeros((32, 32, 3), np.uint8))
    AnnotationStore(folder).save_classes([ClassSpec("cell", "#ff0000")])
    widget = dock()
    form = widget.train_form
    form.dataset_row.edit.setText(str(folder))

    form.start_choice.combo.setCurrentIndex(form.start_choice.combo.findData("imagenet"))
    assert widget.model_config(["cell"]).pretrained == "imagenet"
    assert "ImageNet backbone, NOT on this machine" in form.start_choice.line.text()
    assert form.start_choice.download_button.isEnabled()
    assert not widget.start_training()
    assert any(
        text.startswith("Cannot train: imagenet weights for resnet18 are not on this machine")
        for text in notifications
    ), notifications
    assert not (folder / "runs").exists()

    form.start_choice.combo.setCurrentIndex(form.start_choice.combo.findData("none"))
    config = widget.model_config(["cell"])
    assert (config.pretrained, config.trainable_layers) == ("none", 5)
    assert not form.start_choice.download_button.isEnabled()  # nothing to fetch from scratch

    form.config_combo.setCurrentText("accurate")  # ResNet-50 FPN: a COCO detector exists
    assert form.start_choice.start() == "none"  # the choice is kept where it still applies
    assert _titles(form.start_choice.combo)[-1].startswith("COCO detector: not here")
    form.start_choice.combo.setCurrentIndex(form.start_choice.combo.findData("coco"))
    assert widget.model_config(["cell"]).pretrained == "coco"
    # The AnchorViewer hands over a ResNet-18 config: no COCO detector, the best present.
    session_for(widget.viewer).set_config(preset("fast", ["cell"]))
    assert form.config_combo.currentText() == ANCHOR_VIEWER_CHOICE
    assert form.start_choice.start() == "best" and form.start_choice.combo.count() == 3
    assert widget.model_config(["cell"]).backbone == "resnet18"

    form.val_spin.setValue(0.3)
    form.stratify_check.setChecked(True)
    options = widget.train_options()
    assert (options.val_fraction, options.stratify_split) == (0.3, True)
