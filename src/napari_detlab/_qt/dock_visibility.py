"""Whether a dock's tab is the one shown: docks behind another tab put their work off.

napari tabs our docks together (the demo puts the Annotator in front). A dock whose tab is
not chosen is not seen, so its overlay and its dataset figures can wait; Qt's
``visibilityChanged`` of the enclosing ``QDockWidget`` says when the tab is chosen.
"""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtWidgets import QDockWidget, QWidget

__all__ = ["follow_dock_visibility"]


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
