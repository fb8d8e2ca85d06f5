"""COCO scores kept per image: after any change, the very numbers of a fresh pycocotools run.

The Review scores the dataset again after every save; only the images whose boxes changed
go through pycocotools' ``evaluate()`` again and the accumulation is redone. These tests
change, add and remove images of random datasets (ties in scores, more than 100
detections, classes without any ground truth) and compare every array pycocotools
accumulates, its 12 stats and the per-class APs with a fresh full evaluation, bit for bit.
"""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest
from pycocotools.cocoeval import COCOeval

from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.file_cache import index_disabled
from napari_detlab.core.evaluation.coco_images import ImageEvaluations
from napari_detlab.core.evaluation.metrics import (
    EvaluationError,
    coco_evaluator,
    coco_metrics,
    forget_scores,
)
from napari_detlab.core.model.predict import Prediction

# "rare" never has ground truth; "ghost" has neither boxes nor predictions.
CLASSES = ["cell", "crystal", "debris", "rare", "ghost"]


def _image(rng: np.random.Generator, crowded: bool = False) -> tuple[ImageAnnotation, Prediction]:
    """Boxes of all sizes (COCO's three area ranges), found with jitter, some missed, some
    invented, scores rounded to one decimal so that ties across images are common."""
    n = int(rng.integers(0, 7))
    xy = rng.uniform(0, 300, (n, 2))
    wh = rng.choice([6.0, 20.0, 45.0, 130.0], (n, 1)) * rng.uniform(0.7, 1.4, (n, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    labels = [str(c) for c in rng.choice(CLASSES[:3], n)]
    seen = rng.random(n) > 0.2
    found = boxes[seen]
    invented = int(rng.integers(150, 260)) if crowded else int(rng.integers(0, 4))
    fxy = rng.uniform(0, 350, (invented, 2))
    fake = np.concatenate([fxy, fxy + rng.uniform(5, 60, (invented, 2))], axis=1)
    predicted = np.concatenate([found + rng.normal(0, 3, found.shape), fake]).astype(np.float32)
    predicted[:, 2:] = np.maximum(predicted[:, 2:], predicted[:, :2] + 1)
    names = [
        label if rng.random() > 0.1 else str(rng.choice(CLASSES[:4]))
        for label, kept in zip(labels, seen, strict=True)
        if kept
    ] + [str(c) for c in rng.choice(CLASSES[:4], invented)]
    scores = np.concatenate([rng.uniform(0.3, 1.0, len(found)), rng.uniform(0.05, 0.7, invented)])
    scores = np.round(scores, 1).astype(np.float32)
    truth = ImageAnnotation(boxes, labels, True, (400, 400))
    return truth, Prediction(predicted, names, scores)


def _dataset(seed: int, images: int = 30) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    truths, predictions = {}, {}
    for index in range(images):
        truth, prediction = _image(rng, crowded=index == 3)  # one image past maxDets=100
        truths[f"img{index:03d}"] = truth
        if rng.random() < 0.85:  # the others predicted nothing
            predictions[f"img{index:03d}"] = prediction
    return truths, predictions


def _evaluated(predictions: dict, truths: dict, classes: list[str]) -> COCOeval:
    """pycocotools' own ``evaluate()`` on these images, from the COCO dicts metrics builds."""
    evaluator = coco_evaluator(predictions, truths, classes, kind=COCOeval)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
    return evaluator


def _fresh(predictions: dict, truths: dict, classes: list[str]) -> COCOeval:
    evaluator = _evaluated(predictions, truths, classes)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def _digests(predictions: dict, truths: dict) -> dict[str, bytes]:
    """A digest per image that changes whenever its boxes do (what coco_metrics gives)."""
    out = {}
    for stem, truth in truths.items():
        prediction = predictions.get(stem)
        parts = [truth.boxes.tobytes(), repr(list(truth.labels)).encode()]
        if prediction is not None:
            parts += [prediction.boxes.tobytes(), prediction.scores.tobytes()]
            parts.append(repr(list(prediction.labels)).encode())
        out[stem] = b"|".join(parts)
    return out


def _assert_identical(kept: ImageEvaluations, predictions: dict, truths: dict) -> None:
    asked: list[list[str]] = []

    def evaluate(stems: list[str]) -> COCOeval:
        asked.append(stems)
        return _evaluated(
            {s: predictions[s] for s in stems if s in predictions},
            {s: truths[s] for s in stems},
            CLASSES,
        )

    ours = kept.accumulated(_digests(predictions, truths), CLASSES, evaluate)
    with contextlib.redirect_stdout(io.StringIO()):
        ours.summarize()
    reference = _fresh(predictions, truths, CLASSES)
    for name in ("precision", "recall", "scores"):
        np.testing.assert_array_equal(ours.eval[name], reference.eval[name], err_msg=name)
    np.testing.assert_array_equal(ours.stats, reference.stats)
    assert len(asked) <= 1
    return asked[0] if asked else []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_image_changed_added_or_removed_gives_a_fresh_runs_arrays(seed):
    rng = np.random.default_rng(100 + seed)
    truths, predictions = _dataset(seed)
    kept = ImageEvaluations()
    assert len(_assert_identical(kept, predictions, truths)) == len(truths)  # all new
    reference = _fresh(predictions, truths, CLASSES)
    assert reference.stats[0] > 0.05  # the ranking matters: not a trivial case
    # rare (predicted, never an object) and ghost (nothing at all): undefined either way.
    assert any("rare" in prediction.labels for prediction in predictions.values())
    assert (reference.eval["precision"][:, :, 3:] == -1).all()
    for step in range(6):
        stems = sorted(truths)
        stem = stems[int(rng.integers(0, len(stems)))]
        if step % 3 == 0:  # the Annotator saved one image
            truths[stem], predictions[stem] = _image(rng)
            expected = [stem]
        elif step % 3 == 1:  # an image left the dataset: nothing to evaluate
            del truths[stem]
            predictions.pop(stem, None)
            expected = []
        else:  # an image joined, between the others in sorted order
            stem = f"{stem}b"
            truths[stem], predictions[stem] = _image(rng)
            expected = [stem]
        assert _assert_identical(kept, predictions, truths) == expected


def _same(a: object, b: object) -> bool:
    """Equal, NaN equal to NaN (undefined figures), dicts key by key."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b or (math.isnan(a) and math.isnan(b))


def test_scores_kept_per_image_equal_a_fresh_evaluation_through_coco_metrics():
    """coco_metrics' own path (per-image digests, memo) against pycocotools afresh
    (the index switched off), per-class APs included."""
    forget_scores()
    rng = np.random.default_rng(7)
    truths, predictions = _dataset(7, images=25)
    for _ in range(4):
        ours = coco_metrics(predictions, truths, CLASSES)
        with index_disabled():
            fresh = coco_metrics(predictions, truths, CLASSES)
        assert _same(ours, fresh)
        assert math.isnan(ours["per_class"]["rare"]) and 0 < ours["per_class"]["cell"] < 1
        stem = sorted(truths)[int(rng.integers(0, len(truths)))]
        truths[stem], predictions[stem] = _image(rng)


def test_the_same_image_under_another_class_order_is_not_evaluated_again():
    truths, predictions = _dataset(3, images=12)
    kept = ImageEvaluations()
    _assert_identical(kept, predictions, truths)
    asked: list[list[str]] = []
    reordered = CLASSES[::-1]

    def evaluate(stems: list[str]) -> COCOeval:
        asked.append(stems)
        return _evaluated(predictions, truths, reordered)

    ours = kept.accumulated(_digests(predictions, truths), reordered, evaluate)
    reference = _fresh(predictions, truths, reordered)
    np.testing.assert_array_equal(ours.eval["precision"], reference.eval["precision"])
    assert asked == []


def test_a_kept_image_with_a_class_no_longer_listed_is_refused():
    truth = {"a": ImageAnnotation([[0, 0, 10, 10]], ["cell"], True, (20, 20))}
    hit = {"a": Prediction(np.array([[0, 0, 10, 10]], np.float32), ["dog"], np.array([0.9]))}
    assert coco_metrics(hit, truth, ["cell", "dog"])["map"] == pytest.approx(0.0)
    with pytest.raises(EvaluationError, match="'dog'"):
        coco_metrics(hit, truth, ["cell"])
    with pytest.raises(EvaluationError, match="'cell'"):
        coco_metrics({}, truth, ["dog"])


def test_only_the_images_used_last_are_kept_past_the_limit():
    truths, predictions = _dataset(5, images=10)
    kept = ImageEvaluations(limit=4)
    _assert_identical(kept, predictions, truths)
    assert len(kept) == 4
    # The last four evaluated are kept; the six before them are evaluated again.
    assert _assert_identical(kept, predictions, truths) == sorted(truths)[:6]
    kept.clear()
    assert len(kept) == 0
