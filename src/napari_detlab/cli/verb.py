"""One way to add a ``detlab`` verb: its help and description come from its module docstring.

The docstring a developer reads is then the text a user gets from ``detlab VERB --help``,
examples and exit codes included, and the two cannot drift apart.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable

__all__ = ["add_verb", "help_line", "terminal_text"]

VerbRun = Callable[[argparse.Namespace], int]


def terminal_text(doc: str) -> str:
    """``doc`` as a terminal shows it: reST's double backticks and ``::`` become plain text."""
    text = re.sub(r"``([^`]+)``", r"\1", doc.strip())
    return re.sub(r"::$", ":", text, flags=re.MULTILINE)


def help_line(doc: str) -> str:
    """The one-line help of ``detlab --help``: the docstring's first line after its colon."""
    first = terminal_text(doc).splitlines()[0]
    return first.split(": ", 1)[-1].rstrip(".")


def add_verb(
    subparsers: argparse._SubParsersAction, name: str, run: VerbRun, doc: str
) -> argparse.ArgumentParser:
    """Add the sub-command ``name`` that calls ``run``, described by ``doc`` (reST)."""
    parser = subparsers.add_parser(
        name,
        help=help_line(doc),
        description=terminal_text(doc),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(func=run)
    return parser
