"""What a large folder costs: every whole-dataset question, cold and warm, against today's path.

A folder of 10,000 small PNGs of which the first 5,000 have an annotation file (written
through :meth:`AnnotationStore.save`: a few boxes of 3 classes each, every tenth a reviewed
negative) and a prediction file. Each operation the Annotator, the AnchorViewer, the Review
dock and training ask of the whole dataset is timed three times in one process: *first*
(a new store, an empty index, no index saved on disk, an empty Review file cache: the very
first question ever asked of the folder), *cold* (the same with the in-memory index dropped
but the index an earlier session saved, ``annotations/.detlab-index.pt``, present: the first
question after opening the folder again) and *warm* (the same question again, nothing
changed on disk: every later one). ``new_process`` times the first questions in a new Python
process (imports excluded), with the saved index present.
``review_after_one_save`` is the Review's figures right after the Annotator saved one image
(both of its runs follow a save): its warm run evaluates that one image again with
pycocotools and accumulates every image (``core/evaluation/coco_images.py``).

The baseline is the same code with the annotation index switched off
(:func:`~napari_detlab.core.annotations.file_cache.index_disabled`: no folder index, no kept
per-image reviews, no remembered COCO scores or per-image COCO evaluations), which is the
path of the commit before them: every question reads every annotation file again and
pycocotools evaluates every image afresh. Both sides
must give the same answers (``same_answers``). The goal: each operation well under a second
once warm on 10,000 images.

Usage::

    .venv/bin/python benchmarks/bench_large_folder.py            # 10,000 images
    .venv/bin/python benchmarks/bench_large_folder.py --quick    # 500 images, seconds
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import numpy as np
from PIL import Image

from napari_detlab.core.anchors.dataset_boxes import DatasetBoxes
from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.file_cache import FileCache
from napari_detlab.core.annotations.statistics import dataset_statistics
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.evaluation.dataset_review import review_prediction_folder
from napari_detlab.core.evaluation.metrics import coco_metrics_from_folders
from napari_detlab.core.evaluation.review import ReviewThresholds
from napari_detlab.core.model.config import ModelConfig
from napari_detlab.core.model.predict import Prediction, write_prediction
from napari_detlab.core.training.engine import _check_inputs
from napari_detlab.core.training.options import TrainOptions

try:
    from napari_detlab.core.annotations.file_cache import SETTLE_NS, index_disabled
    from napari_detlab.core.annotations.index import forget_indexes
    from napari_detlab.core.evaluation.metrics import forget_scores
except ImportError:  # the commit before the index: both sides are the baseline

    def forget_indexes() -> None:
        return None

    forget_scores = forget_indexes
    SETTLE_NS = 0
    index_disabled = contextlib.nullcontext  # type: ignore[assignment]

try:
    from napari_detlab.core.annotations.saved_index import INDEX_FILENAME
except ImportError:  # the commit before the saved index: "cold" is "first" again
    INDEX_FILENAME = ".detlab-index.pt"

CLASSES = ("cell", "crystal", "debris")
WIDTH, HEIGHT = 64, 48
GOAL_WARM_S = 1.0
# What the docks ask first after a folder is opened (the "cold open").
FIRST_QUESTIONS = ("open_images", "next_unannotated", "class_names", "class_counts",
                   "statistics_view")  # fmt: skip


def build_folder(root: Path, images: int, annotated: int) -> Path:
    """``images`` PNGs; the first ``annotated`` have an annotation and a prediction file.

    The files are written by the store and ``write_prediction`` as always, but without their
    ``fsync`` calls: a throw-away folder needs no durability, and on a busy machine two
    ``fsync`` per file made building 5,000 files take most of an hour.
    """
    with mock.patch.object(os, "fsync", lambda fd: None):
        return _build_folder(root, images, annotated)


def _build_folder(root: Path, images: int, annotated: int) -> Path:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (HEIGHT, WIDTH), dtype=np.uint8)
    for index in range(images):
        Image.fromarray(pixels).save(root / f"img_{index:05d}.png", compress_level=1)
    store = AnnotationStore(root)
    pred_dir = store.predictions_dir
    pred_dir.mkdir()
    for index in range(annotated):
        stem = f"img_{index:05d}"
        count = 0 if index % 10 == 9 else int(rng.integers(1, 5))
        x1 = rng.uniform(0, WIDTH - 20, count)
        y1 = rng.uniform(0, HEIGHT - 20, count)
        w, h = rng.uniform(4, 19, count), rng.uniform(4, 19, count)
        boxes = np.stack([x1, y1, x1 + w, y1 + h], axis=1).astype(np.float32).reshape(-1, 4)
        labels = [CLASSES[int(i)] for i in rng.integers(0, len(CLASSES), count)]
        store.save(f"{stem}.png", ImageAnnotation(boxes, labels, True, (HEIGHT, WIDTH)))
        # The model finds most boxes (jittered) and adds a few of its own.
        extra = int(rng.integers(0, 4))
        ex1, ey1 = rng.uniform(0, WIDTH - 20, extra), rng.uniform(0, HEIGHT - 20, extra)
        fake = np.stack([ex1, ey1, ex1 + 10, ey1 + 10], axis=1).reshape(-1, 4)
        found = boxes + rng.normal(0, 1, boxes.shape)
        predicted = np.clip(np.concatenate([found, fake]), 0, [WIDTH, HEIGHT, WIDTH, HEIGHT])
        predicted[:, 2:] = np.maximum(predicted[:, 2:], predicted[:, :2] + 1)
        names = labels + [CLASSES[int(i)] for i in rng.integers(0, len(CLASSES), extra)]
        scores = rng.uniform(0.3, 1.0, len(names)).astype(np.float32)
        write_prediction(
            pred_dir, stem, Prediction(predicted.astype(np.float32), names, scores),
            image_size=(HEIGHT, WIDTH), score_floor=0.05, model_nms_thresh=0.5,
            checkpoint="bench",
        )  # fmt: skip
    return root


def operations(root: Path) -> dict[str, Callable[[], Callable[[], object]]]:
    """Each operation as a factory: called once per side for a cold start (new store, new
    Review cache), the callable it returns is then timed twice (cold, warm)."""

    def fresh(ask: Callable[[AnnotationStore], object]) -> Callable[[], object]:
        store = AnnotationStore(root)
        return lambda: ask(store)

    def review() -> Callable[[], object]:
        store, cache = AnnotationStore(root), FileCache()
        _ = store.images  # the dock scores the session's store, which the Annotator has listed
        thresholds = ReviewThresholds()

        def run() -> object:
            folder = review_prediction_folder(store.predictions_dir, store, cache, thresholds)
            assert folder.dataset is not None
            return folder.images, folder.dataset.counts, folder.dataset.metrics

        return run

    def review_after_a_save() -> Callable[[], object]:
        # The Review after the Annotator saved one image: that image's file is new, so its
        # review, its COCO evaluation and the dataset's accumulation are computed again.
        # Each save writes boxes not scored before in this side's run, so no remembered
        # COCO score can answer (the answers of both sides still match, call by call).
        score = review()
        store, calls = AnnotationStore(root), iter(range(1_000_000))

        def save_one() -> None:
            shift = float(next(calls))
            boxes = np.array([[shift, shift, 20 + shift, 20 + shift]], np.float32)
            store.save("img_00000.png", ImageAnnotation(boxes, ["cell"], True, (HEIGHT, WIDTH)))

        save_one()
        score()

        def run() -> object:
            save_one()
            return score()

        return run

    def train_check() -> Callable[[], object]:
        config = ModelConfig(classes=list(CLASSES))
        run_dir = root / "runs" / "bench"

        def run() -> object:
            store, _, _ = _check_inputs(root, run_dir, config, TrainOptions(epochs=1))
            return len(store.images)

        return run

    return {
        "open_images": lambda: fresh(lambda store: list(store.images)),
        "next_unannotated": lambda: fresh(lambda store: store.next_unannotated()),
        "class_names": lambda: fresh(lambda store: store.class_names()),
        "class_counts": lambda: fresh(lambda store: store.class_counts()),
        "statistics_view": lambda: fresh(lambda store: dataset_statistics(store).to_dict()),
        "anchor_dataset_boxes": lambda: fresh(
            lambda store: [
                (item.image.name, item.boxes.tolist(), list(item.labels), item.image_size)
                for item in DatasetBoxes.load(store).items
            ]
        ),
        "review_dataset_figures": review,
        "review_after_one_save": review_after_a_save,
        "coco_scoring": lambda: lambda: coco_metrics_from_folders(root / "predictions", root),
        "train_input_check": train_check,
    }


def timed(run: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    answer = run()
    return answer, time.perf_counter() - start


def measure(
    make: Callable[[], Callable[[], object]], root: Path
) -> tuple[list[object], float, float, float]:
    """First (no saved index), cold (saved index, nothing in memory), warm: the answers
    of the first and cold runs and the three times."""
    saved = root / "annotations" / INDEX_FILENAME
    saved.unlink(missing_ok=True)
    forget_indexes()
    forget_scores()
    first_answer, first = timed(make())
    if not saved.exists():  # an earlier session asked a whole-dataset question
        forget_indexes()
        AnnotationStore(root).class_names()
    forget_indexes()
    forget_scores()
    run = make()
    answer, cold = timed(run)
    _, warm = timed(run)
    return [first_answer, answer], first, cold, warm


NEW_PROCESS_SCRIPT = """
import json, sys, time
from napari_detlab.core.annotations.statistics import dataset_statistics
from napari_detlab.core.annotations.store import AnnotationStore
root = sys.argv[1]
times = {}
for name, ask in (
    ("class_names", lambda store: store.class_names()),
    ("class_counts", lambda store: store.class_counts()),
    ("statistics_view", lambda store: dataset_statistics(store).to_dict()),
    ("next_unannotated", lambda store: store.next_unannotated()),
):
    start = time.perf_counter()
    ask(AnnotationStore(root))
    times[name] = round(time.perf_counter() - start, 4)
print(json.dumps(times))
"""


def new_process_times(root: Path) -> dict[str, float]:
    """The first questions in a new process, the saved index present: the class list
    first (it is what the Annotator asks on opening), each from a new store."""
    import subprocess

    if not (root / "annotations" / INDEX_FILENAME).exists():
        forget_indexes()
        AnnotationStore(root).class_names()
    done = subprocess.run(
        [sys.executable, "-c", NEW_PROCESS_SCRIPT, str(root)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(done.stdout)


def same(a: object, b: object) -> bool:
    """Equal, NaN equal to NaN (undefined COCO figures)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@contextlib.contextmanager
def baseline_side(enabled: bool) -> Iterator[None]:
    with index_disabled() if enabled else contextlib.nullcontext():
        yield


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 images, 250 annotated")
    parser.add_argument("--images", type=int, default=10_000)
    args = parser.parse_args(argv)
    if args.quick:
        args.images = 500
    annotated = args.images // 2

    figures: dict[str, dict[str, float]] = {}
    all_same = True
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        root = build_folder(Path(tmp), args.images, annotated)
        build_s = time.perf_counter() - start
        # Files changed in the last SETTLE_NS are read at every question until they settle
        # (see core/annotations/file_cache.py); a folder someone opens was written earlier.
        time.sleep(SETTLE_NS / 1e9)
        for name, make in operations(root).items():
            with baseline_side(True):
                base_answers, _, base_cold, base_warm = measure(make, root)
            answers, first, cold, warm = measure(make, root)
            agrees = all(same(answer, base_answers[1]) for answer in answers)
            all_same &= agrees
            figures[name] = {
                "baseline_cold_s": round(base_cold, 4),
                "baseline_warm_s": round(base_warm, 4),
                "first_s": round(first, 4),
                "cold_s": round(cold, 4),
                "warm_s": round(warm, 4),
                "cold_speedup": round(base_cold / max(cold, 1e-6), 1),
                "warm_speedup": round(base_warm / max(warm, 1e-6), 1),
                "same_answer": agrees,
            }
        new_process = new_process_times(root)
    result = {
        "benchmark": "large_folder",
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "images": args.images,
        "annotation_files": annotated,
        "prediction_files": annotated,
        "build_s": round(build_s, 1),
        "operations": figures,
        "same_answers": all_same,
        "new_process_s": new_process,
        "slowest_cold_first_question_s": max(
            figures[name]["cold_s"] for name in FIRST_QUESTIONS if name in figures
        ),
        "slowest_warm_s": max(f["warm_s"] for f in figures.values()),
        "goal_warm_s": GOAL_WARM_S,
        "meets_goal": all(f["warm_s"] < GOAL_WARM_S for f in figures.values()),
        "quick": args.quick,
    }
    print(json.dumps(result, indent=2))
    return 0 if all_same else 1


if __name__ == "__main__":
    sys.exit(main())
