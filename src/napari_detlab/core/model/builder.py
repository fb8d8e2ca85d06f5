"""Build a torchvision Faster R-CNN from a :class:`~napari_detlab.core.model.config.ModelConfig`.

Only torchvision's public building blocks are used (its ResNet / MobileNetV3 backbones, the
FPN helpers, ``AnchorGenerator``, ``MultiScaleRoIAlign`` and ``FasterRCNN``), so what the
AnchorViewer measures is exactly what trains.
"""

from __future__ import annotations

from torch import nn
from torchvision.models import resnet18, resnet34, resnet50
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import mobilenet_backbone, resnet_fpn_backbone
from torchvision.ops import FrozenBatchNorm2d, MultiScaleRoIAlign

from napari_detlab.core.model.config import ModelConfig

__all__ = ["build_anchor_generator", "build_backbone", "build_model", "uses_frozen_batchnorm"]

_RESNETS = {"resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50}
_RESNET_STAGES = ["layer4", "layer3", "layer2", "layer1", "conv1"]


def uses_frozen_batchnorm(config: ModelConfig) -> bool:
    """Pretrained backbones keep their BatchNorm statistics frozen (torchvision's choice, since
    detection batches are too small to estimate them); from scratch they must be learnt."""
    return config.pretrained != "none" or bool(config.weights_path)


def _freeze_resnet_stages(backbone: nn.Module, trainable_layers: int) -> None:
    trainable = _RESNET_STAGES[:trainable_layers]
    if trainable_layers == 5:
        trainable.append("bn1")
    for name, parameter in backbone.named_parameters():
        if all(not name.startswith(stage) for stage in trainable):
            parameter.requires_grad_(False)


def build_backbone(config: ModelConfig) -> nn.Module:
    """The feature extractor, with ``out_channels`` set as ``FasterRCNN`` requires.

    Weights are not loaded here (see :mod:`napari_detlab.core.model.weights`); only the BatchNorm
    kind depends on whether they will be.
    """
    norm_layer = FrozenBatchNorm2d if uses_frozen_batchnorm(config) else nn.BatchNorm2d
    trainable = config.trainable_layers if uses_frozen_batchnorm(config) else 5
    if config.backbone in _RESNETS:
        if config.fpn:
            return resnet_fpn_backbone(
                backbone_name=config.backbone, weights=None, norm_layer=norm_layer,
                trainable_layers=trainable,
            )  # fmt: skip
        body = _RESNETS[config.backbone](weights=None, norm_layer=norm_layer)
        _freeze_resnet_stages(body, trainable)
        extractor = IntermediateLayerGetter(body, return_layers={"layer4": "0"})
        extractor.out_channels = 2048 if config.backbone == "resnet50" else 512
        return extractor
    # MobileNetV3-Large: torchvision's helper, with or without its FPN.
    return mobilenet_backbone(
        backbone_name=config.backbone, weights=None, fpn=config.fpn, norm_layer=norm_layer,
        trainable_layers=min(trainable, 6),
    )  # fmt: skip


def build_anchor_generator(config: ModelConfig) -> AnchorGenerator:
    """torchvision's ``AnchorGenerator`` for the config's sizes and ratios, one tuple per map."""
    return AnchorGenerator(
        sizes=tuple(tuple(level) for level in config.anchor_sizes),
        aspect_ratios=tuple(tuple(level) for level in config.aspect_ratios),
    )


def _roi_feature_names(config: ModelConfig) -> list[str]:
    # RoIAlign pools from the FPN's real levels, not from the max-pooled extra one ("pool").
    if not config.fpn:
        return ["0"]
    return ["0", "1"] if config.backbone.startswith("mobilenet") else ["0", "1", "2", "3"]


def build_model(config: ModelConfig, *, load_weights: bool = True) -> FasterRCNN:
    """A Faster R-CNN for ``len(config.classes)`` classes plus background.

    Parameters
    ----------
    config
        Validated first; an invalid config raises
        :class:`~napari_detlab.core.model.config.ConfigError`.
    load_weights
        Load the config's pretrained weights (offline only). Pass ``False`` when a checkpoint's
        state dict will overwrite everything anyway.
    """
    config.validate()
    model = FasterRCNN(
        build_backbone(config),
        num_classes=len(config.classes) + 1,
        min_size=config.min_size,
        max_size=config.max_size,
        rpn_anchor_generator=build_anchor_generator(config),
        box_roi_pool=MultiScaleRoIAlign(
            featmap_names=_roi_feature_names(config), output_size=7, sampling_ratio=2
        ),
        rpn_pre_nms_top_n_train=config.rpn_pre_nms_top_n_train,
        rpn_post_nms_top_n_train=config.rpn_post_nms_top_n_train,
        rpn_pre_nms_top_n_test=config.rpn_pre_nms_top_n_test,
        rpn_post_nms_top_n_test=config.rpn_post_nms_top_n_test,
        rpn_nms_thresh=config.rpn_nms_thresh,
        rpn_fg_iou_thresh=config.rpn_fg_iou_thresh,
        rpn_bg_iou_thresh=config.rpn_bg_iou_thresh,
        rpn_batch_size_per_image=config.rpn_batch_size_per_image,
        box_fg_iou_thresh=config.box_fg_iou_thresh,
        box_bg_iou_thresh=config.box_bg_iou_thresh,
        box_batch_size_per_image=config.box_batch_size_per_image,
        box_score_thresh=config.box_score_thresh,
        box_nms_thresh=config.box_nms_thresh,
        box_detections_per_img=config.box_detections_per_img,
    )
    if load_weights and uses_frozen_batchnorm(config):
        from napari_detlab.core.model.weights import load_pretrained

        load_pretrained(model, config)
    return model


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts, for the dock's model summary."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total
