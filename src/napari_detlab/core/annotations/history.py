"""Undo and redo for box edits: bounded stacks of annotation snapshots per image.

The Annotator saves every edit as soon as it happens, so undo cannot be a layer-level trick:
it must put the *saved* state back. Each time an image's annotation is written, the state it
replaces is pushed here; undo pops it (keeping the state it replaces for redo) and the widget
shows and saves it again. A new edit forgets what could be redone, as in every editor.
Snapshots are deep copies, so later edits of the live arrays cannot change history.
"""

from __future__ import annotations

import copy
from collections import defaultdict

from napari_detlab.core.annotations.annotation import ImageAnnotation

__all__ = ["AnnotationHistory"]


class AnnotationHistory:
    """Previous annotations of each image, newest last.

    Parameters
    ----------
    depth
        Snapshots kept per image; an afternoon of edits on one image must not grow memory
        without bound, and nobody undoes two hundred steps.
    """

    def __init__(self, depth: int = 100) -> None:
        self.depth = depth
        self._stacks: defaultdict[str, list[ImageAnnotation]] = defaultdict(list)
        self._undone: defaultdict[str, list[ImageAnnotation]] = defaultdict(list)

    def push(self, stem: str, previous: ImageAnnotation) -> None:
        """Remember ``previous`` as the state before the edit just saved for ``stem``; a new
        edit forgets the states that undo had set aside for redo."""
        self._keep(self._stacks[stem], previous)
        self._undone.pop(stem, None)

    def undo(self, stem: str, current: ImageAnnotation) -> ImageAnnotation | None:
        """The state before the last edit of ``stem``; ``current`` is kept for :meth:`redo`."""
        previous = self.pop(stem)
        if previous is not None:
            self._keep(self._undone[stem], current)
        return previous

    def redo(self, stem: str, current: ImageAnnotation) -> ImageAnnotation | None:
        """The state the last :meth:`undo` of ``stem`` left; ``current`` can be undone again."""
        undone = self._undone.get(stem)
        if not undone:
            return None
        self._keep(self._stacks[stem], current)
        return undone.pop()

    def can_redo(self, stem: str) -> bool:
        """Whether :meth:`redo` would return a snapshot for ``stem``."""
        return bool(self._undone.get(stem))

    def _keep(self, stack: list[ImageAnnotation], state: ImageAnnotation) -> None:
        stack.append(copy.deepcopy(state))
        del stack[: max(0, len(stack) - self.depth)]

    def pop(self, stem: str) -> ImageAnnotation | None:
        """The state before the last edit of ``stem``, removed from history; ``None`` if none."""
        stack = self._stacks.get(stem)
        if not stack:
            return None
        return stack.pop()

    def can_undo(self, stem: str) -> bool:
        """Whether :meth:`pop` would return a snapshot for ``stem``."""
        return bool(self._stacks.get(stem))

    def clear(self) -> None:
        """Forget everything, e.g. when another folder is opened."""
        self._stacks.clear()
        self._undone.clear()
