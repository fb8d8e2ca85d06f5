"""The statistics dock's live update: one save re-read, against recounting the whole folder.

Each of the Annotator's saves makes the Dataset statistics dock update. Its tracker re-reads
the one file written and sums the figures kept in memory
(:meth:`~napari_detlab.core.annotations.statistics.StatisticsTracker.update` then
:meth:`~napari_detlab.core.annotations.statistics.StatisticsTracker.statistics`); the
baseline, measured in the same run on the same folder, is what a dock without the tracker
would do on every save: :func:`~napari_detlab.core.annotations.statistics.dataset_statistics`,
every file read again. Goal: an update under 50 ms at 2,000 images, far under the recount.

    .venv/bin/python benchmarks/bench_statistics.py            # 2,000 images x ~10 boxes
    .venv/bin/python benchmarks/bench_statistics.py --quick    # seconds, for CI
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.statistics import StatisticsTracker, dataset_statistics
from napari_detlab.core.annotations.store import AnnotationStore

SIZE = 512  # the annotations' image size (the image files themselves are tiny)
CLASSES = ("cell", "crystal", "debris")


def random_annotation(rng: np.random.Generator, boxes: int) -> ImageAnnotation:
    """``boxes`` boxes of 4-200 pixels a side, of random classes."""
    sides = rng.uniform(4, 200, (boxes, 2))
    corner = rng.uniform(0, SIZE - 200, (boxes, 2))
    xyxy = np.concatenate([corner, corner + sides], axis=1).astype(np.float32)
    labels = [CLASSES[i] for i in rng.integers(0, len(CLASSES), boxes)]
    return ImageAnnotation(xyxy, labels, reviewed=True, image_size=(SIZE, SIZE))


def write_dataset(folder: Path, images: int, seed: int = 0) -> AnnotationStore:
    """``images`` tiny PNGs, nine in ten annotated with about ten boxes."""
    rng = np.random.default_rng(seed)
    pixels = np.zeros((8, 8, 3), np.uint8)
    for i in range(images):
        iio.imwrite(folder / f"img{i:05d}.png", pixels)
    store = AnnotationStore(folder)
    for image in store.images:
        if rng.random() < 0.9:
            store.save(image, random_annotation(rng, int(rng.integers(5, 16))))
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--saves", type=int, default=30, help="saves timed (median reported)")
    parser.add_argument("--quick", action="store_true", help="200 images: a smoke run for CI")
    args = parser.parse_args()
    images = 200 if args.quick else args.images
    saves = 10 if args.quick else args.saves
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        store = write_dataset(Path(tmp), images)
        started = time.perf_counter()
        tracker = StatisticsTracker.load(store)
        first_read = time.perf_counter() - started

        recounts, updates = [], []
        for _ in range(saves):
            image = store.images[int(rng.integers(len(store.images)))]
            store.save(image, random_annotation(rng, int(rng.integers(1, 16))))
            started = time.perf_counter()
            tracker.update(image)
            live = tracker.statistics()
            updates.append(time.perf_counter() - started)
            started = time.perf_counter()
            full = dataset_statistics(AnnotationStore(store.root))
            recounts.append(time.perf_counter() - started)
            assert live.to_dict() == full.to_dict(), "the tracker drifted from a full recount"

    update, recount = statistics.median(updates), statistics.median(recounts)
    report = {
        "benchmark": "statistics",
        "mode": "quick" if args.quick else "full",
        "images": images,
        "boxes": live.boxes,
        "first_read_s": round(first_read, 3),
        "update_median_ms": round(1000 * update, 2),
        "baseline_recount_median_ms": round(1000 * recount, 1),
        "ratio": round(recount / update, 1),
        "goal": "update < 50 ms at 2,000 images; the same figures as a recount",
        "machine": {"python": platform.python_version(), "cpu": platform.machine()},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
