"""Evaluation figures on a dataset with hand-known answers: confusion, PR curves, AP, splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluation_scene import (
    CLASSES,
    COCO_CELL_AP,
    PREDICTIONS,
    SPLIT,
    TRUTHS,
    write_checkpoint,
    write_scene,
)
from napari_detlab.core.annotations.file_cache import FileCache
from napari_detlab.core.evaluation.confusion import image_confusion
from napari_detlab.core.evaluation.dataset_review import review_prediction_folder
from napari_detlab.core.evaluation.pr_curve import PrCurve
from napari_detlab.core.evaluation.review import Counts, ReviewThresholds
from napari_detlab.core.evaluation.split_figures import evaluation_figures
from napari_detlab.core.evaluation.split_groups import (
    SplitSourceError,
    group_stems,
    read_run_split,
    split_of_checkpoint,
)
from napari_detlab.core.model.checkpoint import load_checkpoint, read_checkpoint_split

GROUPS = {"v1": "validation", "t1": "training", "n1": "new"}


def test_a_wrong_class_on_an_object_is_one_confusion_not_a_false_positive_and_a_miss():
    gt = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float32)
    boxes = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [0, 0, 10, 9], [50, 50, 60, 60]])
    matrix = image_confusion(
        boxes, ["cell", "crystal", "crystal", "crystal"], [0.9, 0.8, 0.7, 0.6],
        gt, ["cell", "cell"], CLASSES, iou_threshold=0.5,
    )  # fmt: skip
    # Box 2 is a crystal on cell A, which box 0 already found: a false positive, as is 3.
    assert matrix.counts.tolist() == [[1, 1, 0], [0, 0, 0], [0, 2, 0]]
    assert matrix.count("cell", "crystal") == 1
    assert matrix.count("false positive", "crystal") == 2
    assert matrix.cross_class() == [("cell", "crystal", 1)]


def test_an_overlap_below_the_match_iou_is_a_false_positive_and_a_miss():
    matrix = image_confusion(
        [[0, 0, 10, 4]], ["crystal"], [0.9], [[0, 0, 10, 10]], ["cell"], CLASSES,
        iou_threshold=0.5,
    )  # fmt: skip
    assert matrix.count("cell", "missed") == 1 and matrix.count("false positive", "crystal") == 1
    assert matrix.cross_class() == []


def test_each_split_has_its_counts_confusion_curves_and_ap_known_by_hand():
    figures = evaluation_figures(PREDICTIONS, TRUTHS, CLASSES, ReviewThresholds(), GROUPS)
    assert list(figures.splits) == ["validation", "training", "new"]
    assert figures.summary() == "validation (1 image) · training (1 image) · new (1 image)"
    val = figures.splits["validation"]
    assert val.confusion.counts.tolist() == [[1, 1, 0], [0, 0, 1], [1, 0, 0]]
    assert val.counts == Counts(tp=1, fp=2, missed=2)
    cell, crystal = val.curves["cell"], val.curves["crystal"]
    assert cell.ground_truth == 2 and crystal.ground_truth == 1
    np.testing.assert_allclose(cell.recall, [0.5, 0.5])
    np.testing.assert_allclose(cell.precision, [1.0, 0.5])
    np.testing.assert_allclose(crystal.recall, [0.0, 1.0])
    np.testing.assert_allclose(crystal.precision, [0.0, 0.5])
    assert cell.ap == pytest.approx(0.5) and crystal.ap == pytest.approx(0.5)
    assert cell.at(0.5) == (0.5, 0.5)  # the Review's counts: 1 of 2 cells, 1 of 2 cell boxes
    assert crystal.at(0.5) == (0.0, 0.0) and crystal.at(0.95) is None
    rows = {name: (ap, ap50, n) for name, ap, ap50, n in val.ap_rows()}
    assert rows["cell"] == pytest.approx((COCO_CELL_AP, COCO_CELL_AP, 2))
    assert rows["crystal"] == pytest.approx((0.5, 0.5, 1))
    train = figures.splits["training"]
    assert train.confusion.counts.tolist() == [[1, 0, 0], [0, 0, 0], [0, 0, 0]]
    assert train.ap_rows()[0][:2] == ("cell", pytest.approx(1.0))
    assert np.isnan(train.ap_rows()[1][1])  # no crystal among the training images


def test_figures_as_json_and_text_name_every_split_class_and_cell():
    figures = evaluation_figures(PREDICTIONS, TRUTHS, CLASSES, ReviewThresholds(), GROUPS)
    data = figures.as_dict()
    val = data["splits"]["validation"]
    assert val["images"] == 1 and val["counts"] == {"tp": 1, "fp": 2, "missed": 2}
    assert val["confusion"]["rows"] == ["cell", "crystal", "false positive"]
    assert val["confusion"]["columns"] == ["cell", "crystal", "missed"]
    assert val["confusion"]["cross_class"] == [
        {"truth": "cell", "predicted": "crystal", "count": 1}
    ]
    assert data["splits"]["training"]["per_class"][1]["ap"] is None
    text = figures.text()
    assert "== validation (1 image): 1 TP · 2 FP · 2 missed" in text
    assert "truth \\ predicted" in text and "false positive" in text


def test_an_empty_curve_has_no_operating_point_and_ap_zero_or_undefined():
    assert PrCurve("cell", ground_truth=3).ap == 0.0
    assert np.isnan(PrCurve("cell").ap) and PrCurve("cell").at(0.1) is None


def test_a_checkpoint_records_its_split_and_an_old_one_still_loads(tmp_path):
    new = write_checkpoint(tmp_path / "new" / "best.pt")
    assert read_checkpoint_split(new) == SPLIT
    assert load_checkpoint(new)["split"] == SPLIT
    old = write_checkpoint(tmp_path / "old" / "best.pt", with_split=False)
    assert "split" not in load_checkpoint(old) and read_checkpoint_split(old) is None
    assert split_of_checkpoint(old) is None
    (tmp_path / "old" / "split.json").write_text('{"train": ["t1.png"], "val": ["v1"]}')
    found = split_of_checkpoint(old)  # the run's own split.json, beside it
    assert found.group_of("t1") == "training" and found.group_of("v1") == "validation"
    assert found.group_of("n1") == "new"


def test_images_are_grouped_by_the_checkpoint_their_prediction_names(tmp_path):
    checkpoint = str(write_checkpoint(tmp_path / "best.pt"))
    groups, sources = group_stems(
        {"v1": checkpoint, "t1": checkpoint, "n1": checkpoint, "x": "", "y": "/gone.pt"}
    )
    assert groups == {
        "v1": "validation", "t1": "training", "n1": "new", "x": "unknown", "y": "unknown"
    }  # fmt: skip
    assert sources == [checkpoint]
    by_hand = read_run_split(tmp_path / "best.pt")
    assert group_stems({"v1": ""}, override=by_hand)[0] == {"v1": "validation"}


def test_a_split_given_by_hand_that_holds_none_is_refused_naming_it(tmp_path):
    (tmp_path / "split.json").write_text('{"train": 3}')
    with pytest.raises(SplitSourceError, match=r"split\.json: holds no split"):
        read_run_split(tmp_path)
    with pytest.raises(SplitSourceError, match="no such file"):
        read_run_split(tmp_path / "missing.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "bare.pt")
    with pytest.raises(SplitSourceError, match=r"bare\.pt: holds no split"):
        read_run_split(tmp_path / "bare.pt")


def test_the_review_of_a_prediction_folder_splits_its_figures(tmp_path):
    store, predictions = write_scene(tmp_path / "data")
    review = review_prediction_folder(predictions, store, FileCache(), ReviewThresholds())
    figures = review.figures
    assert figures.summary() == "validation (1 image) · training (1 image) · new (1 image)"
    assert figures.sources == [str(tmp_path / "data" / "run" / "best.pt")]
    val = figures.splits["validation"]
    assert val.confusion.count("cell", "crystal") == 1
    # The dock scores its kept boxes: the crystal under the threshold is not among them.
    assert dict((n, ap) for n, ap, _, _ in val.ap_rows()) == pytest.approx(
        {"cell": COCO_CELL_AP, "crystal": 0.0}
    )
    assert review.dataset.counts == Counts(tp=3, fp=2, missed=2)  # all three images together
    counts = review.dataset.counts.summary()
    assert review.headline() == (
        f"All 3 images (training images included, see the split below): {counts}"
    )


def test_the_dataset_line_says_all_images_only_when_some_were_trained_on(tmp_path):
    store, predictions = write_scene(tmp_path / "data")
    (tmp_path / "split.json").write_text('{"train": [], "val": ["v1", "t1", "n1"]}')
    review = review_prediction_folder(
        predictions, store, FileCache(), ReviewThresholds(), split=read_run_split(tmp_path)
    )
    assert list(review.figures.splits) == ["validation"]
    assert review.headline() == f"3 images: {review.dataset.counts.summary()}"
