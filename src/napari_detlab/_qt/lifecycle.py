"""A dock's life in napari: when it ends, and whether its tab is the one shown.

napari removes a plugin dock by un-parenting its widget, not by deleting or closing it (the
plugin menu then makes a new one), so "the dock closed" has two signs: a ``Close`` event on
the widget, or its parent going away after it was docked. :class:`DockLifecycle` watches for
both and runs the dock's teardown once; :meth:`~napari_detlab._qt.session.DetlabSession.attach`
installs one for every dock.

napari also tabs our docks together (the demo puts the Annotator in front). A dock whose tab
is not chosen is not seen, so its overlay and its dataset figures can wait; Qt's
``visibilityChanged`` of the enclosing ``QDockWidget`` says when the tab is chosen
(:func:`follow_dock_visibility`).
"""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtCore import QEvent, QObject
from qtpy.QtWidgets import QDockWidget, QWidget

__all__ = ["DockLifecycle", "follow_dock_visibility"]


class DockLifecycle(QObject):
    """Runs ``end()`` once, when ``widget`` is closed or napari takes it out of its dock.

    The watcher is a child of the widget, so it lives exactly as long as the widget does.
    """

    def __init__(self, widget: QWidget, end: Callable[[], None]) -> None:
        super().__init__(widget)
        self._end = end
        self._docked = widget.parent() is not None
        self.ended = False
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        kind = event.type()
        if kind == QEvent.Type.ParentChange:
            if watched.parent() is not None:
                self._docked = True
            elif self._docked:
                self.end()
        elif kind == QEvent.Type.Close:
            self.end()
        return False

    def end(self) -> None:
        """Run the teardown now (once; later signs of closing are ignored)."""
        if not self.ended:
            self.ended = True
            self._end()


def follow_dock_visibility(widget: QWidget, slot: Callable[[bool], None]) -> QDockWidget | None:
    """Call ``slot(visible)`` whenever the dock holding ``widget`` is shown or hidden.

    Call it once the widget is docked (napari docks a widget after its ``__init__``: a
    zero-delay timer is enough). Returns the dock, or None for a widget not in one.
    """
    dock = widget.parent()
    while dock is not None and not isinstance(dock, QDockWidget):
        dock = dock.parent()
    if dock is not None:
        dock.visibilityChanged.connect(slot)
    return dock
