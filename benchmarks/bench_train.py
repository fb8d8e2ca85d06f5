"""Training images/s of the engine against a bare torchvision loop, in one run.

Both sides train the same model (same config, same seed), on the same images and batches
(the engine's training split, the same seeded sampler and augmentation, the same DataLoader
settings), with the same SGD settings; on CUDA both use AMP and channels-last memory
unless ``--amp`` / ``--channels-last`` say otherwise. The bare loop is the core of
torchvision's detection reference: ``loss = sum(model(images, targets).values())``,
``backward``, ``step``, ``loss.item()``. The engine adds what a user gets for free (events,
``metrics.jsonl``, gradient clipping, the schedule, NaN and cancel checks). Warmup
iterations are excluded from both and the timed steps lie inside the first epoch (the
dataset is sized for it), so the figure is the steady-state rate; the engine's per-epoch
checkpoint is written by a background thread. Runs alternate so that a busy machine slows
both alike, and the median of the repeats is reported. The goal is ``ratio >= 0.95``.

    .venv/bin/python benchmarks/bench_train.py            # CUDA when present, else CPU
    .venv/bin/python benchmarks/bench_train.py --quick    # tiny, seconds-to-a-minute, for CI
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, RandomSampler

from napari_detlab.core.annotations.sample_data import SAMPLE_CLASSES, write_synthetic_dataset
from napari_detlab.core.model.builder import build_model
from napari_detlab.core.model.config import preset
from napari_detlab.core.model.device import resolve_device
from napari_detlab.core.training.dataset import DetectionDataset, collate, split_train_val
from napari_detlab.core.training.engine import train
from napari_detlab.core.training.events import IterationEnded
from napari_detlab.core.training.options import TrainOptions


def batch_sizes(n_train: int, batch: int, iterations: int) -> list[int]:
    """Images in each step: full batches and the shorter last one of every epoch."""
    per_epoch = [min(batch, n_train - start) for start in range(0, n_train, batch)]
    return [per_epoch[i % len(per_epoch)] for i in range(iterations)]


def engine_rate(
    dataset: Path, config, options: TrainOptions, warmup: int, counts: list[int]
) -> float:
    stamps: dict[int, float] = {}

    def on_event(event) -> None:
        if isinstance(event, IterationEnded):
            stamps[event.iteration] = time.perf_counter()

    with tempfile.TemporaryDirectory() as run_dir:
        finished = train(dataset, run_dir, config, options, on_event=on_event)
    if finished.status != "completed":
        raise RuntimeError(f"engine run {finished.status}: {finished.message}")
    last = options.max_iterations
    return sum(counts[warmup:last]) / (stamps[last] - stamps[warmup])


def bare_rate(
    dataset: Path, config, options: TrainOptions, warmup: int, device: torch.device
) -> float:
    """torchvision's reference loop, nothing else."""
    torch.manual_seed(options.seed)
    train_stems, _ = split_train_val(dataset, options.val_fraction, options.seed)
    model = build_model(config).to(device)
    model.train()
    amp = device.type == "cuda" if options.amp == "auto" else bool(options.amp)
    channels_last = (
        device.type == "cuda" if options.channels_last == "auto" else options.channels_last
    )
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(
        params, lr=options.base_lr, momentum=options.momentum, weight_decay=options.weight_decay
    )
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    data = DetectionDataset(dataset, train_stems, config.classes, augment=options.augment)
    loader = DataLoader(
        data, batch_size=options.batch_size, collate_fn=collate, num_workers=options.num_workers,
        sampler=RandomSampler(data, generator=torch.Generator().manual_seed(options.seed)),
        persistent_workers=options.num_workers > 0, pin_memory=device.type == "cuda",
    )  # fmt: skip
    step, images_done, start = 0, 0, 0.0
    while True:
        for images, targets, _ in loader:
            images = [image.to(device, non_blocking=True) for image in images]
            targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]
            with torch.autocast(device.type, enabled=amp):
                losses = sum(model(images, targets).values())
            optimizer.zero_grad()
            scaler.scale(losses).backward()
            scaler.step(optimizer)
            scaler.update()
            losses.item()
            step += 1
            if step == warmup:
                start = time.perf_counter()
            elif step > warmup:
                images_done += len(images)
            if step == options.max_iterations:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                return images_done / (time.perf_counter() - start)


def _flag(value: str) -> bool | str:
    return {"on": True, "off": False}.get(value, "auto")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny run for CI")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--preset", choices=("fast", "accurate"), help="default: by device")
    parser.add_argument("--images", type=int, help="dataset size")
    parser.add_argument("--size", type=int, help="image side (px)")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--warmup", type=int, help="iterations excluded from timing")
    parser.add_argument("--iterations", type=int, help="timed iterations")
    parser.add_argument("--repeats", type=int, help="alternating runs of each side")
    parser.add_argument("--num-workers", type=int)
    parser.add_argument("--amp", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--channels-last", choices=("auto", "on", "off"), default="auto")
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    if args.quick:
        defaults = dict(size=64, batch_size=2, warmup=1, iterations=3, repeats=1)
    elif cuda:
        defaults = dict(size=512, batch_size=8, warmup=5, iterations=30, repeats=3)
    else:
        defaults = dict(size=256, batch_size=2, warmup=3, iterations=12, repeats=4)
    settings = {
        k: getattr(args, k) if getattr(args, k) is not None else v for k, v in defaults.items()
    }
    # Enough images that the timed steps lie inside the first epoch: the figure is the
    # steady-state rate, not the once-per-epoch checkpoint (which the engine writes in the
    # background anyway).
    steps = settings["warmup"] + settings["iterations"]
    settings["images"] = args.images or math.ceil(steps * settings["batch_size"] / 0.8) + 2
    workers = args.num_workers if args.num_workers is not None else (4 if cuda else 0)
    name = args.preset or ("accurate" if cuda else "fast")
    config = preset(name, list(SAMPLE_CLASSES)).replace(pretrained="none")
    if args.quick:
        config = config.replace(min_size=64, max_size=64, box_batch_size_per_image=32)

    with tempfile.TemporaryDirectory() as folder:
        size = (settings["size"], settings["size"])
        dataset = write_synthetic_dataset(
            Path(folder) / "data", settings["images"], size=size, seed=0
        )
        options = TrainOptions(
            epochs=1000, batch_size=settings["batch_size"], lr=0.005, warmup_iters=0,
            eval_every=0, num_workers=workers, device=str(device),
            max_iterations=settings["warmup"] + settings["iterations"],
            amp=_flag(args.amp), channels_last=_flag(args.channels_last),
        )  # fmt: skip
        n_train = len(split_train_val(dataset, options.val_fraction, options.seed)[0])
        counts = batch_sizes(n_train, options.batch_size, options.max_iterations)
        per_epoch = math.ceil(n_train / options.batch_size)
        engine, bare = [], []
        for repeat in range(settings["repeats"]):
            # Which side goes first alternates: neither always runs in the other's wake.
            sides = [
                lambda: bare.append(
                    bare_rate(dataset, config, options, settings["warmup"], device)
                ),
                lambda: engine.append(
                    engine_rate(dataset, config, options, settings["warmup"], counts)
                ),
            ]
            for run in sides if repeat % 2 == 0 else sides[::-1]:
                run()

    engine_ips, bare_ips = statistics.median(engine), statistics.median(bare)
    report = {
        "benchmark": "train_images_per_s",
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if cuda else ""),
        "cpu_count": os.cpu_count(),
        "machine": platform.platform(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "preset": name,
        "quick": args.quick,
        **settings,
        "num_workers": workers,
        "amp": options.amp,
        "channels_last": options.channels_last,
        "train_images": n_train,
        "epoch_ends_in_timed_window": (options.max_iterations - 1) // per_epoch,
        "engine_images_per_s": round(engine_ips, 3),
        "bare_images_per_s": round(bare_ips, 3),
        "engine_runs": [round(v, 3) for v in engine],
        "bare_runs": [round(v, 3) for v in bare],
        "ratio": round(engine_ips / bare_ips, 3),
        "goal_ratio": 0.95,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
