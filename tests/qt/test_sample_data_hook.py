"""The napari sample-data menu entry opens the built-in dataset's first image and boxes."""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_detlab._sample_data import SAMPLE_DIR_ENV, sample_folder
from napari_detlab.core.annotations.store import AnnotationStore


@pytest.fixture
def sample_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(SAMPLE_DIR_ENV, str(tmp_path / "sample"))
    return tmp_path / "sample"


def test_sample_menu_entry_adds_image_and_boxes(make_napari_viewer, sample_dir: Path) -> None:
    viewer = make_napari_viewer()
    viewer.open_sample("napari-detlab", "shapes-and-cells")
    assert sample_folder() == sample_dir
    store = AnnotationStore(sample_dir)
    first = store.images[0]
    assert viewer.layers[0].name == first.name
    shapes = [layer for layer in viewer.layers if layer.name.startswith("boxes: ")]
    assert {layer.name for layer in shapes} == {f"boxes: {c.name}" for c in store.load_classes()}
    assert sum(layer.nshapes for layer in shapes) == len(store.load(first).labels)


def test_sample_folder_is_written_once(sample_dir: Path) -> None:
    from napari_detlab._sample_data import ensure_sample_dataset

    ensure_sample_dataset()
    store = AnnotationStore(sample_dir)
    stem = store.images[0].stem
    store.delete(stem)  # a user edit
    ensure_sample_dataset()
    assert not store.has(stem)
