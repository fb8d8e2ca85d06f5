"""``detlab anchors DATASET``: how well the anchors catch the dataset's boxes, and a fix.

Prints the RPN-rule coverage (recall at 0.7, shares in [0.3, 0.7) and below 0.3, per class,
per size, per level), the boxes no anchor catches, the shape-only figures (YOLOv5 BPR,
mean best IoU) and, with ``--suggest``, fitted anchors with their before/after coverage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from napari_detlab.cli.main import CliError

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "anchors",
        help="anchor coverage of a dataset under the RPN's matching rules, and suggestions",
        description=__doc__,
    )
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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from napari_detlab.core.anchors.coverage import dataset_boxes
    from napari_detlab.core.anchors.suggest import anchor_report
    from napari_detlab.core.annotations.store import AnnotationStore
    from napari_detlab.core.model.config import resolve_model_config

    if args.limit < 0:
        raise CliError("--limit must be 0 (all) or more")
    if args.save_suggestion is not None and not args.suggest:
        raise CliError("--save-suggestion needs --suggest")
    store = AnnotationStore(args.dataset)
    items = dataset_boxes(store)
    if not items:
        raise CliError(f"{args.dataset}: no annotated boxes; annotate some images first")
    classes = store.class_names() or sorted({label for item in items for label in item.labels})
    config = resolve_model_config(classes, config=args.config, preset_name=args.preset)
    source = str(args.config) if args.config is not None else f"preset:{args.preset or 'default'}"
    report = anchor_report(
        config, items, suggest=args.suggest, uncaught_limit=None if args.limit == 0 else args.limit
    )
    report = {"dataset": str(args.dataset), "config": source, **report}
    if args.save_suggestion is not None and "suggestion" in report:
        suggestion = report["suggestion"]
        suggested = config.replace(
            anchor_sizes=suggestion["anchor_sizes"], aspect_ratios=suggestion["aspect_ratios"]
        )
        suggested.to_json(args.save_suggestion)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_text(report)
    return 0


def _pct(value: object) -> str:
    return "n/a" if value is None else f"{100 * float(value):.1f}%"


def _print_text(report: dict) -> None:
    out = sys.stdout
    print(f"{report['boxes']} boxes in {report['images']} images ({report['config']})", file=out)
    print(
        f"recall@{report['fg_thresh']}: {_pct(report['recall_07'])}   "
        f"[{report['bg_thresh']}, {report['fg_thresh']}): {_pct(report['share_03_07'])}   "
        f"< {report['bg_thresh']}: {_pct(report['share_below_03'])}   "
        f"no positive anchor: {report['no_positive']}",
        file=out,
    )
    print(
        f"shape-only: BPR {_pct(report['bpr'])}, anchors/target "
        f"{report['anchors_per_target']:.2f}, mean best IoU {report['mean_best_iou']:.3f}",
        file=out,
    )
    for name, figures in report["per_class"].items():
        print(
            f"  class {name}: {figures['boxes']} boxes, recall {_pct(figures['recall_07'])}",
            file=out,
        )
    for name, figures in report["per_size"].items():
        print(f"  {name}: {figures['boxes']} boxes, recall {_pct(figures['recall_07'])}", file=out)
    if report["uncaught"]:
        print(f"{report['uncaught_total']} uncaught boxes; worst:", file=out)
        for row in report["uncaught"][:10]:
            print(
                f"  {row['image']} box {row['box_index']} ({row['label']}): best IoU "
                f"{row['best_iou']:.3f}, {row['reason']}",
                file=out,
            )
    suggestion = report.get("suggestion")
    if suggestion:
        print(f"suggested sizes {suggestion['anchor_sizes']}", file=out)
        print(f"suggested ratios {suggestion['aspect_ratios'][0]} (every level)", file=out)
        print(
            f"recall@0.7 {_pct(suggestion['before']['recall_07'])} -> "
            f"{_pct(suggestion['after']['recall_07'])}",
            file=out,
        )
        for warning in suggestion["warnings"]:
            print(f"warning: {warning}", file=out)
