"""The corners a precision-recall plot draws: steps, and no more points than pixels show."""

from __future__ import annotations

import numpy as np

from napari_detlab.core.evaluation.pr_curve import PrCurve
from napari_detlab.core.evaluation.pr_plot import step_points


def test_each_point_adds_a_vertical_then_a_horizontal_step_from_recall_zero():
    curve = PrCurve("cell", 4, np.array([0.9, 0.8, 0.7]), np.array([1.0, 0.5, 2 / 3]),
                    np.array([0.25, 0.25, 0.5]))  # fmt: skip
    assert step_points(curve) == [
        (0.0, 1.0), (0.25, 1.0),  # the first prediction found one of four objects
        (0.25, 0.5),  # a false positive: precision drops, recall stays
        (0.25, 2 / 3), (0.5, 2 / 3),
    ]  # fmt: skip
    assert step_points(PrCurve("empty")) == []


def test_a_dense_curve_keeps_each_columns_first_lowest_highest_and_last_corner():
    """20,000 predictions drawn 300 pixels wide: at most four corners a column, and in every
    column the same extent and the same ends as the whole curve."""
    rng = np.random.default_rng(0)
    hits = rng.random(20_000) < 0.6
    recall = np.cumsum(hits) / hits.sum()
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    curve = PrCurve("cell", int(hits.sum()), np.linspace(1, 0, len(hits)), precision, recall)
    everything = np.array(step_points(curve))
    drawn = np.array(step_points(curve, columns=300))
    assert len(everything) > 20_000 and len(drawn) <= 4 * 300
    assert {tuple(p) for p in drawn} <= {tuple(p) for p in everything}  # corners of the curve
    assert np.all(np.diff(drawn[:, 0]) >= 0)  # still in drawing order
    for name, points in (("all", everything), ("drawn", drawn)):
        column = np.clip((points[:, 0] * 300).astype(int), 0, 299)
        extent = {
            c: (points[column == c, 1].min(), points[column == c, 1].max()) for c in set(column)
        }
        if name == "all":
            expected = extent
    assert extent == expected
    np.testing.assert_array_equal(drawn[[0, -1]], everything[[0, -1]])


def _column_extents(points: np.ndarray, columns: int) -> dict[int, tuple[float, float]]:
    """Each pixel column's lowest and highest precision."""
    column = np.clip((points[:, 0] * columns).astype(int), 0, columns - 1)
    return {c: (points[column == c, 1].min(), points[column == c, 1].max()) for c in set(column)}
