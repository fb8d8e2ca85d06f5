"""What an import, export or convert did: counts, what was left out and why, every problem.

The CLI prints :meth:`ImportReport.summary` / :meth:`ExportReport.summary` and the Annotator's
menu shows them as notifications, so both say the same thing in the same words.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from napari_detlab.core.wording import counted
from napari_detlab.formats.base import Problem

__all__ = ["ExportReport", "ImportReport"]


@dataclass(kw_only=True)
class _Report(ABC):
    """Counts and problems every report has; subclasses add their own lines.

    ``skipped`` counts what was left out on purpose (not an error), by reason, as the
    reader's :attr:`~napari_detlab.formats.base.ReadResult.skipped` did.
    """

    format: str
    images: int = 0
    boxes: int = 0
    negatives: int = 0
    clipped_boxes: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)

    def summary(self, *, with_problems: bool = True) -> str:
        """One paragraph a person reads afterwards; problems one per line unless told not to."""
        counts = (
            f"{counted(self.images, 'image')} ({counted(self.boxes, 'box', 'boxes')}, "
            f"{counted(self.negatives, 'negative')})"
        )
        lines = [self._headline(counts), *self._details()]
        if self.clipped_boxes:
            lines.append(
                f"{counted(self.clipped_boxes, 'box', 'boxes')} reaching outside the image "
                "clipped to its border"
            )
        lines.extend(f"skipped {reason}: {count}" for reason, count in self.skipped.items())
        if self.problems:
            lines.append(counted(len(self.problems), "problem") + (":" if with_problems else ""))
        if self.problems and with_problems:
            lines.extend(f"  {problem}" for problem in self.problems)
        return "\n".join(lines)

    @abstractmethod
    def _headline(self, counts: str) -> str:
        """The first line: what was done, with ``counts`` of images, boxes and negatives."""

    def _details(self) -> list[str]:
        return []


@dataclass(kw_only=True)
class ImportReport(_Report):
    """What an import did, for the CLI's summary and the GUI's notification."""

    source: Path
    dataset: Path
    unchanged: int = 0
    kept_existing: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    classes_added: list[str] = field(default_factory=list)

    def _headline(self, counts: str) -> str:
        return f"imported {counts} from {self.format} {self.source} into {self.dataset}"

    def _details(self) -> list[str]:
        lines = []
        if self.unchanged:
            lines.append(f"{counted(self.unchanged, 'image')} already had exactly these boxes")
        if self.classes_added:
            lines.append(f"new classes: {', '.join(self.classes_added)}")
        if self.kept_existing:
            kept = len(self.kept_existing)
            lines.append(
                f"{counted(kept, 'image')} already annotated differently "
                f"{'was' if kept == 1 else 'were'} kept (overwrite to replace them): "
                f"{_first(self.kept_existing)}"
            )
        if self.unmatched:
            unmatched = len(self.unmatched)
            lines.append(
                f"{counted(unmatched, 'annotated image')} {'is' if unmatched == 1 else 'are'} "
                f"not in the dataset: {_first(self.unmatched)}"
            )
        return lines


@dataclass(kw_only=True)
class ExportReport(_Report):
    """What an export (or a convert) wrote."""

    target: Path
    left_out_unreviewed: int = 0
    files: list[Path] = field(default_factory=list)

    def _headline(self, counts: str) -> str:
        return f"wrote {counts} as {self.format} to {self.target}"

    def _details(self) -> list[str]:
        if self.left_out_unreviewed:
            return [f"left out {counted(self.left_out_unreviewed, 'image')} never annotated"]
        return []


def _first(names: Sequence[str], count: int = 5) -> str:
    shown = ", ".join(names[:count])
    return shown + (f" and {len(names) - count} more" if len(names) > count else "")
