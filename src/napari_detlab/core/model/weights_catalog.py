"""Which pretrained weights a model can start from, where they live, and which are here.

torchvision publishes ImageNet backbones and COCO detectors; its weights enums carry each
file's URL, whose name ends in the first hex digits of the file's SHA-256
(``resnet18-f37072fd.pth``). napari-detlab never downloads behind the user's back: this
module only names those files and looks for them where torchvision keeps them
(``torch.hub.get_dir()/checkpoints``, moved by ``TORCH_HOME``); a download happens when the
user asks for one (:mod:`~napari_detlab.core.model.download`: the train dock's button,
``detlab weights download NAME``).

A model's *starting point* is its config's ``pretrained``: ``"none"`` (from scratch),
``"imagenet"`` (an ImageNet backbone) or ``"coco"`` (a whole COCO detector: ResNet-50 or
MobileNetV3 with FPN). :func:`with_best_start` gives a preset the best one present, since a
detector from a few dozen images needs pretrained weights, and :func:`describe_start` says
which in one line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from napari_detlab.core.model.config import COCO_DETECTOR_BACKBONES, ModelConfig

__all__ = [
    "START_TITLES",
    "KnownWeights",
    "describe_start",
    "known_weights",
    "weights_for",
    "with_best_start",
]

START_TITLES = {"none": "from scratch", "imagenet": "ImageNet backbone", "coco": "COCO detector"}
# Backbone stages trained on top of pretrained weights (torchvision's detection default);
# from scratch every stage must train.
PRETRAINED_TRAINABLE_LAYERS = 3
SCRATCH_TRAINABLE_LAYERS = 5
_HASH = re.compile(r"-([a-f0-9]+)\.")  # torch.hub's convention for the hash in a file name


@dataclass(frozen=True)
class KnownWeights:
    """One downloadable weights file.

    Attributes
    ----------
    name
        What a user types: ``detlab weights download resnet18-imagenet``.
    backbone, start
        The config it serves: ``backbone`` with ``pretrained=start``.
    url
        torchvision's URL; its file name carries :attr:`hash_prefix`.
    size_mb
        The file's size as torchvision documents it (0 when unknown).
    """

    name: str
    backbone: str
    start: str
    url: str
    size_mb: float = 0.0

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def hash_prefix(self) -> str:
        """The leading hex digits of the file's SHA-256, from its name ('' if it has none)."""
        found = _HASH.search(self.file_name)
        return found.group(1) if found else ""

    @property
    def path(self) -> Path:
        """Where torchvision keeps (and napari-detlab looks for) this file."""
        return Path(torch.hub.get_dir()) / "checkpoints" / self.file_name

    @property
    def present(self) -> bool:
        return self.path.is_file()

    @property
    def title(self) -> str:
        return f"{START_TITLES[self.start]} ({self.backbone})"


def known_weights() -> list[KnownWeights]:
    """Every weights file a napari-detlab config can start from, preferred first per config.

    Read from torchvision's weights enums (imported here, not at module import: they are
    slow to import).
    """
    from torchvision.models import (
        MobileNet_V3_Large_Weights,
        ResNet18_Weights,
        ResNet34_Weights,
        ResNet50_Weights,
    )
    from torchvision.models.detection import (
        FasterRCNN_MobileNet_V3_Large_FPN_Weights,
        FasterRCNN_ResNet50_FPN_Weights,
    )

    table = (
        ("resnet18-imagenet", "resnet18", "imagenet", ResNet18_Weights.IMAGENET1K_V1),
        ("resnet34-imagenet", "resnet34", "imagenet", ResNet34_Weights.IMAGENET1K_V1),
        ("resnet50-imagenet", "resnet50", "imagenet", ResNet50_Weights.IMAGENET1K_V1),
        ("resnet50-imagenet-v2", "resnet50", "imagenet", ResNet50_Weights.IMAGENET1K_V2),
        ("mobilenet_v3_large-imagenet", "mobilenet_v3_large", "imagenet",
         MobileNet_V3_Large_Weights.IMAGENET1K_V1),
        ("mobilenet_v3_large-imagenet-v2", "mobilenet_v3_large", "imagenet",
         MobileNet_V3_Large_Weights.IMAGENET1K_V2),
        ("resnet50-fpn-coco", "resnet50", "coco", FasterRCNN_ResNet50_FPN_Weights.COCO_V1),
        ("mobilenet_v3_large-fpn-coco", "mobilenet_v3_large", "coco",
         FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1),
    )  # fmt: skip
    return [
        KnownWeights(name, backbone, start, enum.url, float(enum.meta.get("_file_size", 0.0)))
        for name, backbone, start, enum in table
    ]


def weights_for(config: ModelConfig) -> list[KnownWeights]:
    """The files that can give ``config`` its pretrained start, preferred first (none for
    ``pretrained="none"``)."""
    return [
        w for w in known_weights() if w.start == config.pretrained and w.backbone == config.backbone
    ]


def _starts_for(config: ModelConfig) -> list[str]:
    """The starting points this backbone can have, best first."""
    coco = config.fpn and config.backbone in COCO_DETECTOR_BACKBONES
    return (["coco"] if coco else []) + ["imagenet", "none"]


def with_best_start(config: ModelConfig) -> ModelConfig:
    """``config`` starting from the best weights present on this machine.

    A COCO detector beats an ImageNet backbone, which beats training from scratch; the
    number of trainable backbone stages follows (a pretrained backbone keeps its first
    stages frozen). A config with ``weights_path`` (the user's own file) is left alone.
    """
    if config.weights_path:
        return config
    for start in _starts_for(config):
        candidate = config.replace(pretrained=start)
        if start == "none" or any(w.present for w in weights_for(candidate)):
            layers = SCRATCH_TRAINABLE_LAYERS if start == "none" else PRETRAINED_TRAINABLE_LAYERS
            return candidate.replace(trainable_layers=layers)
    return config  # not reached: "none" is always possible


def describe_start(config: ModelConfig) -> str:
    """One line saying where training starts: which weights, and whether they are here.

    For example ``"ImageNet backbone (resnet18-f37072fd.pth)"`` or ``"from scratch: no
    pretrained weights for resnet18 on this machine (detlab weights download
    resnet18-imagenet)"``.
    """
    if config.weights_path:
        return f"your weights file {config.weights_path}"
    if config.pretrained != "none":
        files = weights_for(config)
        present = next((w for w in files if w.present), None)
        if present is not None:
            return f"{START_TITLES[config.pretrained]} ({present.file_name})"
        wanted = files[0].name if files else config.pretrained
        return (
            f"{START_TITLES[config.pretrained]}, NOT on this machine: download it first "
            f"(detlab weights download {wanted})"
        )
    better = [
        w
        for start in _starts_for(config)[:-1]
        for w in weights_for(config.replace(pretrained=start))[:1]
    ]
    if not better:
        return "from scratch"
    return (
        f"from scratch: no pretrained weights for {config.backbone} on this machine "
        f"(detlab weights download {better[-1].name})"
    )
