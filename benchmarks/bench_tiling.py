"""Small objects in a large image: recall of tiled prediction against whole-image resizing.

A synthetic slide (noise, with bright discs of 16-24 px: "cells") is much larger than the
model's input (96 / 128 px), so the detector's own resize would shrink a 2,000 x 1,500 slide
about 16-fold and every cell to one or two pixels. A small Faster R-CNN (ResNet-18 FPN, from
scratch: nothing is downloaded) is trained briefly through the real engine on three other
slides of the same kind (1,200 x 900); the ``"auto"`` rule trains it on crops of 96 px around
the cells (:mod:`napari_detlab.core.training.crops`). The same weights then predict the test
slide twice, in the same run: in tiles (``tiling="auto"``: 96 px, 32 px overlap) and resized
whole (``tiling="off"``, the baseline, what prediction did before). Both are matched to the
true boxes at IoU 0.5 (:func:`~napari_detlab.core.evaluation.review.match_predictions`),
keeping boxes that score at least 0.5 (and, to show nothing hides below it, every box down
to the model's score floor of 0.01: ``recall_any_score``). Goal: tiled recall at least twice
the baseline's.

The task is made easy on purpose (one class, high contrast, cells that do not touch, square
anchors, few proposals) so that one CPU core learns it in about two minutes of CPU time:
what is measured is what tiling adds, not how good a detector a CPU can train. A tile keeps
up to 50 boxes (it holds a handful of cells); the baseline runs with 1,000 proposals and
keeps up to 1,000 boxes, more than the 300 cells, so it is not capped below its recall.
Wall-clock and CPU seconds are both reported: on a machine shared with other work the first
can be several times the second.

Usage::

    .venv/bin/python benchmarks/bench_tiling.py            # minutes
    .venv/bin/python benchmarks/bench_tiling.py --quick    # seconds, for CI (figures meaningless:
                                                           # two training steps)
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore, ClassSpec
from napari_detlab.core.evaluation.review import Counts, match_predictions
from napari_detlab.core.model.builder import build_model
from napari_detlab.core.model.checkpoint import model_from_checkpoint
from napari_detlab.core.model.config import preset
from napari_detlab.core.model.predict import predict_images
from napari_detlab.core.model.tiling import Tiling, resize_scale
from napari_detlab.core.training.engine import train
from napari_detlab.core.training.options import TrainOptions

GOAL = 2.0  # tiled recall at least twice the baseline's ("far above")
SCORE = 0.5
CELL = 40  # one disc at most per CELL x CELL square of the slide


def synthetic_slide(
    height: int, width: int, count: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``uint8 H x W x 3`` noise with ``count`` bright discs of 16-24 px, and their boxes."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(rng.normal(0.25, 0.06, (height, width)), 0, 1)
    rows, cols = height // CELL, width // CELL
    places = rng.choice(rows * cols, size=min(count, rows * cols), replace=False)
    boxes = []
    for place in places:
        diameter = int(rng.integers(16, 25))
        x0 = (place % cols) * CELL + int(rng.integers(0, CELL - diameter + 1))
        y0 = (place // cols) * CELL + int(rng.integers(0, CELL - diameter + 1))
        yy, xx = np.ogrid[:diameter, :diameter]
        radius = diameter / 2
        disc = (yy + 0.5 - radius) ** 2 + (xx + 0.5 - radius) ** 2 <= radius**2
        window = pixels[y0 : y0 + diameter, x0 : x0 + diameter]
        window[disc] = rng.uniform(0.8, 1.0)
        boxes.append([x0, y0, x0 + diameter, y0 + diameter])
    gray = (pixels * 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2), np.asarray(boxes, np.float32)


def write_training_folder(root: Path, size: tuple[int, int], images: int, count: int) -> None:
    store = AnnotationStore(root)
    store.save_classes([ClassSpec("cell", "#ff0000")])
    for index in range(images):
        pixels, boxes = synthetic_slide(*size, count, seed=100 + index)
        Image.fromarray(pixels).save(root / f"train_{index}.png")
        store.save(
            f"train_{index}",
            ImageAnnotation(boxes, ["cell"] * len(boxes), reviewed=True, image_size=size),
        )


def recall_of(model, config, path: Path, truth: np.ndarray, tiling: str) -> dict[str, float]:
    start, cpu = time.perf_counter(), time.process_time()
    ((_, prediction),) = predict_images(model, config, [path], device="cpu", tiling=tiling)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    labels = np.asarray(prediction.labels)

    def counts_above(score: float) -> Counts:
        keep = prediction.scores >= score
        return match_predictions(
            prediction.boxes[keep], labels[keep], prediction.scores[keep], truth,
            ["cell"] * len(truth),
        ).counts  # fmt: skip

    counts, anything = counts_above(SCORE), counts_above(0.0)
    return {
        "recall": round(counts.recall, 4),
        "precision": round(counts.precision, 4) if counts.predictions else None,
        "boxes": counts.predictions,
        "recall_any_score": round(anything.recall, 4),
        "boxes_any_score": anything.predictions,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seconds, for CI")
    parser.add_argument("--iterations", type=int, default=None, help="training steps")
    parser.add_argument("--lr", type=float, default=0.02, help="SGD learning rate")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    quick = args.quick
    test_size = (480, 640) if quick else (1500, 2000)
    cells = 40 if quick else 300
    iterations = args.iterations or (2 if quick else 150)
    torch.manual_seed(0)
    # One thread: on a machine shared with other work two threads spin against each other
    # (a tile took 3.5x its CPU time in wall-clock with two, 1x with one).
    torch.set_num_threads(args.threads)
    config = preset("fast", ["cell"]).replace(
        min_size=96, max_size=128, aspect_ratios=[[1.0]] * 5,
        rpn_pre_nms_top_n_train=200, rpn_post_nms_top_n_train=100,
        rpn_batch_size_per_image=64, box_batch_size_per_image=32,
        rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=50, box_detections_per_img=50,
    )  # fmt: skip
    options = TrainOptions(
        epochs=10_000, batch_size=4, lr=args.lr, max_iterations=iterations,
        warmup_iters=min(30, iterations), val_fraction=0.0, eval_every=0, device="cpu",
        num_workers=0, seed=0, crops="auto",
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench_tiling_") as tmp:
        tmp_path = Path(tmp)
        data, run = tmp_path / "data", tmp_path / "run"
        data.mkdir()
        train_size = (480, 640) if quick else (900, 1200)
        write_training_folder(data, train_size, 1 if quick else 3, cells // 2)
        start, cpu = time.perf_counter(), time.process_time()
        finished = train(data, run, config, options)
        train_seconds, train_cpu = time.perf_counter() - start, time.process_time() - cpu
        if finished.status != "completed":
            print(f"bench_tiling: training {finished.status}: {finished.message}", file=sys.stderr)
            return 1
        model, config = model_from_checkpoint(run / "last.pt", device="cpu")
        # The baseline keeps up to 1,000 boxes from 1,000 proposals (a tile needs 50), so
        # its recall is not capped below the cell count; same weights.
        roomy = config.replace(
            rpn_pre_nms_top_n_test=2000, rpn_post_nms_top_n_test=1000, box_detections_per_img=1000
        )
        baseline = build_model(roomy, load_weights=False).eval()
        baseline.load_state_dict(model.state_dict())
        pixels, truth = synthetic_slide(*test_size, cells, seed=7)
        test = tmp_path / "test.png"
        Image.fromarray(pixels).save(test)
        tiled = recall_of(model, config, test, truth, "auto")
        whole = recall_of(baseline, roomy, test, truth, "off")
    if whole["recall"] > 0:
        ratio: float | None = tiled["recall"] / whole["recall"]
    else:
        ratio = float("inf") if tiled["recall"] > 0 else None
    figures = {
        "benchmark": "bench_tiling",
        "quick": quick,
        "test_image": f"{test_size[1]} x {test_size[0]}",
        "objects": len(truth),
        "object_px": "16-24",
        "model_input": f"{config.min_size} / {config.max_size}",
        "tile": f"{config.min_size} px, overlap {Tiling().overlap_for(config.min_size)} px",
        "whole_image_scale": round(resize_scale(*test_size, config.min_size, config.max_size), 4),
        "train_iterations": iterations,
        "train_seconds": round(train_seconds, 1),
        "train_cpu_seconds": round(train_cpu, 1),
        "score_kept": SCORE,
        "tiled": tiled,
        "whole_image_baseline": whole,
        "recall_ratio": "inf" if ratio == float("inf") else ratio and round(ratio, 2),
        "goal_ratio": GOAL,
        "met": ratio is not None and ratio >= GOAL,
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, no GPU used",
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
