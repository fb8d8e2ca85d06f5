"""The table of boxes no anchor catches: one row per box, worst first; a click picks one."""

from __future__ import annotations

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QWidget

from napari_detlab._qt.widgets.row_table import RowTable
from napari_detlab.core.anchors.figures import UNCAUGHT_COLUMNS, UncaughtBox

__all__ = ["UncaughtTable"]


class UncaughtTable(RowTable):
    """Read-only rows of :class:`~napari_detlab.core.anchors.figures.UncaughtBox`.

    Signals
    -------
    box_chosen
        The :class:`UncaughtBox` of the row the user clicked.
    """

    box_chosen = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(UNCAUGHT_COLUMNS, parent)
        self.row_chosen.connect(self.box_chosen.emit)

    def show_rows(self, rows: list[UncaughtBox]) -> None:  # type: ignore[override]
        """Replace the table's rows."""
        super().show_rows(rows, [row.cells() for row in rows])
