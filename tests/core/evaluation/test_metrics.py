"""COCO metrics: known answers, and exact agreement with pycocotools run the textbook way."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore, ClassSpec
from napari_detlab.core.evaluation.metrics import (
    METRIC_KEYS,
    coco_metrics,
    coco_metrics_from_folders,
    format_metrics_table,
    metrics_to_json,
)
from napari_detlab.core.model.predict import Prediction, write_prediction
from oriented_photos import save_version_1, write_photo

CLASSES = ["cell", "crystal"]


def gt(boxes, labels, size=(100, 100), reviewed=True):
    return ImageAnnotation(np.asarray(boxes, np.float32).reshape(-1, 4), labels, reviewed, size)


def pred(boxes, scores, labels):
    return {
        "boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
        "scores": scores,
        "labels": labels,
    }


def test_perfect_predictions_score_one():
    truth = {
        "a": gt([[10, 10, 40, 50], [50, 50, 90, 80]], ["cell", "crystal"]),
        "b": gt([[5, 5, 25, 25]], ["cell"]),
        "neg": gt([], []),
    }
    predictions = {s: pred(a.boxes, [0.9] * len(a), a.labels) for s, a in truth.items()}
    metrics = coco_metrics(predictions, truth, CLASSES)
    # pycocotools divides by tp + fp + eps, so "perfect" is 1 within a few ulps.
    one = pytest.approx(1.0, abs=1e-12)
    assert metrics["map"] == one and metrics["map_50"] == one and metrics["map_75"] == one
    assert metrics["per_class"] == {"cell": one, "crystal": one}
    assert metrics["per_class_50"] == {"cell": one, "crystal": one}
    assert metrics["mar_100"] == one
    assert math.isnan(metrics["map_large"])  # no box above 96x96 pixels: undefined, not 0


def test_hand_computed_precision_recall_curve():
    # Two objects; detections ranked TP (0.9), FP (0.8), TP (0.7). Precision is 1 up to recall
    # 0.5 and 2/3 after, so COCO's 101-point AP is (51 * 1 + 50 * 2/3) / 101 at every IoU.
    truth = {"a": gt([[0, 0, 20, 20], [50, 50, 70, 70]], ["cell", "cell"])}
    predictions = {
        "a": pred(
            [[0, 0, 20, 20], [80, 0, 99, 20], [50, 50, 70, 70]], [0.9, 0.8, 0.7], ["cell"] * 3
        )
    }
    metrics = coco_metrics(predictions, truth, ["cell"])
    expected = (51 + 50 * 2 / 3) / 101
    assert metrics["map"] == pytest.approx(expected, abs=1e-12)
    assert metrics["map_50"] == pytest.approx(expected, abs=1e-12)
    assert metrics["mar_1"] == 0.5 and metrics["mar_100"] == 1.0


def test_iou_062_counts_for_three_of_ten_thresholds():
    # IoU of [0,0,10,6.2] with [0,0,10,10] is 0.62: a hit at IoU 0.50, 0.55 and 0.60 only.
    truth = {"a": gt([[0, 0, 10, 10]], ["cell"])}
    predictions = {"a": pred([[0, 0, 10, 6.2]], [0.5], ["cell"])}
    metrics = coco_metrics(predictions, truth, ["cell"])
    assert metrics["map"] == pytest.approx(0.3)
    assert metrics["map_50"] == pytest.approx(1.0) and metrics["map_75"] == 0.0


def test_no_predictions_score_zero_and_negatives_only_are_undefined():
    truth = {"a": gt([[0, 0, 20, 20]], ["cell"]), "b": gt([], [])}
    metrics = coco_metrics({}, truth, CLASSES)
    assert metrics["map"] == 0.0 and metrics["per_class"]["cell"] == 0.0
    assert math.isnan(metrics["per_class"]["crystal"])  # no crystal in the ground truth
    only_negatives = coco_metrics(
        {"b": pred([[0, 0, 5, 5]], [0.9], ["cell"])}, {"b": truth["b"]}, CLASSES
    )
    assert all(math.isnan(only_negatives[key]) for key in METRIC_KEYS)
    assert set(only_negatives["per_class"]) == set(CLASSES)


def test_class_without_ground_truth_does_not_change_the_mean():
    truth = {"a": gt([[0, 0, 20, 20]], ["cell"])}
    predictions = {"a": pred([[0, 0, 20, 20], [40, 40, 60, 60]], [0.9, 0.8], ["cell", "crystal"])}
    metrics = coco_metrics(predictions, truth, CLASSES)
    assert metrics["map"] == pytest.approx(1.0) and math.isnan(metrics["per_class"]["crystal"])


def test_unknown_classes_are_refused_with_their_name():
    truth = {"a": gt([[0, 0, 20, 20]], ["cell"])}
    with pytest.raises(ValueError, match="'dog'"):
        coco_metrics({"a": pred([[0, 0, 20, 20]], [0.9], ["dog"])}, truth, CLASSES)
    with pytest.raises(ValueError, match="'cat'"):
        coco_metrics({}, {"a": gt([[0, 0, 20, 20]], ["cat"])}, CLASSES)


def _random_case(seed: int):
    """Jittered, swapped, missed and invented boxes over images with 0-8 objects."""
    rng = np.random.default_rng(seed)
    truth, predictions = {}, {}
    for index in range(12):
        n = int(rng.integers(0, 9))
        xy = rng.uniform(0, 400, size=(n, 2))
        wh = rng.choice([8.0, 20.0, 50.0, 120.0], size=(n, 1)) * rng.uniform(0.7, 1.4, size=(n, 2))
        boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
        labels = [CLASSES[i] for i in rng.integers(0, 2, size=n)]
        truth[f"img{index}"] = gt(boxes, labels, size=(600, 600), reviewed=True)
        keep = rng.random(n) > 0.2
        p_boxes = boxes[keep] + rng.normal(0, 3, size=(int(keep.sum()), 4)).astype(np.float32)
        p_labels = [
            lab if rng.random() > 0.1 else CLASSES[1 - CLASSES.index(lab)]
            for lab, k in zip(labels, keep, strict=True)
            if k
        ]
        extra = int(rng.integers(0, 4))
        fxy = rng.uniform(0, 500, size=(extra, 2))
        p_boxes = np.concatenate([p_boxes, np.concatenate([fxy, fxy + 30], axis=1)]).astype(
            np.float32
        )
        p_labels += [CLASSES[i] for i in rng.integers(0, 2, size=extra)]
        p_boxes[:, 2:] = np.maximum(p_boxes[:, 2:], p_boxes[:, :2] + 1)
        predictions[f"img{index}"] = pred(
            p_boxes, rng.random(len(p_labels)).astype(np.float32), p_labels
        )
    return truth, predictions


def _reference_stats(tmp_path: Path, truth, predictions, cat_ids=None) -> np.ndarray:
    """pycocotools the way its README does it: JSON files on disk, COCO(), loadRes(), COCOeval."""
    images, annotations, results = [], [], []
    for image_id, stem in enumerate(sorted(truth), start=1):
        images.append({"id": image_id, "file_name": f"{stem}.png", "height": 600, "width": 600})
        for box, label in zip(truth[stem].boxes.tolist(), truth[stem].labels, strict=True):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id,
                "category_id": CLASSES.index(label) + 1, "bbox": [box[0], box[1], w, h],
                "area": w * h, "iscrowd": 0,
            })  # fmt: skip
        p = predictions[stem]
        for box, score, label in zip(
            p["boxes"].tolist(), p["scores"].tolist(), p["labels"], strict=True
        ):
            results.append({
                "image_id": image_id, "category_id": CLASSES.index(label) + 1,
                "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]], "score": score,
            })  # fmt: skip
    gt_file, res_file = tmp_path / "gt.json", tmp_path / "res.json"
    gt_file.write_text(json.dumps({
        "info": {}, "images": images, "annotations": annotations,
        "categories": [{"id": i + 1, "name": name} for i, name in enumerate(CLASSES)],
    }))  # fmt: skip
    res_file.write_text(json.dumps(results))
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt_file))
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(str(res_file)), "bbox")
        if cat_ids is not None:
            evaluator.params.catIds = cat_ids
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats


@pytest.mark.parametrize("seed", [0, 1])
def test_numbers_match_pycocotools_exactly(tmp_path, seed):
    truth, predictions = _random_case(seed)
    metrics = coco_metrics(predictions, truth, CLASSES)
    ours = np.array([metrics[key] for key in METRIC_KEYS])
    reference = _reference_stats(tmp_path, truth, predictions)
    reference = np.where(reference < 0, np.nan, reference)
    np.testing.assert_array_equal(ours, reference)  # exact, NaN where pycocotools says -1
    assert 0.05 < metrics["map"] < 0.95  # a case that exercises the ranking, not a trivial one
    for k, name in enumerate(CLASSES):
        per_class = _reference_stats(tmp_path, truth, predictions, cat_ids=[k + 1])
        assert metrics["per_class"][name] == pytest.approx(per_class[0], abs=1e-12)
        assert metrics["per_class_50"][name] == pytest.approx(per_class[1], abs=1e-12)


def test_metrics_are_silent(capsys):
    coco_metrics({}, {"a": gt([[0, 0, 20, 20]], ["cell"])}, CLASSES)
    assert capsys.readouterr().out == ""


def test_concurrent_evaluations_print_nothing_and_swallow_no_one_elses_output(capfd):
    """Evaluations in several threads at once (the Review dock scores in a worker while the
    CLI or a benchmark scores too) leave stdout alone: nothing of pycocotools' appears, and
    every line the main thread prints meanwhile arrives, in order."""
    import sys
    import threading

    truth = {f"i{k}": gt([[0, 0, 20, 20], [30, 30, 60, 70]], ["cell", "crystal"]) for k in range(6)}
    predictions = {
        stem: pred([[1, 1, 20, 20], [30, 30, 58, 70]], [0.9, 0.8], ["cell", "crystal"])
        for stem in truth
    }
    stdout_before = sys.stdout
    start = threading.Barrier(9)
    failures: list[BaseException] = []

    def evaluate_repeatedly() -> None:
        start.wait()
        try:
            for _ in range(6):
                assert coco_metrics(predictions, truth, CLASSES)["map_50"] == pytest.approx(1.0)
        except BaseException as error:  # reported below, on the test's thread
            failures.append(error)

    threads = [threading.Thread(target=evaluate_repeatedly) for _ in range(8)]
    for thread in threads:
        thread.start()
    start.wait()
    markers = [f"marker {k}" for k in range(200)]
    for marker in markers:
        print(marker, flush=True)
    for thread in threads:
        thread.join()
    print("after", flush=True)

    assert not failures
    assert sys.stdout is stdout_before
    assert capfd.readouterr().out.splitlines() == [*markers, "after"]


def test_pycocotools_used_directly_still_prints(capfd):
    """Only our own evaluations are hushed: someone using pycocotools in the same process
    (a script in napari's console) still sees its summary."""
    coco_metrics({}, {"a": gt([[0, 0, 20, 20]], ["cell"])}, CLASSES)
    coco = COCO()
    coco.dataset = {"images": [], "annotations": [], "categories": []}
    coco.createIndex()
    assert "index created!" in capfd.readouterr().out


def test_json_and_table_output_handle_undefined_values():
    metrics = coco_metrics({}, {"a": gt([[0, 0, 20, 20]], ["cell"])}, CLASSES)
    data = json.loads(metrics_to_json(metrics, images=1), parse_constant=lambda c: pytest.fail(c))
    assert data["map"] == 0.0 and data["map_large"] is None and data["per_class"]["crystal"] is None
    table = format_metrics_table(metrics)
    assert "mAP @[.50:.95]" in table and "n/a" in table and "crystal" in table


def test_metrics_from_folders_scores_images_with_both_files(tmp_path):
    store = AnnotationStore(tmp_path)
    store.save_classes([ClassSpec("cell", "#ff0000"), ClassSpec("crystal", "#00ff00")])
    truth = {"a": gt([[0, 0, 20, 20]], ["cell"]), "b": gt([[5, 5, 30, 30]], ["crystal"])}
    for stem, annotation in truth.items():
        (tmp_path / f"{stem}.png").write_bytes(b"")  # only the name matters to the store
        store.save(stem, annotation)
    (tmp_path / "c.png").write_bytes(b"")  # never annotated: not scored
    pred_dir = tmp_path / "predictions"
    write_prediction(pred_dir, "a", Prediction(truth["a"].boxes, ["cell"], [0.9]))
    write_prediction(pred_dir, "c", Prediction([[0, 0, 5, 5]], ["cell"], [0.9]))
    metrics = coco_metrics_from_folders(pred_dir, tmp_path)
    assert metrics["map"] == pytest.approx(
        1.0
    )  # b has no prediction file and is not counted as missed
    write_prediction(pred_dir, "b", Prediction([[5, 5, 30, 30]], ["dog"], [0.9]))
    with pytest.raises(ValueError, match=r"class mismatch.*'dog'"):
        coco_metrics_from_folders(pred_dir, tmp_path)


def test_old_predictions_and_annotations_of_a_phone_photo_still_match(tmp_path):
    """Both written by the previous version on the stored pixels of an orientation-6 photo:
    each is moved onto the photo as shown, so they still score as found."""
    photo = write_photo(tmp_path / "photo.jpg", 6)
    save_version_1(AnnotationStore(tmp_path).path_for(photo), reviewed=True)
    save_version_1(tmp_path / "predictions" / "photo.pt", scores=[0.9, 0.8])
    metrics = coco_metrics_from_folders(tmp_path / "predictions", tmp_path)
    assert metrics["map"] == pytest.approx(1.0)


def test_a_remembered_score_follows_every_change_of_boxes_scores_or_classes():
    """coco_metrics remembers its last answers by their inputs' content: asking again is
    free, and any change (a moved box, another score, a class) is scored afresh."""
    truth = {"a": ImageAnnotation([[0, 0, 10, 10]], ["c"], True, (20, 20))}
    hit = Prediction(np.array([[0, 0, 10, 10]], np.float32), ["c"], np.array([0.9]))
    first = coco_metrics({"a": hit}, truth, ["c"])
    assert first["map"] == pytest.approx(1.0)
    first["map"] = -5.0  # a caller scribbling on its answer changes no later one
    assert coco_metrics({"a": hit}, truth, ["c"])["map"] == pytest.approx(1.0)
    moved = Prediction(np.array([[5, 5, 15, 15]], np.float32), ["c"], np.array([0.9]))
    assert coco_metrics({"a": moved}, truth, ["c"])["map"] == pytest.approx(0.0)
    truth["a"].boxes[0] = [5, 5, 15, 15]  # the same object, edited in place
    assert coco_metrics({"a": moved}, truth, ["c"])["map"] == pytest.approx(1.0)
    assert math.isnan(coco_metrics({"a": moved}, truth, ["c", "d"])["per_class"]["d"])


def _field_of_cells(count: int, found: int) -> tuple[dict, dict]:
    """One image of ``count`` separate 8 x 8 cells, the first ``found`` of them predicted
    exactly, each with its own score."""
    corner = np.stack(np.meshgrid(np.arange(25) * 10, np.arange(40) * 10), -1).reshape(-1, 2)
    boxes = np.c_[corner, corner + 8][:count]
    truth = {"field": gt(boxes, ["cell"] * count, size=(400, 250))}
    scores = np.linspace(0.99, 0.5, found)
    return truth, {"field": pred(boxes[:found], scores, ["cell"] * found)}


def test_a_dense_image_counts_as_many_detections_as_it_has_objects():
    """COCO counts 100 detections per image and class: on 300 cells all found, its recall
    stops at a third. Here the count rises to the image's 300 objects, so finding all of them
    scores 1 and finding half scores what COCO's 101-point AP gives half the recall."""
    truth, everything = _field_of_cells(300, found=300)
    metrics = coco_metrics(everything, truth, CLASSES)
    assert metrics["max_detections"] == 300
    assert metrics["map"] == pytest.approx(1.0) and metrics["mar_100"] == pytest.approx(1.0)
    assert "mAR @300" in format_metrics_table(metrics)
    _, half = _field_of_cells(300, found=150)
    assert coco_metrics(half, truth, CLASSES)["map"] == pytest.approx(51 / 101)

    sparse, found = _field_of_cells(40, found=40)  # COCO's own figures where it is not dense
    assert coco_metrics(found, sparse, CLASSES)["max_detections"] == 100
    assert "mAR @100" in format_metrics_table(coco_metrics(found, sparse, CLASSES))


def test_an_image_scored_again_when_a_dense_one_raises_the_count():
    """An image whose objects rank below 110 false detections scores 0 while 100 are
    counted; once a dense image joins the dataset and 300 are counted, its kept evaluation
    must not be reused: the figures are those of a fresh evaluation."""
    from napari_detlab.core.annotations.file_cache import index_disabled

    truth, _ = _field_of_cells(40, found=0)
    cells = truth["field"].boxes
    decoys = np.c_[
        np.full(110, 300.0), np.arange(110) * 3.0, np.full(110, 305.0), np.arange(110) * 3 + 2
    ]
    late = {"field": pred(np.r_[decoys, cells], np.linspace(0.99, 0.01, 150), ["cell"] * 150)}
    assert coco_metrics(late, truth, CLASSES)["map"] == 0.0  # its cells are past the 100th
    dense_truth, dense_found = _field_of_cells(300, found=300)
    both_truth = {"sparse": truth["field"], "dense": dense_truth["field"]}
    both = {"sparse": late["field"], "dense": dense_found["field"]}
    kept = coco_metrics(both, both_truth, CLASSES)
    with index_disabled():
        fresh = coco_metrics(both, both_truth, CLASSES)
    assert kept["max_detections"] == fresh["max_detections"] == 300
    assert metrics_to_json(kept) == metrics_to_json(fresh)  # NaN written as null on both
    assert 0 < kept["map"] < 1
