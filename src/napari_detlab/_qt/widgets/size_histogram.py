"""The statistics dock's plot of box sizes: a histogram of ``sqrt(area)`` in pixels, with
COCO's small / medium / large limits (32 and 96 pixels) marked where they fall."""

from __future__ import annotations

import numpy as np

from napari_detlab._qt.widgets.bar_histogram import BarHistogram
from napari_detlab.core.boxes import SIZE_BUCKETS

__all__ = ["SizeHistogram"]

# sqrt of the areas where one COCO bucket ends and the next begins: 32 and 96 pixels.
COCO_LIMITS = tuple(float(np.sqrt(high)) for _, _, high in SIZE_BUCKETS if np.isfinite(high))


class SizeHistogram(BarHistogram):
    """The box-size histogram of a
    :class:`~napari_detlab.core.annotations.statistics.DatasetStatistics`."""

    def set_histogram(self, edges: np.ndarray, counts: np.ndarray) -> None:
        """Show a histogram of ``sqrt(area)`` with equal bins between ``edges``."""
        self.show_counts(counts, float(edges[0]), float(edges[-1]), COCO_LIMITS)
