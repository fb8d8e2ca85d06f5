"""``detlab stats``: where the work on a dataset stands.

Prints the images annotated, accepted from the model and not yet reviewed (when any),
reviewed negative and untouched out of the total (and the
annotation files that cannot be read, each named), the boxes of each class and their share,
the box sizes (width, height and ``sqrt(area)`` in pixels of the image as shown, COCO's small
< 32², medium < 96² and large counts, and a histogram of ``sqrt(area)``) and the images with
the most boxes. The Dataset statistics dock shows the same figures, live.

Example::

    detlab stats my_images/ --json

Exit codes: 0 the figures were printed, 2 the folder is missing or holds no images.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from napari_detlab.cli.main import CliError
from napari_detlab.cli.verb import add_verb

if TYPE_CHECKING:
    from napari_detlab.core.annotations.statistics import DatasetStatistics

__all__ = ["register", "run"]

BAR_WIDTH = 30  # characters of the longest histogram bar


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_verb(subparsers, "stats", run, __doc__)
    parser.add_argument("dataset", type=Path, help="dataset folder (images + annotations/)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--top", type=int, default=10, help="images to list by their box count (default 10)"
    )


def run(args: argparse.Namespace) -> int:
    from napari_detlab.core.annotations.statistics import dataset_statistics
    from napari_detlab.core.annotations.store import AnnotationStore

    store = AnnotationStore(args.dataset)  # a missing folder: "not a folder", exit code 2
    if not store.images:
        raise CliError(f"{args.dataset}: no images (JPEG, PNG, TIFF, BMP, WebP) in this folder")
    if args.top < 0:
        raise CliError("--top must be 0 or more")
    stats = dataset_statistics(store, top=args.top)
    if args.json:
        print(json.dumps(stats.to_dict(), indent=2))
    else:
        _print_text(stats)
    return 0


def _print_text(stats: DatasetStatistics) -> None:
    from napari_detlab.core.anchors.figures import format_percent

    out = sys.stdout
    print(f"{stats.dataset}: {stats.summary()}", file=out)
    for entry in stats.unreadable:
        print(f"  unreadable: {entry.reason}", file=out)
    rows = [(c.name, str(c.boxes), format_percent(c.share)) for c in stats.classes]
    _table(("class", "boxes", "share"), rows)
    if stats.boxes:
        sizes = ", ".join(f"{name} {count}" for name, count in stats.size_bins.items())
        print(f"\nbox sizes (pixels; COCO area bins: {sizes})", file=out)
        _table(("sqrt(area)", "boxes", ""), _histogram_rows(stats), align="lrl")
    if stats.top_images:
        print("", file=out)
        _table(("image", "boxes"), [(e.image.name, str(e.boxes)) for e in stats.top_images])


def _histogram_rows(stats: DatasetStatistics) -> list[tuple[str, ...]]:
    edges, counts = stats.histogram_edges, stats.histogram_counts
    peak = max(int(counts.max()), 1)
    return [
        (f"{low:g}-{high:g}", str(count), "#" * round(BAR_WIDTH * count / peak))
        for low, high, count in zip(edges[:-1], edges[1:], counts.tolist(), strict=True)
    ]


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]], align: str = "lrr") -> None:
    """Columns padded to their widest cell, each left- (``l``) or right-aligned (``r``)."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [
            cell.ljust(width) if side == "l" else cell.rjust(width)
            for cell, width, side in zip(row, widths, align, strict=False)
        ]
        print("  ".join(cells).rstrip(), file=sys.stdout)
