"""The training loop's validation step: a model that predicts the ground truth scores one."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore, ClassSpec
from napari_detlab.core.model.config import ModelConfig
from napari_detlab.core.training.dataset import DetectionDataset
from napari_detlab.core.training.validate import evaluate_detector

CLASSES = ["cell", "crystal"]


def gt(boxes, labels, size):
    import numpy as np

    return ImageAnnotation(np.asarray(boxes, np.float32).reshape(-1, 4), labels, True, size)


class _Oracle(torch.nn.Module):
    """A stand-in detector that answers each image with its true boxes, found by image size."""

    def __init__(self, truth_by_size):
        super().__init__()
        self.truth_by_size = truth_by_size

    def forward(self, images):
        outputs = []
        for image in images:
            annotation = self.truth_by_size[tuple(image.shape[-2:])]
            labels = torch.tensor([CLASSES.index(name) + 1 for name in annotation.labels])
            outputs.append({
                "boxes": torch.as_tensor(annotation.boxes), "labels": labels.long(),
                "scores": torch.ones(len(labels)),
            })  # fmt: skip
        return outputs


def test_evaluate_detector_scores_a_perfect_model_one(tmp_path):
    store = AnnotationStore(tmp_path)
    store.save_classes([ClassSpec("cell", "#ff0000"), ClassSpec("crystal", "#00ff00")])
    truth = {
        "a": gt([[5, 5, 30, 40]], ["cell"], size=(60, 70)),
        "b": gt([[1, 2, 20, 20], [40, 10, 70, 50]], ["crystal", "cell"], size=(64, 80)),
        "c": gt([], [], size=(72, 72)),
    }
    for stem, annotation in truth.items():
        Image.new("RGB", annotation.image_size[::-1]).save(tmp_path / f"{stem}.png")
        store.save(stem, annotation)
    dataset = DetectionDataset(tmp_path, None, CLASSES)
    oracle = _Oracle({a.image_size: a for a in dataset.ground_truth().values()})
    metrics = evaluate_detector(oracle, ModelConfig(classes=CLASSES), dataset, batch_size=2)
    assert metrics["map"] == pytest.approx(1.0) and metrics["mar_100"] == pytest.approx(1.0)
    oracle.truth_by_size[(64, 80)] = truth["c"]  # now it misses both boxes of b
    metrics = evaluate_detector(oracle, ModelConfig(classes=CLASSES), dataset, batch_size=2)
    assert metrics["mar_100"] == pytest.approx(0.25)  # recall cell 1/2, crystal 0: class mean
