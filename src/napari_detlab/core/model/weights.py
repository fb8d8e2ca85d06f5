"""Pretrained weights, from files already on disk: never from the network.

A scientist's workstation or a cluster node often has no internet, and a download hidden in
a training run is a surprise nobody wants. So ``pretrained="imagenet"`` / ``"coco"`` resolve
torchvision's weights enums to the file torchvision *would* have downloaded
(:mod:`~napari_detlab.core.model.weights_catalog`) and load it from there, and
``weights_path`` loads any local file. A missing file is an error that says how to get it
(a download the user starts: :mod:`~napari_detlab.core.model.download`) or where to put it.

Three kinds of file are understood, told apart by their keys:

- a classification backbone (``conv1.weight``, ``layer1...`` or ``features...``), whose
  tensors go into the detector's backbone body;
- a whole detector state dict (``backbone...``, ``rpn...``, ``roi_heads...``), e.g.
  torchvision's COCO Faster R-CNN;
- a napari-detlab checkpoint or any dict holding a state dict under ``model`` /
  ``state_dict``.

Tensors whose shape does not fit (a class head for another number of classes, an RPN head
for another anchor count) are skipped and listed in the returned :class:`WeightsReport`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from napari_detlab.core.atomic import safe_torch_load
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.model.config import ModelConfig
from napari_detlab.core.model.weights_catalog import weights_for

__all__ = [
    "WeightsFileError",
    "WeightsNotFoundError",
    "WeightsReport",
    "expected_weights_files",
    "load_pretrained",
    "load_weights_file",
    "required_weights_file",
]

logger = logging.getLogger(__name__)

_DETECTOR_PREFIXES = ("backbone.", "rpn.", "roi_heads.")
_STATE_DICT_KEYS = ("model", "model_state", "model_state_dict", "state_dict")


class WeightsFileError(DetlabError, ValueError):
    """A weights file that holds no usable tensors for this model."""


class WeightsNotFoundError(DetlabError, FileNotFoundError):
    """Pretrained weights that are not on disk; the message names the file and the ways out."""


@dataclass
class WeightsReport:
    """What :func:`load_pretrained` did, so a user can see the weights really landed.

    Attributes
    ----------
    source
        The file the tensors came from.
    kind
        ``"backbone"`` or ``"detector"``.
    loaded
        Model keys that received a tensor.
    skipped
        ``"key (why)"`` for tensors of the file that were not used because of their shape.
    """

    source: str
    kind: str
    loaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for a log or a status bar."""
        text = f"loaded {len(self.loaded)} {self.kind} tensors from {self.source}"
        if self.skipped:
            text += f"; skipped {len(self.skipped)} of another shape ({', '.join(self.skipped[:3])}"
            text += ", ...)" if len(self.skipped) > 3 else ")"
        return text


def expected_weights_files(config: ModelConfig) -> list[Path]:
    """Where torchvision keeps the config's pretrained weights, preferred file first.

    This is ``torch.hub.get_dir()/checkpoints/<file name of the enum's url>``, the file
    ``torchvision`` writes when it downloads them (``TORCH_HOME`` moves it).
    """
    return [weights.path for weights in weights_for(config)]


def _unwrap_state_dict(data: Any, source: str) -> dict[str, torch.Tensor]:
    """The tensors of a state dict, a checkpoint holding one, or a DDP-saved one."""
    if isinstance(data, dict):
        for key in _STATE_DICT_KEYS:
            if isinstance(data.get(key), dict):
                data = data[key]
                break
    if not isinstance(data, dict) or not any(isinstance(v, torch.Tensor) for v in data.values()):
        raise WeightsFileError(f"{source}: holds no state dict of tensors")
    tensors = {str(k): v for k, v in data.items() if isinstance(v, torch.Tensor)}
    if all(k.startswith("module.") for k in tensors):  # saved from a DDP wrapper
        tensors = {k[len("module.") :]: v for k, v in tensors.items()}
    return tensors


def _backbone_key_map(config: ModelConfig) -> tuple[str, str]:
    """``(prefix to strip, prefix to add)`` that move classification keys into the detector.

    The builder wraps ResNets in torchvision's FPN body (``backbone.body.``) or an
    ``IntermediateLayerGetter`` (``backbone.``), and MobileNetV3's ``features`` in the FPN
    body (``backbone.body.<i>``) or a ``Sequential`` (``backbone.0.<i>``).
    """
    if config.backbone.startswith("mobilenet"):
        return "features.", "backbone.body." if config.fpn else "backbone.0."
    return "", "backbone.body." if config.fpn else "backbone."


def _is_detector(tensors: dict[str, torch.Tensor]) -> bool:
    return any(key.startswith(_DETECTOR_PREFIXES) for key in tensors)


def load_weights_file(model: nn.Module, path: str | Path, config: ModelConfig) -> WeightsReport:
    """Copy the tensors of ``path`` that fit into ``model``; see the module docstring.

    Raises
    ------
    ValueError
        The file cannot be read, holds no tensors, or not one of its tensors fits the model
        (the wrong backbone, most likely).
    """
    source = str(path)
    tensors = _unwrap_state_dict(safe_torch_load(path), source)
    if _is_detector(tensors):
        kind, renamed = "detector", tensors
    else:
        strip, add = _backbone_key_map(config)
        kind = "backbone"
        renamed = {add + k[len(strip) :]: v for k, v in tensors.items() if k.startswith(strip)}
    target = model.state_dict()
    usable: dict[str, torch.Tensor] = {}
    report = WeightsReport(source=source, kind=kind)
    for key, tensor in renamed.items():
        if key not in target:
            continue  # a classifier's fc/classifier, or BatchNorm counters FrozenBN lacks
        if tensor.shape != target[key].shape:
            report.skipped.append(f"{key} ({tuple(tensor.shape)} vs {tuple(target[key].shape)})")
            continue
        usable[key] = tensor
    if not usable:
        raise WeightsFileError(
            f"{source}: none of its tensors fit a {config.backbone}{' FPN' if config.fpn else ''} "
            "detector; is it the weights of another backbone?"
        )
    model.load_state_dict(usable, strict=False)
    report.loaded = sorted(usable)
    logger.info(report.summary())
    return report


def load_pretrained(model: nn.Module, config: ModelConfig) -> WeightsReport | None:
    """Load the config's pretrained weights into a freshly built model, offline.

    ``config.weights_path`` wins over ``config.pretrained``; with neither nothing happens
    and ``None`` is returned.

    Raises
    ------
    WeightsNotFoundError
        The file is not on disk; the message names the expected path and the alternatives.
    """
    path = required_weights_file(config)
    return None if path is None else load_weights_file(model, path, config)


def required_weights_file(config: ModelConfig) -> Path | None:
    """The file the config's weights start from (``None``: from scratch), checked to be here
    before a run starts.

    Raises
    ------
    WeightsNotFoundError
        The file is not on disk; the message names the expected path and the alternatives.
    """
    if config.weights_path:
        path = Path(config.weights_path).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(
                f"weights_path {path} does not exist; point it at a local .pth file or set "
                'pretrained="none" and clear weights_path to train from scratch'
            )
        return path
    candidates = expected_weights_files(config)
    if not candidates:
        return None
    for path in candidates:
        if path.is_file():
            return path
    name = weights_for(config)[0].name
    raise WeightsNotFoundError(
        f"{config.pretrained} weights for {config.backbone} are not on this machine (nothing is "
        f"downloaded behind your back): run `detlab weights download {name}` (or the train "
        f"dock's Download button), or copy {candidates[0].name} to {candidates[0]}, or set "
        'weights_path to a local weights file, or use pretrained="none" to train from scratch'
    )
