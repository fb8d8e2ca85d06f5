"""The one object that describes a detector: :class:`ModelConfig`.

The AnchorViewer, the trainer, checkpoints and the predictor all read the same config, so a
checkpoint alone is enough to rebuild its model and the anchors a user tuned are the anchors
that get trained. It is a plain dataclass, serialised as JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from napari_detlab.core.errors import DetlabError
from napari_detlab.core.json_dataclass import JsonDataclass

__all__ = [
    "BACKBONES",
    "PRESETS",
    "ConfigError",
    "ModelConfig",
    "default_preset_name",
    "feature_map_count",
    "format_levels",
    "parse_levels",
    "preset",
    "resolve_model_config",
]

BACKBONES = ("resnet18", "resnet34", "resnet50", "mobilenet_v3_large")
PRETRAINED_CHOICES = ("none", "imagenet", "coco")
# torchvision publishes whole-detector COCO weights for these backbones, with an FPN only.
COCO_DETECTOR_BACKBONES = ("resnet50", "mobilenet_v3_large")


class ConfigError(DetlabError, ValueError):
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
        if self.pretrained == "coco" and not self._has_coco_detector:
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

    @property
    def _has_coco_detector(self) -> bool:
        return self.fpn and self.backbone in COCO_DETECTOR_BACKBONES

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with some fields changed (validated by the caller when it matters)."""
        return type(self).from_dict({**self.to_dict(), **changes})

    def with_room_for(self, objects: int) -> ModelConfig:
        """A copy whose per-image caps let an image of ``objects`` boxes be found whole.

        torchvision keeps at most ``box_detections_per_img`` detections per image (here 300)
        and ``rpn_post_nms_top_n_*`` proposals (1,000 when predicting): on a field of 1,000
        cells no amount of training could find more than 300 of them, and the validation mAP
        would say so without saying why. The copy keeps at least ``objects`` detections
        (rounded up to a hundred) and twice as many proposals, before and after the RPN's
        NMS; only these caps change, never a weight's shape. ``self`` when it has room.
        """
        proposals = ("rpn_pre_nms_top_n_train", "rpn_post_nms_top_n_train",
                     "rpn_pre_nms_top_n_test", "rpn_post_nms_top_n_test")  # fmt: skip
        needed = {"box_detections_per_img": objects} | dict.fromkeys(proposals, 2 * objects)
        if all(getattr(self, name) >= value for name, value in needed.items()):
            return self
        detections = -(-objects // 100) * 100
        wanted = {"box_detections_per_img": detections} | dict.fromkeys(proposals, 2 * detections)
        return self.replace(
            **{name: max(getattr(self, name), value) for name, value in wanted.items()}
        )

    def with_backbone(self, backbone: str, fpn: bool) -> ModelConfig:
        """A copy on another backbone, starting from ImageNet weights where the config asked
        for a COCO detector that this backbone does not have (so the switch stays valid)."""
        config = self.replace(backbone=backbone, fpn=fpn)
        if config.pretrained == "coco" and not config._has_coco_detector:
            config = config.replace(pretrained="imagenet")
        return config


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


def resolve_model_config(
    classes: Sequence[str],
    *,
    config: ModelConfig | str | Path | None = None,
    resume: str | Path | None = None,
    preset_name: str | None = None,
    keep_config_classes: bool = True,
    start: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ModelConfig:
    """The validated config of a model for a dataset with ``classes``.

    ``detlab train``, ``detlab anchors``, the train dock and the AnchorViewer all ask here, so
    the same inputs give the same model everywhere.

    Parameters
    ----------
    classes
        The dataset's class names, in the order that fixes the model's labels.
    config
        A config, or the path of its JSON file; it wins over ``resume`` and ``preset_name``.
        A config that names no classes gets ``classes``.
    resume
        A checkpoint whose config continues (used when ``config`` is not given).
    preset_name
        ``"fast"``, ``"accurate"``, or ``None`` for the device's default; used when neither
        ``config`` nor ``resume`` is given. A preset starts from the best pretrained weights
        present on this machine (a COCO detector, else an ImageNet backbone, else from
        scratch; see :func:`~napari_detlab.core.model.weights_catalog.with_best_start`).
    keep_config_classes
        ``False`` replaces a given config's classes by ``classes``: a dock hands on a config
        made for the dataset on screen, whose class list may have changed since.
    start
        Where the weights start, whatever the config says: ``"best"`` (the best present),
        ``"none"``, ``"imagenet"`` or ``"coco"`` (see
        :func:`~napari_detlab.core.model.weights_catalog.with_start`); ``None`` keeps the
        config's (a preset's: the best present).
    overrides
        Fields set last (scripted use and tests, e.g. ``{"min_size": 128}``).

    Raises
    ------
    ConfigError
        The resulting config cannot build a working model, or its file is not a config.
    FileNotFoundError
        ``config`` or ``resume`` names a file that does not exist.
    """
    if isinstance(config, (str, Path)):
        config = ModelConfig.from_json(Path(config))
    if config is not None:
        if not config.classes or not keep_config_classes:
            config = config.replace(classes=list(classes))
    elif resume is not None:
        from napari_detlab.core.model.checkpoint import config_from_checkpoint, load_checkpoint

        config = config_from_checkpoint(load_checkpoint(resume), str(resume))
    else:
        from napari_detlab.core.model.weights_catalog import with_best_start

        config = with_best_start(preset(preset_name, list(classes)))
    if start is not None:
        from napari_detlab.core.model.weights_catalog import with_start

        config = with_start(config, start)
    if overrides:
        config = config.replace(**overrides)
    return config.validate()


def parse_levels(text: str, levels: int | None = None) -> list[list[float]]:
    """``"16, 24; 32, 48"`` -> ``[[16, 24], [32, 48]]``: levels split by ``;``, values by ``,``.

    The text form of anchor sizes and ratios that the AnchorViewer's fields show. A single
    group is repeated on every level when ``levels`` is given (handy for ratios).
    """
    groups = [g.strip() for g in text.split(";") if g.strip()]
    if not groups:
        raise ConfigError("give at least one value")
    try:
        parsed = [[float(v) for v in g.replace(" ", ",").split(",") if v.strip()] for g in groups]
    except ValueError as error:
        raise ConfigError(f"not a number in {text!r}: use '16, 24; 32, 48'") from error
    if levels is not None and len(parsed) == 1 and levels > 1:
        parsed = parsed * levels
    return parsed


def format_levels(values: list[list[float]], collapse: bool = False) -> str:
    """The inverse of :func:`parse_levels`; identical levels collapse to one group if asked."""
    if collapse and values and all(v == values[0] for v in values):
        values = values[:1]
    return "; ".join(", ".join(f"{v:g}" for v in level) for level in values)
