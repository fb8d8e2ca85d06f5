"""pycocotools' per-image matching done at every threshold at once gives pycocotools' answer.

Each test builds a COCO dataset and detections, evaluates it with pycocotools' ``COCOeval``
and with :class:`ThresholdsAtOnceCOCOeval`, and compares every field of every per-image
result, then the 12 summary figures. The scenes are made to hit the rules' corners: equal
IoUs (duplicate boxes and detections), equal scores, IoU of exactly 1, crowd boxes, boxes
on the small / medium / large borders (32^2 and 96^2 pixels), detections past maxDets, and
images with only boxes or only detections.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from napari_detlab.core.evaluation.coco_matching import ThresholdsAtOnceCOCOeval

CATEGORIES = [{"id": 1, "name": "cell"}, {"id": 2, "name": "crystal"}]


def _scene(rng: np.random.Generator, images: int, boxes: int, crowd: float) -> tuple[dict, list]:
    """A COCO ground truth and its detections, with ties and borders on purpose."""
    annotations, detections = [], []
    sides = np.array([4.0, 31.9, 32.0, 32.1, 60.0, 96.0, 97.0, 150.0])
    for image in range(1, images + 1):
        n = int(rng.integers(0, boxes + 1))
        xy = np.round(rng.uniform(0, 400, (n, 2)))
        wh = rng.choice(sides, (n, 2))
        if n > 2:
            xy[1], wh[1] = xy[0], wh[0]  # two identical boxes: equal IoUs with anything
        for k in range(n):
            annotations.append({
                "id": len(annotations) + 1, "image_id": image,
                "category_id": int(rng.integers(1, 3)), "bbox": [*xy[k], *wh[k]],
                "area": float(wh[k, 0] * wh[k, 1]), "iscrowd": int(rng.random() < crowd),
            })  # fmt: skip
        mine = [a for a in annotations if a["image_id"] == image]
        for a in mine:
            if rng.random() < 0.8:
                jitter = 0.0 if rng.random() < 0.3 else rng.normal(0, 3)  # some exactly 1
                bbox = [a["bbox"][0] + jitter, a["bbox"][1], a["bbox"][2], a["bbox"][3]]
                label = a["category_id"] if rng.random() > 0.1 else 3 - a["category_id"]
                detections.append({"image_id": image, "category_id": label, "bbox": bbox})
                if rng.random() < 0.2:  # found twice: equal IoUs, maybe an equal score
                    detections.append(dict(detections[-1]))
        for _ in range(int(rng.integers(0, 4))):  # invented
            x, y = rng.uniform(0, 400, 2)
            detections.append({
                "image_id": image, "category_id": int(rng.integers(1, 3)),
                "bbox": [x, y, *rng.choice(sides, 2)],
            })  # fmt: skip
    for detection in detections:
        detection["score"] = float(np.round(rng.uniform(0, 1), 1))  # ties
    dataset = {
        "images": [{"id": i, "width": 600, "height": 600} for i in range(1, images + 2)],
        "annotations": annotations,
        "categories": CATEGORIES,
    }  # the last image has neither boxes nor detections
    return dataset, detections


def _evaluated(kind: type[COCOeval], dataset: dict, detections: list) -> COCOeval:
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = dataset
        truth.createIndex()
        evaluator = kind(truth, truth.loadRes([dict(d) for d in detections]), iouType="bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def _assert_same(ours: COCOeval, theirs: COCOeval) -> None:
    assert len(ours.evalImgs) == len(theirs.evalImgs)
    for mine, reference in zip(ours.evalImgs, theirs.evalImgs, strict=True):
        if reference is None:
            assert mine is None
            continue
        assert mine.keys() == reference.keys()
        for key, value in reference.items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(mine[key], value, err_msg=key)
                assert np.asarray(mine[key]).dtype == value.dtype, key
            else:
                assert mine[key] == value, key
    np.testing.assert_array_equal(ours.eval["precision"], theirs.eval["precision"])
    np.testing.assert_array_equal(ours.stats, theirs.stats)


@pytest.mark.parametrize("seed", range(6))
def test_every_per_image_result_equals_pycocotools(seed):
    dataset, detections = _scene(np.random.default_rng(seed), images=12, boxes=14, crowd=0.15)
    _assert_same(
        _evaluated(ThresholdsAtOnceCOCOeval, dataset, detections),
        _evaluated(COCOeval, dataset, detections),
    )


def test_a_dense_image_past_max_dets_equals_pycocotools():
    """600 boxes, about 500 detections: pycocotools keeps the best 100 per class (how much
    faster this is: ``benchmarks/bench_review.py``'s dense figures)."""
    rng = np.random.default_rng(7)
    dataset, detections = _scene(rng, images=1, boxes=300, crowd=0.0)
    dataset["annotations"] += _scene(rng, images=1, boxes=300, crowd=0.0)[0]["annotations"]
    for number, annotation in enumerate(dataset["annotations"], start=1):
        annotation["id"] = number
    _assert_same(
        _evaluated(ThresholdsAtOnceCOCOeval, dataset, detections),
        _evaluated(COCOeval, dataset, detections),
    )
