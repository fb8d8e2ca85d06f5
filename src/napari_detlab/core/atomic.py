"""Crash-safe writes and the only way the project reads ``.pt`` files.

A file is written next to its destination under a temporary name, flushed to disk and then
moved over the old one with :func:`os.replace`, so a reader (or a user after a crash) sees
either the old file or the new one, never half of one.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["UnsafeFileError", "atomic_write_bytes", "atomic_write_json", "atomic_torch_save", "safe_torch_load"]


class UnsafeFileError(ValueError):
    """A ``.pt`` file that needs arbitrary unpickling: refused, never executed."""


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode("utf-8"))


def atomic_torch_save(path: str | os.PathLike[str], obj: Any) -> None:
    """``torch.save`` to memory first, then one atomic write: no partial ``.pt`` on disk."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def safe_torch_load(path: str | os.PathLike[str], *, allow: list[Any] | None = None) -> Any:
    """Load a ``.pt`` file with ``weights_only=True``, naming the file when it is refused.

    Parameters
    ----------
    path
        The file to read.
    allow
        Extra globals the unpickler may build (for the tutorial's numpy arrays), passed to
        :func:`torch.serialization.safe_globals`. Anything else that needs code to run is
        refused with :class:`UnsafeFileError`.
    """
    try:
        if allow:
            with torch.serialization.safe_globals(allow):
                return torch.load(path, map_location="cpu", weights_only=True)
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise UnsafeFileError(
            f"{path}: refused, it needs arbitrary code to load ({str(error).splitlines()[0]})"
        ) from error
    except (RuntimeError, EOFError, OSError) as error:
        raise ValueError(f"{path}: not a readable .pt file ({str(error).splitlines()[0]})") from error
