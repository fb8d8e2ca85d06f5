"""``detlab import``, ``detlab export`` and ``detlab convert``: annotations in and out.

Examples::

    detlab import coco labels.json my_images/          # into my_images/annotations/
    detlab import voc labelimg_xml/ my_images/ --overwrite
    detlab export my_images/ yolo yolo_labels/         # classes.txt + one .txt per image
    detlab convert yolo yolo_labels/ coco out.json --images my_images/

FORMAT is ``coco``, ``voc``, ``yolo`` or ``tutorial``. A progress bar goes to stderr, the
summary to stdout, and each line a format could not read to stderr with its file and line.
Bad input (no such folder, not JSON, nothing matching, nothing annotated to export) and a
file that cannot be written (a full disk, a read-only folder) print one line and exit with
code 2; files written before a failed one are whole. An export leaves out (and warns about)
images that cannot be decoded or whose boxes do not fit them, and exits 0 with the rest.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, TypeVar

if TYPE_CHECKING:  # the formats load when a verb runs, so that --help stays quick
    from napari_detlab.formats.base import Problem, ProgressCallback
    from napari_detlab.formats.reports import ImportReport

from napari_detlab.cli.verb import add_verb

__all__ = ["TextProgressBar", "register", "run_convert", "run_export", "run_import"]

FORMAT_HELP = "coco, voc, yolo or tutorial"
Report = TypeVar("Report")


class TextProgressBar:
    """``[#######.......] writing 1200/2000`` on stderr, redrawn in place on a terminal.

    When stderr is not a terminal (a log file, CI) it prints a line per tenth instead of
    filling the log with carriage returns.
    """

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last: tuple[str, int] | None = None
        self._drawn = False

    def __call__(self, done: int, total: int, stage: str) -> None:
        total = max(total, 1)
        filled = self.width * done // total
        bar = f"[{'#' * filled}{'.' * (self.width - filled)}] {stage} {done}/{total}"
        if self.interactive:
            self.stream.write(f"\r{bar}")
            self._drawn = True
            if done >= total:
                self.stream.write("\n")
                self._drawn = False
        else:
            tenth = 10 * done // total
            if self._last != (stage, tenth):
                self._last = (stage, tenth)
                self.stream.write(f"{bar}\n")
        self.stream.flush()

    def close(self) -> None:
        """End a bar left half-drawn (an error mid-way) so the error starts on its own line."""
        if self._drawn:
            self.stream.write("\n")
            self._drawn = False


IMPORT_DOC = """``detlab import``: import COCO/VOC/YOLO/tutorial annotations into a dataset.

Read annotations in FORMAT from SOURCE into DATASET/annotations, matching images by file name.
Images already annotated differently are kept unless --overwrite. Example::

    detlab import coco labels.json my_images/
"""

EXPORT_DOC = """``detlab export``: export a dataset's annotations as COCO/VOC/YOLO/tutorial.

Write the annotated images of DATASET (reviewed, or with boxes) to TARGET in FORMAT. Images
never annotated are left out; reviewed images without boxes are written as negatives. Example::

    detlab export my_images/ yolo yolo_labels/
"""

CONVERT_DOC = """``detlab convert``: convert annotations from one format to another.

Read SOURCE in one format and write TARGET in another, without a dataset. Image sizes come
from the images under or beside SOURCE, or in --images. Example::

    detlab convert yolo yolo_labels/ coco out.json --images my_images/
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    importer = add_verb(subparsers, "import", run_import, IMPORT_DOC)
    importer.add_argument("format", metavar="FORMAT", help=FORMAT_HELP)
    importer.add_argument("source", type=Path, metavar="SOURCE", help="file or folder to read")
    importer.add_argument("dataset", type=Path, metavar="DATASET", help="the folder of images")
    importer.add_argument("--overwrite", action="store_true", help="replace existing annotations")
    _add_quiet(importer)

    exporter = add_verb(subparsers, "export", run_export, EXPORT_DOC)
    exporter.add_argument("dataset", type=Path, metavar="DATASET", help="the folder of images")
    exporter.add_argument("format", metavar="FORMAT", help=FORMAT_HELP)
    exporter.add_argument(
        "target", type=Path, metavar="TARGET", help="a folder (COCO: a .json file or a folder)"
    )
    _add_quiet(exporter)

    converter = add_verb(subparsers, "convert", run_convert, CONVERT_DOC)
    converter.add_argument("source_format", metavar="FORMAT", help=FORMAT_HELP)
    converter.add_argument("source", type=Path, metavar="SOURCE")
    converter.add_argument("target_format", metavar="FORMAT", help=FORMAT_HELP)
    converter.add_argument("target", type=Path, metavar="TARGET")
    converter.add_argument("--images", type=Path, metavar="DIR", help="where the images are")
    _add_quiet(converter)


def _add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def run_import(args: argparse.Namespace) -> int:
    from napari_detlab.cli.main import CliError
    from napari_detlab.formats.dataset_io import import_dataset
    from napari_detlab.formats.registry import get_format

    fmt = get_format(args.format)
    _require(args.source, "source")
    if not args.dataset.is_dir():
        raise CliError(f"{args.dataset}: no such dataset folder")
    report = _with_bar(
        args,
        lambda bar: import_dataset(
            fmt, args.source, args.dataset, on_progress=bar, overwrite=args.overwrite
        ),
    )
    _print_problems("import", report.problems)
    if report.images == 0 and report.unchanged == 0 and not report.kept_existing:
        raise CliError(_nothing_imported(report))
    print(report.summary(with_problems=False))
    return 0


def run_export(args: argparse.Namespace) -> int:
    from napari_detlab.cli.main import CliError
    from napari_detlab.formats.dataset_io import export_dataset
    from napari_detlab.formats.registry import get_format

    fmt = get_format(args.format)
    if not args.dataset.is_dir():
        raise CliError(f"{args.dataset}: no such dataset folder")
    report = _with_bar(
        args, lambda bar: export_dataset(args.dataset, fmt, args.target, on_progress=bar)
    )
    _print_problems("export", report.problems)
    print(report.summary(with_problems=False))
    return 0


def run_convert(args: argparse.Namespace) -> int:
    from napari_detlab.cli.main import CliError
    from napari_detlab.formats.dataset_io import convert
    from napari_detlab.formats.registry import get_format

    source_format, target_format = get_format(args.source_format), get_format(args.target_format)
    _require(args.source, "source")
    if args.images is not None and not args.images.is_dir():
        raise CliError(f"{args.images}: no such image folder")
    start = time.perf_counter()
    report = _with_bar(
        args,
        lambda bar: convert(
            source_format, args.source, target_format, args.target,
            images=args.images, on_progress=bar,
        ),
    )  # fmt: skip
    _print_problems("convert", report.problems)
    if report.images == 0 and report.problems:
        raise CliError(f"nothing converted: {report.problems[0]}")
    print(f"{report.summary(with_problems=False)}\n({time.perf_counter() - start:.1f} s)")
    return 0


def _require(path: Path, what: str) -> None:
    from napari_detlab.cli.main import CliError

    if not path.exists():
        raise CliError(f"{path}: no such {what} file or folder")


def _with_bar(args: argparse.Namespace, job: Callable[[ProgressCallback | None], Report]) -> Report:
    """Run ``job(on_progress)`` with a progress bar unless ``--quiet``."""
    bar = None if args.quiet else TextProgressBar()
    try:
        return job(bar)
    finally:
        if bar is not None:
            bar.close()


def _print_problems(verb: str, problems: list[Problem]) -> None:
    for problem in problems:
        print(f"detlab {verb}: warning: {problem}", file=sys.stderr)


def _nothing_imported(report: ImportReport) -> str:
    from napari_detlab.core.wording import counted

    if report.problems:
        return (
            f"nothing imported: {report.problems[0]} ({counted(len(report.problems), 'problem')})"
        )
    if len(report.unmatched) == 1:
        return (
            f"nothing imported: the one annotated image, {report.unmatched[0]}, is not in "
            f"{report.dataset}"
        )
    if report.unmatched:
        return (
            f"nothing imported: none of the {len(report.unmatched)} annotated images "
            f"(e.g. {report.unmatched[0]}) is in {report.dataset}"
        )
    return f"nothing imported: {report.source} holds no annotations in {report.format} format"
