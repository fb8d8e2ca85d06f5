"""A small painted histogram of best-anchor IoUs with the RPN's two thresholds marked.

Bars are coloured by zone (red below the background threshold, orange between, green at or
above the foreground threshold; :func:`~napari_detlab.core.anchors.figures.zone_color`) so
the picture reads like the boxes on the canvas.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtWidgets import QWidget

from napari_detlab._qt.widgets.bar_histogram import BarHistogram
from napari_detlab.core.anchors.figures import zone_color

__all__ = ["IouHistogram"]


class IouHistogram(BarHistogram):
    """Counts of best IoUs in ``bins`` equal bins over [0, 1], with lines at bg and fg."""

    def __init__(self, bins: int = 20, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bins = bins
        self.bg, self.fg = 0.3, 0.7
        self.show_counts(np.zeros(bins, dtype=np.int64), 0.0, 1.0, (self.bg, self.fg))

    def set_values(self, values: np.ndarray, bg: float = 0.3, fg: float = 0.7) -> None:
        """Replace the histogram's data and repaint."""
        values = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
        self.bg, self.fg = bg, fg
        counts = np.histogram(values, bins=self.bins, range=(0.0, 1.0))[0]
        self.show_counts(counts, 0.0, 1.0, (bg, fg))

    def bar_color(self, centre: float) -> str:
        return zone_color(centre, self.bg, self.fg)
