"""``detlab demo``: the sample dataset written once and opened in a real viewer."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import napari
import numpy as np
import pytest
import torch

# Triton (imported by torchvision.ops) segfaults when first imported after Mesa's llvmpipe
# OpenGL is loaded: import it at collection time, before any test opens a viewer.
import torchvision.ops  # noqa: F401

from napari_detlab._qt.annotator import AnnotatorWidget
from napari_detlab.cli.main import main


@pytest.fixture
def close_viewers(qtbot):
    """The demo makes its own viewer; close every viewer the test leaves behind.

    Docks that compute in the background (the Anchor viewer's ``busy``) are let finish
    first: closing under them is their own tests' concern, not the demo's.
    """
    yield
    settle(qtbot)
    napari.Viewer.close_all()


def settle(qtbot) -> None:
    """Wait until no dock of any open viewer reports background work."""
    viewer = napari.current_viewer()
    if viewer is None:
        return
    docks = list(viewer.window.dock_widgets.values())
    qtbot.waitUntil(lambda: not any(getattr(w, "busy", False) for w in docks), timeout=30_000)


def the_annotator(viewer: napari.Viewer) -> AnnotatorWidget:
    docks = viewer.window.dock_widgets
    return next(w for w in docks.values() if isinstance(w, AnnotatorWidget))


def test_demo_opens_the_sample_dataset_in_the_annotator(tmp_path: Path, close_viewers) -> None:
    folder = tmp_path / "demo"
    assert main(["demo", str(folder), "--no-run"]) == 0
    viewer = napari.current_viewer()
    annotator = the_annotator(viewer)
    assert annotator.store is not None and annotator.store.root == folder
    assert len(annotator.store.images) >= 10
    assert {c.name for c in annotator.classes} >= {"cell", "crystal"}
    assert annotator.index == 0 and "image" in viewer.layers
    shown = sum(layer.nshapes for layer in viewer.layers if layer.name.startswith("boxes: "))
    first = annotator.store.load(annotator.store.images[0])
    assert shown == len(first.labels) > 0  # the first sample image is annotated


def test_demo_keeps_boxes_added_in_an_earlier_demo(tmp_path: Path, close_viewers, qtbot) -> None:
    folder = tmp_path / "demo"
    assert main(["demo", str(folder), "--no-run"]) == 0
    annotator = the_annotator(napari.current_viewer())
    stem = annotator.store.images[0].stem
    before = len(annotator.store.load(stem).labels)
    layer = napari.current_viewer().layers["boxes: cell"]
    layer.add_rectangles(np.array([[[2.0, 2.0], [2.0, 9.0], [9.0, 9.0], [9.0, 2.0]]]))
    settle(qtbot)
    napari.Viewer.close_all()  # flushes the edit

    assert main(["demo", str(folder), "--no-run"]) == 0
    data = torch.load(folder / "annotations" / f"{stem}.pt", weights_only=True)
    assert len(data["labels"]) == before + 1


def test_demo_opens_a_folder_of_own_images_as_it_is(tmp_path: Path, close_viewers, capsys) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    iio.imwrite(folder / "photo.png", np.zeros((20, 30, 3), np.uint8))
    assert main(["demo", str(folder), "--no-run"]) == 0
    annotator = the_annotator(napari.current_viewer())
    assert [p.name for p in annotator.store.images] == ["photo.png"]
    assert "your own images" in capsys.readouterr().err


def test_demo_refuses_a_file_with_one_line(tmp_path: Path, capsys) -> None:
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    assert main(["demo", str(not_a_folder), "--no-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a folder" in err[0]
