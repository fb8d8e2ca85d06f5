"""A small line plot (the train dock's loss and validation-mAP curves).

matplotlib is not a dependency, and one polyline with its last value is a few lines of
QPainter.
"""

from __future__ import annotations

import math

from qtpy.QtCore import QPointF, QRectF
from qtpy.QtGui import QColor, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QWidget

__all__ = ["CurvePlot"]


class CurvePlot(QWidget):
    """A line plot that grows point by point, scaled to what it holds.

    Parameters
    ----------
    title
        Drawn in the top-left corner with the last value.
    color
        The line colour.
    """

    def __init__(self, title: str, color: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.color = QColor(color)
        self.xs: list[float] = []
        self.ys: list[float] = []
        self.setMinimumHeight(90)

    def clear(self) -> None:
        self.xs, self.ys = [], []
        self.update()

    def append(self, x: float, y: float) -> None:
        """Add a point; non-finite values are skipped (a NaN loss stops the run anyway)."""
        if math.isfinite(y):
            self.xs.append(float(x))
            self.ys.append(float(y))
            self.update()

    def paintEvent(self, _event: object) -> None:  # noqa: N802 (Qt API)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        frame = QRectF(self.rect()).adjusted(34, 16, -6, -14)
        painter.setPen(QPen(QColor("#808080")))
        painter.drawRect(frame)
        last = f": {self.ys[-1]:.3g}" if self.ys else ""
        painter.drawText(QPointF(frame.left(), frame.top() - 3), f"{self.title}{last}")
        if not self.ys:
            painter.end()
            return
        low, high = min(self.ys), max(self.ys)
        if high - low < 1e-12:
            low, high = low - 0.5, high + 0.5
        first_x, last_x = self.xs[0], self.xs[-1]
        span_x = (last_x - first_x) or 1.0
        painter.drawText(QPointF(2, frame.top() + 10), f"{high:.2g}")
        painter.drawText(QPointF(2, frame.bottom()), f"{low:.2g}")
        points = QPolygonF(
            [
                QPointF(
                    frame.left() + (x - first_x) / span_x * frame.width(),
                    frame.bottom() - (y - low) / (high - low) * frame.height(),
                )
                for x, y in zip(self.xs, self.ys, strict=True)
            ]
        )
        painter.setPen(QPen(self.color, 1.5))
        if len(points) == 1:
            painter.drawEllipse(points[0], 2.5, 2.5)
        else:
            painter.drawPolyline(points)
        painter.end()
