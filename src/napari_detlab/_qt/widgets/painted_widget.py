"""The base of the small charts drawn with QPainter (histograms, the PR plot).

matplotlib is not a dependency; each chart is a few lines of QPainter in :meth:`paint`. The
painter is ended even when drawing raises: one left active makes Qt warn on every later
paint of the widget.
"""

from __future__ import annotations

from qtpy.QtGui import QPainter
from qtpy.QtWidgets import QWidget

__all__ = ["PaintedWidget"]


class PaintedWidget(QWidget):
    """A widget whose whole picture is drawn by :meth:`paint` on each repaint."""

    def paint(self, painter: QPainter) -> None:
        """Draw the picture; subclasses define it."""
        raise NotImplementedError

    def paintEvent(self, _event: object) -> None:  # noqa: N802 (Qt API)
        painter = QPainter(self)
        try:
            self.paint(painter)
        finally:
            painter.end()
