"""What to label next: on a synthetic dataset whose model errors are known, the images the
model gets wrong come first, and the reason names what is undecided."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_detlab.core.assist.ranking import ObjectGuess, image_uncertainty, rank_images
from napari_detlab.core.evaluation.review import (
    ReviewThresholds,
    filter_predictions,
    match_predictions,
)
from napari_detlab.core.model.predict import Prediction

CLASSES = ("cell", "crystal")


def test_an_objects_uncertainty_is_the_one_vs_two_margin_with_background() -> None:
    assert ObjectGuess({"cell": 0.5}).uncertainty == pytest.approx(1.0)  # object or not: a tie
    assert ObjectGuess({"cell": 0.95}).uncertainty == pytest.approx(0.01)
    assert ObjectGuess({"cell": 0.02}).uncertainty == pytest.approx(0.0016)  # sure background
    # cell .45, crystal .40, background .15: the two classes tie nearly
    assert ObjectGuess({"cell": 0.45, "crystal": 0.40}).uncertainty == pytest.approx(0.9025)


def _scene(rng: np.random.Generator, count: int) -> tuple[np.ndarray, list[str]]:
    """``count`` non-overlapping 20-pixel objects on a 200 x 200 image, random classes."""
    cells = rng.choice(100, size=count, replace=False)
    x, y = (cells % 10) * 20.0, (cells // 10) * 20.0
    boxes = np.stack([x + 2, y + 2, x + 18, y + 18], axis=1)
    return boxes, [str(c) for c in rng.choice(CLASSES, size=count)]


def _model(rng, truth, labels, fault: str) -> Prediction:
    """A stand-in detector: sure and right on every object, except for one ``fault``."""
    boxes, names, scores = [], [], []

    def add(box, name, score):
        boxes.append(np.asarray(box, float) + rng.normal(0, 0.5, 4))
        names.append(name)
        scores.append(score)

    for index, (box, label) in enumerate(zip(truth, labels, strict=True)):
        other = CLASSES[1 - CLASSES.index(label)]
        if index == 0 and fault == "faint":  # seen, but below the Review threshold: a miss
            add(box, label, 0.42)
        elif index == 0 and fault == "confused":  # the wrong class wins, narrowly
            add(box, other, 0.52)
            add(box, label, 0.38)
        elif index == 0 and fault == "half":  # one object faint, another barely kept
            add(box, label, 0.36)
        else:
            add(box, label, float(rng.uniform(0.9, 0.99)))
    if fault == "ghost":  # a false positive on the background
        add((170, 170, 190, 190), "cell", 0.58)
    for _ in range(rng.integers(0, 6)):  # background clutter every detector keeps
        x, y = rng.uniform(0, 180, 2)
        add((x, y, x + 15, y + 15), str(rng.choice(CLASSES)), float(rng.uniform(0.01, 0.08)))
    return Prediction(boxes=np.array(boxes), labels=names, scores=np.array(scores))


def _errors(prediction: Prediction, truth, labels, thresholds: ReviewThresholds) -> int:
    kept = filter_predictions(
        prediction.boxes, prediction.scores, prediction.labels,
        score_threshold=thresholds.score_threshold, nms_iou=thresholds.nms_iou,
    )  # fmt: skip
    match = match_predictions(
        prediction.boxes[kept], np.asarray(prediction.labels)[kept], prediction.scores[kept],
        truth, labels, iou_threshold=thresholds.match_iou,
    )  # fmt: skip
    return match.counts.fp + match.counts.missed


def test_the_images_the_model_gets_wrong_are_ranked_first() -> None:
    rng = np.random.default_rng(7)
    faults = {3: "faint", 8: "confused", 11: "ghost", 15: "half"}
    predictions, wrong = {}, set()
    for index in range(20):
        image = Path(f"im{index:02d}.png")
        # im05 is crowded and the model is sure of every object: much to draw, little to learn
        truth, labels = _scene(rng, 30 if index == 5 else int(rng.integers(1, 6)))
        if faults.get(index) == "half":
            truth, labels = _scene(rng, 3)
        predictions[image] = _model(rng, truth, labels, faults.get(index, ""))
        if _errors(predictions[image], truth, labels, ReviewThresholds()):
            wrong.add(image)
    assert wrong == {Path(f"im{i:02d}.png") for i in faults}  # the scene is what it says

    ranked = rank_images(predictions)
    assert {u.image for u in ranked[: len(wrong)]} == wrong
    reasons = {u.image.name: u.reason() for u in ranked}
    assert reasons["im03.png"] == "1 box with scores in 0.3-0.7"
    # the wrong class (0.52) is itself undecided, and both classes claim the object
    assert reasons["im08.png"].startswith("1 box with scores in 0.3-0.7; classes ")
    assert reasons["im08.png"].endswith("disagree on 1 object")
    assert {"cell", "crystal"} <= set(reasons["im08.png"].replace("/", " ").split())
    assert reasons["im00.png"].startswith("no undecided box")


def test_nothing_found_ranks_last_and_ties_keep_the_folder_order() -> None:
    empty = Prediction()
    unsure = Prediction(boxes=[[0, 0, 10, 10]], labels=["cell"], scores=[0.5])
    order = [Path("a.png"), Path("b.png"), Path("c.png")]
    ranked = rank_images({order[2]: empty, order[1]: unsure, order[0]: empty}, order)
    assert [u.image for u in ranked] == [order[1], order[0], order[2]]
    assert image_uncertainty(order[0], empty).reason() == (
        "no undecided box (0 objects found, uncertainty 0.00)"
    )
