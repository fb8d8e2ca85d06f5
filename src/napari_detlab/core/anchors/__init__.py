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
    dataset_boxes,
)
from napari_detlab.core.anchors.layout import (
    AnchorLayout,
    anchor_shapes,
    feature_map_sizes,
    resize_geometry,
    transform_geometry,
)
from napari_detlab.core.anchors.suggest import (
    AnchorSuggestion,
    anchor_report,
    iou_kmeans,
    shape_metrics,
    suggest_anchors,
)

__all__ = [
    "SIZE_BUCKETS",
    "AnchorLayout",
    "AnchorSuggestion",
    "BoxCoverage",
    "ImageBoxes",
    "anchor_report",
    "anchor_shapes",
    "brute_force_coverage",
    "brute_force_image",
    "dataset_boxes",
    "feature_map_sizes",
    "iou_kmeans",
    "resize_geometry",
    "shape_metrics",
    "suggest_anchors",
    "transform_geometry",
]
