"""``detlab predict`` names each image whose confident objects filled the model's cap on
detections per image, and writes what it found with room for more."""

from __future__ import annotations

from napari_detlab.cli.main import main
from napari_detlab.core.model.checkpoint import save_checkpoint
from napari_detlab.core.model.predict import load_prediction
from tiny_detector import noise_images, small_detector

CAP = 5


def test_detlab_predict_says_which_images_were_predicted_again(tmp_path, capsys) -> None:
    (image,) = noise_images(tmp_path / "images", [(90, 120)])
    model, config = small_detector(CAP, confident=True)
    checkpoint = save_checkpoint(
        tmp_path / "best.pt", model=model, config=config, epoch=1, metrics=None
    )

    code = main(["predict", str(checkpoint), str(image), "-o", str(tmp_path / "out"), "-q"])

    assert code == 0
    found = len(load_prediction(tmp_path / "out" / f"{image.stem}.pt"))
    assert found > CAP
    notes = [line for line in capsys.readouterr().err.splitlines() if "note:" in line]
    assert notes == [
        f"detlab predict: note: {image.name}: {CAP} confident detections filled the model's "
        f"cap per image; predicted again with room for more: {found}"
    ]
