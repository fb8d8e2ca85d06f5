"""A precision-recall plot a person can read: axes from 0 to 1 with ticks and labels, one
curve per class in its colour, a dot where the score threshold puts each class, a legend.

matplotlib is not a dependency; colours, ticks and legend text are those of the SVG that
``detlab evaluate --plots`` writes (:mod:`napari_detlab.core.evaluation.pr_plot`).
"""

from __future__ import annotations

from collections.abc import Sequence

from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QSizePolicy, QWidget

from napari_detlab._qt.widgets.painted_widget import PaintedWidget
from napari_detlab.core.evaluation.pr_curve import PrCurve
from napari_detlab.core.evaluation.pr_plot import TICKS, curve_color, legend_text, step_points

__all__ = ["PrPlot"]


class PrPlot(PaintedWidget):
    """Precision (y) against recall (x) of each class.

    Attributes
    ----------
    curves
        What is drawn, in legend order.
    score_threshold
        Where the dots are: each class's point at this threshold.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.curves: list[PrCurve] = []
        self.score_threshold = 0.5
        self.setMinimumHeight(220)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def show_curves(self, curves: Sequence[PrCurve], score_threshold: float) -> None:
        """Replace the curves and repaint."""
        self.curves = list(curves)
        self.score_threshold = float(score_threshold)
        self.update()

    def legend(self) -> list[str]:
        """The legend's lines, as drawn."""
        return [legend_text(curve) for curve in self.curves]

    def paint(self, painter: QPainter) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor("#262930"))
        legend_h = 16 * max(len(self.curves), 1)
        frame = QRectF(self.rect()).adjusted(44, 8, -10, -(34 + legend_h))
        text, grid = QColor("#d0d0d0"), QColor("#5a5f6a")

        def point(recall: float, precision: float) -> QPointF:
            return QPointF(
                frame.left() + recall * frame.width(),
                frame.bottom() - precision * frame.height(),
            )

        for tick in TICKS:
            painter.setPen(QPen(grid, 1, Qt.PenStyle.DotLine))
            painter.drawLine(point(tick, 0), point(tick, 1))
            painter.drawLine(point(0, tick), point(1, tick))
            painter.setPen(text)
            x, y = point(tick, 0).x(), point(0, tick).y()
            painter.drawText(QRectF(x - 20, frame.bottom() + 2, 40, 14),
                             int(Qt.AlignmentFlag.AlignCenter), f"{tick:g}")  # fmt: skip
            painter.drawText(QRectF(frame.left() - 34, y - 7, 30, 14),
                             int(Qt.AlignmentFlag.AlignRight), f"{tick:g}")  # fmt: skip
        painter.setPen(QPen(QColor("#a0a0a0")))
        painter.drawRect(frame)
        painter.setPen(text)
        painter.drawText(QRectF(frame.left(), frame.bottom() + 14, frame.width(), 14),
                         int(Qt.AlignmentFlag.AlignCenter), "recall")  # fmt: skip
        painter.save()
        painter.translate(10, frame.center().y())
        painter.rotate(-90)
        painter.drawText(QRectF(-40, -8, 80, 16), int(Qt.AlignmentFlag.AlignCenter), "precision")
        painter.restore()
        for index, curve in enumerate(self.curves):
            color = QColor(curve_color(index))
            points = step_points(curve, columns=max(int(frame.width()), 1))
            painter.setPen(QPen(color, 2))
            if points:
                painter.drawPolyline(QPolygonF([point(r, p) for r, p in points]))
            row = frame.bottom() + 32 + 16 * index
            painter.setPen(QPen(color, 3))
            painter.drawLine(QPointF(frame.left(), row + 8), QPointF(frame.left() + 18, row + 8))
            painter.setPen(text)
            painter.drawText(QRectF(frame.left() + 24, row, frame.width() - 24, 16),
                             int(Qt.AlignmentFlag.AlignVCenter), legend_text(curve))  # fmt: skip
        painter.setPen(QPen(QColor("#000000")))
        for index, curve in enumerate(self.curves):  # the dots over every curve
            operating = curve.at(self.score_threshold)
            if operating is not None:
                painter.setBrush(QColor(curve_color(index)))
                painter.drawEllipse(point(*operating), 4, 4)
        if not self.curves:
            painter.drawText(frame, int(Qt.AlignmentFlag.AlignCenter), "no figures yet")
