"""The validation step of the training loop: the model's COCO metrics on held-out images.

It sits beside the loop, as ``evaluate`` sits beside ``train_one_epoch`` in torchvision's
detection reference, and it predicts through
:func:`~napari_detlab.core.model.predict.predict_images`, the code path of ``detlab
predict``: the validation mAP is what a user will see on those images.
"""

from __future__ import annotations

import threading
from typing import Any

import torch
from torch import nn

from napari_detlab.core.evaluation.metrics import coco_metrics, empty_metrics
from napari_detlab.core.images import ImageReadError
from napari_detlab.core.model.config import ModelConfig
from napari_detlab.core.model.predict import SkippedImage, predict_images
from napari_detlab.core.training.dataset import DetectionDataset

__all__ = ["evaluate_detector"]


def evaluate_detector(
    model: nn.Module,
    config: ModelConfig,
    dataset: DetectionDataset,
    *,
    batch_size: int = 2,
    device: str | torch.device = "cpu",
    cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """COCO metrics of ``model`` on the images of ``dataset``, without augmentation.

    The model is left in eval mode; the training loop puts it back.

    Raises
    ------
    ImageReadError
        An image cannot be read: skipping it would silently change the validation set.

    Returns
    -------
    dict
        :func:`~napari_detlab.core.evaluation.metrics.coco_metrics`' dict; every value is NaN
        when ``cancel`` is set part-way, rather than a score of part of the images (the
        missing ones would count as misses).
    """
    skipped: list[SkippedImage] = []
    stem_of = dict(zip(dataset.image_paths, dataset.stems, strict=True))
    predictions = {
        stem_of[path]: prediction
        for path, prediction in predict_images(
            model, config, dataset.image_paths, batch_size=batch_size, device=device,
            cancel=cancel, skipped=skipped,
        )
    }  # fmt: skip
    if skipped:
        raise ImageReadError(skipped[0].reason)
    if cancel is not None and cancel.is_set():
        return empty_metrics(dataset.classes)
    return coco_metrics(predictions, dataset.ground_truth(), dataset.classes)
