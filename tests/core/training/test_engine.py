"""The training engine: a real learning check, and what a user relies on when a run goes wrong.

Everything trains on generated scenes with exact boxes, on the CPU, with tiny images so each
test takes seconds; only the learning check trains for real (marked slow).
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

import napari_detlab.core.training.engine as engine
from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.sample_data import SAMPLE_CLASSES, write_synthetic_dataset
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.evaluation.metrics import coco_metrics
from napari_detlab.core.model.builder import build_model
from napari_detlab.core.model.checkpoint import (
    load_checkpoint,
    model_from_checkpoint,
    read_checkpoint_split,
)
from napari_detlab.core.model.config import preset
from napari_detlab.core.model.predict import predict_images
from napari_detlab.core.training import validate as validate_module
from napari_detlab.core.training.engine import train
from napari_detlab.core.training.events import EpochEnded, IterationEnded, RunFinished, RunStarted
from napari_detlab.core.training.options import TrainingInputError, TrainOptions

CLASSES = list(SAMPLE_CLASSES)


def small_config(size: int, classes: list[str] = CLASSES):
    """The fast preset shrunk to ``size`` px images and few proposals: cheap CPU steps."""
    return preset("fast", classes).replace(
        min_size=size, max_size=size, box_batch_size_per_image=32, rpn_pre_nms_top_n_train=300,
        rpn_post_nms_top_n_train=150, rpn_pre_nms_top_n_test=150, rpn_post_nms_top_n_test=50,
        box_detections_per_img=50,
    )  # fmt: skip


def quick_options(**changes) -> TrainOptions:
    # The split goes by a hash of each name: at 0.15 (seed 0) img_0001 and img_0002 of the
    # tiny dataset validate, the other four train (the old shuffle needed 0.34 for the same).
    base = dict(epochs=1, batch_size=2, lr=0.01, warmup_iters=2, num_workers=0, val_fraction=0.15)
    return TrainOptions(**{**base, **changes})


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    """6 annotated 64x64 scenes: 2 training steps of 2 images, 2 validation images."""
    return write_synthetic_dataset(
        tmp_path_factory.mktemp("tiny"), 6, size=(64, 64), seed=1, max_objects=3
    )


class Recorder:
    """An ``on_event`` callback that keeps every event (and can cancel after N steps)."""

    def __init__(self, cancel_after: int | None = None) -> None:
        self.events: list[object] = []
        self.cancel = threading.Event()
        self.cancel_after = cancel_after

    def __call__(self, event: object) -> None:
        self.events.append(event)
        if isinstance(event, IterationEnded) and event.iteration == self.cancel_after:
            self.cancel.set()

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def val_metrics(model, config, dataset: Path, stems: list[str]) -> dict:
    """COCO metrics of ``model`` on ``stems``, through the same predictor the CLI uses."""
    store = AnnotationStore(dataset)
    paths = [p for p in store.images if p.stem in set(stems)]
    predictions = {
        path.stem: prediction
        for path, prediction in predict_images(model, config, paths, batch_size=4)
    }
    truth = {stem: store.load(stem) for stem in stems}
    return coco_metrics(predictions, truth, config.classes)


@pytest.fixture
def one_thread():
    """One intra-op thread: on a busy 2-core machine two threads spin-wait on each other and
    run several times slower; alone, one thread costs at most a factor of two."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_training_learns_from_scratch_on_cpu(tmp_path):
    """A model trained for 48 steps finds the objects an untrained one cannot (mAP@.5)."""
    dataset = write_synthetic_dataset(tmp_path / "data", 32, size=(128, 128), seed=0, max_objects=4)
    config = small_config(128)
    options = TrainOptions(
        epochs=8, batch_size=4, lr=0.01, warmup_iters=10, val_fraction=0.2, eval_every=8,
        num_workers=0, seed=0,
    )  # fmt: skip
    recorder = Recorder()
    finished = train(dataset, tmp_path / "run", config, options, on_event=recorder)

    assert finished.status == "completed", finished.message
    val_stems = json.loads((tmp_path / "run" / "split.json").read_text())["val"]
    assert len(val_stems) == 8  # the names' hashes at 0.2 (seed 0): 24 train in 6 steps an epoch
    torch.manual_seed(0)
    untrained = val_metrics(build_model(config), config, dataset, val_stems)
    trained_model, stored_config = model_from_checkpoint(finished.best_checkpoint)
    trained = val_metrics(trained_model, stored_config, dataset, val_stems)
    print(f"mAP@.5 untrained {untrained['map_50']:.3f}, trained {trained['map_50']:.3f}")
    assert untrained["map_50"] < 0.05
    assert trained["map_50"] > 0.3
    # The engine's own evaluation saw the same model on the same images.
    (epoch_end,) = recorder.of(EpochEnded)[-1:]
    assert epoch_end.is_best
    assert epoch_end.metrics["map_50"] == pytest.approx(trained["map_50"], abs=0.02)
    assert finished.best_metric == pytest.approx(epoch_end.metrics["map"])


def test_run_writes_events_checkpoints_and_config(tiny_dataset, tmp_path):
    run_dir = tmp_path / "run"
    recorder = Recorder()
    finished = train(tiny_dataset, run_dir, small_config(64), quick_options(), on_event=recorder)

    assert finished.status == "completed", finished.message
    kinds = [type(e).__name__ for e in recorder.events]
    assert kinds == ["RunStarted", "IterationEnded", "IterationEnded", "EpochEnded", "RunFinished"]
    started = recorder.of(RunStarted)[0]
    assert (started.device, started.train_images, started.val_images) == ("cpu", 4, 2)
    steps = recorder.of(IterationEnded)
    assert [s.iteration for s in steps] == [1, 2]
    assert all(math.isfinite(s.loss) and s.images_per_s > 0 and s.lr > 0 for s in steps)
    assert set(steps[0].losses) == {
        "loss_classifier",
        "loss_box_reg",
        "loss_objectness",
        "loss_rpn_box_reg",
    }
    epoch = recorder.of(EpochEnded)[0]
    assert {"map", "map_50", "per_class"} <= set(epoch.metrics)
    assert set(epoch.metrics["per_class"]) == set(CLASSES)
    # metrics.jsonl holds the same events, one JSON object per line.
    lines = read_jsonl(run_dir / "metrics.jsonl")
    assert [line["type"] for line in lines] == kinds
    assert lines[-1]["status"] == "completed"
    assert json.loads((run_dir / "config.json").read_text())["classes"] == CLASSES
    assert TrainOptions.from_json(run_dir / "options.json") == quick_options()
    # Both checkpoints load with weights_only=True and rebuild the model.
    for name in ("last.pt", "best.pt"):
        torch.load(run_dir / name, weights_only=True)
        _, config = model_from_checkpoint(run_dir / name)
        assert config.classes == CLASSES
    assert load_checkpoint(run_dir / "last.pt")["epoch"] == 1
    # Each checkpoint records the split it learnt from, as split.json does, for evaluation.
    split = json.loads((run_dir / "split.json").read_text())
    assert len(split["train"]) == 4 and len(split["val"]) == 2
    for name in ("last.pt", "best.pt"):
        assert read_checkpoint_split(run_dir / name) == split


def test_train_options_json_round_trip(tmp_path):
    options = TrainOptions(epochs=3, optimizer="adamw", amp=False, patience=2, resume="x/last.pt")
    options.to_json(tmp_path / "options.json")
    assert TrainOptions.from_json(tmp_path / "options.json") == options
    assert options.base_lr == 1e-4  # AdamW's default when lr is not given
    with pytest.raises(TrainingInputError, match="unknown training option"):
        TrainOptions.from_dict({"epochs": 1, "epoch": 2})
    with pytest.raises(FileNotFoundError, match=r"missing\.json"):
        TrainOptions.from_json(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{epochs: 3")
    with pytest.raises(TrainingInputError, match=r"broken\.json: not valid JSON"):
        TrainOptions.from_json(tmp_path / "broken.json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"optimizer": "rmsprop"}, "optimizer must be one of"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"device": "tpu"}, "unknown device"),
    ],
)
def test_bad_options_are_refused_before_anything_is_written(
    tiny_dataset, tmp_path, change, message
):
    with pytest.raises(ValueError, match=message):
        train(tiny_dataset, tmp_path / "run", small_config(64), quick_options(**change))
    assert not (tmp_path / "run").exists()


def test_bad_datasets_are_refused_with_one_line(tiny_dataset, tmp_path):
    config = small_config(64)
    with pytest.raises(TrainingInputError, match="dataset folder not found"):
        train(tmp_path / "missing", tmp_path / "run", config, quick_options())
    write_synthetic_dataset(tmp_path / "unlabelled", 2, size=(32, 32))
    for path in (tmp_path / "unlabelled" / "annotations").glob("*.pt"):
        path.unlink()
    with pytest.raises(TrainingInputError, match="no annotated images"):
        train(tmp_path / "unlabelled", tmp_path / "run", config, quick_options())
    with pytest.raises(TrainingInputError, match=r"class\(es\) \['crystal'\].*lacks") as error:
        train(tiny_dataset, tmp_path / "run", small_config(64, ["cell"]), quick_options())
    assert "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()


def test_a_previous_run_is_not_overwritten_by_accident(tiny_dataset, tmp_path):
    run_dir = tmp_path / "run"
    train(tiny_dataset, run_dir, small_config(64), quick_options(max_iterations=1, eval_every=0))
    before = (run_dir / "last.pt").read_bytes()
    with pytest.raises(TrainingInputError, match="holds a previous run"):
        train(tiny_dataset, run_dir, small_config(64), quick_options())
    assert (run_dir / "last.pt").read_bytes() == before


def test_cancel_leaves_a_valid_last_checkpoint(tiny_dataset, tmp_path):
    run_dir = tmp_path / "run"
    recorder = Recorder(cancel_after=2)
    options = quick_options(epochs=5, batch_size=1)  # 4 steps per epoch
    finished = train(
        tiny_dataset, run_dir, small_config(64), options, on_event=recorder, cancel=recorder.cancel
    )

    assert finished.status == "cancelled"
    assert "last.pt" in finished.message
    assert [s.iteration for s in recorder.of(IterationEnded)] == [1, 2]
    assert not recorder.of(EpochEnded)
    checkpoint = torch.load(run_dir / "last.pt", weights_only=True)
    assert checkpoint["epoch"] == 0 and checkpoint["metrics"]["iteration"] == 2
    assert checkpoint["optimizer"] is not None
    model, _ = model_from_checkpoint(run_dir / "last.pt")
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert read_jsonl(run_dir / "metrics.jsonl")[-1]["status"] == "cancelled"


def test_resume_continues_from_the_saved_epoch(tiny_dataset, tmp_path):
    run_dir = tmp_path / "run"
    first = train(tiny_dataset, run_dir, small_config(64), quick_options(epochs=1))
    assert first.status == "completed"
    recorder = Recorder()
    options = quick_options(epochs=2, resume=str(run_dir / "last.pt"))
    second = train(tiny_dataset, run_dir, small_config(64), options, on_event=recorder)

    assert second.status == "completed", second.message
    assert recorder.of(RunStarted)[0].start_epoch == 1
    assert [e.epoch for e in recorder.of(EpochEnded)] == [2]
    # The step counter (hence the schedule) continues instead of starting again.
    assert [s.iteration for s in recorder.of(IterationEnded)] == [3, 4]
    assert load_checkpoint(run_dir / "last.pt")["epoch"] == 2
    # metrics.jsonl keeps the first run's curve and appends the second's.
    types = [line["type"] for line in read_jsonl(run_dir / "metrics.jsonl")]
    assert types.count("RunStarted") == 2 and types.count("EpochEnded") == 2


def test_resume_refuses_a_checkpoint_of_other_classes(tiny_dataset, tmp_path):
    run_dir = tmp_path / "run"
    train(tiny_dataset, run_dir, small_config(64), quick_options(max_iterations=1, eval_every=0))
    options = quick_options(resume=str(run_dir / "last.pt"))
    other = small_config(64, ["cell", "crystal", "dust"])
    with pytest.raises(TrainingInputError) as error:
        train(tiny_dataset, tmp_path / "run2", other, options)
    assert "['cell', 'crystal']" in str(error.value)
    assert "['cell', 'crystal', 'dust']" in str(error.value)
    assert not (tmp_path / "run2").exists()


def failing_after(calls: int, fail):
    """A ``build_model`` whose training steps from the ``calls``-th on go through ``fail``.

    ``fail`` takes the loss dict and returns a poisoned one, or raises.
    """
    count = {"n": 0}

    def build(config, **kwargs):
        model = build_model(config, **kwargs)
        forward = model.forward

        def poisoned(images, targets=None):
            out = forward(images, targets)
            if model.training:
                count["n"] += 1
                if count["n"] >= calls:
                    return fail(out)
            return out

        model.forward = poisoned
        return model

    return build


def nan_objectness(losses: dict) -> dict:
    return {**losses, "loss_objectness": losses["loss_objectness"] * float("nan")}


def out_of_memory(_losses: dict) -> dict:
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(
    tiny_dataset, tmp_path, monkeypatch
):
    run_dir = tmp_path / "run"
    monkeypatch.setattr(
        engine, "build_model", failing_after(3, nan_objectness)
    )  # epoch 1 = steps 1-2
    recorder = Recorder()
    finished = train(
        tiny_dataset, run_dir, small_config(64), quick_options(epochs=3), on_event=recorder
    )

    assert finished.status == "failed"
    assert "loss_objectness=nan" in finished.message
    assert "lower the learning rate" in finished.message
    assert "from epoch 1 is kept" in finished.message
    assert [e.epoch for e in recorder.of(EpochEnded)] == [1]
    checkpoint = torch.load(run_dir / "last.pt", weights_only=True)
    assert checkpoint["epoch"] == 1
    assert all(
        torch.isfinite(t).all() for t in checkpoint["model"].values() if t.is_floating_point()
    )
    assert read_jsonl(run_dir / "metrics.jsonl")[-1]["status"] == "failed"


def test_out_of_memory_stops_with_advice_and_keeps_the_last_checkpoint(
    tiny_dataset, tmp_path, monkeypatch
):
    run_dir = tmp_path / "run"
    monkeypatch.setattr(engine, "build_model", failing_after(3, out_of_memory))
    finished = train(tiny_dataset, run_dir, small_config(64), quick_options(epochs=3))
    assert finished.status == "failed"
    assert "out of memory at batch size 2" in finished.message
    assert "lower the batch size" in finished.message
    assert torch.load(run_dir / "last.pt", weights_only=True)["epoch"] == 1
    assert read_jsonl(run_dir / "metrics.jsonl")[-1]["message"] == finished.message


def test_huge_learning_rate_fails_with_a_message_not_a_crash(tiny_dataset, tmp_path):
    finished = train(
        tiny_dataset, tmp_path / "run", small_config(64),
        quick_options(epochs=3, lr=1e12, grad_clip=None, warmup_iters=0),
    )  # fmt: skip
    assert finished.status == "failed"
    assert "non-finite" in finished.message


def test_early_stopping_after_patience_evaluations(tiny_dataset, tmp_path, monkeypatch):
    scores = iter([0.5, 0.4, 0.45, 0.9])

    def fake_metrics(predictions, truth, classes):
        value = next(scores)
        return {"map": value, "map_50": value, "per_class": dict.fromkeys(classes, value)}

    # The engine scores validation through validate.evaluate_detector -> coco_metrics.
    monkeypatch.setattr(validate_module, "coco_metrics", fake_metrics)
    recorder = Recorder()
    finished = train(
        tiny_dataset, tmp_path / "run", small_config(64), quick_options(epochs=10, patience=2),
        on_event=recorder,
    )  # fmt: skip

    assert finished.status == "early_stopped"
    assert [e.epoch for e in recorder.of(EpochEnded)] == [1, 2, 3]
    assert [e.is_best for e in recorder.of(EpochEnded)] == [True, False, False]
    assert finished.best_metric == 0.5
    assert load_checkpoint(tmp_path / "run" / "best.pt")["epoch"] == 1
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 3
    assert isinstance(recorder.events[-1], RunFinished)


def _train_without_validation(dataset: Path, run_dir: Path) -> tuple[RunFinished, Recorder]:
    """One quick epoch of the small model on every image; the run must complete."""
    recorder = Recorder()
    finished = train(
        dataset, run_dir, small_config(64), quick_options(val_fraction=0.0), on_event=recorder
    )
    assert finished.status == "completed", finished.message
    return finished, recorder


def test_negatives_train_and_tiny_dataset_evaluates_on_training_images(tmp_path):
    dataset = write_synthetic_dataset(tmp_path / "data", 2, size=(64, 64), seed=3, negatives=1)
    store = AnnotationStore(dataset)
    negative = store.load("img_0001")
    assert negative.reviewed and len(negative) == 0
    _, recorder = _train_without_validation(dataset, tmp_path / "run")
    started = recorder.of(RunStarted)[0]
    assert (started.train_images, started.val_images) == (2, 0)
    assert recorder.of(EpochEnded)[0].metrics["evaluated_on"] == "train"


def test_a_stack_trains_plane_by_plane(tmp_path):
    """Each annotated plane of a multi-page TIFF is an image of the run, named by its plane."""
    (tmp_path / "data").mkdir()
    store = AnnotationStore(tmp_path / "data")
    planes = np.full((6, 64, 64), 20, np.uint8)
    for k in range(6):
        planes[k, 10:30, 5 + 5 * k : 25 + 5 * k] = 220
    tifffile.imwrite(store.root / "z.tif", planes, photometric="minisblack")
    for k in range(5):  # plane 5 never annotated: left out
        box = [5 + 5 * k, 10, 25 + 5 * k, 30]
        store.save(f"z.plane-{k:04d}", ImageAnnotation([box], [CLASSES[0]], True))
    finished = train(store.root, tmp_path / "run", small_config(64), quick_options())
    assert finished.status == "completed", finished.message
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert sorted(split["train"] + split["val"]) == [f"z.plane-{k:04d}" for k in range(5)]


def test_a_dense_image_raises_the_models_per_image_caps_and_the_run_says_so(tmp_path):
    """An image of 120 cells against a config that keeps 50 detections per image: the run
    trains with room for them (200 detections, 400 proposals), writes that config into its
    checkpoints, and its first line says why."""
    from napari_detlab.core.training.progress import RunProgress

    dataset = write_synthetic_dataset(tmp_path / "data", 2, size=(64, 64), seed=3)
    store = AnnotationStore(dataset)
    corner = np.stack(np.meshgrid(np.arange(12) * 5.0, np.arange(10) * 6.0), -1).reshape(-1, 2)
    cells = np.c_[corner, corner + 4]
    store.save("img_0000", ImageAnnotation(cells, [CLASSES[0]] * 120, True, (64, 64)))
    finished, recorder = _train_without_validation(dataset, tmp_path / "run")
    started = recorder.of(RunStarted)[0]
    assert started.room_for_boxes == 120
    assert "detections per image raised to 200: an image has 120 boxes" in started.notes()
    progress = RunProgress(tmp_path / "run")
    progress.update(started)
    assert "raised to 200" in progress.status  # the train dock's line
    saved = load_checkpoint(finished.last_checkpoint)["config"]
    assert saved["box_detections_per_img"] == 200
    assert saved["rpn_post_nms_top_n_test"] == saved["rpn_pre_nms_top_n_train"] == 400


def test_an_ordinary_dataset_keeps_the_config_as_given(tiny_dataset, tmp_path):
    recorder = Recorder()
    config = small_config(64)
    train(tiny_dataset, tmp_path / "run", config, quick_options(epochs=1), on_event=recorder)
    started = recorder.of(RunStarted)[0]
    assert started.room_for_boxes == 0 and started.notes() == ""
    assert started.config == config.to_dict()
