"""One image under review, without a viewer: filter -> match -> status, the overlay's arrays,
and accepting predictions into the annotation (duplicates, invalid boxes, other keys)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.evaluation import image_review
from napari_detlab.core.evaluation.image_review import (
    ImagePredictions,
    merge_predictions,
    review_image,
    review_overlay,
)
from napari_detlab.core.evaluation.review import Counts, ReviewThresholds
from napari_detlab.core.model.predict import Prediction

# Three objects annotated: two nuclei and a piece of debris.
GT = ImageAnnotation(
    boxes=[[0, 0, 20, 20], [50, 0, 70, 20], [0, 50, 20, 70]],
    labels=["nucleus", "nucleus", "debris"],
    reviewed=True,
    image_size=(100, 100),
)
PREDICTION = Prediction(
    boxes=np.array(
        [
            [0, 0, 20, 20],  # 0: the first nucleus (TP)
            [0, 0, 20, 18],  # 1: a second guess at it (IoU 0.9): NMS removes it
            [0, 50, 20, 70],  # 2: the debris (TP)
            [0, 50, 20, 70],  # 3: the debris called a nucleus, and surer: FP; wins class-agnostic
            [80, 80, 95, 95],  # 4: nothing there, low score
        ],
        np.float32,
    ),
    labels=["nucleus", "nucleus", "debris", "nucleus", "nucleus"],
    scores=np.array([0.95, 0.85, 0.65, 0.75, 0.25], np.float32),
    image_size=(100, 100),
    score_floor=0.01,
    model_nms_thresh=0.5,
)


# -- review_image -------------------------------------------------------------------------------
def test_review_image_filters_matches_and_gives_each_kept_box_its_status():
    review = review_image(ImagePredictions(PREDICTION), GT, ReviewThresholds())
    assert review.kept.tolist() == [0, 3, 2]  # 1 suppressed by 0, 4 below the score; best first
    assert review.status.tolist() == ["tp", "fp", "tp"]
    assert review.missed.tolist() == [1]
    assert review.counts == Counts(tp=2, fp=1, missed=1)
    assert review.match.matched_gt.tolist() == [0, -1, 2]
    assert review.summary() == "2 TP · 1 FP · 1 missed — precision 0.67, recall 0.67"


def test_class_agnostic_nms_lets_the_better_guess_of_another_class_win():
    agnostic = ReviewThresholds(class_agnostic=True)
    review = review_image(ImagePredictions(PREDICTION), GT, agnostic)
    assert review.kept.tolist() == [0, 3]  # the nucleus (0.75) suppresses the debris (0.65)
    assert review.status.tolist() == ["tp", "fp"]
    assert review.missed.tolist() == [1, 2]


def test_every_threshold_of_the_setting_acts():
    image = ImagePredictions(PREDICTION)
    low = review_image(image, GT, ReviewThresholds(score_threshold=0.2, nms_iou=1.0))
    assert low.kept.tolist() == [0, 1, 3, 2, 4]  # nothing cut, nothing suppressed
    assert low.status.tolist() == ["tp", "fp", "fp", "tp", "fp"]  # 1 finds gt 0 taken
    # A nucleus overlapping gt 1 by 0.9 finds it at the default match IoU, not at 0.95.
    near = ImagePredictions(Prediction([[50, 0, 70, 18]], ["nucleus"], [0.9]))
    found = review_image(near, GT, ReviewThresholds())
    strict = review_image(near, GT, ReviewThresholds(match_iou=0.95))
    assert found.status.tolist() == ["tp"] and found.missed.tolist() == [0, 2]
    assert strict.status.tolist() == ["fp"] and strict.missed.tolist() == [0, 1, 2]


def test_an_image_nobody_annotated_is_unchecked_with_no_counts():
    review = review_image(ImagePredictions(PREDICTION), None, ReviewThresholds())
    assert review.kept.tolist() == [0, 3, 2]
    assert review.status.tolist() == ["unchecked"] * 3
    assert review.missed.size == 0 and review.match is None and review.counts is None
    assert review.summary() == "3 predictions shown; no annotation to compare with"


def test_an_image_without_predictions_misses_all_its_ground_truth():
    review = review_image(ImagePredictions(Prediction()), GT, ReviewThresholds())
    assert review.kept.size == 0 and review.status.size == 0
    assert review.counts == Counts(tp=0, fp=0, missed=3)
    empty = image_review.ImageReview.empty()
    assert empty.kept.dtype == np.int64 and empty.kept.size == 0 and empty.match is None


# -- what every slider step reuses, and the overlay ------------------------------------------
def test_image_predictions_hold_the_edges_corners_and_captions_in_napari_order():
    image = ImagePredictions(PREDICTION)
    assert len(image) == 5
    # box 2 is x 0..20, y 50..70: edges start at TL, TR, BR, BL as (row, col)
    np.testing.assert_array_equal(
        image.segments[8:12],
        [[[50, 0], [0, 20]], [[50, 20], [20, 0]], [[70, 20], [0, -20]], [[70, 0], [-20, 0]]],
    )
    np.testing.assert_array_equal(image.corners[2], [50, 0])
    assert image.captions.tolist() == [
        "nucleus 0.95", "nucleus 0.85", "debris 0.65", "nucleus 0.75", "nucleus 0.25",
    ]  # fmt: skip
    assert image.label_ids[0] == image.label_ids[1] != image.label_ids[2]
    assert image.describe("a.png") == (
        "5 raw predictions for a.png (model score floor 0.01, model NMS 0.50 per class)"
    )
    unknown = ImagePredictions(Prediction(PREDICTION.boxes, PREDICTION.labels, PREDICTION.scores))
    assert unknown.describe("a.png") == "5 raw predictions for a.png"


def test_the_overlay_outlines_kept_boxes_then_misses_and_captions_the_best():
    image = ImagePredictions(PREDICTION)
    review = review_image(image, GT, ReviewThresholds())
    overlay = review_overlay(image, review, GT, max_captions=2)
    expected = np.concatenate([image.segments[4 * k : 4 * k + 4] for k in (0, 3, 2)])
    np.testing.assert_array_equal(overlay.segments[:12], expected)
    np.testing.assert_array_equal(overlay.segments[12:], ImagePredictions(
        Prediction(GT.boxes[[1]], ["nucleus"], [1.0])
    ).segments)  # fmt: skip
    assert overlay.status.tolist() == ["tp", "fp", "tp", "missed"]
    np.testing.assert_array_equal(overlay.corners, [[0, 0], [50, 0]])  # boxes 0 and 3
    assert overlay.captions == ["nucleus 0.95", "nucleus 0.75"]
    assert overlay.caption_status == ["tp", "fp"]

    unchecked = review_image(image, None, ReviewThresholds())
    plain = review_overlay(image, unchecked, None, max_captions=100)
    assert len(plain.segments) == 12 and plain.status.tolist() == ["unchecked"] * 3
    empty = image_review.ReviewOverlay.empty()
    assert empty.segments.shape == (0, 2, 2) and empty.corners.shape == (0, 2)


# -- merge_predictions --------------------------------------------------------------------------
MERGE_PREDICTION = Prediction(
    boxes=np.array(
        [
            [10, 10, 40, 39],  # 0: IoU 0.97 with the existing cell: already there
            [60, 10, 90, 40],  # 1: where the crystal is, but a cell: added
            [10, 10, 40, 33],  # 2: IoU 0.77 with the existing cell: added
            [95, 95, 130, 130],  # 3: overshoots the 100 x 100 image: clipped, added
            [100, 50, 120, 60],  # 4: wholly outside: clipped to nothing, dropped
            [50, 50, 50.5, 60],  # 5: half a pixel wide (a click): dropped
        ],
        np.float32,
    ),
    labels=["cell"] * 6,
    scores=np.linspace(0.9, 0.4, 6),
    image_size=(100, 100),
)


def _existing(extra: dict) -> ImageAnnotation:
    return ImageAnnotation(
        boxes=[[10, 10, 40, 40], [60, 10, 90, 40]],
        labels=["cell", "crystal"],
        reviewed=False,
        image_size=(100, 100),
        extra=extra,
    )


def test_merge_adds_valid_new_boxes_once_and_marks_the_image_reviewed():
    existing = _existing({})
    merged = merge_predictions(existing, MERGE_PREDICTION, np.arange(6))
    assert (merged.added, merged.already_there) == (3, 1)
    annotation = merged.annotation
    assert annotation.reviewed and annotation.image_size == (100, 100)
    assert annotation.labels == ["cell", "crystal", "cell", "cell", "cell"]
    added = [[60, 10, 90, 40], [10, 10, 40, 33], [95, 95, 100, 100]]  # 1, 2, 3 clipped
    np.testing.assert_array_equal(annotation.boxes, [*existing.boxes.tolist(), *added])
    assert annotation.boxes.dtype == np.float32
    assert not existing.reviewed and len(existing) == 2  # the input is left as it was

    # Accepting the same boxes again adds nothing: every valid one is already there.
    again = merge_predictions(annotation, MERGE_PREDICTION, np.arange(6))
    assert (again.added, again.already_there) == (0, 4)
    assert len(again.annotation) == 5


def test_the_duplicate_iou_decides_what_is_already_there():
    strict = merge_predictions(_existing({}), MERGE_PREDICTION, np.array([0, 2]), 0.99)
    assert (strict.added, strict.already_there) == (2, 0)  # IoU 0.97 and 0.77 both new
    loose = merge_predictions(_existing({}), MERGE_PREDICTION, np.array([0, 2]), 0.7)
    assert (loose.added, loose.already_there) == (0, 2)


@pytest.mark.parametrize("existing", [None, ImageAnnotation()])
def test_merge_into_an_image_without_annotation_takes_the_predictions_size(existing):
    merged = merge_predictions(existing, MERGE_PREDICTION, np.array([2, 1]))
    assert (merged.added, merged.already_there) == (2, 0)
    assert merged.annotation.image_size == (100, 100)
    assert merged.annotation.reviewed and merged.annotation.extra == {}
    np.testing.assert_array_equal(merged.annotation.boxes, MERGE_PREDICTION.boxes[[2, 1]])


def test_merge_keeps_the_other_keys_and_per_box_ones_stay_aligned(tmp_path):
    extra = {
        "difficult": [True, False],  # VOC's per-box flags
        "attributes": [{"occluded": True}, {}],  # another tool's per-box values
        "iscrowd": torch.tensor([0, 1]),  # a per-box tensor
        "source": "voc",  # about the image
        "stale": [1, 2, 3],  # no longer fits the boxes: readers ignore it, so does the merge
    }
    existing = _existing(extra)
    annotation = merge_predictions(existing, MERGE_PREDICTION, np.arange(6)).annotation
    assert annotation.extra["difficult"] == [True, False, False, False, False]
    assert annotation.extra["attributes"] == [{"occluded": True}, {}, {}, {}, {}]
    assert annotation.extra["iscrowd"].tolist() == [0, 1, 0, 0, 0]
    assert annotation.extra["source"] == "voc" and annotation.extra["stale"] == [1, 2, 3]
    assert existing.extra["difficult"] == [True, False]  # not changed in place

    store = AnnotationStore(tmp_path)
    store.save("a.png", annotation)  # what the dock writes survives the store's round trip
    loaded = store.load("a.png")
    assert loaded.extra["difficult"] == [True, False, False, False, False]
    assert loaded.extra["iscrowd"].tolist() == [0, 1, 0, 0, 0]


def test_per_box_keys_of_an_image_without_boxes_get_known_defaults_only():
    empty = ImageAnnotation(reviewed=True, extra={"difficult": [], "notes": [], "source": "x"})
    merged = merge_predictions(empty, MERGE_PREDICTION, np.array([1, 2])).annotation
    assert merged.extra["difficult"] == [False, False]  # a new box is not difficult
    assert merged.extra["notes"] == []  # no entry to take a type from: left, as stale
    assert merged.extra["source"] == "x"
    unchanged = merge_predictions(empty, MERGE_PREDICTION, np.array([4, 5])).annotation
    assert unchanged.extra["difficult"] == [] and len(unchanged) == 0  # nothing was added
