"""The one object that describes a detector: :class:`ModelConfig`.

The AnchorViewer, the trainer, checkpoints and the predictor all read the same config, so a
checkpoint alone is enough to rebuild its model and the anchors a user tuned are the anchors
that get trained. It is a plain dataclass, serialised as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from napari_detlab.core.json_dataclass import JsonDataclass

__all__ = [
    "BACKBONES",
    "PRESETS",
    "ConfigError",
    "ModelConfig",
    "default_preset_name",
    "feature_map_count",
    "preset",
]

BACKBONES = ("resnet18", "resnet34", "resnet50", "mobilenet_v3_large")
PRETRAINED_CHOICES = ("none", "imagenet", "coco")


class ConfigError(ValueError):
    """A config that cannot build a working model; the message names the fix."""


def feature_map_count(backbone: str, fpn: bool) -> int:
    """How many feature maps the backbone hands the RPN, hence how many anchor levels it needs.

    ResNet + FPN gives C2-C5 plus the max-pooled P6 (5 maps); MobileNetV3 + FPN gives two
    maps plus P6 (3 maps, as torchvision's ``fasterrcnn_mobilenet_v3_large_fpn``); without an
    FPN every backbone gives its last map only.
    """
    if backbone not in BACKBONES:
        raise ConfigError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
    if not fpn:
        return 1
    return 3 if backbone.startswith("mobilenet") else 5


@dataclass
class ModelConfig(JsonDataclass):
    """Everything needed to rebuild a Faster R-CNN, and nothing about how it is trained.

    Attributes
    ----------
    classes
        Class names, in the order of the model's labels 1..N (0 is background).
    backbone, fpn
        Feature extractor; see :data:`BACKBONES`.
    trainable_layers
        Backbone stages left trainable (0-5); only meaningful with pretrained weights, since a
        model trained from scratch must train everything.
    pretrained
        ``"none"`` (from scratch), ``"imagenet"`` (backbone) or ``"coco"`` (whole detector,
        resnet50/mobilenet FPN only). Weights come from torchvision's cache or ``weights_path``,
        never from the network.
    weights_path
        A local ``.pth`` file with backbone or detector weights.
    min_size, max_size
        The resize torchvision applies: shorter side to ``min_size`` unless the longer side
        would exceed ``max_size``. Anchors live in that resized space.
    anchor_sizes, aspect_ratios
        One tuple per feature map. Every level must have the same number of
        ``len(sizes) * len(ratios)`` anchors, because one RPN head is shared.
    """

    json_error = ConfigError  # not annotated: a class attribute, not a field
    json_what = "config"

    classes: list[str] = field(default_factory=list)
    backbone: str = "resnet18"
    fpn: bool = True
    trainable_layers: int = 3
    pretrained: str = "none"
    weights_path: str | None = None
    min_size: int = 512
    max_size: int = 853
    anchor_sizes: list[list[float]] = field(
        default_factory=lambda: [[16], [32], [64], [128], [256]]
    )
    aspect_ratios: list[list[float]] = field(default_factory=lambda: [[0.5, 1.0, 2.0]] * 5)
    rpn_fg_iou_thresh: float = 0.7
    rpn_bg_iou_thresh: float = 0.3
    rpn_pre_nms_top_n_train: int = 2000
    rpn_post_nms_top_n_train: int = 2000
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_test: int = 1000
    rpn_nms_thresh: float = 0.7
    rpn_batch_size_per_image: int = 256
    box_fg_iou_thresh: float = 0.5
    box_bg_iou_thresh: float = 0.5
    box_batch_size_per_image: int = 512
    box_score_thresh: float = 0.01
    box_nms_thresh: float = 0.5
    box_detections_per_img: int = 300

    def __post_init__(self) -> None:
        self.classes = [str(c) for c in self.classes]
        self.anchor_sizes = [[float(s) for s in level] for level in self.anchor_sizes]
        self.aspect_ratios = [[float(r) for r in level] for level in self.aspect_ratios]

    # -- checks -------------------------------------------------------------------------
    @property
    def num_levels(self) -> int:
        return feature_map_count(self.backbone, self.fpn)

    @property
    def anchors_per_location(self) -> int:
        return len(self.anchor_sizes[0]) * len(self.aspect_ratios[0])

    def validate(self) -> ModelConfig:
        """Raise :class:`ConfigError` for a combination torchvision would reject or mis-train."""
        levels = self.num_levels
        if len(self.anchor_sizes) != levels:
            raise ConfigError(
                f"{self.backbone}{' + FPN' if self.fpn else ''} gives {levels} feature map(s) but "
                f"anchor_sizes has {len(self.anchor_sizes)} level(s); give one tuple of sizes per "
                f"feature map (e.g. {[[32 * 2**i] for i in range(levels)]})"
            )
        if len(self.aspect_ratios) != levels:
            raise ConfigError(
                f"aspect_ratios has {len(self.aspect_ratios)} level(s) but the backbone gives "
                f"{levels}; repeat the ratios once per feature map"
            )
        counts = {
            len(s) * len(r) for s, r in zip(self.anchor_sizes, self.aspect_ratios, strict=True)
        }
        if len(counts) != 1:
            raise ConfigError(
                "every feature map needs the same number of anchors (sizes x ratios) because the "
                f"RPN head is shared; got {sorted(counts)} — use the same count of sizes and of "
                "ratios on every level"
            )
        if any(s <= 0 for level in self.anchor_sizes for s in level) or any(
            r <= 0 for level in self.aspect_ratios for r in level
        ):
            raise ConfigError("anchor sizes and aspect ratios must be positive")
        if self.min_size <= 0 or self.max_size < self.min_size:
            raise ConfigError(
                f"need 0 < min_size <= max_size, got {self.min_size} and {self.max_size}"
            )
        if self.pretrained not in PRETRAINED_CHOICES:
            raise ConfigError(
                f"pretrained must be one of {PRETRAINED_CHOICES}, got {self.pretrained!r}"
            )
        if self.pretrained == "coco" and not (
            self.fpn and self.backbone in ("resnet50", "mobilenet_v3_large")
        ):
            raise ConfigError(
                "COCO detector weights exist only for resnet50 or mobilenet_v3_large with FPN"
            )
        if not 0 <= self.trainable_layers <= (6 if self.backbone.startswith("mobilenet") else 5):
            raise ConfigError(
                f"trainable_layers must be between 0 and 5, got {self.trainable_layers}"
            )
        if not 0.0 <= self.rpn_bg_iou_thresh <= self.rpn_fg_iou_thresh <= 1.0:
            raise ConfigError("need 0 <= rpn_bg_iou_thresh <= rpn_fg_iou_thresh <= 1")
        if not self.classes:
            raise ConfigError("the config names no classes; annotate at least one class first")
        if len(set(self.classes)) != len(self.classes):
            raise ConfigError(f"class names must be unique, got {self.classes}")
        return self

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with some fields changed (validated by the caller when it matters)."""
        return type(self).from_dict({**self.to_dict(), **changes})


def _fast(classes: list[str]) -> ModelConfig:
    # Small images and few proposals: a ResNet-18 FPN that learns the sample data on a 2-core
    # CPU in minutes, from scratch (nothing can be downloaded here).
    return ModelConfig(
        classes=classes, backbone="resnet18", fpn=True, trainable_layers=5, min_size=256,
        max_size=512, anchor_sizes=[[16], [32], [64], [128], [256]],
        aspect_ratios=[[0.5, 1.0, 2.0]] * 5, rpn_pre_nms_top_n_train=600,
        rpn_post_nms_top_n_train=300, rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=150,
        box_batch_size_per_image=128,
    )  # fmt: skip


def _accurate(classes: list[str]) -> ModelConfig:
    # torchvision's reference Faster R-CNN: ResNet-50 FPN at 800/1333 with its default anchors.
    return ModelConfig(
        classes=classes, backbone="resnet50", fpn=True, trainable_layers=3, pretrained="imagenet",
        min_size=800, max_size=1333, anchor_sizes=[[32], [64], [128], [256], [512]],
        aspect_ratios=[[0.5, 1.0, 2.0]] * 5,
    )  # fmt: skip


PRESETS = {"fast": _fast, "accurate": _accurate}


def default_preset_name() -> str:
    """``accurate`` when a CUDA GPU is present, else ``fast``: the default follows the device."""
    import torch

    return "accurate" if torch.cuda.is_available() else "fast"


def preset(name: str | None, classes: list[str]) -> ModelConfig:
    """A named preset (``fast``, ``accurate``, or ``None`` for the device's default)."""
    name = name or default_preset_name()
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name](list(classes))
