"""A disk that fills up mid-job, for tests that cannot fill a real one (and run as root,
whom ``chmod`` does not stop)."""

from __future__ import annotations

import errno
import os
import stat
import threading
from pathlib import Path

import pytest

from napari_detlab.core import atomic


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


def leftovers(folder: Path) -> list[Path]:
    """Temporary files of atomic writes under ``folder`` (there must be none)."""
    return [path for path in folder.rglob(".*") if path.name.endswith(".tmp")]
