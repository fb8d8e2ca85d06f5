"""``detlab accept``: accept the model's predictions above a threshold on many images at once.

Every prediction in ``PRED_DIR`` kept at ``--score`` and ``--nms`` (the Review dock's
thresholds) is added to its image's annotation in ``DATASET``, once (a box the image already
has is not added twice); images where nothing new would be added are not touched. Each image
written is marked "accepted from model, not yet reviewed" until a person reviews it in the
Annotator, and ``detlab stats`` counts such images apart. ``--undo`` puts every file of the
last batch back as it was, except files changed since (named on stderr).

Example::

    detlab accept my_images/predictions my_images/ --score 0.8 --only-unannotated
    detlab accept my_images/ --undo

Exit codes: 0 done (also when nothing was added), 2 a missing folder, no batch to undo, or a
file that could not be written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from napari_detlab.cli.main import CliError
from napari_detlab.cli.verb import add_verb

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_verb(subparsers, "accept", run, __doc__)
    parser.add_argument(
        "folders", type=Path, nargs="+", metavar="PRED_DIR DATASET",
        help="the predictions folder and the dataset folder (only DATASET with --undo)",
    )  # fmt: skip
    parser.add_argument("--score", type=float, default=0.5, help="score threshold (default 0.5)")
    parser.add_argument(
        "--nms", type=float, default=0.5, help="NMS IoU, 1 turns it off (default 0.5)"
    )
    parser.add_argument(
        "--class-agnostic", action="store_true", help="NMS across classes, not within each"
    )
    parser.add_argument(
        "--only-unannotated", action="store_true", help="only images without an annotation file"
    )
    parser.add_argument(
        "--images", nargs="+", default=[], metavar="PATTERN",
        help="only images whose file name matches one of these patterns (img_01*.png)",
    )  # fmt: skip
    parser.add_argument(
        "--dry-run", action="store_true", help="count the boxes and images, write nothing"
    )
    parser.add_argument("--undo", action="store_true", help="undo the last batch of DATASET")


def run(args: argparse.Namespace) -> int:
    from napari_detlab.core.annotations.store import AnnotationStore
    from napari_detlab.core.evaluation import batch_accept
    from napari_detlab.core.evaluation.review import ReviewThresholds

    expected = 1 if args.undo else 2
    if len(args.folders) != expected:
        wanted = "DATASET" if args.undo else "PRED_DIR DATASET"
        raise CliError(f"expected {wanted}, got {len(args.folders)} folder(s)")
    store = AnnotationStore(args.folders[-1])  # a missing folder: "not a folder", exit code 2
    if args.undo:
        undone = batch_accept.undo_accept(store)
        print(undone.summary(), file=sys.stderr if undone.kept else sys.stdout)
        return 0
    pred_dir = args.folders[0]
    if not pred_dir.is_dir():
        raise CliError(f"{pred_dir}: predictions folder not found")
    if not 0.0 <= args.score <= 1.0 or not 0.0 <= args.nms <= 1.0:
        raise CliError("--score and --nms must lie between 0 and 1")
    thresholds = ReviewThresholds(args.score, args.nms, args.class_agnostic)
    images = batch_accept.images_to_accept(
        store, unannotated_only=args.only_unannotated, patterns=args.images
    )
    plan = batch_accept.plan_accept(store, pred_dir, thresholds, images)
    for line in plan.left_out:
        print(f"left out: {line}", file=sys.stderr)
    if args.dry_run or not plan.images:
        print(f"would accept {plan.summary()}" if args.dry_run else "no prediction adds a box")
        return 0
    print(batch_accept.apply_accept(store, plan).summary())
    return 0
