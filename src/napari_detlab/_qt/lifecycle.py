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

A dock with unsaved work also needs to hear when the *window* closes, before napari takes its
layers away: :class:`WindowCloseWatcher`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

from qtpy.QtCore import QEvent, QObject
from qtpy.QtWidgets import QApplication, QDockWidget, QWidget

__all__ = ["DockLifecycle", "WindowCloseWatcher", "follow_dock_visibility"]


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


class WindowCloseWatcher(QObject):
    """Calls ``on_close()`` when the window holding ``widget`` is closed, or the app quits.

    The top-level window is only known once the widget is docked, so the watcher installs
    itself on it when the widget is shown, or when :meth:`watch_window` is called (a dock
    opened by a script may do work before it is ever shown). It holds the window weakly: a
    dock must not keep a closed viewer's window alive.
    """

    def __init__(self, widget: QWidget, on_close: Callable[[], None]) -> None:
        super().__init__(widget)
        self._widget = widget
        self._on_close = on_close
        self._window: weakref.ref[QObject] | None = None
        widget.installEventFilter(self)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(on_close)

    def watch_window(self) -> None:
        """Watch the widget's top-level window now (once it is docked)."""
        window = self._widget.window()
        watched = self._window() if self._window is not None else None
        if window is not self._widget and window is not watched:
            window.installEventFilter(self)
            self._window = weakref.ref(window)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        kind = event.type()
        if watched is self._widget and kind == QEvent.Type.Show:
            self.watch_window()
        elif watched is not self._widget and kind == QEvent.Type.Close:
            self._on_close()
        return False
