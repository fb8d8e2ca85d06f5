"""A read-only table whose rows stand for things (a box, a class, an image); a click picks one.

The AnchorViewer's uncaught boxes and the statistics dock's class and image tables are all
this table: each row is drawn from one object, and clicking any of its cells hands that
object to whoever listens, which then jumps to its image.
"""

from __future__ import annotations

from collections.abc import Sequence

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QAbstractItemView, QTableWidget, QTableWidgetItem, QWidget

__all__ = ["RowTable"]


class RowTable(QTableWidget):
    """Rows of text, each standing for one object.

    Parameters
    ----------
    columns
        The column headers.

    Signals
    -------
    row_chosen
        The object of the row the user clicked.
    """

    row_chosen = Signal(object)

    def __init__(self, columns: Sequence[str], parent: QWidget | None = None) -> None:
        super().__init__(0, len(columns), parent)
        self.rows: list[object] = []
        self.setHorizontalHeaderLabels(list(columns))
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.cellClicked.connect(self._clicked)

    def show_rows(self, rows: Sequence[object], cells: Sequence[Sequence[str]]) -> None:
        """Replace the rows: ``rows[i]`` is drawn as the texts ``cells[i]``."""
        self.rows = list(rows)
        self.setRowCount(len(self.rows))
        for r, texts in enumerate(cells):
            for c, text in enumerate(texts):
                self.setItem(r, c, QTableWidgetItem(text))

    def _clicked(self, row: int, _column: int) -> None:
        if 0 <= row < len(self.rows):
            self.row_chosen.emit(self.rows[row])
