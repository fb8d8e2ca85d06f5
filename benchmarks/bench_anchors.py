"""Anchor coverage of a dataset: the grid-window path against brute force, in one run.

Brute force is what the RPN does per image: ``box_iou`` of every box against every anchor
of its image, then torchvision's ``Matcher`` with low-quality matches. The benchmark checks
that both give identical per-box figures, and prints time and peak memory of each as JSON.

    .venv/bin/python benchmarks/bench_anchors.py            # 1,000 images x ~10 boxes
    .venv/bin/python benchmarks/bench_anchors.py --quick    # seconds, for CI
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
import tracemalloc

import numpy as np
import torch

from napari_detlab.core.anchors.coverage import (
    ImageBoxes,
    brute_force_coverage,
    measure_coverage,
)
from napari_detlab.core.anchors.layout import AnchorLayout
from napari_detlab.core.model.config import ModelConfig


def synthetic_boxes(
    n_images: int, boxes_per_image: int, size: tuple[int, int], seed: int
) -> list[ImageBoxes]:
    """Boxes of log-uniform size (6-250 px) and varied aspect, ~``boxes_per_image`` each."""
    rng = np.random.default_rng(seed)
    h, w = size
    items = []
    for i in range(n_images):
        n = int(rng.integers(max(1, boxes_per_image - 3), boxes_per_image + 4))
        side = np.exp(rng.uniform(np.log(6), np.log(250), n))
        aspect = np.exp(rng.normal(0, 0.5, n))
        bw, bh = side / np.sqrt(aspect), side * np.sqrt(aspect)
        cx, cy = rng.uniform(0, w, n), rng.uniform(0, h, n)
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1).clip(
            0, [w, h, w, h]
        )
        boxes = boxes[(boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)]
        labels = ["object"] * len(boxes)
        items.append(ImageBoxes(boxes, labels, image=f"img{i:04d}.png", image_size=size))
    return items


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: the tracemalloc figure stands alone
        return 0


def measure(function, *args):
    """``(result, seconds, peak_traced_MiB, peak_rss_growth_MiB)``.

    tracemalloc sees Python and numpy buffers but not torch's allocator, so the resident set
    is also sampled every millisecond from a thread; both are growth over the start.
    """
    baseline = _rss_bytes()
    peak_rss = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak_rss[0] = max(peak_rss[0], _rss_bytes())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    tracemalloc.start()
    start = time.perf_counter()
    result = function(*args)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    done.set()
    sampler.join()
    peak_rss[0] = max(peak_rss[0], _rss_bytes())
    return result, seconds, peak / 2**20, (peak_rss[0] - baseline) / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="12 images: a smoke run for CI")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--boxes", type=int, default=10, help="boxes per image (on average)")
    parser.add_argument("--size", type=int, nargs=2, default=(480, 640), metavar=("H", "W"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n_images = 12 if args.quick else args.images
    config = ModelConfig(classes=["object"])  # the default FPN config (ResNet-18 FPN, 512/853)
    items = synthetic_boxes(n_images, args.boxes, tuple(args.size), args.seed)
    layout = AnchorLayout.from_config(config, tuple(args.size))
    layout.anchors_resized()  # warm both paths' one-off costs (layout, anchor generation)
    measure_coverage(config, items[:2])
    brute_force_coverage(config, items[:2])

    fast, fast_s, fast_mib, fast_rss = measure(measure_coverage, config, items)
    (best, positives, level), brute_s, brute_mib, brute_rss = measure(
        brute_force_coverage, config, items
    )
    identical = bool(
        np.array_equal(fast.best_iou, best)
        and np.array_equal(fast.num_positive, positives)
        and np.array_equal(fast.best_level, level)
    )
    report = {
        "benchmark": "anchor_coverage",
        "mode": "quick" if args.quick else "full",
        "images": n_images,
        "boxes": len(fast),
        "image_size": list(args.size),
        "anchors_per_image": layout.num_anchors,
        "config": {"backbone": config.backbone, "fpn": config.fpn, "min_size": config.min_size,
                   "max_size": config.max_size, "anchor_sizes": config.anchor_sizes},
        "fast_s": round(fast_s, 4),
        "brute_force_s": round(brute_s, 4),
        "speedup": round(brute_s / fast_s, 1) if fast_s > 0 else None,
        "fast_peak_traced_mib": round(fast_mib, 1),
        "brute_force_peak_traced_mib": round(brute_mib, 1),
        "fast_peak_rss_growth_mib": round(fast_rss, 1),
        "brute_force_peak_rss_growth_mib": round(brute_rss, 1),
        "identical_results": identical,
        "recall_07": fast.figures().recall,
        "goal": {"speedup_at_least": 10, "fast_s_at_most": 5.0},
        "meets_goal": identical and brute_s / max(fast_s, 1e-9) >= 10 and fast_s <= 5.0,
        "machine": {"python": platform.python_version(), "torch": torch.__version__,
                    "threads": torch.get_num_threads()},
    }  # fmt: skip
    print(json.dumps(report, indent=2))
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
