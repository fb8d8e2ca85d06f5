"""What a layer shows, read back as a person would see it: boxes and their colours."""

from __future__ import annotations

import numpy as np


def drawn_boxes(layer) -> np.ndarray:
    """The boxes the outline layer draws, read back from its vectors (4 per box)."""
    starts = np.asarray(layer.data)[:, 0, :].reshape(-1, 4, 2)  # corners in (row, col)
    return np.stack(
        [
            starts[:, :, 1].min(1),
            starts[:, :, 0].min(1),
            starts[:, :, 1].max(1),
            starts[:, :, 0].max(1),
        ],
        axis=1,
    )


def edge_colors(layer) -> np.ndarray:
    """One RGBA per drawn box."""
    return np.asarray(layer.edge_color)[::4]
