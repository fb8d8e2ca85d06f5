"""The confusion matrix as a table: rows the true class, columns the class predicted.

The last row holds the false positives (a prediction on no object), the last column the
missed objects; cross-class mistakes, the cells off the diagonal, are tinted so that
"predicted crystal, was cell" stands out (the rule: :mod:`napari_detlab.core.evaluation.confusion`).
"""

from __future__ import annotations

from qtpy.QtGui import QColor
from qtpy.QtWidgets import QAbstractItemView, QTableWidget, QTableWidgetItem, QWidget

from napari_detlab.core.evaluation.confusion import ConfusionMatrix

__all__ = ["ConfusionTable"]

_CROSS_CLASS = QColor("#7a3b3b")
_DIAGONAL = QColor("#2f5f3a")


class ConfusionTable(QTableWidget):
    """One :class:`ConfusionMatrix`, read-only."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 0, parent)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setToolTip(
            "Rows: the true class; columns: the class predicted. A box of another class on "
            "an object counts here once, not as a false positive plus a miss."
        )

    def show_matrix(self, matrix: ConfusionMatrix | None) -> None:
        """Replace the table (empty for ``None``)."""
        if matrix is None:
            self.setRowCount(0)
            self.setColumnCount(0)
            return
        self.setRowCount(len(matrix.rows))
        self.setColumnCount(len(matrix.columns))
        self.setVerticalHeaderLabels([f"true {name}" if name in matrix.classes else name
                                      for name in matrix.rows])  # fmt: skip
        self.setHorizontalHeaderLabels([f"as {name}" if name in matrix.classes else name
                                        for name in matrix.columns])  # fmt: skip
        last = len(matrix.classes)
        for r in range(last + 1):
            for c in range(last + 1):
                count = int(matrix.counts[r, c])
                item = QTableWidgetItem("–" if r == c == last else str(count))
                if r < last and c < last and count:
                    item.setBackground(_DIAGONAL if r == c else _CROSS_CLASS)
                self.setItem(r, c, item)
        self.resizeColumnsToContents()
