"""Writes that fail as a full disk or a read-only folder would, for tests that run as root.

Root ignores ``chmod``, and no test can fill a real disk, so the one atomic writer's temp
file is made to fail instead (:func:`napari_detlab.core.atomic._open_temporary`):

- :func:`disk_full` hands it a descriptor of ``/dev/full``, where every write fails with the
  kernel's own ``ENOSPC``; the real temp file beside the destination is created too, so a
  test sees whether the writer removes it;
- :func:`read_only` fails where creating the temp file fails on a read-only file system;
- :func:`disk_full_after` lets the first N writes through and fails the rest at ``fsync``,
  where a disk that fills up mid-job reports it (the formats write on several threads).
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import napari_detlab.core.atomic as atomic

Opener = Callable[[Path], tuple[int, str]]


def disk_full(path: Path, real: Opener) -> tuple[int, str]:
    fd, name = real(path)
    os.close(fd)
    return os.open("/dev/full", os.O_WRONLY), name


def read_only(path: Path, real: Opener) -> tuple[int, str]:
    raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path.parent))


def fail_writes(
    monkeypatch: pytest.MonkeyPatch,
    how: Callable[[Path, Opener], tuple[int, str]],
    names: set[str] | None = None,
) -> None:
    """From now on, atomic writes of files named in ``names`` (every file: ``None``) fail."""
    real = atomic._open_temporary

    def opener(path: Path) -> tuple[int, str]:
        return how(path, real) if names is None or path.name in names else real(path)

    monkeypatch.setattr(atomic, "_open_temporary", opener)


def disk_full_after(monkeypatch: pytest.MonkeyPatch, files: int) -> None:
    """Let the first ``files`` atomic writes through, then fail every one with ``ENOSPC``.

    The failure comes where a full disk reports it, at ``fsync`` after the data went to the
    temporary file, so the real atomic writer is what has to leave no half file behind.
    Thread-safe: the formats write on several threads.
    """
    real_fsync = os.fsync
    lock = threading.Lock()
    written = [0]

    def fsync(fd: int) -> None:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # the folder's own fsync after a rename
            return real_fsync(fd)
        with lock:
            full = written[0] >= files
            written[0] += not full
        if full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", fsync)


def temp_files(folder: Path) -> list[Path]:
    """The temp files atomic writes left in ``folder`` (hidden ``.name.xxxxxxxx.tmp``)."""
    return sorted(p for p in folder.iterdir() if p.name.endswith(".tmp"))


def leftovers(folder: Path) -> list[Path]:
    """Temporary files of atomic writes anywhere under ``folder`` (there must be none)."""
    return [path for path in folder.rglob(".*") if path.name.endswith(".tmp")]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of ``folder`` and its bytes, to show that nothing written before changed."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
