"""How long ``n`` takes in the Annotator, decode and save included, against the tutorial's way.

For each image size (1 MP and 4 MP JPEGs with 50 boxes in two classes, or ``--boxes``) a
temporary dataset is written, a real viewer is shown (under Xvfb when there is no display:
Mesa's software OpenGL) with the Annotator opened from napari's plugin manifest, as a user
opens it, and for every image the benchmark

1. edits the boxes (adds one box), so that ``n`` has something to save, then
2. times a real ``n`` key press on the canvas until Qt has processed every event, the
   canvas included.

``widget_warm`` leaves the user a short think time between presses (the Annotator's
background thread decodes the next image meanwhile, as it would while someone draws);
``widget_cold`` clears that cache before each press, so the decode is on the clock.
``baseline`` is the tutorial's way in the same viewer: save the annotation, remove the image
and shapes layers and add new ones from a fresh decode.

``--boxes 2 50 1000`` measures each box count in turn (the dense case: a microscopy field of
cells) and reports each count's ``widget_warm`` median over the fewest count's, measured in
the same run (the goal: at most 1.5 with 1,000); with ``--widget-only`` the cold and
tutorial ways are left out. ``edit_stalls`` (fewest and most boxes): a box drawn, then a box
deleted, each followed by the autosave, and the longest event-loop stall from the edit until
the save is done (the goal: none over 50 ms; the canvas repaint is in each), with the
longest edit call and the longest autosave in it; ``edit_stalls_napari_alone`` the same
edits in a viewer without the Annotator (plain class layers, nothing of ours connected):
what napari's edit and the repaint cost on their own.

Usage::

    python benchmarks/bench_navigation.py            # 20 images per size
    python benchmarks/bench_navigation.py --quick    # 4 images per size, for CI
    python benchmarks/bench_navigation.py --boxes 2 50 1000 --widget-only

Prints one JSON object: per size, the median and p95 milliseconds of each way (wall-clock
and CPU time of the process), and the ratios baseline / widget.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from bench_review import gl_renderer as viewer_gl_renderer
from bench_review import virtual_display

THINK_TIME_S = 0.3
BOXES_PER_IMAGE = 50
CLASSES = ("cell", "crystal")
SIZES = {"1MP": (1000, 1000), "4MP": (1500, 2666)}


def write_dataset(
    folder: Path, count: int, size: tuple[int, int], seed: int = 0, boxes: int = BOXES_PER_IMAGE
) -> Path:
    """``count`` photo-like JPEGs of ``size`` with ``boxes`` boxes each."""
    from napari_detlab.core.annotations.annotation import ImageAnnotation
    from napari_detlab.core.annotations.store import AnnotationStore, ClassSpec

    folder.mkdir(parents=True, exist_ok=True)
    store = AnnotationStore(folder)
    store.save_classes([ClassSpec("cell", "#ff3fd2"), ClassSpec("crystal", "#1fd3ff")])
    rng = np.random.default_rng(seed)
    height, width = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for index in range(count):
        phase = rng.uniform(0, 6, 3)
        base = np.stack(
            [127 + 80 * np.sin(xx / (90 + 30 * i) + yy / 140 + phase[i]) for i in range(3)], axis=-1
        )
        image = (base + rng.normal(0, 12, base.shape)).clip(0, 255).astype(np.uint8)
        name = f"img_{index:03d}.jpg"
        iio.imwrite(folder / name, image, quality=90)
        xy = rng.uniform(0, [width - 80, height - 80], (boxes, 2))
        wh = rng.uniform(10, 80, (boxes, 2))
        labels = [CLASSES[i % 2] for i in range(boxes)]
        store.save(name, ImageAnnotation(np.c_[xy, xy + wh], labels, True, (height, width)))
    return folder


def process_events(app) -> None:
    """Run Qt until nothing is pending: layer updates, the canvas repaint, timers due now."""
    app.processEvents()
    app.processEvents()


def percentile_summary(times: list[tuple[float, float]]) -> dict[str, float]:
    """Median and p95 of wall-clock and of this process's CPU time, in milliseconds.

    CPU time (all threads: Python, Qt, Mesa's llvmpipe) is what the press costs on an idle
    machine; wall-clock also counts waiting for a core, which on a shared machine can be
    several times more.
    """
    wall, cpu = (np.asarray(column) * 1000 for column in zip(*times, strict=True))
    return {
        "median_ms": round(float(np.median(wall)), 1),
        "p95_ms": round(float(np.percentile(wall, 95)), 1),
        "cpu_median_ms": round(float(np.median(cpu)), 1),
        "cpu_p95_ms": round(float(np.percentile(cpu, 95)), 1),
    }


def ratio(baseline: dict[str, float], widget: dict[str, float], key: str = "median_ms") -> float:
    """How many times faster the widget is than the baseline on ``key``."""
    return round(baseline[key] / widget[key], 2)


def timed_press(canvas, app) -> tuple[float, float]:
    """``n`` on the canvas, until Qt is idle: ``(wall seconds, CPU seconds)``."""
    from qtpy.QtCore import Qt
    from qtpy.QtTest import QTest

    wall, cpu = time.perf_counter(), time.process_time()
    QTest.keyClick(canvas.native, Qt.Key.Key_N)
    process_events(app)
    return time.perf_counter() - wall, time.process_time() - cpu


def edit_boxes(layer, rng: np.random.Generator) -> None:
    """The user's edit on this image: one more box (what ``n`` will have to save)."""
    from napari_detlab.core.boxes import xyxy_to_napari

    x, y = rng.uniform(0, 200, 2)
    layer.add_rectangles(xyxy_to_napari(np.array([[x, y, x + 30, y + 20]])))


def time_widget(folder: Path, warm: bool, app, draws: list[int]) -> list[tuple[float, float]]:
    """Press ``n`` through every image of ``folder`` in a viewer with the Annotator."""
    import napari

    viewer = napari.Viewer(show=True)
    # Opened as the Plugins menu does: the widget gets napari's plugin proxy of the viewer.
    widget = viewer.window.add_plugin_dock_widget("napari-detlab", "Annotator")[1]
    widget.open_folder(folder)
    from napari_detlab._qt.napari_internals import (
        viewer_canvas,  # napari first: see napari_detlab.keep_triton_out_of_napari
    )

    canvas = viewer_canvas(viewer)
    canvas.events.draw.connect(lambda _event: draws.append(1))
    rng = np.random.default_rng(1)
    times = []
    try:
        for _ in range(len(widget.store.images) - 1):
            edit_boxes(viewer.layers["boxes: cell"], rng)
            if warm:
                deadline = time.perf_counter() + THINK_TIME_S
                while time.perf_counter() < deadline:
                    app.processEvents()
                    time.sleep(0.005)
            else:
                process_events(app)
                widget.annotator.prefetcher.clear()
            times.append(timed_press(canvas, app))
    finally:
        viewer.close()
    return times


def longest_stall(app, seconds: float) -> float:
    """Run the event loop for ``seconds``; the longest time it was busy in one go (seconds)."""
    last = start = time.perf_counter()
    stall = 0.0
    while last < start + seconds:
        app.processEvents()
        now = time.perf_counter()
        stall, last = max(stall, now - last), now
        time.sleep(0.002)
    return stall


def delete_box(layer) -> None:
    """The user's other edit: one box selected and deleted (as the Delete key does)."""
    layer.selected_data = {0}
    layer.remove_selected()


def time_edit_stalls(
    folder: Path, size: tuple[int, int], boxes: int, quick: bool, app
) -> dict[str, float]:
    """Longest event-loop stall of a box drawn, and of one deleted, each then autosaved.

    The edit runs inside the timed stretch (it is the user's own event), then the loop runs
    past the autosave delay, so the save of every box of the image is in it too. The
    canvas repaint after an edit is in every stall; the same stalls with the fewest boxes,
    measured in the same run, tell what the boxes add.
    """
    import napari

    from napari_detlab._qt.annotator import AUTOSAVE_DELAY_MS

    images = 2 if quick else 5
    write_dataset(folder, images + 1, size, boxes=boxes)
    viewer = napari.Viewer(show=True)
    widget = viewer.window.add_plugin_dock_widget("napari-detlab", "Annotator")[1]
    widget.open_folder(folder)
    saves: list[float] = []
    widget.flush = _timed(widget.flush, saves)  # the autosave timer calls self.flush()
    settle = AUTOSAVE_DELAY_MS / 1000 + 0.5
    try:
        figures = _edit_stalls(
            app, lambda: viewer.layers["boxes: cell"], images, settle, widget.next_image,
            saved=lambda: widget.status_label.text() == "Saved", saves=saves,
        )  # fmt: skip
    finally:
        viewer.close()
    return figures


def _timed(function, durations: list[float]):
    """``function``, appending the seconds of each call to ``durations``."""

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            durations.append(time.perf_counter() - start)

    return timed


def _edit_stalls(
    app, layer_of, images: int, settle: float, next_image, *, saved=None, saves=None
) -> dict[str, float]:
    """For each image: a box drawn, then one deleted, each followed by ``settle`` seconds of
    event loop. The longest stall of each kind, the longest edit call (napari's change of
    the layer, with every handler connected to it) and, with ``saves``, the longest save."""
    rng = np.random.default_rng(2)
    stalls: dict[str, list[float]] = {"draw": [], "delete": []}
    edits: dict[str, list[float]] = {"draw": [], "delete": []}
    for _ in range(images):
        longest_stall(app, 0.5)  # the image's own drawing is not an edit
        for kind, edit in (("draw", edit_boxes), ("delete", delete_box)):
            layer = layer_of()
            before = time.perf_counter()
            edit(layer, rng) if kind == "draw" else edit(layer)
            edited = time.perf_counter() - before
            edits[kind].append(edited)
            stalls[kind].append(max(edited, longest_stall(app, settle)))
            if saved is not None:
                assert saved(), "the edit was not saved"
        next_image()
    figures = {f"{kind}_max_ms": round(max(times) * 1000, 1) for kind, times in stalls.items()}
    figures |= {f"{kind}_edit_call_max_ms": round(max(t) * 1000, 1) for kind, t in edits.items()}
    if saves:
        figures["save_max_ms"] = round(max(saves) * 1000, 1)
    return figures


def time_napari_edit_stalls(
    folder: Path, size: tuple[int, int], boxes: int, quick: bool, app
) -> dict[str, float]:
    """The same edits and event loop as :func:`time_edit_stalls` in a viewer without the
    Annotator: the same image and boxes in two plain class layers, nothing connected to
    them (no autosave, no handler of ours; the Annotator's dock is there, with no folder,
    so the canvas has the same size). What napari's edit and the canvas repaint cost on
    their own."""
    import napari

    from napari_detlab._qt.annotator import AUTOSAVE_DELAY_MS
    from napari_detlab._qt.box_layers import add_class_layer, set_layer_boxes
    from napari_detlab._qt.image_layer import show_pixels
    from napari_detlab.core.annotations.store import AnnotationStore
    from napari_detlab.core.images import read_image

    images = 2 if quick else 5
    write_dataset(folder, images + 1, size, boxes=boxes)
    store = AnnotationStore(folder)
    classes = store.load_classes()
    viewer = napari.Viewer(show=True)
    # The dock as in the Annotator's run (the canvas keeps the same size), with no folder.
    viewer.window.add_plugin_dock_widget("napari-detlab", "Annotator")
    layers = {spec.name: add_class_layer(viewer, spec) for spec in classes}
    state = {"index": 0, "image": None}

    def show() -> None:
        path = store.images[state["index"]]
        state["image"] = show_pixels(viewer, state["image"], read_image(path))
        annotation = store.load(path)
        labels = np.asarray(annotation.labels, dtype=object)
        for name, layer in layers.items():
            set_layer_boxes(layer, annotation.boxes[labels == name])
        viewer.layers.selection.active = layers["cell"]
        layers["cell"].mode = "add_rectangle"

    def next_image() -> None:
        state["index"] += 1
        show()

    show()
    try:
        return _edit_stalls(
            app, lambda: layers["cell"], images, AUTOSAVE_DELAY_MS / 1000 + 0.5, next_image
        )
    finally:
        viewer.close()


def time_baseline(folder: Path, app) -> list[tuple[float, float]]:
    """The tutorial's way: save, drop the layers, decode and add new layers, per image."""
    import napari

    from napari_detlab.core.annotations.store import AnnotationStore
    from napari_detlab.core.boxes import xyxy_to_napari
    from napari_detlab.core.images import read_image

    store = AnnotationStore(folder)
    classes = store.load_classes()
    viewer = napari.Viewer(show=True)
    from napari_detlab._qt.napari_internals import (
        viewer_canvas,  # napari first: see napari_detlab.keep_triton_out_of_napari
    )

    canvas = viewer_canvas(viewer)
    state = {"index": 0}
    rng = np.random.default_rng(1)

    def show(index: int) -> None:
        viewer.layers.clear()
        path = store.images[index]
        viewer.add_image(read_image(path), name="image")
        annotation = store.load(path)
        labels = np.asarray(annotation.labels, dtype=object)
        for spec in classes:
            viewer.add_shapes(
                xyxy_to_napari(annotation.boxes[labels == spec.name]),
                shape_type="rectangle",
                edge_color=spec.color,
                face_color="transparent",
                edge_width=2,
                name=f"boxes: {spec.name}",
            )
        viewer.layers.selection.active = viewer.layers["boxes: cell"]
        viewer.layers["boxes: cell"].mode = "add_rectangle"

    def next_image(_viewer=None) -> None:
        from napari_detlab.core.annotations.annotation import ImageAnnotation
        from napari_detlab.core.boxes import napari_to_xyxy

        boxes, labels = [], []
        for spec in classes:
            layer = viewer.layers[f"boxes: {spec.name}"]
            if layer.nshapes:
                boxes.append(napari_to_xyxy(layer.data))
                labels += [spec.name] * layer.nshapes
        size = viewer.layers["image"].data.shape[:2]
        annotation = ImageAnnotation(np.concatenate(boxes), labels, True, size)
        store.save(store.images[state["index"]], annotation)
        state["index"] += 1
        show(state["index"])

    viewer.bind_key("n", next_image, overwrite=True)
    show(0)
    times = []
    try:
        for _ in range(len(store.images) - 1):
            edit_boxes(viewer.layers["boxes: cell"], rng)
            process_events(app)
            times.append(timed_press(canvas, app))
    finally:
        viewer.close()
    return times


def gl_renderer(app) -> str:
    """The OpenGL renderer string, to tell software (llvmpipe) from a GPU."""
    import napari

    viewer = napari.Viewer(show=True)
    try:
        app.processEvents()
        return viewer_gl_renderer(viewer)
    finally:
        viewer.close()


def measure_size(
    folder: Path, count: int, size: tuple[int, int], boxes: int, args, app
) -> dict[str, object]:
    """Every way of one image size and box count, each from the same files."""
    write_dataset(folder, count, size, boxes=boxes)
    draws: list[int] = []
    warm = time_widget(folder, True, app, draws)
    widget_warm = percentile_summary(warm)
    figures: dict[str, object] = {"image_size_hw": list(size), "widget_warm": widget_warm}
    figures["canvas_draws_per_n"] = round(len(draws) / max(1, len(warm)), 2)
    if args.widget_only:
        return figures
    write_dataset(folder, count, size, boxes=boxes)  # each way starts from the same files
    widget_cold = percentile_summary(time_widget(folder, False, app, []))
    write_dataset(folder, count, size, boxes=boxes)
    base = percentile_summary(time_baseline(folder, app))
    return figures | {
        "widget_cold": widget_cold,
        "baseline": base,
        "ratio_baseline_over_widget_warm": ratio(base, widget_warm),
        "ratio_baseline_over_widget_cold": ratio(base, widget_cold),
        "cpu_ratio_baseline_over_widget_warm": ratio(base, widget_warm, "cpu_median_ms"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 images per size (CI)")
    parser.add_argument("--images", type=int, default=None, help="images per size (default 20)")
    parser.add_argument(
        "--boxes", type=int, nargs="+", default=[BOXES_PER_IMAGE], help="boxes per image (50)"
    )
    parser.add_argument(
        "--widget-only", action="store_true", help="only the warm widget (no cold, no baseline)"
    )
    args = parser.parse_args(argv)
    count = args.images or (4 if args.quick else 20)
    box_counts = sorted(set(args.boxes))

    with virtual_display():
        from napari.qt import get_qapp

        app = get_qapp()
        results: dict[str, object] = {"images_per_size": count, "boxes_per_image": box_counts}
        results["gl_renderer"] = gl_renderer(app)
        with tempfile.TemporaryDirectory() as tmp:
            for label, size in SIZES.items():
                for boxes in box_counts:
                    key = label if len(box_counts) == 1 else f"{label}_{boxes}_boxes"
                    folder = Path(tmp) / key
                    results[key] = measure_size(folder, count, size, boxes, args, app)
                if len(box_counts) > 1:
                    fewest = results[f"{label}_{box_counts[0]}_boxes"]["widget_warm"]
                    results[f"{label}_ratio_over_{box_counts[0]}_boxes"] = {
                        str(boxes): ratio(results[f"{label}_{boxes}_boxes"]["widget_warm"], fewest)
                        for boxes in box_counts[1:]
                    }
                results[f"{label}_edit_stalls"] = {
                    f"{boxes}_boxes": time_edit_stalls(
                        Path(tmp) / f"{label}_edits_{boxes}", size, boxes, args.quick, app
                    )
                    for boxes in sorted({box_counts[0], box_counts[-1]})
                }
                results[f"{label}_edit_stalls_napari_alone"] = {
                    f"{boxes}_boxes": time_napari_edit_stalls(
                        Path(tmp) / f"{label}_napari_edits_{boxes}", size, boxes, args.quick, app
                    )
                    for boxes in sorted({box_counts[0], box_counts[-1]})
                }
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
