"""Annotating with every dock open: what the other docks cost ``n`` and the event loop.

The demo tabs the AnchorViewer, the train dock and Review behind the Annotator. They follow
each save and each image change, so on a large dataset with predictions their follow-up
work (re-reading annotations, anchor coverage, COCO figures) could freeze the viewer while
someone annotates. The benchmark writes one dataset (``--images`` JPEGs of 800 x 600,
``--boxes`` boxes each (10; 1,000 for a dense field of cells), a prediction file of those boxes
found again plus 40 false ones) and annotates it twice:

``annotator_alone``
    only the Annotator docked: the baseline, measured in the same run;
``demo_docks``
    the demo's layout, every dock opened from the plugin manifest, the Annotator in front;
``side_by_side`` (with ``--side-by-side``)
    the Annotator with the statistics and the Review docks beside it, all three in view (a
    person who watches the counts and the predictions while annotating): every save
    reaches docks that draw.

Each round draws a box, leaves a think time (the autosave and the docks' follow-up work
happen then) and presses ``n``. Reported per way: median / p95 of ``n`` and the longest
event-loop stall seen during the think times (how long the viewer ignored the user).

Usage::

    python benchmarks/bench_docks_while_annotating.py            # 300 images, 12 rounds
    python benchmarks/bench_docks_while_annotating.py --quick    # 60 images, 5 rounds (CI)
    python benchmarks/bench_docks_while_annotating.py --boxes 1000 --images 40   # dense
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_navigation import edit_boxes, percentile_summary, timed_press
from bench_review import virtual_display

THINK_TIME_S = 1.5
GOAL = {"n_ratio_max": 1.5, "stall_ms_max": 100}


def write_predicted_dataset(folder: Path, images: int, seed: int = 0, boxes: int = 10) -> Path:
    """Annotated JPEGs, each with a prediction file: the state after ``detlab predict``."""
    import imageio.v3 as iio

    from napari_detlab.core.annotations.annotation import ImageAnnotation
    from napari_detlab.core.annotations.store import AnnotationStore, ClassSpec
    from napari_detlab.core.model.predict import Prediction, write_prediction

    folder.mkdir(parents=True)
    store = AnnotationStore(folder)
    store.save_classes([ClassSpec("cell", "#ff3fd2"), ClassSpec("crystal", "#1fd3ff")])
    rng = np.random.default_rng(seed)
    jpeg = iio.imwrite(
        "<bytes>", rng.integers(0, 255, (600, 800, 3), dtype=np.uint8), extension=".jpg"
    )
    for index in range(images):
        stem = f"im{index:04d}"
        (folder / f"{stem}.jpg").write_bytes(jpeg)
        corner = rng.uniform(0, 500, (boxes, 2))
        truth = np.c_[corner, corner + rng.uniform(10, 80, (boxes, 2))]
        labels = [("cell", "crystal")[i % 2] for i in range(boxes)]
        store.save(f"{stem}.jpg", ImageAnnotation(truth, labels, True, (600, 800)))
        found = truth + rng.normal(0, 3, truth.shape)
        found[:, 2:] = np.maximum(found[:, 2:], found[:, :2] + 1)
        clutter = rng.uniform(0, 500, (40, 2))
        predicted = np.r_[found, np.c_[clutter, clutter + 30]].astype(np.float32)
        scores = rng.uniform(0, 1, len(predicted)).astype(np.float32)
        prediction = Prediction(predicted, labels + ["cell", "crystal"] * 20, scores, (600, 800))
        write_prediction(folder / "predictions", stem, prediction)
    return folder


SIDE_BY_SIDE = ("Dataset statistics", "Review predictions")


def annotate(folder: Path, rounds: int, layout: str) -> dict[str, object]:
    """Draw, think, press ``n``; ``rounds`` times. Returns the figures of one way."""
    import napari
    from napari.qt import get_qapp

    from napari_detlab.cli.demo import build_demo

    app = get_qapp()
    if layout == "demo":
        viewer, annotator = build_demo(folder)
    else:
        viewer = napari.Viewer(show=True)
        annotator = viewer.window.add_plugin_dock_widget("napari-detlab", "Annotator")[1]
        for name in SIDE_BY_SIDE if layout == "side_by_side" else ():
            viewer.window.add_plugin_dock_widget("napari-detlab", name)
        annotator.open_folder(folder)
    rng = np.random.default_rng(1)
    presses, stalls = [], []
    try:
        settle_until = time.perf_counter() + 5  # opening work (dataset loads) is not timed
        while time.perf_counter() < settle_until:
            app.processEvents()
            time.sleep(0.01)
        from napari_detlab._qt.napari_internals import (
            viewer_canvas,  # napari first: see napari_detlab.keep_triton_out_of_napari
        )

        canvas = viewer_canvas(viewer)
        for _ in range(rounds):
            edit_boxes(viewer.layers["boxes: cell"], rng)
            deadline = last = time.perf_counter()
            deadline += THINK_TIME_S
            stall = 0.0
            while last < deadline:
                app.processEvents()
                now = time.perf_counter()
                stall, last = max(stall, now - last), now
                time.sleep(0.005)
            stalls.append(stall)
            presses.append(timed_press(canvas, app))
    finally:
        viewer.close()
    stall_ms = np.asarray(stalls) * 1000
    return {
        "n": percentile_summary(presses),
        "event_loop_stall_ms": {
            "median": round(float(np.median(stall_ms)), 1),
            "max": round(float(stall_ms.max()), 1),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 images, 5 rounds (CI)")
    parser.add_argument("--images", type=int, default=None, help="default 300")
    parser.add_argument("--rounds", type=int, default=None, help="default 12")
    parser.add_argument("--boxes", type=int, default=10, help="boxes per image (default 10)")
    parser.add_argument(
        "--side-by-side", action="store_true", help="also the statistics and Review docks in view"
    )
    args = parser.parse_args(argv)
    images = args.images or (60 if args.quick else 300)
    rounds = args.rounds or (5 if args.quick else 12)
    # napari echoes notifications on stdout, which must hold only the JSON.
    with tempfile.TemporaryDirectory() as tmp, virtual_display():
        from contextlib import redirect_stdout

        with redirect_stdout(sys.stderr):
            folder = write_predicted_dataset(Path(tmp) / "dataset", images, boxes=args.boxes)
            alone = annotate(folder, rounds, "alone")
            docks = annotate(folder, rounds, "demo")
            beside = annotate(folder, rounds, "side_by_side") if args.side_by_side else None
    ratio = docks["n"]["median_ms"] / alone["n"]["median_ms"]
    results = {
        "images": images,
        "rounds": rounds,
        "boxes_per_image": args.boxes,
        "think_time_s": THINK_TIME_S,
        "annotator_alone": alone,
        "demo_docks": docks,
        **({"side_by_side": beside} if beside else {}),
        "n_median_ratio_docks_over_alone": round(ratio, 2),
        "goal": GOAL,
        "meets_goal": bool(
            ratio <= GOAL["n_ratio_max"]
            and docks["event_loop_stall_ms"]["max"] <= GOAL["stall_ms_max"]
        ),
    }
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
