"""The Review rules: live score + NMS filtering, matching, precision / recall and their text."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.evaluation.review import (
    Counts,
    ReviewThresholds,
    filter_predictions,
    fraction_text,
    map_text,
    match_predictions,
)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """Plain IoU of two boxes, written independently of the module under test."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _reference_filter(boxes, scores, labels, score_threshold, nms_iou, class_agnostic):
    """Textbook greedy NMS after a score cut, one box at a time."""
    order = sorted(
        (i for i in range(len(scores)) if scores[i] >= score_threshold),
        key=lambda i: (-scores[i], i),
    )
    kept: list[int] = []
    for i in order:
        if all(
            (not class_agnostic and labels[i] != labels[k]) or _iou(boxes[i], boxes[k]) <= nms_iou
            for k in kept
        ):
            kept.append(i)
    return kept


def _random_predictions(rng: np.random.Generator, n: int, size: float = 200.0):
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(4, 60, (n, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    # clusters of near-duplicates, the case NMS exists for
    if n > 4:
        copies = rng.integers(0, n, n // 3)
        boxes[: len(copies)] = boxes[copies] + rng.normal(0, 3, (len(copies), 4)).astype(np.float32)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
    scores = rng.random(n).astype(np.float32)
    labels = [("cell", "nucleus", "debris")[k] for k in rng.integers(0, 3, n)]
    return boxes, scores, labels


@pytest.mark.parametrize("class_agnostic", [False, True])
def test_filter_matches_brute_force_reference_on_random_predictions(class_agnostic):
    rng = np.random.default_rng(1234)
    for _ in range(150):
        n = int(rng.integers(0, 60))
        boxes, scores, labels = _random_predictions(rng, n)
        score_threshold = float(rng.uniform(0, 1))
        nms_iou = float(rng.choice([rng.uniform(0.05, 0.95), 1.0]))
        got = filter_predictions(
            boxes, scores, labels, score_threshold=score_threshold, nms_iou=nms_iou,
            class_agnostic=class_agnostic,
        )  # fmt: skip
        expected = _reference_filter(
            boxes.astype(np.float64), scores, labels, score_threshold, nms_iou, class_agnostic
        )
        assert got.tolist() == expected, (n, score_threshold, nms_iou)


def test_score_and_nms_sliders_act_together():
    # A and B are the same object (IoU 0.9); C is elsewhere and scores low.
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 9], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.8, 0.3], np.float32)
    labels = ["cell"] * 3

    def kept(score, iou):
        return filter_predictions(
            boxes, scores, labels, score_threshold=score, nms_iou=iou
        ).tolist()

    assert kept(0.0, 1.0) == [0, 1, 2]  # nothing filtered
    assert kept(0.5, 1.0) == [0, 1]  # score alone
    assert kept(0.0, 0.5) == [0, 2]  # NMS alone
    assert kept(0.5, 0.5) == [0]  # both at once: neither replaces the other
    assert kept(0.5, 0.95) == [0, 1]  # loosening NMS brings B back with the score cut still on
    assert kept(0.95, 0.5) == []


def test_class_agnostic_nms_suppresses_across_classes_per_class_does_not():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [0, 1, 10, 11]], np.float32)
    scores = np.array([0.6, 0.9, 0.7], np.float32)
    labels = ["cell", "nucleus", "cell"]
    per_class = filter_predictions(boxes, scores, labels, score_threshold=0, nms_iou=0.5)
    agnostic = filter_predictions(
        boxes, scores, labels, score_threshold=0, nms_iou=0.5, class_agnostic=True
    )
    assert per_class.tolist() == [1, 2]  # best nucleus, best cell
    assert agnostic.tolist() == [1]  # one object, one guess


def test_filter_handles_empty_input_and_tensors():
    import torch

    empty = filter_predictions(np.zeros((0, 4)), [], [], score_threshold=0.1, nms_iou=0.5)
    assert empty.dtype == np.int64 and empty.size == 0
    kept = filter_predictions(
        torch.tensor([[0.0, 0, 5, 5], [0, 0, 5, 5]]), torch.tensor([0.2, 0.4]), ["a", "a"],
        score_threshold=0.0, nms_iou=0.5,
    )  # fmt: skip
    assert kept.tolist() == [1]


def test_match_known_true_positives_false_positives_and_misses():
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], float)
    gt_labels = ["cell", "cell", "nucleus"]
    pred = np.array(
        [
            [0, 0, 10, 10],  # TP on gt 0
            [0, 0, 10, 9],  # duplicate of gt 0 with a lower score: FP
            [40, 40, 50, 50],  # right place, wrong class: FP
            [20, 20, 26, 26],  # IoU 0.36 with gt 1: FP at 0.5, TP at 0.3
        ],
        float,
    )
    labels = ["cell", "cell", "cell", "cell"]
    scores = [0.9, 0.8, 0.7, 0.6]
    match = match_predictions(pred, labels, scores, gt, gt_labels, iou_threshold=0.5)
    assert match.is_tp.tolist() == [True, False, False, False]
    assert match.matched_gt.tolist() == [0, -1, -1, -1]
    assert match.missed_gt.tolist() == [1, 2]
    assert match.counts == Counts(tp=1, fp=3, missed=2)

    loose = match_predictions(pred, labels, scores, gt, gt_labels, iou_threshold=0.3)
    assert loose.is_tp.tolist() == [True, False, False, True]
    assert loose.missed_gt.tolist() == [2]


def test_match_lets_the_higher_score_claim_the_box_whatever_the_input_order():
    gt = np.array([[0, 0, 10, 10]], float)
    pred = np.array([[0, 0, 10, 8], [0, 0, 10, 10]], float)  # the worse box scores higher
    match = match_predictions(pred, ["c", "c"], [0.9, 0.5], gt, ["c"])
    assert match.is_tp.tolist() == [True, False]
    assert match.iou[0] == pytest.approx(0.8)


def test_precision_recall_known_answers():
    gt = ImageAnnotation(boxes=[[0, 0, 10, 10], [20, 20, 30, 30]], labels=["c", "c"], reviewed=True)
    image = match_predictions(
        [[0, 0, 10, 10], [60, 60, 70, 70], [61, 60, 71, 70]], ["c"] * 3, [0.9, 0.8, 0.7],
        gt.boxes, gt.labels,
    ).counts  # fmt: skip
    assert (image.tp, image.fp, image.missed) == (1, 2, 1)
    assert image.precision == pytest.approx(1 / 3)
    assert image.recall == pytest.approx(1 / 2)

    nothing = match_predictions(np.zeros((0, 4)), [], [], np.zeros((0, 4)), []).counts
    assert math.isnan(nothing.precision) and math.isnan(nothing.recall)


def test_figures_read_as_text_with_a_dash_for_the_undefined():
    assert Counts(tp=2, fp=1, missed=1).summary() == (
        "2 TP · 1 FP · 1 missed — precision 0.67, recall 0.67"
    )
    assert Counts().summary() == "0 TP · 0 FP · 0 missed — precision –, recall –"
    assert fraction_text(0.5) == "0.50" and fraction_text(float("nan")) == "–"
    assert map_text({"map_50": np.float32(0.5), "map": 0.25}) == "mAP@.5 0.50, mAP@[.5:.95] 0.25"
    assert map_text({"map": float("nan")}) == "mAP@.5 –, mAP@[.5:.95] –"  # missing or undefined
    dense = {"map_50": 0.9, "map": 0.6, "max_detections": 300}  # COCO's 100 raised (metrics)
    assert (
        map_text(dense)
        == "mAP@.5 0.90, mAP@[.5:.95] 0.60 (counting 300 detections per image and class)"
    )
    assert map_text(dense | {"max_detections": 100}) == "mAP@.5 0.90, mAP@[.5:.95] 0.60"


def test_thresholds_are_one_frozen_value_with_the_panels_defaults():
    thresholds = ReviewThresholds()
    assert (thresholds.score_threshold, thresholds.nms_iou) == (0.5, 0.5)
    assert (thresholds.class_agnostic, thresholds.match_iou) == (False, 0.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        thresholds.nms_iou = 0.7  # a worker scoring at these settings sees them unchanged
