"""Self-describing checkpoints: one ``.pt`` file is enough to rebuild, resume or predict.

A checkpoint is a plain dict of tensors, strings, numbers, lists and dicts, so it loads with
``torch.load(weights_only=True)`` (through :func:`~napari_detlab.core.atomic.safe_torch_load`)
and never runs code from the file::

    {"format": "napari-detlab-checkpoint", "version": 1,
     "config": ModelConfig.to_dict(), "classes": [...], "model": state_dict,
     "epoch": int, "metrics": {...}, "optimizer": state_dict | None,
     "scheduler": state_dict | None, "scaler": state_dict | None, "options": {...} | None,
     "torch_version": str, "torchvision_version": str,
     "split": {"train": [stem, ...], "val": [stem, ...]}}

``split`` (the images the weights were trained and validated on, so that evaluation can keep
them apart) is optional: checkpoints written before it was recorded load as before, and
:func:`read_checkpoint_split` answers ``None`` for them.

Saving checks that everything in it is one of those safe types first, so a checkpoint that
could not be loaded safely is refused when it is written, not discovered at resume time.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from torch import nn

from napari_detlab.core.atomic import UnreadableFileError, atomic_torch_save, safe_torch_load
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.model.config import ModelConfig

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "config_from_checkpoint",
    "load_checkpoint",
    "model_from_checkpoint",
    "read_checkpoint_split",
    "save_checkpoint",
    "unwrap_model",
    "unwrap_state_dict",
]

CHECKPOINT_FORMAT = "napari-detlab-checkpoint"
CHECKPOINT_VERSION = 1
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DistributedDataParallel, torch.compile


class CheckpointError(DetlabError, ValueError):
    """A file that is not a usable napari-detlab checkpoint; the message names it and why."""


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside ``DistributedDataParallel`` / ``DataParallel`` / ``torch.compile``."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def unwrap_state_dict(state: Mapping[str, Any]) -> OrderedDict[str, Any]:
    """Strip the ``module.`` / ``_orig_mod.`` prefixes wrappers add to every key."""
    out: OrderedDict[str, Any] = OrderedDict()
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in _WRAPPER_PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix) :], True
        out[key] = value
    return out


# Exact types: a ``str`` subclass (torch.__version__) or a numpy scalar (a ``float`` subclass)
# pickles as its own class, which ``weights_only`` loading refuses.
_SAFE_SCALARS = (str, int, float, bool, type(None), torch.Size, torch.dtype, torch.device)


def _check_safe(obj: Any, where: str) -> None:
    """Raise :class:`CheckpointError` naming the first value a ``weights_only`` load refuses."""
    if type(obj) in _SAFE_SCALARS or isinstance(obj, torch.Tensor):
        return
    if type(obj) in (dict, OrderedDict):
        for key, value in obj.items():
            if type(key) not in _SAFE_SCALARS:
                raise CheckpointError(
                    f"checkpoint {where}: key {key!r} of type {type(key).__name__}"
                )
            _check_safe(value, f"{where}[{key!r}]")
        return
    if type(obj) in (list, tuple, set):
        for index, value in enumerate(obj):
            _check_safe(value, f"{where}[{index}]")
        return
    raise CheckpointError(
        f"checkpoint {where} holds a {type(obj).__name__}, which a weights_only load refuses; "
        "store it as numbers, strings, lists, dicts or tensors"
    )


def _plain(value: Any) -> Any:
    """Dataclasses (e.g. the engine's TrainOptions), paths and numpy scalars as plain values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def save_checkpoint(
    path: str | Path,
    *,
    model: nn.Module,
    config: ModelConfig,
    epoch: int,
    metrics: Mapping[str, Any] | None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    scaler: Any | None = None,
    options: Any | None = None,
    split: Mapping[str, Sequence[str]] | None = None,
) -> Path:
    """Write a checkpoint atomically (a crash mid-write leaves the previous file intact).

    Parameters
    ----------
    path
        Destination ``.pt`` file; its folder is created.
    model
        The detector (wrapped in DDP or not: the plain model's weights are stored).
    config
        The :class:`ModelConfig` that builds ``model``; its classes are stored with it.
    epoch
        Epochs completed (resume continues from ``epoch``).
    metrics
        Validation metrics of that epoch (or ``None``).
    optimizer, scheduler, scaler
        Their ``state_dict()`` is stored for resume when given.
    options
        Training options (a dataclass or dict) recorded for reference and resume.
    split
        ``{"train": stems, "val": stems}``: the images these weights learnt from and were
        validated on, so that scoring their predictions later keeps the two apart.

    Returns
    -------
    Path
        The file written.
    """
    path = Path(path)
    state = unwrap_state_dict(unwrap_model(model).state_dict())
    checkpoint: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "config": _plain(config.to_dict()),
        "classes": list(config.classes),
        "model": state,
        "epoch": int(epoch),
        "metrics": _plain(dict(metrics)) if metrics is not None else {},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "options": _plain(options),
        "torch_version": str(torch.__version__),
        "torchvision_version": str(torchvision.__version__),
    }
    if split is not None:
        checkpoint["split"] = {
            side: [str(stem) for stem in split[side]] for side in ("train", "val")
        }
    for key in ("config", "metrics", "optimizer", "scheduler", "scaler", "options", "split"):
        _check_safe(checkpoint.get(key), f"[{key!r}]")
    atomic_torch_save(path, checkpoint)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and check a checkpoint written by :func:`save_checkpoint`.

    Raises
    ------
    FileNotFoundError
        No such file.
    napari_detlab.core.atomic.UnsafeFileError
        The file needs arbitrary code to load (refused, never executed).
    CheckpointError
        Anything else: not a ``.pt`` file, a bare state dict or someone else's checkpoint, a
        newer format version, missing keys.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        data = safe_torch_load(path)
    except UnreadableFileError as error:  # an unsafe file keeps its own type and message
        raise CheckpointError(
            f"{path}: not a checkpoint, {str(error).split(': ', 1)[-1]}"
        ) from error
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        hint = (
            " (it looks like a bare state dict; pass it as the config's weights_path instead)"
            if isinstance(data, dict) and data and all(torch.is_tensor(v) for v in data.values())
            else ""
        )
        raise CheckpointError(f"{path}: not a napari-detlab checkpoint{hint}")
    version = data.get("version")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r} is newer than this napari-detlab "
            f"understands ({CHECKPOINT_VERSION}); update napari-detlab"
        )
    missing = [key for key in ("config", "classes", "model") if key not in data]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(missing)}")
    return data


def read_checkpoint_split(path: str | Path) -> dict[str, list[str]] | None:
    """The ``{"train": [...], "val": [...]}`` split a checkpoint records, or ``None``.

    ``None`` for a checkpoint written before splits were recorded, or one that cannot be
    read: evaluation then calls its images' split unknown rather than refusing to score. The
    file is memory-mapped, so the weights (hundreds of MB for ResNet-50) are not read for
    two lists of names.
    """
    try:
        data = torch.load(Path(path), map_location="cpu", weights_only=True, mmap=True)
    except (OSError, EOFError, RuntimeError, ValueError, pickle.UnpicklingError):
        return None
    split = data.get("split") if isinstance(data, dict) else None
    if not isinstance(split, dict):
        return None
    sides = {side: split.get(side) for side in ("train", "val")}
    if not all(isinstance(v, list) and all(isinstance(s, str) for s in v) for v in sides.values()):
        return None
    return sides


def config_from_checkpoint(
    checkpoint: Mapping[str, Any], source: str = "checkpoint"
) -> ModelConfig:
    """The :class:`ModelConfig` stored in a loaded checkpoint, checked against its classes."""
    try:
        config = ModelConfig.from_dict(dict(checkpoint["config"]))
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{source}: its model config is unusable ({error})") from error
    if list(config.classes) != list(checkpoint["classes"]):
        raise CheckpointError(
            f"{source}: config classes {config.classes} differ from stored classes "
            f"{list(checkpoint['classes'])}"
        )
    return config


def model_from_checkpoint(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[nn.Module, ModelConfig]:
    """Rebuild the detector of a checkpoint, weights loaded, in eval mode on ``device``.

    The architecture comes from the stored config (``build_model(config, load_weights=False)``
    since the checkpoint holds every weight); a state dict that does not fit it raises
    :class:`CheckpointError` naming the first mismatching keys.
    """
    from napari_detlab.core.model.builder import build_model

    checkpoint = load_checkpoint(path)
    config = config_from_checkpoint(checkpoint, str(path))
    model = build_model(config, load_weights=False)
    state = unwrap_state_dict(checkpoint["model"])
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as error:  # tensor shapes differ (e.g. another class count)
        detail = str(error).strip().splitlines()[-1].strip()
        raise CheckpointError(f"{path}: weights do not fit the stored config ({detail})") from error
    problems = list(result.missing_keys) + list(result.unexpected_keys)
    if problems:
        raise CheckpointError(
            f"{path}: weights do not fit the stored {config.backbone} config "
            f"({len(result.missing_keys)} missing, {len(result.unexpected_keys)} unexpected, "
            f"e.g. {problems[0]!r})"
        )
    return model.to(device).eval(), config
