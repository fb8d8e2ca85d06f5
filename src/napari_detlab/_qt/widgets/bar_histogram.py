"""A small painted bar chart of binned counts, with dashed marks at chosen values.

matplotlib is not a dependency, and a bar chart of twenty bins is a few lines of QPainter.
The AnchorViewer's IoU histogram and the statistics dock's box-size histogram are both this
chart: a subclass chooses each bar's colour (:meth:`BarHistogram.bar_color`) and the marks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from qtpy.QtCore import QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

from napari_detlab._qt.widgets.painted_widget import PaintedWidget

__all__ = ["BarHistogram"]

BAR_COLOR = "#4c9be8"


class BarHistogram(PaintedWidget):
    """``counts`` in equal bins over ``[low, high]``; dashed lines and ticks at ``marks``.

    Attributes
    ----------
    counts
        The bars, left to right.
    low, high
        The values at the left edge of the first bar and the right edge of the last.
    marks
        Values drawn as dashed lines with a tick label (those inside ``[low, high]``).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.counts = np.zeros(0, dtype=np.int64)
        self.low, self.high = 0.0, 1.0
        self.marks: tuple[float, ...] = ()
        self.setMinimumHeight(90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def show_counts(
        self, counts: np.ndarray, low: float, high: float, marks: Sequence[float] = ()
    ) -> None:
        """Replace the bars and marks, and repaint."""
        self.counts = np.asarray(counts, dtype=np.int64)
        self.low, self.high = float(low), float(high)
        self.marks = tuple(float(mark) for mark in marks if low <= mark <= high)
        self.update()

    def bar_color(self, centre: float) -> str:
        """The colour of the bar whose middle is at ``centre`` (a value, not a pixel)."""
        return BAR_COLOR

    def paint(self, painter: QPainter) -> None:
        margin, label_h = 4.0, 14.0
        width = self.width() - 2 * margin
        height = self.height() - 2 * margin - label_h
        painter.fillRect(self.rect(), QColor("#262930"))
        span = (self.high - self.low) or 1.0

        def x_of(value: float) -> float:
            return margin + (value - self.low) / span * width

        bins = len(self.counts)
        peak = max(int(self.counts.max()), 1) if bins else 1
        bar_w = width / max(bins, 1)
        for i, count in enumerate(self.counts):
            centre = self.low + (i + 0.5) / bins * span
            bar_h = height * count / peak
            rect = QRectF(margin + i * bar_w + 1, margin + height - bar_h, bar_w - 2, bar_h)
            painter.fillRect(rect, QColor(self.bar_color(centre)))
        pen = QPen(QColor("#ffffff"))
        pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        for mark in self.marks:
            painter.drawLine(int(x_of(mark)), int(margin), int(x_of(mark)), int(margin + height))
        painter.setPen(QColor("#d0d0d0"))
        for tick in (self.low, *self.marks, self.high):
            left = min(max(x_of(tick) - 15, 0.0), self.width() - 30.0)  # the ends stay inside
            painter.drawText(QRectF(left, margin + height + 1, 30, label_h),
                             int(Qt.AlignmentFlag.AlignCenter), f"{tick:g}")  # fmt: skip
        painter.drawText(QRectF(margin, margin, width, 14), int(Qt.AlignmentFlag.AlignRight),
                         f"max {peak}")  # fmt: skip
