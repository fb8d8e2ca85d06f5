"""Anchors on the real feature-map grid, what they catch, and anchors fitted to the boxes.

The function :func:`.coverage.coverage` is not re-exported: its name would hide the
:mod:`.coverage` module on this package.
"""

from __future__ import annotations

from napari_detlab.core.anchors.coverage import (
    SIZE_BUCKETS,
    BoxCoverage,
    ImageBoxes,
    brute_force_coverage,
    brute_force_image,
)
from napari_detlab.core.anchors.dataset_boxes import DatasetBoxes, read_image_boxes
from napari_detlab.core.anchors.figures import (
    UNCAUGHT_COLUMNS,
    ZONE_COLORS,
    CoverageFigures,
    ShapeFigures,
    UncaughtBox,
    format_percent,
    zone_color,
)
from napari_detlab.core.anchors.layout import (
    AnchorLayout,
    anchor_shapes,
    feature_map_sizes,
    resize_geometry,
    transform_geometry,
)
from napari_detlab.core.anchors.report import AnchorReport, anchor_report
from napari_detlab.core.anchors.suggest import (
    AnchorFitError,
    AnchorSuggestion,
    config_anchor_wh,
    iou_kmeans,
    resized_shapes,
    shape_metrics,
    suggest_anchors,
)
from napari_detlab.core.anchors.tuning import AnchorFields, AnchorTuning

__all__ = [
    "SIZE_BUCKETS",
    "UNCAUGHT_COLUMNS",
    "ZONE_COLORS",
    "AnchorFields",
    "AnchorFitError",
    "AnchorLayout",
    "AnchorReport",
    "AnchorSuggestion",
    "AnchorTuning",
    "BoxCoverage",
    "CoverageFigures",
    "DatasetBoxes",
    "ImageBoxes",
    "ShapeFigures",
    "UncaughtBox",
    "anchor_report",
    "anchor_shapes",
    "brute_force_coverage",
    "brute_force_image",
    "config_anchor_wh",
    "feature_map_sizes",
    "format_percent",
    "iou_kmeans",
    "read_image_boxes",
    "resize_geometry",
    "resized_shapes",
    "shape_metrics",
    "suggest_anchors",
    "transform_geometry",
    "zone_color",
]
