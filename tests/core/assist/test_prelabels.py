"""Pre-labels in the core: which images are predicted ahead, a prediction kept until its image
changes, the model loaded once, and proposals filtered as the Review filters."""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from napari_detlab.core.assist.prelabels import (
    BACKGROUND_NICE,
    CheckpointPredictor,
    PredictorClosedError,
    Prelabels,
    lower_priority,
    proposals,
    saved_predictions,
)
from napari_detlab.core.evaluation.review import ReviewThresholds
from napari_detlab.core.model import checkpoint as checkpoint_module
from napari_detlab.core.model.builder import build_model
from napari_detlab.core.model.checkpoint import save_checkpoint
from napari_detlab.core.model.config import preset
from napari_detlab.core.model.predict import Prediction, predict_images, write_prediction


def _images(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        path = folder / f"im{index}.png"
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _one_box(image: Path) -> Prediction:
    return Prediction(boxes=[[1, 2, 11, 12]], labels=[image.stem], scores=[0.9])


def test_the_plan_is_this_image_then_the_next_unannotated_ones(tmp_path) -> None:
    images = _images(tmp_path, 7)
    annotated = {images[1], images[2], images[5]}
    model = Prelabels(_one_box, ahead=3)
    plan = model.plan(images, 0, annotated.__contains__)
    assert plan == [images[0], images[3], images[4], images[6]]
    model.keep(model.predict(images[3]))
    assert model.plan(images, 0, annotated.__contains__) == [images[0], images[4], images[6]]
    # from an annotated image: only the three ahead (wrapping around), less those predicted
    assert model.plan(images, 5, annotated.__contains__) == [images[6], images[0]]
    for image in images:
        model.keep(model.predict(image))
    assert model.plan(images, 0, annotated.__contains__) == []


def test_a_prediction_is_kept_until_its_image_changes_on_disk(tmp_path) -> None:
    image = _images(tmp_path, 1)[0]
    model = Prelabels(_one_box)
    assert model.ready(image) is None
    model.keep(model.predict(image))
    assert model.ready(image).labels == ["im0"]
    assert model.predictions([image, tmp_path / "other.png"]) == {image: model.ready(image)}
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(image)
    os.utime(image, ns=(1, 1))  # rewritten: a new stamp even within one clock tick
    assert model.ready(image) is None


def test_proposals_are_what_the_review_thresholds_keep() -> None:
    raw = Prediction(
        boxes=[[0, 0, 10, 10], [1, 0, 11, 10], [30, 30, 40, 40], [50, 50, 60, 60]],
        labels=["cell", "cell", "crystal", "cell"],
        scores=[0.9, 0.8, 0.6, 0.3],
    )
    kept = proposals(raw, ReviewThresholds(score_threshold=0.5, nms_iou=0.5))
    assert kept.labels == ["cell", "crystal"] and np.allclose(kept.scores, [0.9, 0.6])
    assert kept.boxes.tolist() == [[0, 0, 10, 10], [30, 30, 40, 40]]
    loose = proposals(raw, ReviewThresholds(score_threshold=0.2, nms_iou=1.0))
    assert len(loose) == 4


def test_a_checkpoint_is_loaded_once_and_predicts_as_the_folder_prediction(
    tmp_path, monkeypatch
) -> None:
    torch.manual_seed(0)
    config = preset("fast", ["cell", "crystal"]).replace(
        min_size=64, max_size=96, rpn_post_nms_top_n_test=30, box_detections_per_img=30,
        box_score_thresh=0.0,
    )  # fmt: skip
    model = build_model(config, load_weights=False).eval()
    checkpoint = save_checkpoint(tmp_path / "m.pt", model=model, config=config, epoch=1, metrics={})
    images = _images(tmp_path / "images", 2)
    loads = []
    real = checkpoint_module.model_from_checkpoint

    def counting(*args, **kwargs):
        loads.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(checkpoint_module, "model_from_checkpoint", counting)
    predictor = CheckpointPredictor(checkpoint, device="cpu")
    first, second = predictor(images[0]), predictor(images[1])
    assert len(loads) == 1
    ((_, expected),) = list(predict_images(model, config, [images[1]], device="cpu"))
    assert np.allclose(second.boxes, expected.boxes) and second.labels == expected.labels
    assert len(first.scores) == len(first.labels)
    assert len(predictor(tmp_path / "missing.png")) == 0  # nothing to propose, no error


def test_a_closed_predictor_says_so_and_an_image_waiting_its_turn_is_dropped(
    tmp_path, monkeypatch
) -> None:
    """Another checkpoint was chosen while a worker still predicted with this one: the
    worker learns the answer is no longer wanted, not that the model failed."""
    started, release = threading.Event(), threading.Event()

    def slow(self, image: Path) -> Prediction:
        started.set()
        release.wait(5)
        return Prediction()

    monkeypatch.setattr(CheckpointPredictor, "_predict", slow)
    predictor = CheckpointPredictor(tmp_path / "m.pt", device="cpu")
    with ThreadPoolExecutor(max_workers=2) as callers:
        running = callers.submit(predictor, tmp_path / "a.png")
        assert started.wait(5)
        waiting = callers.submit(predictor, tmp_path / "b.png")  # queued behind a.png
        predictor.close()
        release.set()
        assert len(running.result(5)) == 0  # the image in hand is finished
        with pytest.raises(PredictorClosedError, match=r"m\.pt was closed"):
            waiting.result(5)
    with pytest.raises(PredictorClosedError):
        predictor(tmp_path / "c.png")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_the_models_thread_runs_at_the_lowest_priority_and_the_caller_does_not() -> None:
    def nice_of_this_thread() -> int:
        lower_priority()
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(nice_of_this_thread).result() == BACKGROUND_NICE
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before


def test_saved_prediction_files_are_read_and_bad_or_missing_ones_left_out(tmp_path) -> None:
    images = _images(tmp_path / "images", 3)
    folder = tmp_path / "images" / "predictions"
    write_prediction(folder, "im0", _one_box(images[0]), image_size=(48, 64))
    (folder / "im1.pt").write_bytes(b"not a prediction")
    found = saved_predictions(folder, images)
    assert list(found) == [images[0]] and found[images[0]].labels == ["im0"]
    assert saved_predictions(tmp_path / "nowhere", images) == {}
