"""``detlab convert`` and import/export on thousands of images, against the file-I/O floor.

Writes a synthetic YOLO project (``images/`` of small PNGs + ``labels/`` + ``classes.txt``,
~5 boxes per image, 10% negatives), then times, through the same functions the CLI calls:

- ``convert`` YOLO -> COCO, COCO -> VOC, VOC -> YOLO (image sizes from the PNG headers);
- ``import`` YOLO into a dataset's annotation store and ``export`` the store as COCO;
- the same import as the Annotator's menu runs it in napari's worker: as progress steps
  from a helper thread (:func:`napari_detlab.formats.background.import_steps`).

The baseline, measured in the same run, is the naive converter loop: per image, read the
label file, read the image header and write one small file atomically (``fsync`` included),
one after the other. Each figure is also given as a ratio to that baseline; below 1 means
the overlapped writes (:func:`napari_detlab.formats.base.parallel_map`) beat the serial
floor. The goal is "thousands of images in seconds": at most 5 s per 1,000 images.

    .venv/bin/python benchmarks/bench_convert.py            # 2,000 images
    .venv/bin/python benchmarks/bench_convert.py --quick    # 200 images, for CI
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from napari_detlab.core.atomic import atomic_write_bytes
from napari_detlab.core.images import image_size
from napari_detlab.formats import convert, drain, export_dataset, import_dataset, import_steps

GOAL_SECONDS_PER_1000 = 5.0


def write_project(root: Path, n_images: int, seed: int = 0) -> Path:
    """A YOLO project: ``images/*.png`` (48x64 .. 96x128), ``labels/*.txt``, ``classes.txt``."""
    rng = np.random.default_rng(seed)
    images, labels = root / "images", root / "labels"
    images.mkdir(parents=True)
    labels.mkdir()
    (labels / "classes.txt").write_text("cell\ncrystal\ndust\n")
    for index in range(n_images):
        height, width = (48, 64) if index % 2 else (96, 128)
        iio.imwrite(images / f"img{index:05d}.png", np.zeros((height, width), np.uint8))
        count = 0 if index % 10 == 9 else int(rng.integers(1, 10))
        centres = rng.uniform(0.2, 0.8, (count, 2))
        sizes = rng.uniform(0.05, 0.3, (count, 2))
        classes = rng.integers(0, 3, count)
        lines = "".join(
            f"{c} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n"
            for c, (cx, cy), (w, h) in zip(classes, centres, sizes, strict=True)
        )
        (labels / f"img{index:05d}.txt").write_text(lines)
    return root


def io_floor(project: Path, out: Path) -> float:
    """Read each label and image header and write one file atomically, one at a time."""
    start = time.perf_counter()
    for label in sorted((project / "labels").glob("img*.txt")):
        text = label.read_text()
        image_size(project / "images" / f"{label.stem}.png")
        atomic_write_bytes(out / label.name, text.encode())
    return time.perf_counter() - start


def timed(function, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def link_images(source: Path, target: Path) -> Path:
    """A fresh dataset of the same images (hard links where possible), nothing annotated."""
    target.mkdir()
    for image in source.glob("*.png"):
        try:
            os.link(image, target / image.name)
        except OSError:
            shutil.copy2(image, target / image.name)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 images instead of 2,000")
    parser.add_argument("--images", type=int, default=None, help="number of images")
    args = parser.parse_args()
    n_images = args.images or (200 if args.quick else 2000)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        project = write_project(tmp / "project", n_images)
        (tmp / "floor").mkdir()
        floor = io_floor(project, tmp / "floor")
        boxes = sum(len(p.read_text().splitlines()) for p in (project / "labels").glob("img*.txt"))

        steps: dict[str, float] = {}
        steps["convert_yolo_to_coco"], report = timed(
            convert, "yolo", project / "labels", "coco", tmp / "coco.json"
        )
        assert report.images == n_images and report.boxes == boxes, report.summary()
        steps["convert_coco_to_voc"], report = timed(
            convert, "coco", tmp / "coco.json", "voc", tmp / "voc", images=project / "images"
        )
        assert report.images == n_images, report.summary()
        steps["convert_voc_to_yolo"], report = timed(
            convert, "voc", tmp / "voc", "yolo", tmp / "yolo"
        )
        assert report.images == n_images, report.summary()
        steps["import_yolo_into_store"], imported = timed(
            import_dataset, "yolo", project / "labels", project / "images"
        )
        assert imported.images == n_images and imported.boxes == boxes, imported.summary()
        steps["export_store_as_coco"], report = timed(
            export_dataset, project / "images", "coco", tmp / "export.json"
        )
        assert report.images == n_images, report.summary()
        background = link_images(project / "images", tmp / "background")
        steps["import_yolo_as_progress_steps"], (progress, imported) = timed(
            drain, import_steps("yolo", project / "labels", background)
        )
        assert imported.images == n_images and progress[-1] == (n_images, n_images, "writing")

    figures = {
        "benchmark": "bench_convert",
        "quick": args.quick,
        "images": n_images,
        "boxes": boxes,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "baseline_serial_io_s": round(floor, 3),
        "steps": {
            name: {
                "seconds": round(seconds, 3),
                "seconds_per_1000_images": round(1000 * seconds / n_images, 3),
                "ratio_to_serial_io": round(seconds / floor, 2),
            }
            for name, seconds in steps.items()
        },
        "goal_seconds_per_1000_images": GOAL_SECONDS_PER_1000,
        "goal_met": all(1000 * s / n_images <= GOAL_SECONDS_PER_1000 for s in steps.values()),
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
