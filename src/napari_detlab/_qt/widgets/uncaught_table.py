"""The table of boxes no anchor catches: one row per box, worst first; a click picks one."""

from __future__ import annotations

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QAbstractItemView, QTableWidget, QTableWidgetItem, QWidget

from napari_detlab.core.anchors.figures import UNCAUGHT_COLUMNS, UncaughtBox

__all__ = ["UncaughtTable"]


class UncaughtTable(QTableWidget):
    """Read-only rows of :class:`~napari_detlab.core.anchors.figures.UncaughtBox`.

    Signals
    -------
    box_chosen
        The :class:`UncaughtBox` of the row the user clicked.
    """

    box_chosen = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(UNCAUGHT_COLUMNS), parent)
        self.rows: list[UncaughtBox] = []
        self.setHorizontalHeaderLabels(list(UNCAUGHT_COLUMNS))
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.cellClicked.connect(self._clicked)

    def show_rows(self, rows: list[UncaughtBox]) -> None:
        """Replace the table's rows."""
        self.rows = list(rows)
        self.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            for c, text in enumerate(row.cells()):
                self.setItem(r, c, QTableWidgetItem(text))

    def _clicked(self, row: int, _column: int) -> None:
        if 0 <= row < len(self.rows):
            self.box_chosen.emit(self.rows[row])
