"""Docks hear of a save a moment later, one dock per turn of Qt's event loop.

The Annotator autosaves every edit, and every other dock reacts to the file it wrote: the
statistics re-read it, Review redraws the image's ground truth, the AnchorViewer re-counts.
With 1,000 boxes on an image each reaction costs 10-20 ms on a 2-core machine; run inside
the save they made one stall of 50-90 ms with the demo's docks open, long enough to see
while drawing. :class:`LaterCalls` queues them instead: the save returns at once, and each
queued call runs in an event-loop turn of its own, with the user's input and the canvas
repaint in between. A dock that hears of the same file twice before its turn reacts once.

:meth:`~napari_detlab._qt.session.DetlabSession.attach` queues the slots of the events listed
in :data:`LATER_EVENTS`; everything else a dock hears (state, requests) stays immediate, and a
plain :meth:`~napari_detlab._qt.session.DetlabSession.subscribe` (a script, a test) stays
synchronous.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from qtpy.QtCore import QTimer

__all__ = ["LATER_EVENTS", "LaterCalls", "later_calls"]

# The session's events whose reactions wait for a turn of their own: saves come with every
# edit, and nothing the user does next depends on the other docks having seen them.
LATER_EVENTS = frozenset({"annotation_saved"})

Slot = Callable[..., object]


class LaterCalls:
    """Calls queued to run one per event-loop turn, in order, each pending call once."""

    def __init__(self) -> None:
        self._pending: dict[tuple[Slot, Hashable], tuple[object, ...]] = {}
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._run_one)

    def deferred(self, slot: Slot) -> Slot:
        """``slot``, called later: what :meth:`call_later` makes of each of its calls."""

        def later(*args: object) -> None:
            self.call_later(slot, *args)

        return later

    def call_later(self, slot: Slot, *args: object) -> None:
        """Run ``slot(*args)`` in a later turn; the same call already waiting is not added."""
        self._pending.setdefault((slot, _key(args)), args)
        if not self._timer.isActive():
            self._timer.start()

    def cancel(self, slot: Slot) -> None:
        """Drop ``slot``'s waiting calls: its dock is gone."""
        for key in [key for key in self._pending if key[0] == slot]:
            del self._pending[key]

    def _run_one(self) -> None:
        if not self._pending:
            return
        key = next(iter(self._pending))
        slot, args = key[0], self._pending.pop(key)
        try:
            slot(*args)
        finally:
            # A timer started inside a timer's call fires in the next turn, not this one.
            if self._pending and not self._timer.isActive():
                self._timer.start()


def _key(args: tuple[object, ...]) -> Hashable:
    """``args`` as a key: a path or ``None`` as it is; anything unhashable by identity."""
    try:
        hash(args)
    except TypeError:
        return tuple(id(arg) for arg in args)
    return args


_QUEUE: LaterCalls | None = None


def later_calls() -> LaterCalls:
    """The application's one queue (made on first use, when Qt runs)."""
    global _QUEUE
    if _QUEUE is None:
        _QUEUE = LaterCalls()
    return _QUEUE
