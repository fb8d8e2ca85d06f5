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
which in one line. The train dock lets the user choose (:func:`start_choices`,
:func:`with_start`, :func:`start_choice_title`) and download what the choice lacks
(:func:`weights_to_fetch`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from napari_detlab.core.model.config import COCO_DETECTOR_BACKBONES, ConfigError, ModelConfig

__all__ = [
    "BEST_START",
    "START_TITLES",
    "KnownWeights",
    "describe_start",
    "known_weights",
    "start_choice_title",
    "start_choices",
    "weights_for",
    "weights_to_fetch",
    "with_best_start",
    "with_start",
]

START_TITLES = {"none": "from scratch", "imagenet": "ImageNet backbone", "coco": "COCO detector"}
# The choice that takes the best starting point present (what presets do by default).
BEST_START = "best"
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


def _pretrained_files(config: ModelConfig) -> dict[str, list[KnownWeights]]:
    """``{start: its files, preferred first}`` for each pretrained start of the backbone,
    best start first."""
    return {
        start: weights_for(config.replace(pretrained=start)) for start in _starts_for(config)[:-1]
    }


def _any_present(files: list[KnownWeights]) -> bool:
    return any(w.present for w in files)


def with_best_start(config: ModelConfig) -> ModelConfig:
    """``config`` starting from the best weights present on this machine.

    A COCO detector beats an ImageNet backbone, which beats training from scratch; the
    number of trainable backbone stages follows (a pretrained backbone keeps its first
    stages frozen). A config with ``weights_path`` (the user's own file) is left alone.
    """
    if config.weights_path:
        return config
    for start, files in _pretrained_files(config).items():
        if _any_present(files):
            return with_start(config, start)
    return with_start(config, "none")


def start_choices(config: ModelConfig) -> list[str]:
    """What the user may start ``config``'s backbone from: :data:`BEST_START`, then
    ``"none"``, ``"imagenet"`` and, where torchvision has a COCO detector, ``"coco"``."""
    return [BEST_START, *reversed(_starts_for(config))]


def with_start(config: ModelConfig, start: str) -> ModelConfig:
    """``config`` starting from ``start`` (one of :func:`start_choices`).

    :data:`BEST_START` is :func:`with_best_start`; any other choice is the user's and
    replaces a ``weights_path``. Trainable backbone stages follow the start.

    Raises
    ------
    ConfigError
        ``start`` is none of the choices, or a COCO detector for a backbone without one.
    """
    if start == BEST_START:
        return with_best_start(config)
    if start not in START_TITLES:
        raise ConfigError(
            f"unknown starting point {start!r}; choose one of {BEST_START}, "
            f"{', '.join(START_TITLES)}"
        )
    if start not in _starts_for(config):
        raise ConfigError(
            f"torchvision has no COCO detector for {config.backbone}"
            f"{' with FPN' if config.fpn else ' without FPN'}; start from ImageNet instead"
        )
    layers = SCRATCH_TRAINABLE_LAYERS if start == "none" else PRETRAINED_TRAINABLE_LAYERS
    return config.replace(pretrained=start, weights_path=None, trainable_layers=layers)


def start_choice_title(config: ModelConfig, start: str) -> str:
    """How the choice ``start`` for ``config`` reads, saying whether its file is here.

    For example ``"best present (now: from scratch)"``, ``"ImageNet backbone: here"`` or
    ``"COCO detector: not here (160 MB)"``.
    """
    if start == BEST_START:
        chosen = with_best_start(config)
        now = "your weights file" if chosen.weights_path else START_TITLES[chosen.pretrained]
        return f"best present (now: {now})"
    files = _pretrained_files(config).get(start)
    if not files:
        return START_TITLES[start]
    if _any_present(files):
        return f"{START_TITLES[start]}: here"
    size = f" ({files[0].size_mb:.0f} MB)" if files[0].size_mb else ""
    return f"{START_TITLES[start]}: not here{size}"


def weights_to_fetch(config: ModelConfig, start: str) -> KnownWeights | None:
    """The file a download should bring for the choice ``start`` (``None``: nothing to get).

    An explicit start's preferred file while none of its files is here; for
    :data:`BEST_START` that ends up from scratch, the file :func:`describe_start` suggests.
    """
    if start == BEST_START:
        chosen = with_best_start(config)
        return _suggested(chosen) if chosen.pretrained == "none" else None
    files = _pretrained_files(config).get(start)
    return files[0] if files and not _any_present(files) else None


def _suggested(config: ModelConfig) -> KnownWeights | None:
    """The pretrained file to get for a backbone that has none here: the ImageNet one
    (smaller than a COCO detector, and it fits every backbone)."""
    preferred = [files[0] for files in _pretrained_files(config).values() if files]
    return preferred[-1] if preferred else None


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
    here = [start for start, files in _pretrained_files(config).items() if _any_present(files)]
    if here:
        return f"from scratch, as chosen ({START_TITLES[here[0]]} for {config.backbone} is here)"
    suggested = _suggested(config)
    if suggested is None:
        return "from scratch"
    return (
        f"from scratch: no pretrained weights for {config.backbone} on this machine "
        f"(detlab weights download {suggested.name})"
    )
