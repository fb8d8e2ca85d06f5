"""``detlab predict``: run a checkpoint over images and write one prediction file per image.

Example::

    detlab predict runs/exp1/best.pt my_images/ --output my_images/predictions

Progress goes to stderr, one line per image (``--quiet``: none); skipped (unreadable) images
are listed at the end, one line each, and so are images whose confident objects filled the
model's cap on detections per image and were predicted again with room for more. An image
that resizing would shrink more than 4 times on a side is predicted in overlapping tiles at
full resolution and its boxes merged (``--tiling auto|on|off``, ``--tile-size``,
``--tile-overlap``). Bad input (missing folder, no images, a file that is not a safe
napari-detlab checkpoint, a score floor outside [0, 1]) and a prediction file that cannot be
written (full disk, read-only folder) print one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from napari_detlab.cli.verb import add_verb

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_verb(subparsers, "predict", run, __doc__)
    parser.add_argument("checkpoint", type=Path, help="checkpoint .pt written by detlab train")
    parser.add_argument(
        "images", type=Path, nargs="+", metavar="IMAGES", help="a folder of images, or image files"
    )
    parser.add_argument("--output", "-o", type=Path, required=True, metavar="PRED_DIR")
    parser.add_argument("--batch-size", type=int, default=2, metavar="N")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument(
        "--score-floor",
        type=float,
        default=None,
        metavar="S",
        help="lowest score kept (default: the checkpoint's box_score_thresh, usually 0.01)",
    )
    parser.add_argument(
        "--tiling", choices=("auto", "on", "off"), default="auto",
        help="predict in overlapping tiles at full resolution (auto: images that resizing "
        "would shrink over 4x on a side)",
    )  # fmt: skip
    parser.add_argument("--tile-size", type=int, metavar="PX", help="default: min_size")
    parser.add_argument("--tile-overlap", type=int, metavar="PX", help="default: a quarter tile")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress lines")


def run(args: argparse.Namespace) -> int:
    from napari_detlab.cli.main import CliError
    from napari_detlab.core.model.crowded import CrowdedImage
    from napari_detlab.core.model.predict import SkippedImage, collect_images, predict_folder
    from napari_detlab.core.model.tiling import Tiling

    if args.batch_size < 1:
        raise CliError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.score_floor is not None and not 0.0 <= args.score_floor <= 1.0:
        raise CliError(f"--score-floor must be between 0 and 1, got {args.score_floor}")
    if not args.checkpoint.is_file():
        raise CliError(f"{args.checkpoint}: no such checkpoint file")
    tiling = Tiling(args.tiling, args.tile_size, args.tile_overlap).validate()
    images = collect_images(args.images)  # fail on a missing folder before loading the model
    start = time.perf_counter()

    def progress(done: int, total: int, path: Path) -> None:
        if args.quiet:
            return
        rate = done / max(time.perf_counter() - start, 1e-9)
        print(f"predict: {done}/{total} {path.name} ({rate:.2f} images/s)", file=sys.stderr)

    skipped: list[SkippedImage] = []
    crowded: list[CrowdedImage] = []
    # A prediction file that cannot be written (full disk, read-only folder) raises a
    # WriteError naming it: one line and exit code 2, the files written before it kept.
    written = predict_folder(
        args.checkpoint, images, args.output, batch_size=args.batch_size, device=args.device,
        on_progress=progress, skipped=skipped, score_floor=args.score_floor, tiling=tiling,
        crowded=crowded,
    )  # fmt: skip
    for item in skipped:
        print(f"detlab predict: warning: skipped {item.reason.splitlines()[0]}", file=sys.stderr)
    for image in crowded:
        print(f"detlab predict: note: {image}", file=sys.stderr)
    if not written:
        raise CliError(f"none of the {len(images)} image(s) could be read")
    elapsed = time.perf_counter() - start
    print(f"wrote {len(written)} prediction file(s) to {args.output} in {elapsed:.1f} s")
    return 0
