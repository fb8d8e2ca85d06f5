"""``detlab evaluate``: COCO metrics of a prediction folder against an annotated dataset.

Example::

    detlab evaluate my_images/predictions my_images --json
    detlab evaluate my_images/predictions my_images --plots pr_curves/

Only images with both a prediction file and an annotation (boxes, or reviewed as negative)
are scored. The figures are printed for all of them together, then for each split apart:
the validation images, the images the model trained on, images annotated after it
("new") and images whose split is not known ("unknown"). The split comes from the
checkpoint each prediction file names (checkpoints record it; for older ones, the
``split.json`` beside them); ``--split`` names a checkpoint, run folder or ``split.json`` to
use instead. Per split: the counts at the Review's thresholds (``--score-threshold``,
``--nms-iou``, ``--match-iou``), the AP and AP50 of each class, and a confusion matrix whose
rows are the true class (and "false positive") and whose columns are the predicted class
(and "missed"): a box of the wrong class on an object is counted there, not as a false
positive plus a miss. ``--plots DIR`` writes one precision-recall plot per split as SVG
(matplotlib is not a dependency; any browser opens SVG).

``--json`` prints ``map``, ``map_50``, ``map_75``, ..., ``per_class`` and ``per_class_50``
(undefined values, e.g. ``map_large`` without large objects, are ``null``) plus ``images``
(the number of images scored), and ``splits`` (per split: ``images``, ``counts``,
``metrics``, ``per_class``, ``confusion``, ``pr_curves``), ``split_sources`` and
``thresholds``. A predicted class the dataset does not have prints one line and exits
with code 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_detlab.cli.verb import add_verb

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_verb(subparsers, "evaluate", run, __doc__)
    parser.add_argument("pred_dir", type=Path, metavar="PRED_DIR")
    parser.add_argument("dataset", type=Path, metavar="DATASET")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.add_argument(
        "--iou-type", choices=("bbox",), default="bbox", help="COCO IoU type (boxes only)"
    )
    parser.add_argument(
        "--split", type=Path, default=None, metavar="PATH",
        help="the split to report by: a checkpoint, a training run folder or its split.json "
        "(default: the checkpoint each prediction file names)",
    )  # fmt: skip
    for flag, text in (
        ("--score-threshold", "counts and confusion: the lowest score kept"),
        ("--nms-iou", "counts, confusion and PR curves: the NMS IoU per class"),
        ("--match-iou", "the IoU at which a prediction finds an object"),
    ):
        parser.add_argument(flag, type=float, default=None, metavar="X",
                            help=f"{text} (default: the Review dock's default, 0.5)")  # fmt: skip
    parser.add_argument(
        "--plots", type=Path, default=None, metavar="DIR",
        help="write each split's precision-recall curves to DIR/pr_<split>.svg",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from napari_detlab.cli.main import CliError
    from napari_detlab.core.atomic import atomic_write_bytes, make_folder
    from napari_detlab.core.evaluation.metrics import (
        coco_metrics,
        format_metrics_table,
        load_folder_pairs,
        metrics_to_json,
    )
    from napari_detlab.core.evaluation.pr_plot import pr_curve_svg
    from napari_detlab.core.evaluation.review import ReviewThresholds
    from napari_detlab.core.evaluation.split_figures import evaluation_figures
    from napari_detlab.core.evaluation.split_groups import group_stems, read_run_split
    from napari_detlab.core.wording import counted

    given = {
        name: getattr(args, name)
        for name in ("score_threshold", "nms_iou", "match_iou")
        if getattr(args, name) is not None
    }
    for name, value in given.items():
        if not 0.0 <= value <= 1.0:
            raise CliError(f"--{name.replace('_', '-')} must be between 0 and 1, got {value}")
    thresholds = ReviewThresholds(**given)
    override = None if args.split is None else read_run_split(args.split)
    predictions, ground_truth, classes = load_folder_pairs(args.pred_dir, args.dataset)
    metrics = coco_metrics(predictions, ground_truth, classes)
    checkpoints = {stem: prediction.checkpoint for stem, prediction in predictions.items()}
    groups, sources = group_stems(checkpoints, override=override)
    figures = evaluation_figures(
        predictions, ground_truth, classes, thresholds, groups, sources=sources
    )
    if args.plots is not None:
        make_folder(args.plots)
        for group, split in figures.splits.items():
            svg = pr_curve_svg(
                list(split.curves.values()),
                f"{split.title}: precision-recall at match IoU {thresholds.match_iou:g}",
                thresholds.score_threshold,
            )
            atomic_write_bytes(args.plots / f"pr_{group}.svg", svg.encode("utf-8"))
    if args.json:
        print(metrics_to_json(metrics, images=len(ground_truth), **figures.as_dict()))
    else:
        print(f"{counted(len(ground_truth), 'image')} scored, classes: {', '.join(classes)}")
        if "training" in figures.splits:
            trained = counted(figures.splits["training"].images, "image")
            print(f"(all together, {trained} the model trained on among them: see by split)")
        print(format_metrics_table(metrics))
        print()
        print(figures.text())
        if args.plots is not None:
            print(f"\nprecision-recall plots (SVG) in {args.plots}")
    return 0
