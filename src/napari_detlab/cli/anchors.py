"""``detlab anchors``: how well the anchors catch the dataset's boxes, and a fix.

Prints the RPN-rule coverage (recall at 0.7, shares in [0.3, 0.7) and below 0.3, per class,
per size, per level), the boxes no anchor catches, the shape-only figures (YOLOv5 BPR,
mean best IoU) and, with ``--suggest``, fitted anchors with their before/after coverage.

Example::

    detlab anchors my_images/ --suggest --save-suggestion anchors.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from napari_detlab.cli.main import CliError

if TYPE_CHECKING:
    from napari_detlab.core.anchors.report import AnchorReport

from napari_detlab.cli.verb import add_verb

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_verb(subparsers, "anchors", run, __doc__)
    parser.add_argument("dataset", type=Path, help="dataset folder (images + annotations/)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", type=Path, help="model config JSON (as written by training)")
    source.add_argument(
        "--preset", choices=("fast", "accurate"), help="a preset config (default: the device's)"
    )
    parser.add_argument("--suggest", action="store_true", help="fit anchors to the boxes")
    parser.add_argument(
        "--save-suggestion", type=Path, metavar="CONFIG.json",
        help="with --suggest: write the suggested config here",
    )  # fmt: skip
    parser.add_argument(
        "--limit", type=int, default=50, help="uncaught boxes to list (default 50; 0 for all)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def run(args: argparse.Namespace) -> int:
    from napari_detlab.core.anchors.dataset_boxes import DatasetBoxes
    from napari_detlab.core.anchors.report import anchor_report
    from napari_detlab.core.annotations.store import AnnotationStore
    from napari_detlab.core.model.config import resolve_model_config

    if args.limit < 0:
        raise CliError("--limit must be 0 (all) or more")
    if args.save_suggestion is not None and not args.suggest:
        raise CliError("--save-suggestion needs --suggest")
    store = AnnotationStore(args.dataset)
    items = DatasetBoxes.load(store).items
    if not items:
        raise CliError(f"{args.dataset}: no annotated boxes; annotate some images first")
    classes = store.class_names() or sorted({label for item in items for label in item.labels})
    config = resolve_model_config(classes, config=args.config, preset_name=args.preset)
    source = str(args.config) if args.config is not None else f"preset:{args.preset or 'default'}"
    report = anchor_report(
        config, items, suggest=args.suggest, uncaught_limit=None if args.limit == 0 else args.limit
    )
    if args.save_suggestion is not None and report.suggestion is not None:
        report.suggestion.config.to_json(args.save_suggestion)
    if args.json:
        header = {"dataset": str(args.dataset), "config": source}
        print(json.dumps({**header, **report.to_dict()}, indent=2))
    else:
        _print_text(report, source)
    return 0


def _print_text(report: AnchorReport, source: str) -> None:
    from napari_detlab.core.anchors.figures import format_percent as pct
    from napari_detlab.core.wording import counted

    def boxes(count: int, kind: str = "box") -> str:
        return counted(count, kind, f"{kind}es")

    out, figures = sys.stdout, report.figures
    print(f"{boxes(figures.boxes)} in {counted(report.images, 'image')} ({source})", file=out)
    print(
        f"recall@{report.fg_thresh}: {pct(figures.recall)}   "
        f"[{report.bg_thresh}, {report.fg_thresh}): {pct(figures.share_between)}   "
        f"< {report.bg_thresh}: {pct(figures.share_below)}   "
        f"no positive anchor: {figures.no_positive}",
        file=out,
    )
    shape = report.shape
    print(
        f"shape-only: BPR {pct(shape.bpr)}, anchors/target "
        f"{shape.anchors_per_target:.2f}, mean best IoU {shape.mean_best_iou:.3f}",
        file=out,
    )
    for name, group in report.per_class.items():
        print(f"  class {name}: {boxes(group.boxes)}, recall {pct(group.recall)}", file=out)
    for name, group in report.per_size.items():
        print(f"  {name}: {boxes(group.boxes)}, recall {pct(group.recall)}", file=out)
    if report.uncaught:
        print(f"{boxes(report.uncaught_total, 'uncaught box')}; worst:", file=out)
        for row in report.uncaught[:10]:
            print(
                f"  {row.image} box {row.box_index} ({row.label}): best IoU "
                f"{row.best_iou:.3f}, {row.reason}",
                file=out,
            )
    suggestion = report.suggestion
    if suggestion:
        print(f"suggested sizes {suggestion.config.anchor_sizes}", file=out)
        print(f"suggested ratios {suggestion.config.aspect_ratios[0]} (every level)", file=out)
        # "0.7" whatever the thresholds: this line has always read so (the one above does not).
        print(
            f"recall@0.7 {pct(suggestion.before.recall)} -> {pct(suggestion.after.recall)}",
            file=out,
        )
        for warning in suggestion.warnings:
            print(f"warning: {warning}", file=out)
