"""COCO scoring of dense images: pycocotools' own matching against all thresholds at once.

The Review dock scores its dataset figures in a worker thread after every save; on images
of a microscopy field (hundreds of cells of a class) pycocotools' ``evaluateImg`` (three
nested Python loops) held the GIL long enough to make the viewer's ``n`` take seconds.
Each run scores the same images twice, in one process: ``pycocotools`` (``COCOeval``, the
baseline) and ``ours`` (:class:`~napari_detlab.core.evaluation.coco_matching.
ThresholdsAtOnceCOCOeval`), checks that the 12 figures are identical, and reports the CPU
seconds of ``evaluate()`` per image. Goal: at least 5x faster at 1,000 boxes per image.

    .venv/bin/python benchmarks/bench_coco_dense.py            # 10 images x 100 / 1,000 boxes
    .venv/bin/python benchmarks/bench_coco_dense.py --quick    # 2 images, for CI
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import time

import numpy as np
from pycocotools.cocoeval import COCOeval

from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.evaluation.coco_matching import ThresholdsAtOnceCOCOeval
from napari_detlab.core.evaluation.metrics import coco_evaluator
from napari_detlab.core.model.predict import Prediction

CLASSES = ["cell", "crystal"]
GOAL_SPEEDUP = 5.0


def dense_images(images: int, boxes: int, seed: int = 0) -> tuple[dict, dict]:
    """``images`` fields of ``boxes`` cells in two classes, found with jitter, 40 invented."""
    rng = np.random.default_rng(seed)
    truths, predictions = {}, {}
    for index in range(images):
        corner = rng.uniform(0, 1500, (boxes, 2))
        truth = np.c_[corner, corner + rng.uniform(10, 80, (boxes, 2))]
        labels = [CLASSES[i % 2] for i in range(boxes)]
        found = truth + rng.normal(0, 3, truth.shape)
        found[:, 2:] = np.maximum(found[:, 2:], found[:, :2] + 1)
        clutter = rng.uniform(0, 1500, (40, 2))
        boxes_found = np.r_[found, np.c_[clutter, clutter + 30]].astype(np.float32)
        scores = rng.uniform(0, 1, len(boxes_found)).astype(np.float32)
        stem = f"field{index:03d}"
        truths[stem] = ImageAnnotation(truth, labels, True, (1600, 1600))
        predictions[stem] = Prediction(boxes_found, labels + CLASSES * 20, scores)
    return truths, predictions


def evaluate_seconds(kind: type[COCOeval], truths: dict, predictions: dict) -> tuple[float, list]:
    """CPU seconds of ``evaluate()`` and the 12 summary figures after accumulation."""
    evaluator = coco_evaluator(predictions, truths, CLASSES, kind=kind)
    with contextlib.redirect_stdout(io.StringIO()):
        start = time.process_time()
        evaluator.evaluate()
        seconds = time.process_time() - start
        evaluator.accumulate()
        evaluator.summarize()
    return seconds, [float(x) for x in evaluator.stats]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 images per size (CI)")
    parser.add_argument("--images", type=int, default=None, help="images per size (10)")
    args = parser.parse_args(argv)
    images = args.images or (2 if args.quick else 10)
    figures: dict[str, object] = {
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "images": images,
    }
    for boxes in (100, 1000):
        truths, predictions = dense_images(images, boxes)
        theirs, their_stats = evaluate_seconds(COCOeval, truths, predictions)
        ours, our_stats = evaluate_seconds(ThresholdsAtOnceCOCOeval, truths, predictions)
        figures[f"{boxes}_boxes"] = {
            "pycocotools_s_per_image": round(theirs / images, 4),
            "ours_s_per_image": round(ours / images, 4),
            "speedup": round(theirs / ours, 1),
            "same_figures": our_stats == their_stats,
            "map": round(our_stats[0], 4),
        }
    dense = figures["1000_boxes"]
    figures["goal"] = f">= {GOAL_SPEEDUP:g}x at 1,000 boxes, the same figures"
    figures["meets_goal"] = bool(dense["speedup"] >= GOAL_SPEEDUP and dense["same_figures"])
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
