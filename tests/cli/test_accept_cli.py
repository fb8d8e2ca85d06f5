"""``detlab accept``: the same batch as the Review dock's, from a shell, and its undo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from napari_detlab.cli.main import main
from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.model.predict import Prediction, write_prediction


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """a: annotated with one box; b: nothing. Each has a 0.9 and a 0.3 prediction."""
    for name in "ab":
        Image.new("RGB", (100, 100)).save(tmp_path / f"{name}.png")
        boxes = np.array([[10, 10, 30, 30], [50, 50, 70, 70]], np.float32)
        prediction = Prediction(boxes, ["cell", "cell"], np.array([0.9, 0.3], np.float32))
        write_prediction(tmp_path / "predictions", name, prediction, image_size=(100, 100))
    AnnotationStore(tmp_path).save("a", ImageAnnotation([[60, 60, 90, 90]], ["cell"], True))
    return tmp_path


def test_accept_dry_run_then_accept_then_undo(folder: Path, capsys) -> None:
    a_before = (folder / "annotations" / "a.pt").read_bytes()
    assert main(["accept", str(folder / "predictions"), str(folder), "--dry-run"]) == 0
    assert capsys.readouterr().out.strip() == "would accept 2 boxes on 2 images"
    assert not (folder / "annotations" / "b.pt").exists()

    assert main(["accept", str(folder / "predictions"), str(folder), "--score", "0.2"]) == 0
    assert capsys.readouterr().out.startswith("Accepted 4 boxes on 2 images")
    store = AnnotationStore(folder)
    assert store.load("b").model_accepted and len(store.load("b")) == 2
    assert main(["stats", str(folder)]) == 0
    assert "2 accepted from model, not yet reviewed" in capsys.readouterr().out

    assert main(["accept", str(folder), "--undo"]) == 0
    assert (folder / "annotations" / "a.pt").read_bytes() == a_before
    assert not (folder / "annotations" / "b.pt").exists()


def test_only_unannotated_and_the_refusals(folder: Path, capsys) -> None:
    args = ["accept", str(folder / "predictions"), str(folder), "--only-unannotated"]
    assert main(args) == 0
    assert capsys.readouterr().out.startswith("Accepted 1 box on 1 image")
    assert not AnnotationStore(folder).load("a").model_accepted
    assert main(["accept", str(folder), "--undo"]) == 0
    capsys.readouterr()
    assert main(["accept", str(folder), "--undo"]) == 2
    assert "no batch" in capsys.readouterr().err
    assert main(["accept", str(folder / "nowhere"), str(folder)]) == 2
    assert "predictions folder not found" in capsys.readouterr().err


def test_training_says_how_many_of_its_images_no_person_reviewed(tmp_path: Path, capsys) -> None:
    from napari_detlab.core.annotations.sample_data import write_synthetic_dataset
    from napari_detlab.core.model.config import preset

    dataset = write_synthetic_dataset(tmp_path / "data", 6, size=(64, 64), seed=4, max_objects=3)
    store = AnnotationStore(dataset)
    for image in store.images[:2]:
        store.save(image, store.load(image).marked_from_model(True))
    config = preset("fast", ["cell", "crystal"]).replace(min_size=64, max_size=64)
    config.to_json(tmp_path / "small.json")
    code = main([
        "train", str(dataset), "--output", str(tmp_path / "run"), "--config",
        str(tmp_path / "small.json"), "--max-iterations", "1", "--batch-size", "2",
        "--num-workers", "0",
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "val images (2 accepted from the model, not yet reviewed), 2 iterations" in out
