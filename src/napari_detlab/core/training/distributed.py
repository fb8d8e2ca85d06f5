"""Multi-GPU / multi-node training through ``torchrun``, and nothing when run alone.

``torchrun`` starts one process per GPU and tells each who it is through ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK``. :class:`DistributedContext` reads them, joins the process group
(NCCL between GPUs, Gloo on CPU), and gives the engine the few collective operations it
needs. Launched as a plain process it is a single-rank context whose operations do nothing,
so the training loop has one code path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from napari_detlab.core.model.device import resolve_device

__all__ = ["DistributedContext"]

# Rank 0 evaluates the whole validation split while the others wait at a barrier; give a
# large validation set time before the collective gives up.
_GROUP_TIMEOUT = timedelta(hours=2)


@dataclass
class DistributedContext:
    """Who this process is in a ``torchrun`` job.

    Attributes
    ----------
    rank, world_size, local_rank
        From the environment (``0, 1, 0`` when not launched by ``torchrun``).
    launched
        Started by ``torchrun`` (its variables are set): the process joins a process group
        and trains under DDP, even alone (``--nproc_per_node 1``), so that a one-GPU
        ``torchrun`` exercises the same NCCL path as eight.
    owns_group
        This context created the process group, so :meth:`close` destroys it.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    launched: bool = False
    owns_group: bool = False

    @classmethod
    def from_env(cls) -> DistributedContext:
        """Read ``torchrun``'s variables; a single process when they are absent."""
        if "WORLD_SIZE" not in os.environ:
            return cls()
        return cls(
            rank=int(os.environ.get("RANK", "0")),
            world_size=int(os.environ["WORLD_SIZE"]),
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
            launched=True,
        )

    @property
    def enabled(self) -> bool:
        """Whether the collective operations run (a ``torchrun`` job, even of one process)."""
        return self.launched

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files and sends events."""
        return self.rank == 0

    def device_for(self, requested: str) -> torch.device:
        """The device of this rank: its own GPU (``cuda:LOCAL_RANK``) under ``torchrun``."""
        device = resolve_device(requested, local_rank=self.local_rank if self.enabled else None)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        return device

    def start(self, device: torch.device) -> None:
        """Join the process group (NCCL on CUDA, Gloo on CPU) unless already in one."""
        if not self.enabled or dist.is_initialized():
            return
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs = {"device_id": device} if device.type == "cuda" else {}
        dist.init_process_group(backend=backend, timeout=_GROUP_TIMEOUT, **kwargs)
        self.owns_group = True

    def close(self) -> None:
        """Leave the process group this context created."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over all ranks, in place."""
        if self.enabled:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def broadcast_flags(self, values: list[bool], device: torch.device) -> list[bool]:
        """Rank 0's decisions (stop early, cancel) made known to every rank."""
        if not self.enabled:
            return list(values)
        flags = torch.tensor([1.0 if value else 0.0 for value in values], device=device)
        dist.broadcast(flags, src=0)
        return [bool(flag) for flag in flags.tolist()]

    def describe(self, device: torch.device) -> str:
        """The device as the run reports it: ``cuda:0`` or ``cpu x2 processes (gloo)``."""
        name = str(device)
        if device.type == "cuda":
            name += f" ({torch.cuda.get_device_name(device)})"
        if self.enabled:
            backend = dist.get_backend() if dist.is_initialized() else "?"
            name += f" x{self.world_size} processes ({backend} DDP)"
        return name
