"""``detlab train``: train a detector on an Annotator folder from a terminal or a cluster.

Examples::

    detlab train my_images/ --output runs/exp1 --epochs 20
    detlab train my_images/ --output runs/exp1 --resume runs/exp1/last.pt --epochs 40
    torchrun --nproc_per_node 4 -m napari_detlab.cli.main train my_images/ --output runs/exp2

The model config comes from ``--config`` (a ModelConfig JSON; empty ``classes`` take the
dataset's), else from the ``--resume`` checkpoint, else from ``--preset`` (default: the
device's); training options from ``--options`` (a TrainOptions JSON) and the flags, flags
winning. When the run starts, one line on stderr says what its weights start from (a
pretrained file, from scratch, or the checkpoint it resumes). Progress is one line every
``--print-every`` iterations and one per epoch, or every event as a JSON line with
``--json-events``. Validation images are chosen by a hash of their names
(``--val-fraction``, ``--stratify-split``), so they stay the same as the folder grows;
``--split-file`` fixes them. Images that resizing whole would shrink more than 4 times on a
side are trained on crops of the model's input size around their boxes (``--crops
auto|on|off``, ``--crop-size``), as ``detlab predict`` tiles them. The first Ctrl+C (or
SIGTERM) stops cleanly after the current iteration and writes ``last.pt`` (exit 130); a
second one aborts.

Exit codes: 0 trained, 1 the run failed (a non-finite loss, out of memory), 2 one line on
stderr: inputs refused before anything is written (numbers out of range, annotated images
that cannot be decoded, all named) or a file of the run that cannot be written (a full disk,
a read-only folder), named, with the files written before it intact.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from napari_detlab.core.model.config import ModelConfig
    from napari_detlab.core.training.options import TrainOptions

from napari_detlab.cli.verb import add_verb

__all__ = ["register", "run"]

# Flags that map one-to-one onto TrainOptions fields (flag dest == field name).
_OPTION_FLAGS = (
    "epochs", "batch_size", "lr", "optimizer", "device", "resume", "max_iterations",
    "patience", "val_fraction", "stratify_split", "split_file", "seed", "num_workers",
    "eval_every", "overwrite", "crops", "crop_size",
)  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_verb(subparsers, "train", run, __doc__)
    parser.add_argument("dataset", type=Path, metavar="DATASET", help="the annotated image folder")
    parser.add_argument("--output", "-o", type=Path, required=True, metavar="RUN_DIR")
    model = parser.add_argument_group("model")
    model.add_argument("--config", type=Path, metavar="CONFIG.json", help="a ModelConfig JSON")
    model.add_argument(
        "--preset", choices=("fast", "accurate"), help="without --config (default: by device)"
    )
    train = parser.add_argument_group("training (default: --options, else TrainOptions)")
    train.add_argument("--options", type=Path, metavar="OPTIONS.json", help="a TrainOptions JSON")
    train.add_argument("--epochs", type=int, metavar="N")
    train.add_argument("--batch-size", type=int, metavar="N", help="images per step and GPU")
    train.add_argument("--lr", type=float, metavar="X")
    train.add_argument("--optimizer", choices=("sgd", "adamw"))
    train.add_argument("--device", metavar="DEV", help="auto, cpu, cuda or cuda:N")
    train.add_argument("--resume", metavar="PATH", help="continue from a last.pt")
    train.add_argument("--max-iterations", type=int, metavar="N", help="stop after N steps")
    train.add_argument("--patience", type=int, metavar="N", help="early stopping patience")
    train.add_argument(
        "--val-fraction", type=float, metavar="F", help="share of images that validate"
    )
    train.add_argument(
        "--stratify-split", action="store_true", default=None,
        help="every class with two images or more validates (and every class trains)",
    )  # fmt: skip
    train.add_argument("--split-file", metavar="PATH", help="fixed validation images")
    train.add_argument("--seed", type=int, metavar="N")
    train.add_argument("--num-workers", type=int, metavar="N", help="DataLoader processes")
    train.add_argument("--eval-every", type=int, metavar="N", help="epochs between evaluations")
    train.add_argument(
        "--crops", choices=("auto", "on", "off"),
        help="train on crops around the boxes (auto: images resizing would shrink over 4x)",
    )  # fmt: skip
    train.add_argument("--crop-size", type=int, metavar="PX", help="crop side (default min_size)")
    train.add_argument(
        "--overwrite", action="store_true", default=None, help="reuse a RUN_DIR holding a run"
    )
    output = parser.add_argument_group("output")
    output.add_argument("--json-events", action="store_true", help="print events as JSON lines")
    output.add_argument("--print-every", type=int, default=10, metavar="N", help="default 10")


def _model_config(args: argparse.Namespace) -> ModelConfig:
    """``--config``, else the ``--resume`` checkpoint's config, else a preset; classes filled."""
    from napari_detlab.core.annotations.store import AnnotationStore
    from napari_detlab.core.model.config import resolve_model_config

    # The store also refuses a missing folder here, in one line.
    classes = AnnotationStore(args.dataset).class_names()
    return resolve_model_config(
        classes, config=args.config, resume=args.resume, preset_name=args.preset
    )


def _train_options(args: argparse.Namespace) -> TrainOptions:
    from napari_detlab.core.training.options import TrainOptions

    options = TrainOptions.from_json(args.options) if args.options else TrainOptions()
    changes = {
        name: getattr(args, name) for name in _OPTION_FLAGS if getattr(args, name) is not None
    }
    return TrainOptions.from_dict({**options.to_dict(), **changes})


def _start_line(config: ModelConfig, options: TrainOptions) -> str:
    """What the run's weights start from: a checkpoint it resumes, or the config's start."""
    from napari_detlab.core.model.weights_catalog import describe_start

    if options.resume:
        return f"the checkpoint it resumes, {options.resume}"
    return describe_start(config)


@contextmanager
def _cancel_on_signals(cancel: threading.Event):
    """First SIGINT/SIGTERM sets ``cancel`` (clean stop); a second SIGINT aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: Any) -> None:
        if cancel.is_set() and signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        cancel.set()
        print("detlab train: stopping after this iteration (Ctrl+C again aborts)", file=sys.stderr)

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _short(name: str) -> str:
    return name.removeprefix("loss_")


class _Printer:
    """Turns events into the terminal lines a person reads (or JSON lines for programs).

    When the run starts, ``start`` (what the model starts from) goes to stderr in both
    modes: stdout may be a program's, and a refused run prints only its one error line.
    """

    def __init__(self, json_events: bool, every: int, start: str = "") -> None:
        self.json_events, self.every, self.start = json_events, max(1, every), start
        self.epochs = 0

    def __call__(self, event: Any) -> None:
        from napari_detlab.core.training.events import event_to_json

        if self.start and type(event).__name__ == "RunStarted":
            print(f"detlab train: starting point: {self.start}", file=sys.stderr, flush=True)
        if self.json_events:
            print(event_to_json(event), flush=True)
            return
        kind = type(event).__name__
        if kind == "RunStarted":
            self.epochs = event.epochs
            resumed = f", resuming after epoch {event.start_epoch}" if event.start_epoch else ""
            print(
                f"training on {event.device}: {event.train_images} train / {event.val_images} val "
                f"images{event.notes()}, {event.iterations_per_epoch} iterations per "
                f"epoch, {event.epochs} epochs{resumed} -> {event.run_dir}",
                flush=True,
            )
        elif kind == "IterationEnded":
            if event.iteration % self.every and event.iteration != event.total_iterations:
                return
            parts = ", ".join(f"{_short(k)} {v:.3f}" for k, v in event.losses.items())
            eta = int(event.eta_s)
            print(
                f"epoch {event.epoch}/{self.epochs} iter {event.iteration}/"
                f"{event.total_iterations} loss {event.loss:.3f} ({parts}) lr {event.lr:.2e} "
                f"{event.images_per_s:.1f} img/s eta {eta // 60}m{eta % 60:02d}s",
                flush=True,
            )
        elif kind == "EpochEnded":
            text = f"epoch {event.epoch}/{self.epochs} done: train loss {event.train_loss:.3f}"
            if event.metrics:
                text += f", mAP {event.metrics['map']:.4f}, mAP@.5 {event.metrics['map_50']:.4f}"
                if event.metrics.get("evaluated_on") == "train":
                    text += " (on the training images: no validation split)"
            if event.is_best:
                text += " (best)"
            print(text + f"; saved {event.checkpoint}", flush=True)
        elif kind == "RunFinished":
            best = f"; best mAP {event.best_metric:.4f}" if event.best_metric is not None else ""
            where = event.best_checkpoint or event.last_checkpoint or "no checkpoint"
            print(f"{event.status}: {event.message}{best} ({where})", flush=True)


def run(args: argparse.Namespace) -> int:
    from napari_detlab.cli.main import CliError
    from napari_detlab.core.training.engine import train

    if not args.dataset.is_dir():
        raise CliError(f"{args.dataset}: dataset folder not found")
    if args.print_every < 1:
        raise CliError(f"--print-every must be at least 1, got {args.print_every}")
    # Numbers no run can use (--epochs -1, --batch-size 0, --lr inf...) are refused first.
    options = _train_options(args).validate()
    main_rank = int(os.environ.get("RANK", "0")) == 0
    if main_rank:
        # Say which pretrained tensors were loaded (and skipped): "did my weights land?"
        logging.basicConfig(format="detlab train: %(message)s", level=logging.WARNING)
        logging.getLogger("napari_detlab.core.model.weights").setLevel(logging.INFO)
    config = _model_config(args)
    cancel = threading.Event()
    start = _start_line(config, options) if main_rank else ""
    printer = _Printer(args.json_events, args.print_every, start)
    with _cancel_on_signals(cancel):
        finished = train(
            args.dataset, args.output, config, options, on_event=printer, cancel=cancel
        )
    if finished.status == "failed" and main_rank and not args.json_events:
        print(f"detlab train: error: {finished.message}", file=sys.stderr)
    return {"completed": 0, "early_stopped": 0, "cancelled": 130}.get(finished.status, 1)
