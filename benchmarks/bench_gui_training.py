"""Training from the dock: Qt event-loop latency while it runs, and images/s against the engine.

A synthetic dataset (:func:`napari_detlab.core.sample_data.write_synthetic_dataset`) is
trained twice with the same config and options, for a fixed number of iterations:

- ``engine``: :func:`napari_detlab.core.engine.train` called on the main thread, as the
  ``detlab train`` CLI does;
- ``dock``: the Train / predict dock's Start button in a shown viewer (under Xvfb when there
  is no display), the engine on the dock's background thread. Meanwhile a single-shot
  ``QTimer`` re-armed every 20 ms records how late it fires: that lateness is what a user
  feels as lag while annotating.

Throughput is the images per second between the first iteration after warm-up and the last,
from timestamps taken on the training thread when each iteration ends (the same clock for
both ways). With ``--repeats N`` the two ways alternate N times and the medians are reported.

Usage::

    python benchmarks/bench_gui_training.py            # 24 iterations, 2 repeats
    python benchmarks/bench_gui_training.py --quick    # 6 iterations at 160 px, 1 repeat (CI)

Prints one JSON object; goals: event-loop p95 lateness < 100 ms and dock/engine >= 0.9.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_review import summary_ms, virtual_display

WARMUP_ITERATIONS = 2
TIMER_INTERVAL_MS = 20


class IterationClock:
    """Wraps an ``on_event`` callback to stamp each ``IterationEnded`` where it happens."""

    def __init__(self) -> None:
        self.stamps: list[tuple[int, float]] = []
        self.batch_size = 0

    def wrap(self, on_event: Any) -> Any:
        from napari_detlab.core.events import IterationEnded

        def stamped(event: object) -> None:
            if isinstance(event, IterationEnded):
                self.stamps.append((event.iteration, time.perf_counter()))
            if on_event is not None:
                on_event(event)

        return stamped

    def images_per_s(self) -> float:
        if len(self.stamps) <= WARMUP_ITERATIONS + 1:
            raise RuntimeError(f"too few iterations to time ({len(self.stamps)})")
        (first, t0), (last, t1) = self.stamps[WARMUP_ITERATIONS], self.stamps[-1]
        return (last - first) * self.batch_size / (t1 - t0)


class LatenessProbe:
    """A single-shot QTimer re-armed after each shot, recording how late each one fired."""

    def __init__(self, interval_ms: int = TIMER_INTERVAL_MS) -> None:
        from qtpy.QtCore import QTimer

        self.interval = interval_ms / 1000
        self.lateness: list[float] = []
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._fired)
        self._due = 0.0
        self.running = False

    def start(self) -> None:
        self.running = True
        self._arm()

    def stop(self) -> None:
        self.running = False
        self._timer.stop()

    def _arm(self) -> None:
        self._due = time.perf_counter() + self.interval
        self._timer.start(int(self.interval * 1000))

    def _fired(self) -> None:
        self.lateness.append(max(0.0, time.perf_counter() - self._due))
        if self.running:
            self._arm()


def run_engine(dataset: Path, run_dir: Path, config, options) -> float:
    from napari_detlab.core.engine import train

    clock = IterationClock()
    clock.batch_size = options.batch_size
    result = train(dataset, run_dir, config, options, on_event=clock.wrap(None))
    if result.status != "completed":
        raise RuntimeError(f"engine run {result.status}: {result.message}")
    return clock.images_per_s()


def run_dock(dock, app, timeout_s: float) -> tuple[float, list[float]]:
    """Start training from the dock and keep Qt running until it finishes."""
    import napari_detlab.core.engine as engine

    clock = IterationClock()
    clock.batch_size = dock.batch_spin.value()
    real_train = engine.train

    def stamped_train(*args: Any, on_event: Any = None, **kwargs: Any) -> Any:
        return real_train(*args, on_event=clock.wrap(on_event), **kwargs)

    probe = LatenessProbe()
    engine.train = stamped_train  # the dock looks train up when Start is pressed
    try:
        if not dock.start_training():
            raise RuntimeError("the dock refused to start")
        probe.start()
        deadline = time.monotonic() + timeout_s
        while dock.is_training():
            app.processEvents()
            time.sleep(0.002)  # what an idle event loop does between events
            if time.monotonic() > deadline:
                dock.cancel_training()
                raise RuntimeError("dock training timed out")
        probe.stop()
    finally:
        engine.train = real_train
    result = dock.last_result
    if result is None or result.status != "completed":
        raise RuntimeError(f"dock run ended: {result}")
    return clock.images_per_s(), probe.lateness


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 iterations at 160 px (CI)")
    parser.add_argument("--iterations", type=int, default=None, help="default 24")
    parser.add_argument("--repeats", type=int, default=None, help="default 2 (quick: 1)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    args = parser.parse_args(argv)
    iterations = args.iterations or (6 if args.quick else 24)
    repeats = args.repeats or (1 if args.quick else 2)
    size = (160, 160) if args.quick else (256, 256)

    with virtual_display():
        import napari
        import torch
        from napari.qt import get_qapp

        from napari_detlab._qt.train_dock import TrainDockWidget
        from napari_detlab.core.sample_data import write_synthetic_dataset
        from napari_detlab.core.store import AnnotationStore

        app = get_qapp()
        with tempfile.TemporaryDirectory() as tmp:
            dataset = write_synthetic_dataset(Path(tmp) / "data", 12, size=size, seed=0)
            viewer = napari.Viewer(show=True)
            try:
                dock = TrainDockWidget(viewer)
                viewer.window.add_dock_widget(dock, name="Train / predict")
                dock.dataset_edit.setText(str(dataset))
                dock.config_combo.setCurrentText("fast")
                dock.config_overrides = {"min_size": size[0], "max_size": size[1]}
                dock.batch_spin.setValue(2)
                dock.epochs_spin.setValue(1000)
                dock.device_combo.setCurrentText(args.device)
                dock.options_overrides = {
                    "max_iterations": iterations,
                    "warmup_iters": 1,
                    "eval_every": 0,  # throughput only: no validation pass
                }
                classes = [c.name for c in AnnotationStore(dataset).load_classes()]
                config, options = dock.model_config(classes), dock.train_options()
                engine_rates, dock_rates, lateness = [], [], []
                for repeat in range(repeats):
                    engine_rates.append(
                        run_engine(dataset, Path(tmp) / f"engine{repeat}", config, options)
                    )
                    rate, late = run_dock(dock, app, timeout_s=1800)
                    dock_rates.append(rate)
                    lateness.extend(late)
                threads = torch.get_num_threads()
                device = dock.device_label.text()
            finally:
                viewer.close()
    engine_rate, dock_rate = float(np.median(engine_rates)), float(np.median(dock_rates))
    late = summary_ms(lateness)
    results = {
        "device": device,
        "torch_threads": threads,
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "image_size": list(size),
        "batch_size": 2,
        "iterations": iterations,
        "repeats": repeats,
        "engine_images_per_s": [round(r, 2) for r in engine_rates],
        "dock_images_per_s": [round(r, 2) for r in dock_rates],
        "dock_over_engine": round(dock_rate / engine_rate, 3),
        "event_loop_lateness": {**late, "samples": len(lateness), "timer_ms": TIMER_INTERVAL_MS},
        "goal": {"p95_ms": 100, "min_ratio": 0.9},
        "meets_goal": bool(late["p95_ms"] < 100 and dock_rate / engine_rate >= 0.9),
    }
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
