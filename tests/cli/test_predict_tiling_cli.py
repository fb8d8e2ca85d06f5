"""``detlab predict`` on a large image: tiles by default, ``--tiling off`` as before."""

from __future__ import annotations

import pytest
from PIL import Image

from bright_squares import SquareFinder, square_boxes, squares_image
from napari_detlab.cli.main import main
from napari_detlab.core.boxes import box_iou
from napari_detlab.core.model import checkpoint as checkpoint_module
from napari_detlab.core.model.config import preset
from napari_detlab.core.model.predict import load_prediction


@pytest.fixture
def slide(tmp_path, monkeypatch):
    """A 480 x 640 image of 25 white 10-px squares and a 'checkpoint' whose model finds squares
    of at least 6 px in its 64 / 96 px view."""
    truth = square_boxes(480, 640, 10, 25, seed=4)
    Image.fromarray(squares_image(480, 640, truth)).save(tmp_path / "slide.png")
    config = preset("fast", ["square"]).replace(min_size=64, max_size=96)
    model = SquareFinder(config.min_size, config.max_size)
    monkeypatch.setattr(checkpoint_module, "model_from_checkpoint", lambda *a, **k: (model, config))
    fake = tmp_path / "best.pt"
    fake.write_bytes(b"not read: the model is stubbed")
    return tmp_path, fake, truth, model


def _predict(root, checkpoint, output, *flags):
    return main(
        ["predict", str(checkpoint), str(root / "slide.png"), "-o", str(root / output), "-q",
         "--device", "cpu", *flags]
    )  # fmt: skip


def test_a_large_image_is_predicted_in_tiles_unless_told_not_to(slide):
    root, checkpoint, truth, model = slide
    assert _predict(root, checkpoint, "tiled") == 0
    tiled = load_prediction(root / "tiled" / "slide.pt")
    assert len(tiled.boxes) == len(truth)
    assert (box_iou(tiled.boxes, truth).max(axis=1) > 0.99).all()
    assert set(model.inputs) == {(64, 64)}  # the model saw tiles only

    model.inputs.clear()
    assert _predict(root, checkpoint, "whole", "--tiling", "off") == 0
    assert (
        model.inputs == [(480, 640)]
        and len(load_prediction(root / "whole" / "slide.pt").boxes) == 0
    )

    assert _predict(root, checkpoint, "big", "--tile-size", "128", "--tile-overlap", "40") == 0
    # the model shrinks a 128 px tile to 64: the squares to 5 px, too small for it
    assert len(load_prediction(root / "big" / "slide.pt").boxes) == 0


def test_an_overlap_as_large_as_the_tile_is_one_line_and_exit_2(slide, capsys):
    root, checkpoint, _, _ = slide
    code = _predict(root, checkpoint, "out", "--tile-size", "64", "--tile-overlap", "64")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "overlap" in err[0] and "Traceback" not in err[0]
    assert not (root / "out").exists()
