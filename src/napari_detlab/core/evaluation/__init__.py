"""Scoring predictions against the ground truth: COCO metrics and the Review rules."""

from __future__ import annotations

from napari_detlab.core.evaluation.metrics import (
    METRIC_KEYS,
    EvaluationError,
    coco_ground_truth,
    coco_metrics,
    coco_metrics_from_folders,
    coco_results,
    empty_metrics,
    format_metrics_table,
    load_folder_pairs,
    metrics_to_json,
)
from napari_detlab.core.evaluation.review import (
    Counts,
    DatasetReview,
    FolderReview,
    Match,
    filter_predictions,
    label_ids,
    match_predictions,
    precision_recall,
    review_dataset,
    review_prediction_folder,
)

__all__ = [
    "METRIC_KEYS",
    "Counts",
    "DatasetReview",
    "EvaluationError",
    "FolderReview",
    "Match",
    "coco_ground_truth",
    "coco_metrics",
    "coco_metrics_from_folders",
    "coco_results",
    "empty_metrics",
    "filter_predictions",
    "format_metrics_table",
    "label_ids",
    "load_folder_pairs",
    "match_predictions",
    "metrics_to_json",
    "precision_recall",
    "review_dataset",
    "review_prediction_folder",
]
