"""Review slider update time with 1,000 raw predictions on a 1 MP image, vs the tutorial's way.

A temporary dataset holds one 1024 x 1024 image with 60 annotated objects and a prediction
file of 1,000 raw boxes (several jittered guesses per object plus background clutter, scores
spread as a detector's are). A real viewer is shown (under Xvfb when there is no display:
Mesa's software OpenGL) with the Review panel docked, and the benchmark moves the score and
NMS sliders alternately over their range. Each step is timed from ``setValue`` until Qt has
processed every event and the canvas has drawn the new frame.

``baseline`` is the tutorial's way in the same viewer, at the same slider positions and with
the same core filter: remove the Shapes layer of predictions and add a new one holding the
kept rectangles with their "label: score" text and colours. It is slow, so it runs fewer
steps.

Usage::

    python benchmarks/bench_review.py            # 40 steps (baseline 8)
    python benchmarks/bench_review.py --quick    # 8 steps (baseline 2), for CI

Prints one JSON object: median / p95 / max milliseconds per update of each way, how many
boxes were shown per step, the speed-up (baseline median / review median) and the goals
(< 100 ms per update, >= 10x).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

IMAGE_SIZE = (1024, 1024)
N_OBJECTS = 60
N_PREDICTIONS = 1000
CLASSES = ("cell", "crystal")


# -- shared with the other GUI benchmarks -------------------------------------------------------
@contextlib.contextmanager
def virtual_display() -> Iterator[None]:
    """Xvfb (Mesa's software OpenGL) when there is no display, as CI and this machine have."""
    if not sys.platform.startswith("linux") or os.environ.get("DISPLAY"):
        yield
        return
    from pyvirtualdisplay import Display

    display = Display(visible=False, size=(1600, 1000))
    display.start()
    try:
        yield
    finally:
        display.stop()


def gl_renderer(viewer) -> str:
    """The OpenGL renderer string, to tell software (llvmpipe) from a GPU."""
    try:
        from napari_detlab._qt.napari_internals import (
            viewer_canvas,  # napari first: see napari_detlab.keep_triton_out_of_napari
        )

        viewer_canvas(viewer).native.makeCurrent()
        from vispy.gloo import gl

        return str(gl.glGetParameter(gl.GL_RENDERER))
    except Exception as error:  # informative only
        return f"unknown ({error})"


def summary_ms(times_s: list[float]) -> dict[str, float]:
    ms = np.asarray(times_s) * 1000
    return {
        "median_ms": round(float(np.median(ms)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "max_ms": round(float(ms.max()), 1),
    }


class FrameWaiter:
    """Runs Qt until the canvas has drawn a frame after a change (forcing one if needed)."""

    def __init__(self, viewer, app) -> None:
        self.app = app
        from napari_detlab._qt.napari_internals import (
            viewer_canvas,  # napari first: see napari_detlab.keep_triton_out_of_napari
        )

        self.canvas = viewer_canvas(viewer)
        self.draws = 0
        self.canvas._scene_canvas.events.draw.connect(self._count)

    def _count(self, _event: object) -> None:
        self.draws += 1

    def __call__(self) -> None:
        before = self.draws
        self.app.processEvents()
        if self.draws == before:
            self.canvas.native.repaint()  # synchronous paint
        self.app.processEvents()


# -- data ---------------------------------------------------------------------------------------
def write_review_dataset(folder: Path, seed: int = 0) -> Path:
    """One 1 MP image, its ground truth and 1,000 raw predictions; returns the image path."""
    import imageio.v3 as iio

    from napari_detlab.core.annotations.annotation import ImageAnnotation
    from napari_detlab.core.annotations.store import AnnotationStore
    from napari_detlab.core.model.predict import Prediction, write_prediction

    rng = np.random.default_rng(seed)
    height, width = IMAGE_SIZE
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = 127 + 60 * np.sin(xx / 70) * np.cos(yy / 90) + rng.normal(0, 10, (height, width))
    image_path = folder / "scene.png"
    folder.mkdir(parents=True, exist_ok=True)
    iio.imwrite(image_path, image.clip(0, 255).astype(np.uint8))

    xy = rng.uniform(0, [width - 100, height - 100], (N_OBJECTS, 2))
    truth = np.c_[xy, xy + rng.uniform(20, 90, (N_OBJECTS, 2))]
    truth_labels = [CLASSES[i % 2] for i in range(N_OBJECTS)]
    AnnotationStore(folder).save(
        image_path, ImageAnnotation(truth, truth_labels, reviewed=True, image_size=IMAGE_SIZE)
    )

    # Per object: guesses jittered around it, the best one scoring high; then clutter.
    per_object = 8
    owner = np.repeat(np.arange(N_OBJECTS), per_object)
    size = truth[owner, 2:] - truth[owner, :2]
    jitter = rng.normal(0, 0.12, (len(owner), 4)) * np.c_[size, size]
    guesses = truth[owner] + jitter
    guess_scores = rng.beta(5, 2, len(owner)) * np.tile(np.linspace(1, 0.3, per_object), N_OBJECTS)
    guess_labels = [truth_labels[o] if rng.random() > 0.1 else CLASSES[1 - o % 2] for o in owner]
    clutter_n = N_PREDICTIONS - len(owner)
    cxy = rng.uniform(0, [width - 100, height - 100], (clutter_n, 2))
    clutter = np.c_[cxy, cxy + rng.uniform(15, 90, (clutter_n, 2))]
    boxes = np.concatenate([guesses, clutter])
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 2)
    boxes = boxes.clip(0, [width, height, width, height])
    scores = np.concatenate([guess_scores, rng.beta(1, 6, clutter_n)]).clip(0.01, 1)
    labels = guess_labels + [CLASSES[int(i)] for i in rng.integers(0, 2, clutter_n)]
    write_prediction(
        folder / "predictions",
        image_path.stem,
        Prediction(boxes, labels, scores, image_size=IMAGE_SIZE, score_floor=0.01),
        model_nms_thresh=1.0,
    )
    return image_path


def slider_path(steps: int) -> list[tuple[str, float]]:
    """Alternate score and NMS moves sweeping both ranges, as a user dragging both would."""
    scores = np.linspace(0.02, 0.9, (steps + 1) // 2)
    nms = np.linspace(1.0, 0.3, steps // 2)
    path: list[tuple[str, float]] = []
    for i in range(steps):
        path.append(("score", float(scores[i // 2])) if i % 2 == 0 else ("nms", float(nms[i // 2])))
    return path


# -- the two ways -----------------------------------------------------------------------------
def time_review(
    viewer, widget, wait, path: list[tuple[str, float]]
) -> tuple[list[float], list[int]]:
    """Drag: each slider is held down (as under the mouse) while its value moves.

    Besides wall time, the main thread's CPU time per step is kept: on a shared machine the
    wall time also counts waiting for a core, which the CPU time does not.
    """
    times, shown = [], []
    cpu = time_review.cpu = []
    for slider in (widget.score_slider, widget.nms_slider):
        slider.setSliderDown(True)
    try:
        for which, value in path:
            slider = widget.score_slider if which == "score" else widget.nms_slider
            start, start_cpu = time.perf_counter(), time.thread_time()
            slider.setValue(value)
            wait()
            times.append(time.perf_counter() - start)
            cpu.append(time.thread_time() - start_cpu)
            shown.append(len(widget.kept))
    finally:
        for slider in (widget.score_slider, widget.nms_slider):
            slider.setSliderDown(False)
    return times, shown


def time_dataset_refresh(widget, wait, repeats: int) -> tuple[list[float], list[float]]:
    """What a release costs afterwards: precision / recall / COCO mAP of the dataset.

    The figures are computed in a worker thread: returns the wall time until they are shown
    and the GUI thread's CPU time meanwhile (what the viewer cannot spend on the user).
    """
    from qtpy.QtWidgets import QApplication

    times, gui_cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.thread_time()
        widget.refresh_dataset_metrics()
        while widget.busy:
            QApplication.processEvents()
            time.sleep(0.001)
        wait()  # the frame showing them
        times.append(time.perf_counter() - start)
        gui_cpu.append(time.thread_time() - start_cpu)
    return times, gui_cpu


def time_baseline(viewer, widget, wait, path: list[tuple[str, float]]) -> list[float]:
    """Remove and re-add a Shapes layer of the kept predictions at every step (the tutorial)."""
    cpu = time_baseline.cpu = []
    from napari_detlab.core.boxes import xyxy_to_napari
    from napari_detlab.core.evaluation.review import filter_predictions

    current = widget.current
    score, nms = widget.thresholds.score_threshold, widget.thresholds.nms_iou
    times = []
    for which, value in path:
        score, nms = (value, nms) if which == "score" else (score, value)
        start, start_cpu = time.perf_counter(), time.thread_time()
        keep = filter_predictions(
            current.boxes, current.scores, current.labels, score_threshold=score, nms_iou=nms
        )
        for layer in [layer for layer in viewer.layers if layer.name == "Predictions"]:
            viewer.layers.remove(layer)
        viewer.add_shapes(
            list(xyxy_to_napari(current.boxes[keep])),
            shape_type="rectangle",
            name="Predictions",
            edge_color="red",
            face_color="transparent",
            edge_width=2,
            features={"label": current.labels[keep], "score": current.scores[keep]},
            text={"string": "{label}: {score:.2f}", "size": 9, "anchor": "upper_left"},
        )
        wait()
        times.append(time.perf_counter() - start)
        cpu.append(time.thread_time() - start_cpu)
    for layer in [layer for layer in viewer.layers if layer.name == "Predictions"]:
        viewer.layers.remove(layer)
    return times


def run(steps: int, baseline_steps: int) -> dict[str, object]:
    import napari
    from napari.qt import get_qapp

    from napari_detlab._qt.review import ReviewWidget
    from napari_detlab._qt.session import session_for
    from napari_detlab.core.images import read_image

    app = get_qapp()
    with tempfile.TemporaryDirectory() as tmp:
        image_path = write_review_dataset(Path(tmp) / "dataset")
        viewer = napari.Viewer(show=True)
        try:
            viewer.add_image(read_image(image_path), name="scene")
            widget = ReviewWidget(viewer)
            viewer.window.add_dock_widget(widget, name="Review predictions")
            session = session_for(viewer)
            session.open_dataset(image_path.parent)
            session.set_image(0, image_path)
            wait = FrameWaiter(viewer, app)
            wait()
            time_dataset_refresh(widget, wait, 1)  # the first read of every file
            # Warm up glyph caches and GL buffers once, as the first drag would.
            time_review(viewer, widget, wait, slider_path(4))
            review_times, shown = time_review(viewer, widget, wait, slider_path(steps))
            review_cpu = list(time_review.cpu)
            all_times, _ = time_review(
                viewer, widget, wait, [("score", 0.0), ("nms", 1.0), ("score", 0.01)] * 2
            )
            widget.score_slider.setValue(0.5)
            widget.nms_slider.setValue(0.5)
            wait()
            refresh_times, refresh_cpu = time_dataset_refresh(widget, wait, 2 if steps < 20 else 5)
            # The baseline at the slider positions of the review sweep, spread over its range.
            picks = np.linspace(0, steps - 1, baseline_steps).round().astype(int)
            sweep = slider_path(steps)
            baseline_times = time_baseline(viewer, widget, wait, [sweep[i] for i in picks])
            baseline_cpu = list(time_baseline.cpu)
            renderer = gl_renderer(viewer)
        finally:
            viewer.close()
    review, baseline = summary_ms(review_times), summary_ms(baseline_times)
    review_at_picks = summary_ms([review_times[i] for i in picks])
    return {
        "image": f"{IMAGE_SIZE[1]}x{IMAGE_SIZE[0]}",
        "raw_predictions": N_PREDICTIONS,
        "ground_truth_boxes": N_OBJECTS,
        "gl_renderer": renderer,
        "steps": steps,
        "boxes_shown_per_step": {
            "min": min(shown),
            "median": int(np.median(shown)),
            "max": max(shown),
        },
        "review": review,
        "review_main_thread_cpu": summary_ms(review_cpu),
        "review_about_1000_shown": summary_ms(all_times),
        "dataset_metrics_after_release": summary_ms(refresh_times),
        "dataset_metrics_gui_thread_cpu": summary_ms(refresh_cpu),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
        "baseline_tutorial_shapes_rebuild": {**baseline, "steps": int(baseline_steps)},
        "baseline_main_thread_cpu": summary_ms(baseline_cpu),
        "review_at_baseline_steps": review_at_picks,
        "speedup_median": round(baseline["median_ms"] / review_at_picks["median_ms"], 1),
        "speedup_median_cpu": round(
            float(np.median(baseline_cpu)) / float(np.median([review_cpu[i] for i in picks])), 1
        ),
        "goal": {"max_update_ms": 100, "min_speedup": 10},
        "meets_goal": bool(
            review["p95_ms"] < 100 and baseline["median_ms"] >= 10 * review_at_picks["median_ms"]
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 steps, baseline 2 (CI)")
    parser.add_argument("--steps", type=int, default=None, help="slider steps (default 40)")
    args = parser.parse_args(argv)
    steps = args.steps or (8 if args.quick else 40)
    baseline_steps = 2 if args.quick else 8
    with virtual_display():
        results = run(steps, min(baseline_steps, steps))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
