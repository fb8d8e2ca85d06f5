"""What training's up-front image check costs on a large folder, against decoding every image.

``detlab train`` (and the train dock's child process, and every ``torchrun`` rank) checks
each annotated image before it starts, so that a truncated JPEG or an empty ``.png`` is
refused with all the others at once instead of ending the run when the data loader reaches
it. :func:`~napari_detlab.core.images.unreadable_images` reads each header and each file's
end mark on a thread pool and decodes only the files that lack one; the baseline is the
obvious check, :func:`~napari_detlab.core.images.read_image` on every file, one after the
other. A few broken files (truncated, empty, not an image) are mixed in, and both checks
must find exactly those. The goal: a folder of 2,000 photos is checked in seconds (under
10 s), whatever their size.

Usage::

    .venv/bin/python benchmarks/bench_image_check.py            # 2,000 JPEGs of 640x480
    .venv/bin/python benchmarks/bench_image_check.py --quick    # seconds, for CI
    .venv/bin/python benchmarks/bench_image_check.py --count 200 --width 4000 --height 3000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from napari_detlab.core.images import ImageReadError, read_image, unreadable_images

GOAL_S = 10.0  # for 2,000 images


def write_jpegs(folder: Path, count: int, width: int, height: int) -> list[Path]:
    """``count`` photo-like JPEGs (smooth gradients plus noise, quality 90)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // max(1, width), y * 255 // max(1, height), (x + y) % 256], -1)
    paths = []
    for index in range(count):
        noise = rng.integers(0, 40, (height, width, 3))
        pixels = ((base + noise + index) % 256).astype(np.uint8)
        path = folder / f"photo_{index:05d}.jpg"
        Image.fromarray(pixels).save(path, quality=90)
        paths.append(path)
    return paths


def break_some(paths: list[Path]) -> set[Path]:
    """Truncate one JPEG, empty another, and write text into a third: what users bring."""
    truncated, empty, text = paths[len(paths) // 3], paths[len(paths) // 2], paths[-1]
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    empty.write_bytes(b"")
    text.write_text("this is not an image\n")
    return {truncated, empty, text}


def decode_all(paths: list[Path]) -> set[Path]:
    """The baseline: every image fully decoded, one after the other."""
    bad = set()
    for path in paths:
        try:
            read_image(path)
        except ImageReadError:
            bad.add(path)
    return bad


def timed(fn) -> tuple[set[Path], float]:
    start = time.perf_counter()
    found = fn()
    return found, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 small images")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    args = parser.parse_args(argv)
    if args.quick:
        args.count, args.width, args.height = 60, 160, 120

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_jpegs(Path(tmp), args.count, args.width, args.height)
        broken = break_some(paths)
        decode_all(paths)  # warm-up: the page cache holds every file for both checks
        # Check, baseline, check: the check's figure is the mean of the two passes around
        # the baseline, so a neighbour's burst of load on a shared machine hurts both alike.
        found_1, check_1 = timed(lambda: set(unreadable_images(paths)))
        found_base, baseline = timed(lambda: decode_all(paths))
        found_2, check_2 = timed(lambda: set(unreadable_images(paths)))
        serial_found, serial = timed(lambda: set(unreadable_images(paths, threads=1)))
    check = (check_1 + check_2) / 2
    correct = found_1 == found_2 == found_base == serial_found == broken
    result = {
        "benchmark": "image_check",
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "images": args.count,
        "image_size": f"{args.width}x{args.height} JPEG",
        "broken_found": len(found_1),
        "finds_exactly_the_broken_files": correct,
        "check_s": round(check, 3),
        "check_passes_s": [round(check_1, 3), round(check_2, 3)],
        "check_one_thread_s": round(serial, 3),
        "baseline_full_decode_serial_s": round(baseline, 3),
        "speedup": round(baseline / check, 2),
        "check_ms_per_image": round(1000 * check / args.count, 3),
        "goal_s_per_2000_images": GOAL_S,
        "meets_goal": check * 2000 / args.count < GOAL_S,
        "quick": args.quick,
    }
    print(json.dumps(result, indent=2))
    return 0 if correct else 1


if __name__ == "__main__":
    sys.exit(main())
