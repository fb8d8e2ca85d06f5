"""Whether pre-labels cost ``n`` anything: the Annotator with a model predicting ahead, against
the same Annotator without one, in one run.

A temporary folder of unannotated 1 MP JPEGs is opened in a real viewer (under Xvfb when
there is no display), the Annotator opened from napari's plugin manifest. ``with_model``
chooses a real checkpoint (the ``fast`` preset, untrained weights: the cost of a forward pass
does not depend on what the weights learnt), so the model runs on the CPU in napari's
workers on the image on screen and the next unannotated ones; ``without`` chooses none.
For every image the person "looks" for :data:`THINK_TIME_S` (``--think``; the event loop
runs, the prediction with it), then a real ``n`` press is timed until Qt is idle.

``proposals_ready_on_arrival`` is the share of presses after which the new image's
proposals were on screen at once: prediction kept ahead of the person. The goal is a
``with_model`` / ``without`` median ratio of at most 1.2, with proposals ready on arrival.

Usage::

    python benchmarks/bench_prelabels.py            # 12 images
    python benchmarks/bench_prelabels.py --quick    # 4 images, for CI

Prints one JSON object: the median and p95 milliseconds (wall-clock and the process's CPU
time) of each side, their ratio, and the share of arrivals with proposals ready.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from bench_navigation import percentile_summary, process_events, ratio, timed_press, write_dataset
from bench_review import virtual_display

THINK_TIME_S = 5.0  # a person checking and correcting an image's proposals
SIZE = (1000, 1000)


def unannotated_folder(folder: Path, count: int) -> Path:
    """``count`` photo-like JPEGs with the class list and no annotation file."""
    write_dataset(folder, count, SIZE, boxes=1)
    for path in (folder / "annotations").glob("*.pt"):
        path.unlink()
    return folder


def tiny_checkpoint(path: Path) -> Path:
    """A ``fast``-preset detector for the dataset's two classes, saved as a checkpoint."""
    import torch

    from napari_detlab.core.model.builder import build_model
    from napari_detlab.core.model.checkpoint import save_checkpoint
    from napari_detlab.core.model.config import preset

    torch.manual_seed(0)
    config = preset("fast", ["cell", "crystal"]).replace(pretrained="none")
    model = build_model(config, load_weights=False)
    return save_checkpoint(path, model=model, config=config, epoch=1, metrics={})


def time_presses(
    folder: Path, checkpoint: Path | None, think: float, app
) -> tuple[list, list[bool]]:
    """Think, then ``n``, through the folder; the times and whether proposals were ready."""
    import napari

    from napari_detlab._layers import PROPOSALS_LAYER

    viewer = napari.Viewer(show=True)
    widget = viewer.window.add_plugin_dock_widget("napari-detlab", "Annotator")[1]
    widget.open_folder(folder)
    if checkpoint is not None:
        widget.session.set_checkpoint(checkpoint)
    from napari_detlab._qt.napari_internals import (
        viewer_canvas,  # napari first: see napari_detlab.keep_triton_out_of_napari
    )

    canvas = viewer_canvas(viewer)
    times, ready = [], []
    try:
        for _ in range(len(widget.store.images) - 1):
            deadline = time.perf_counter() + think
            while time.perf_counter() < deadline:
                app.processEvents()
                time.sleep(0.005)
            times.append(timed_press(canvas, app))
            shown = widget.prelabels.shown_for == widget.current_path
            ready.append(shown and PROPOSALS_LAYER in viewer.layers)
        while widget.prelabels._worker is not None:  # let the last prediction end
            app.processEvents()
            time.sleep(0.01)
        process_events(app)
    finally:
        viewer.close()
    return times, ready


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 images (CI)")
    parser.add_argument("--images", type=int, default=None, help="images (default 12)")
    parser.add_argument(
        "--think", type=float, default=None, help=f"seconds on each image ({THINK_TIME_S})"
    )
    args = parser.parse_args(argv)
    count = args.images or (4 if args.quick else 12)
    think = args.think or (2.0 if args.quick else THINK_TIME_S)
    with virtual_display(), tempfile.TemporaryDirectory() as tmp:
        from napari.qt import get_qapp

        app = get_qapp()
        checkpoint = tiny_checkpoint(Path(tmp) / "best.pt")
        figures: dict[str, object] = {"images": count, "image_size_hw": list(SIZE)}
        figures["think_time_s"] = think
        # each side from the same files; the side without a model first, then with it
        without, _ = time_presses(unannotated_folder(Path(tmp) / "a", count), None, think, app)
        folder = unannotated_folder(Path(tmp) / "b", count)
        with_model, ready = time_presses(folder, checkpoint, think, app)
        figures["without"] = percentile_summary(without)
        figures["with_model"] = percentile_summary(with_model)
        figures["ratio_with_over_without"] = ratio(figures["with_model"], figures["without"])
        figures["proposals_ready_on_arrival"] = round(sum(ready) / max(1, len(ready)), 2)
        print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
