"""The ``detlab`` command: one entry point, one sub-command module per verb.

Each verb module exposes ``register(subparsers)``, which adds its parser with
:func:`~napari_detlab.cli.verb.add_verb`: help and description come from the module docstring,
so ``detlab VERB --help`` shows its examples, and ``run(args) -> int`` is what it calls.

Expected failures (a missing folder, a corrupt file, classes that do not match a checkpoint, a
file that cannot be written) raise a :class:`~napari_detlab.core.errors.DetlabError`
(:class:`CliError` here) or an ``OSError``; they are printed as one line on stderr with exit
code 2, never as a traceback. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from napari_detlab.core.errors import DetlabError

__all__ = ["CliError", "build_parser", "main"]

# Verb modules under napari_detlab.cli, imported lazily so `detlab --help` stays fast.
VERB_MODULES = (
    "demo",
    "train",
    "predict",
    "evaluate",
    "anchors",
    "stats",
    "accept",
    "interop",
    "weights",
    "export_model",
)


class CliError(DetlabError):
    """A user-facing error: printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="detlab",
        description="Annotate, tune anchors, train and review a Faster R-CNN detector.",
    )
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB")
    subparsers.required = True
    for name in VERB_MODULES:
        importlib.import_module(f"napari_detlab.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``detlab``; returns the exit code (0 success, 1 cancelled/failed run, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("detlab: interrupted", file=sys.stderr)
        return 130
    except (DetlabError, OSError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"detlab {args.verb}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
