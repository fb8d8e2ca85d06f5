"""What a detector is: its config, how it is built, its weights and checkpoints, prediction.

One :class:`~.config.ModelConfig` describes a model; :mod:`.builder` turns it into a torchvision
Faster R-CNN, :mod:`.weights` finds pretrained weights offline, a checkpoint alone rebuilds a
trained model, and :mod:`.predict` runs it on images.
"""

from __future__ import annotations

from napari_detlab.core.model.builder import (
    build_anchor_generator,
    build_backbone,
    build_model,
    uses_frozen_batchnorm,
)
from napari_detlab.core.model.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    CheckpointError,
    config_from_checkpoint,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
    unwrap_model,
    unwrap_state_dict,
)
from napari_detlab.core.model.config import (
    BACKBONES,
    PRESETS,
    ConfigError,
    ModelConfig,
    default_preset_name,
    feature_map_count,
    format_levels,
    parse_levels,
    preset,
    resolve_model_config,
)
from napari_detlab.core.model.device import (
    DeviceError,
    resolve_device,
)
from napari_detlab.core.model.predict import (
    PREDICTION_VERSION,
    Prediction,
    PredictionError,
    SkippedImage,
    collect_images,
    load_prediction,
    predict_folder,
    predict_folder_steps,
    predict_images,
    write_prediction,
)
from napari_detlab.core.model.weights import (
    WeightsFileError,
    WeightsNotFoundError,
    WeightsReport,
    expected_weights_files,
    load_pretrained,
    load_weights_file,
)

__all__ = [
    "BACKBONES",
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "PREDICTION_VERSION",
    "PRESETS",
    "CheckpointError",
    "ConfigError",
    "DeviceError",
    "ModelConfig",
    "Prediction",
    "PredictionError",
    "SkippedImage",
    "WeightsFileError",
    "WeightsNotFoundError",
    "WeightsReport",
    "build_anchor_generator",
    "build_backbone",
    "build_model",
    "collect_images",
    "config_from_checkpoint",
    "default_preset_name",
    "expected_weights_files",
    "feature_map_count",
    "format_levels",
    "load_checkpoint",
    "load_prediction",
    "load_pretrained",
    "load_weights_file",
    "model_from_checkpoint",
    "parse_levels",
    "predict_folder",
    "predict_folder_steps",
    "predict_images",
    "preset",
    "resolve_device",
    "resolve_model_config",
    "save_checkpoint",
    "unwrap_model",
    "unwrap_state_dict",
    "uses_frozen_batchnorm",
    "write_prediction",
]
