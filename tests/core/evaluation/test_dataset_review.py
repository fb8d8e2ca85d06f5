"""A dataset reviewed at one setting: counts summed over images, mAP of the filtered boxes."""

from __future__ import annotations

import numpy as np
import pytest

from napari_detlab.core.annotations import file_cache
from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.file_cache import FileCache
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.evaluation.dataset_review import review_dataset, review_prediction_folder
from napari_detlab.core.evaluation.review import Counts, ReviewThresholds
from napari_detlab.core.model.predict import Prediction, write_prediction
from oriented_photos import save_version_1, write_photo


def test_dataset_counts_are_the_sum_of_the_images_with_ground_truth():
    gt = ImageAnnotation(boxes=[[0, 0, 10, 10], [20, 20, 30, 30]], labels=["c", "c"], reviewed=True)
    predictions = {
        "a": Prediction(
            np.array([[0, 0, 10, 10], [60, 60, 70, 70], [61, 60, 71, 70]], np.float32),
            ["c", "c", "c"],
            np.array([0.9, 0.8, 0.7], np.float32),
        ),
        "b": Prediction(np.array([[5, 5, 9, 9]], np.float32), ["c"], [0.95]),
        "not_annotated": Prediction(),
    }
    truth = {"a": gt, "b": ImageAnnotation(reviewed=True)}  # b is a negative image
    # NMS at 0.5 removes the third box of "a" (IoU 0.82 with the second).
    review = review_dataset(
        predictions, truth, ["c"], ReviewThresholds(score_threshold=0.5), with_map=False
    )
    assert set(review.per_image) == {"a", "b"}
    assert review.per_image["a"] == Counts(tp=1, fp=1, missed=1)
    assert review.per_image["b"] == Counts(tp=0, fp=1, missed=0)
    assert review.counts == Counts(tp=1, fp=2, missed=1)
    assert review.counts.precision == pytest.approx(1 / 3)
    assert review.counts.recall == pytest.approx(1 / 2)
    assert review.metrics == {}  # with_map=False: no COCO evaluation


def test_dataset_map_is_computed_on_the_filtered_predictions():
    gt = {"a": ImageAnnotation(boxes=[[0, 0, 20, 20]], labels=["c"], reviewed=True)}
    boxes = np.array([[0, 0, 20, 20], [40, 40, 60, 60]], np.float32)
    # the false positive scores higher
    predictions = {"a": Prediction(boxes, ["c", "c"], np.array([0.4, 0.9], np.float32))}
    everything = review_dataset(predictions, gt, ["c"], ReviewThresholds(score_threshold=0.0))
    assert everything.metrics["map_50"] == pytest.approx(0.5, abs=0.02)
    # A cut between the two scores keeps only the false positive: mAP falls to zero, so the
    # figure really comes from the filtered set and not from the raw predictions.
    only_fp = review_dataset(predictions, gt, ["c"], ReviewThresholds(score_threshold=0.5))
    assert only_fp.metrics["map_50"] == pytest.approx(0.0, abs=1e-6)
    swapped = {"a": Prediction(boxes, ["c", "c"], np.array([0.9, 0.4], np.float32))}
    clean = review_dataset(swapped, gt, ["c"], ReviewThresholds(score_threshold=0.5))
    assert clean.metrics["map_50"] == pytest.approx(1.0)


def test_the_match_iou_of_the_thresholds_decides_what_counts_as_found():
    gt = {"a": ImageAnnotation(boxes=[[20, 20, 30, 30]], labels=["c"], reviewed=True)}
    # IoU 0.36 with the ground truth: a miss at the default 0.5, a find at 0.3
    predictions = {"a": Prediction(np.array([[20, 20, 26, 26]], np.float32), ["c"], [0.9])}
    strict = review_dataset(predictions, gt, ["c"], ReviewThresholds(), with_map=False)
    loose = review_dataset(predictions, gt, ["c"], ReviewThresholds(match_iou=0.3), with_map=False)
    assert strict.counts == Counts(tp=0, fp=1, missed=1)
    assert loose.counts == Counts(tp=1, fp=0, missed=0)


def test_a_prediction_folder_is_scored_from_its_files_and_reread_only_when_changed(
    tmp_path, monkeypatch
):
    # The files are written just now; files changed within the settle window are read on
    # every call (tests/core/annotations/test_index.py), which would hide the cache here.
    monkeypatch.setattr(file_cache, "SETTLE_NS", 0)
    store = AnnotationStore(tmp_path)
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    for stem in "abcd":
        (tmp_path / f"{stem}.png").write_bytes(b"")  # listed, never decoded
    for stem in "ac":
        store.save(f"{stem}.png", ImageAnnotation(gt, ["c", "c"], True, (40, 40)))
    store.save("b.png", ImageAnnotation(reviewed=True, image_size=(40, 40)))  # a negative
    found = Prediction(np.array([[0, 0, 10, 10]], np.float32), ["c"], np.array([0.9]), (40, 40))
    folder = tmp_path / "predictions"
    for stem in "abd":  # d has no annotation: not scored
        write_prediction(folder, stem, found)
    (folder / "c.pt").write_bytes(b"not a prediction file")  # left out, the rest scored

    loads: list[str] = []
    cache = FileCache()
    counting = FileCache.get

    def get(self, path, load):
        return counting(self, path, lambda p: loads.append(p.name) or load(p))

    cache.get = get.__get__(cache)
    thresholds = ReviewThresholds(score_threshold=0.5, nms_iou=0.5)
    figures = review_prediction_folder(folder, store, cache, thresholds, current_stem="a")
    assert figures.images == 2
    assert figures.dataset.per_image == {"a": Counts(1, 0, 1), "b": Counts(0, 1, 0)}
    assert figures.image.counts == Counts(1, 0, 1)
    assert figures.dataset.metrics["map_50"] == pytest.approx(0.5, abs=0.02)

    first = len(loads)
    again = review_prediction_folder(folder, store, cache, thresholds)
    assert loads[first:] == ["c.pt"] and again.image is None  # only the broken file, retried
    store.save("b.png", ImageAnnotation(found.boxes, ["c"], True, (40, 40)))  # b annotated
    second = len(loads)
    after = review_prediction_folder(folder, store, cache, thresholds)
    assert loads[second:] == ["b.pt", "c.pt"]  # the rewritten annotation, the broken file
    assert after.dataset.counts == Counts(tp=2, fp=0, missed=1)
    # The figures kept for the unchanged images and the dataset's COCO score follow b's file.
    assert after.dataset.per_image["a"] == Counts(1, 0, 1)
    assert after.dataset.metrics["map_50"] == pytest.approx(2 / 3, abs=0.02)


def test_old_prediction_files_of_a_phone_photo_are_scored_on_the_photo_as_shown(tmp_path):
    """A prediction and an annotation of the previous version (stored pixels) of an
    orientation-8 photo both land on its objects: two true positives, not two misses."""
    photo = write_photo(tmp_path / "photo.jpg", 8)
    store = AnnotationStore(tmp_path)
    save_version_1(store.path_for(photo), reviewed=True)
    save_version_1(tmp_path / "predictions" / "photo.pt", scores=[0.9, 0.8])
    figures = review_prediction_folder(
        tmp_path / "predictions", store, FileCache(), ReviewThresholds(), current_stem="photo"
    )
    assert figures.dataset.per_image == {"photo": Counts(tp=2, fp=0, missed=0)}
