"""The one rule for which device a model runs on, for training, prediction and ``torchrun``."""

from __future__ import annotations

import torch

from napari_detlab.core.errors import DetlabError

__all__ = ["DeviceError", "resolve_device"]


class DeviceError(DetlabError, ValueError):
    """A device that is not a device, or a GPU asked for where there is none."""


def resolve_device(
    requested: str | torch.device = "auto", *, local_rank: int | None = None
) -> torch.device:
    """The device ``requested`` means on this machine.

    Parameters
    ----------
    requested
        ``"auto"`` (CUDA when present, else the CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    local_rank
        Under ``torchrun``, this process's ``LOCAL_RANK``: a CUDA request then means that
        process's own GPU (``cuda:LOCAL_RANK``), whatever index was asked for.

    Returns
    -------
    torch.device
        A CUDA device always carries its index, so that two calls compare equal.

    Raises
    ------
    DeviceError
        ``requested`` is not a device, or asks for CUDA where no CUDA GPU is available.
    """
    if str(requested) == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError) as error:
        raise DeviceError(f"unknown device {requested!r}; use auto, cpu, cuda or cuda:N") from error
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {str(requested)!r} asked for, but no CUDA GPU is available; "
                "use the CPU (--device cpu)"
            )
        if local_rank is not None:
            device = torch.device("cuda", local_rank)
        elif device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
    return device
