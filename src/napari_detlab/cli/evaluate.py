"""``detlab evaluate``: COCO metrics of a prediction folder against an annotated dataset.

Example::

    detlab evaluate my_images/predictions my_images --json

Only images with both a prediction file and an annotation (boxes, or reviewed as negative)
are scored. ``--json`` prints ``map``, ``map_50``, ``map_75``, ..., ``per_class`` and
``per_class_50`` (undefined values, e.g. ``map_large`` without large objects, are ``null``)
plus ``images`` (the number of images scored); otherwise a readable table. A predicted class
the dataset does not have prints one line and exits with code 2.
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


def run(args: argparse.Namespace) -> int:
    from napari_detlab.core.evaluation.metrics import (
        coco_metrics,
        format_metrics_table,
        load_folder_pairs,
        metrics_to_json,
    )
    from napari_detlab.core.wording import counted

    predictions, ground_truth, classes = load_folder_pairs(args.pred_dir, args.dataset)
    metrics = coco_metrics(predictions, ground_truth, classes)
    if args.json:
        print(metrics_to_json(metrics, images=len(ground_truth)))
    else:
        print(f"{counted(len(ground_truth), 'image')} scored, classes: {', '.join(classes)}")
        print(format_metrics_table(metrics))
    return 0
