"""The train dock's "Tiles" choice (auto / on / off) in a real viewer: the prediction it
starts tiles the images it says, and the choice comes back at the next start.

The detector is a stand-in that finds bright squares as Faster R-CNN would see them after its
resize (``bright_squares``), so whether an image was tiled shows in the prediction files:
10-pixel squares shrunk 2.5 times (the small image, whole) or 7.5 times (the large one) fall
under its 6-pixel limit, while 64-pixel tiles show them at full size.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from bright_squares import SquareFinder, square_boxes, squares_image
from napari_detlab._qt.plugin_settings import detlab_settings
from napari_detlab._qt.train_dock import TrainDockWidget
from napari_detlab.core.model import checkpoint as checkpoint_module
from napari_detlab.core.model.config import preset
from napari_detlab.core.model.predict import load_prediction
from napari_detlab.core.model.tiling import Tiling
from napari_detlab.core.training.options import TrainOptions

# (height, width): resizing to the model's 64 / 96 px shrinks the small one 2.5 times a side
# ("auto" does not tile it), the large one 7.5 times ("auto" tiles it).
SIZES = {"small": (160, 240), "large": (480, 640)}
SQUARES = 6


@pytest.fixture
def images_and_model(tmp_path, monkeypatch):
    """The two images and a 'checkpoint' whose model is the square finder."""
    for name, (height, width) in SIZES.items():
        boxes = square_boxes(height, width, 10, SQUARES, seed=len(name))
        Image.fromarray(squares_image(height, width, boxes)).save(tmp_path / f"{name}.png")
    config = preset("fast", ["square"]).replace(min_size=64, max_size=96)
    model = SquareFinder(config.min_size, config.max_size)
    monkeypatch.setattr(checkpoint_module, "model_from_checkpoint", lambda *a, **k: (model, config))
    checkpoint = tmp_path / "best.pt"
    checkpoint.write_bytes(b"not read: the model is stubbed")
    return [tmp_path / f"{name}.png" for name in SIZES], checkpoint, model


def _found(dock: TrainDockWidget, images: list[Path], output: Path, qtbot) -> dict[str, int]:
    """Predict ``images`` from the dock as its button does; boxes found per image."""
    assert dock.predict(images, output)
    qtbot.waitUntil(lambda: not dock.is_predicting(), timeout=60_000)
    return {path.stem: len(load_prediction(path).boxes) for path in dock.predicted}


def test_the_tiles_choice_decides_which_images_are_tiled_and_comes_back(
    make_napari_viewer, images_and_model, tmp_path, qtbot
) -> None:
    images, checkpoint, model = images_and_model
    dock = TrainDockWidget(make_napari_viewer())
    dock.predict_panel.checkpoint_row.edit.setText(str(checkpoint))
    choice = dock.predict_panel.tiling_combo
    assert choice.currentText() == "auto"
    assert _found(dock, images, tmp_path / "auto", qtbot) == {"small": 0, "large": SQUARES}

    choice.setCurrentText("on")  # small objects in a middling image: tile it too
    assert _found(dock, images, tmp_path / "on", qtbot) == {"small": SQUARES, "large": SQUARES}

    choice.setCurrentText("off")
    model.inputs.clear()
    assert _found(dock, images, tmp_path / "off", qtbot) == {"small": 0, "large": 0}
    assert sorted(model.inputs) == sorted(SIZES.values())  # each image whole, never a tile

    again = TrainDockWidget(make_napari_viewer())  # the next napari start
    assert again.predict_panel.tiling_combo.currentText() == "off"
    assert again.predict_panel.tiling() == Tiling("off")


def test_the_manifest_declares_the_train_docks_defaults_as_the_core_has_them() -> None:
    """Preferences shows the manifest's defaults; the dock starts from the core's."""
    declared = type(detlab_settings().training)().model_dump()
    options = TrainOptions()
    assert declared["tiling"] == Tiling().mode
    for name in ("epochs", "val_fraction", "stratify_split", "device"):
        assert declared[name] == getattr(options, name), name
