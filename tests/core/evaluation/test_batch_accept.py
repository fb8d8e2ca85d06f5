"""Accepting predictions on many images at once: files on disk, the mark, and the batch undo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.statistics import MODEL_ACCEPTED, dataset_statistics
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.evaluation.batch_accept import (
    BatchAcceptError,
    apply_accept,
    has_batch,
    journal_path,
    plan_accept,
    undo_accept,
)
from napari_detlab.core.evaluation.review import ReviewThresholds
from napari_detlab.core.model.predict import Prediction, write_prediction

AT_HALF = ReviewThresholds(score_threshold=0.5, nms_iou=0.5)


def _prediction(boxes: list[list[float]], scores: list[float], label: str = "cell") -> Prediction:
    return Prediction(
        np.array(boxes, np.float32).reshape(-1, 4),
        [label] * len(boxes),
        np.array(scores, np.float32),
        image_size=(100, 100),
    )


@pytest.fixture
def dataset(tmp_path: Path) -> AnnotationStore:
    """Four 100 x 100 images with predictions of known scores:

    - a: no annotation; 0.9 and 0.8 (overlapping 0.82: NMS keeps one) and 0.3: 1 box.
    - b: annotated by a person with one box; a prediction repeating it, and a new one: 1 box.
    - c: no annotation; only a 0.2 box: nothing kept, no file written.
    - d: no prediction file at all.
    """
    for name in "abcd":
        Image.new("RGB", (100, 100)).save(tmp_path / f"{name}.png")
    store = AnnotationStore(tmp_path)
    store.save("b", ImageAnnotation([[10, 10, 30, 30]], ["cell"], True, (100, 100)))
    folder = store.predictions_dir
    folder.mkdir()
    a_boxes = [[0, 0, 20, 20], [1, 0, 21, 20], [50, 50, 70, 70]]
    write_prediction(folder, "a", _prediction(a_boxes, [0.9, 0.8, 0.3]))
    write_prediction(folder, "b", _prediction([[10, 10, 30, 30], [60, 60, 80, 80]], [0.95, 0.7]))
    write_prediction(folder, "c", _prediction([[5, 5, 15, 15]], [0.2]))
    return store


def test_the_plan_counts_boxes_and_images_and_writes_nothing(dataset: AnnotationStore):
    before = sorted(p.name for p in dataset.annotations_dir.iterdir())
    plan = plan_accept(dataset, dataset.predictions_dir, AT_HALF)
    assert [entry.image.name for entry in plan.images] == ["a.png", "b.png"]
    assert [entry.added for entry in plan.images] == [1, 1]
    assert plan.summary() == "2 boxes on 2 images"
    assert sorted(p.name for p in dataset.annotations_dir.iterdir()) == before


def test_accepting_writes_marked_files_merged_without_duplicates(dataset: AnnotationStore):
    batch = apply_accept(dataset, plan_accept(dataset, dataset.predictions_dir, AT_HALF))
    assert [image.name for image in batch.written] == ["a.png", "b.png"]
    assert batch.boxes == 2
    a, b = dataset.load("a"), dataset.load("b")
    assert a.boxes.tolist() == [[0, 0, 20, 20]] and a.labels == ["cell"]
    assert a.model_accepted and a.reviewed
    # b keeps its own box first; the repeated prediction is not added twice
    assert b.boxes.tolist() == [[10, 10, 30, 30], [60, 60, 80, 80]]
    assert b.model_accepted
    assert not dataset.has("c") and not dataset.has("d")
    stats = dataset_statistics(dataset)
    assert (stats.annotated, stats.model_accepted, stats.untouched) == (0, 2, 2)
    assert stats.boxes == 3
    assert "2 accepted from model, not yet reviewed" in stats.summary()


def test_a_selection_of_images_only_touches_those(dataset: AnnotationStore):
    plan = plan_accept(dataset, dataset.predictions_dir, AT_HALF, images=["b.png"])
    apply_accept(dataset, plan)
    assert not dataset.has("a")
    assert dataset.load("b").model_accepted


def test_a_higher_threshold_accepts_fewer(dataset: AnnotationStore):
    plan = plan_accept(dataset, dataset.predictions_dir, ReviewThresholds(score_threshold=0.85))
    assert plan.summary() == "1 box on 1 image"  # a's 0.9 only; b's new box scores 0.7


def test_files_without_the_mark_load_as_before(dataset: AnnotationStore):
    b = dataset.load("b")
    assert not b.model_accepted and "model_accepted" not in b.to_dict()


def test_undo_restores_the_exact_bytes_and_deletes_created_files(dataset: AnnotationStore):
    b_before = dataset.path_for("b").read_bytes()
    apply_accept(dataset, plan_accept(dataset, dataset.predictions_dir, AT_HALF))
    assert has_batch(dataset)
    assert dataset.path_for("b").read_bytes() != b_before
    undone = undo_accept(dataset)
    assert sorted(image.name for image in undone.restored) == ["a.png", "b.png"]
    assert undone.kept == []
    assert dataset.path_for("b").read_bytes() == b_before
    assert not dataset.has("a")
    assert not journal_path(dataset).exists() and not has_batch(dataset)
    with pytest.raises(BatchAcceptError, match="no batch"):
        undo_accept(dataset)


def test_undo_keeps_an_image_changed_since_and_names_it(dataset: AnnotationStore):
    b_before = dataset.path_for("b").read_bytes()
    apply_accept(dataset, plan_accept(dataset, dataset.predictions_dir, AT_HALF))
    reviewed = dataset.load("a").marked_from_model(False)  # the person reviewed a
    dataset.save("a", reviewed)
    a_after_review = dataset.path_for("a").read_bytes()
    undone = undo_accept(dataset)
    assert [image.name for image in undone.kept] == ["a.png"]
    assert "a.png" in undone.summary()
    assert dataset.path_for("a").read_bytes() == a_after_review
    assert dataset.path_for("b").read_bytes() == b_before


def test_an_image_changed_between_plan_and_writing_is_left_alone(dataset: AnnotationStore):
    plan = plan_accept(dataset, dataset.predictions_dir, AT_HALF)
    mine = ImageAnnotation([[40, 40, 50, 50]], ["cell"], True, (100, 100))
    dataset.save("a", mine)
    batch = apply_accept(dataset, plan)
    assert [image.name for image in batch.changed_since] == ["a.png"]
    assert dataset.load("a").boxes.tolist() == [[40, 40, 50, 50]]
    assert not dataset.load("a").model_accepted
    undo_accept(dataset)
    assert dataset.load("a").boxes.tolist() == [[40, 40, 50, 50]]


def test_a_broken_prediction_file_is_named_and_the_rest_accepted(dataset: AnnotationStore):
    (dataset.predictions_dir / "d.pt").write_bytes(b"not a torch file")
    plan = plan_accept(dataset, dataset.predictions_dir, AT_HALF)
    assert len(plan.left_out) == 1 and "d.pt" in plan.left_out[0]
    assert plan.summary() == "2 boxes on 2 images"


def test_statistics_state_of_an_accepted_image(dataset: AnnotationStore):
    from napari_detlab.core.annotations.statistics import read_image_figures

    apply_accept(dataset, plan_accept(dataset, dataset.predictions_dir, AT_HALF))
    assert read_image_figures(dataset, dataset.root / "a.png").state == MODEL_ACCEPTED


def test_the_images_a_batch_covers(dataset: AnnotationStore):
    from napari_detlab.core.evaluation.batch_accept import images_to_accept

    names = lambda images: [image.name for image in images]  # noqa: E731
    assert names(images_to_accept(dataset)) == ["a.png", "b.png", "c.png", "d.png"]
    assert names(images_to_accept(dataset, unannotated_only=True)) == ["a.png", "c.png", "d.png"]
    assert names(images_to_accept(dataset, patterns=["b*", "d.png"])) == ["b.png", "d.png"]
    only_new = images_to_accept(dataset, unannotated_only=True)
    plan = plan_accept(dataset, dataset.predictions_dir, AT_HALF, only_new)
    assert plan.summary() == "1 box on 1 image"  # b, annotated by a person, is left out


def test_a_write_that_fails_stops_the_batch_and_undo_still_restores(
    dataset: AnnotationStore, monkeypatch: pytest.MonkeyPatch
):
    from failing_writes import disk_full, fail_writes

    b_before = dataset.path_for("b").read_bytes()
    plan = plan_accept(dataset, dataset.predictions_dir, AT_HALF)
    fail_writes(monkeypatch, disk_full, names={"b.pt"})
    with pytest.raises(OSError):
        apply_accept(dataset, plan)
    monkeypatch.undo()
    assert dataset.load("a").model_accepted  # written before the failure
    assert dataset.path_for("b").read_bytes() == b_before
    undone = undo_accept(dataset)
    assert sorted(image.name for image in undone.restored) == ["a.png", "b.png"]
    assert not dataset.has("a") and dataset.path_for("b").read_bytes() == b_before


def test_nothing_left_to_write_keeps_the_last_batch_undoable(dataset: AnnotationStore):
    apply_accept(dataset, plan_accept(dataset, dataset.predictions_dir, AT_HALF, ["a"]))
    journal = journal_path(dataset).read_bytes()
    plan = plan_accept(dataset, dataset.predictions_dir, AT_HALF, ["b"])
    dataset.save("b", ImageAnnotation([[1, 1, 5, 5]], ["cell"], True, (100, 100)))
    batch = apply_accept(dataset, plan)
    assert batch.written == [] and [image.name for image in batch.changed_since] == ["b.png"]
    assert journal_path(dataset).read_bytes() == journal


def test_training_is_told_how_many_of_its_images_no_person_reviewed(dataset: AnnotationStore):
    from napari_detlab.core.annotations.statistics import unreviewed_among

    apply_accept(dataset, plan_accept(dataset, dataset.predictions_dir, AT_HALF))
    assert unreviewed_among(dataset, ["a", "b", "c", "d"]) == 2
    assert unreviewed_among(dataset, ["b"]) == 1
    dataset.save("b", dataset.load("b").marked_from_model(False))  # reviewed
    assert unreviewed_among(dataset, ["a", "b", "c", "d"]) == 1


def test_progress_is_reported_per_image(dataset: AnnotationStore):
    steps: list[tuple[int, int]] = []
    report = lambda done, total: steps.append((done, total))  # noqa: E731
    plan = plan_accept(dataset, dataset.predictions_dir, AT_HALF, on_progress=report)
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]  # every image, with a file or not
    steps.clear()
    apply_accept(dataset, plan, on_progress=report)
    assert steps == [(1, 2), (2, 2)]
    steps.clear()
    undo_accept(dataset, on_progress=report)
    assert steps == [(1, 2), (2, 2)]
