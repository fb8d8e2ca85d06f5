"""How a precision-recall plot looks, once for both pictures of it: the dock's and the SVG file.

matplotlib is not a dependency (napari does not bring it), so the Review dock paints its
plot with QPainter (:mod:`napari_detlab._qt.widgets.pr_plot`) and ``detlab evaluate --plots``
writes SVG, which any browser opens, from the same colours, ticks and legend text defined
here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from napari_detlab.core.evaluation.pr_curve import PrCurve
from napari_detlab.core.wording import counted

__all__ = [
    "CURVE_COLORS",
    "TICKS",
    "curve_color",
    "legend_text",
    "pr_curve_svg",
    "step_points",
]

# Distinct on a dark dock and on white paper.
CURVE_COLORS = ("#4c9be8", "#ff851b", "#2ecc40", "#b10dc9", "#ff4136", "#39cccc", "#ffdc00")
TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)


def curve_color(index: int) -> str:
    """The colour of the ``index``-th class's curve."""
    return CURVE_COLORS[index % len(CURVE_COLORS)]


def legend_text(curve: PrCurve) -> str:
    """``"cell: AP 0.50, 12 objects"`` (the area under this curve, :attr:`PrCurve.ap`)."""
    ap = curve.ap
    figure = "–" if ap != ap else f"{ap:.2f}"
    return f"{curve.name}: AP {figure}, {counted(curve.ground_truth, 'object')}"


def step_points(curve: PrCurve, columns: int | None = None) -> list[tuple[float, float]]:
    """``(recall, precision)`` corners of the curve as steps, in drawing order.

    Point ``i``'s precision holds from the previous point's recall to its own, so each
    point adds a vertical then a horizontal segment, starting at recall 0: a straight line
    between two points would show precisions no threshold gives.

    A dataset of dense images has a point per detection (tens of thousands), far more than
    a plot has pixels, and painting them all took 0.4 s of the viewer's time. With
    ``columns`` (the plot's width in pixels) each column keeps its first, lowest, highest
    and last corner, in drawing order: the same picture at that width.
    """
    recall = np.asarray(curve.recall, dtype=np.float64)
    precision = np.asarray(curve.precision, dtype=np.float64)
    x = np.stack([np.r_[0.0, recall][:-1], recall], axis=1).ravel()
    y = np.repeat(precision, 2)
    new = np.r_[True, (x[1:] != x[:-1]) | (y[1:] != y[:-1])] if len(x) else np.zeros(0, bool)
    x, y = x[new], y[new]
    if columns is not None and len(x) > 4 * columns:
        x, y = _per_column_extremes(x, y, columns)
    return list(zip(x.tolist(), y.tolist(), strict=True))


def _per_column_extremes(
    x: np.ndarray, y: np.ndarray, columns: int
) -> tuple[np.ndarray, np.ndarray]:
    """The first, lowest, highest and last point of each of ``columns`` columns over
    ``x`` in [0, 1] (``x`` never decreases along a precision-recall curve)."""
    column = np.clip((x * columns).astype(np.int64), 0, columns - 1)
    starts = np.flatnonzero(np.r_[True, column[1:] != column[:-1]])
    ends = np.r_[starts[1:], len(column)] - 1
    by_height = np.lexsort((y, column))  # within each column (contiguous), lowest first
    keep = np.unique(np.concatenate([starts, ends, by_height[starts], by_height[ends]]))
    return x[keep], y[keep]


def pr_curve_svg(
    curves: Sequence[PrCurve],
    title: str,
    score_threshold: float,
    size: tuple[int, int] = (580, 380),
) -> str:
    """An SVG document: the curves on recall (x) and precision (y) axes from 0 to 1, ticks,
    axis labels, a dot where ``score_threshold`` puts each class, and a legend."""
    width, height = size
    left, right, top, bottom = 56, 220, 30, 46
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(value: float) -> float:
        return left + value * plot_w

    def y(value: float) -> float:
        return top + (1 - value) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="18" font-size="13">{_escape(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#808080"/>',
    ]
    for tick in TICKS:
        parts += [
            f'<line x1="{x(tick):.1f}" y1="{y(0):.1f}" x2="{x(tick):.1f}" y2="{y(0) + 4:.1f}" '
            'stroke="#808080"/>',
            f'<text x="{x(tick):.1f}" y="{y(0) + 17:.1f}" text-anchor="middle">{tick:g}</text>',
            f'<line x1="{x(0) - 4:.1f}" y1="{y(tick):.1f}" x2="{x(0):.1f}" y2="{y(tick):.1f}" '
            'stroke="#808080"/>',
            f'<text x="{x(0) - 7:.1f}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:g}</text>',
        ]
    parts += [
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 8}" text-anchor="middle">recall</text>',
        f'<text x="14" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">precision</text>',
    ]
    dots = []
    for index, curve in enumerate(curves):
        color = curve_color(index)
        points = step_points(curve)
        if points:
            path = " ".join(f"{x(r):.1f},{y(p):.1f}" for r, p in points)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>'
            )
        operating = curve.at(score_threshold)
        if operating is not None:  # drawn over every curve
            dots.append(
                f'<circle cx="{x(operating[0]):.1f}" cy="{y(operating[1]):.1f}" r="4" '
                f'fill="{color}" stroke="black"/>'
            )
        row = top + 8 + 18 * index
        parts += [
            f'<line x1="{width - right + 12}" y1="{row}" x2="{width - right + 30}" y2="{row}" '
            f'stroke="{color}" stroke-width="3"/>',
            f'<text x="{width - right + 35}" y="{row + 4}">{_escape(legend_text(curve))}</text>',
        ]
    parts += dots
    note = f"dots: score threshold {score_threshold:g}"
    parts += [f'<text x="{width - right + 12}" y="{top + plot_h}">{_escape(note)}</text>', "</svg>"]
    return "\n".join(parts) + "\n"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
