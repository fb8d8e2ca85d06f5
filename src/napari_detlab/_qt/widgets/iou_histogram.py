"""A small painted histogram of best-anchor IoUs with the RPN's two thresholds marked.

matplotlib is not a dependency, and a bar chart of twenty bins is a few lines of QPainter.
Bars are coloured by zone (red below the background threshold, orange between, green at or
above the foreground threshold; :func:`~napari_detlab.core.anchors.figures.zone_color`) so
the picture reads like the boxes on the canvas.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

from napari_detlab.core.anchors.figures import zone_color

__all__ = ["IouHistogram"]


class IouHistogram(QWidget):
    """Counts of best IoUs in ``bins`` equal bins over [0, 1], with lines at bg and fg."""

    def __init__(self, bins: int = 20, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bins = bins
        self.counts = np.zeros(bins, dtype=np.int64)
        self.bg, self.fg = 0.3, 0.7
        self.setMinimumHeight(90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_values(self, values: np.ndarray, bg: float = 0.3, fg: float = 0.7) -> None:
        """Replace the histogram's data and repaint."""
        values = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
        self.counts = np.histogram(values, bins=self.bins, range=(0.0, 1.0))[0]
        self.bg, self.fg = bg, fg
        self.update()

    def paintEvent(self, event: object) -> None:  # noqa: N802 (Qt API)
        painter = QPainter(self)
        try:
            self._paint(painter)
        finally:
            painter.end()

    def _paint(self, painter: QPainter) -> None:
        margin, label_h = 4.0, 14.0
        width = self.width() - 2 * margin
        height = self.height() - 2 * margin - label_h
        painter.fillRect(self.rect(), QColor("#262930"))
        peak = max(int(self.counts.max()), 1)
        bar_w = width / self.bins
        for i, count in enumerate(self.counts):
            centre = (i + 0.5) / self.bins
            bar_h = height * count / peak
            rect = QRectF(margin + i * bar_w + 1, margin + height - bar_h, bar_w - 2, bar_h)
            painter.fillRect(rect, QColor(zone_color(centre, self.bg, self.fg)))
        pen = QPen(QColor("#ffffff"))
        pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        for threshold in (self.bg, self.fg):
            x = margin + threshold * width
            painter.drawLine(int(x), int(margin), int(x), int(margin + height))
        painter.setPen(QColor("#d0d0d0"))
        for tick in (0.0, self.bg, self.fg, 1.0):
            x = margin + tick * width
            painter.drawText(QRectF(x - 15, margin + height + 1, 30, label_h),
                             int(Qt.AlignmentFlag.AlignCenter), f"{tick:g}")  # fmt: skip
        painter.drawText(QRectF(margin, margin, width, 14), int(Qt.AlignmentFlag.AlignRight),
                         f"max {peak}")  # fmt: skip
