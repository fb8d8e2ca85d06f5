"""Files loaded once and re-loaded only when rewritten, shared by the GUI and worker threads.

The Review dock scores the whole prediction folder after each change. Reading hundreds of
``.pt`` files again every time would dominate; a file's stamp (modification time, inode,
size) tells whether it changed, and atomic writes (a new inode) always change it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["FileCache", "file_stamp"]


def file_stamp(path: Path) -> tuple[int, int, int]:
    """Changes whenever the file is rewritten (atomic writes replace the inode too)."""
    stat = path.stat()
    return (stat.st_mtime_ns, stat.st_ino, stat.st_size)


class FileCache:
    """``load(path)`` results keyed by path and stamp; safe to use from several threads.

    The lock guards the table only: two threads may load the same changed file at once,
    which costs a read but never returns a stale value.
    """

    def __init__(self) -> None:
        self._entries: dict[Path, tuple[tuple[int, int, int], Any]] = {}
        self._lock = threading.Lock()

    def get(self, path: Path, load: Callable[[Path], Any]) -> Any:
        """``load(path)``, re-run only when the file changed; None when it does not exist."""
        try:
            stamp = file_stamp(path)
        except OSError:
            with self._lock:
                self._entries.pop(path, None)
            return None
        with self._lock:
            hit = self._entries.get(path)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        value = load(path)
        with self._lock:
            self._entries[path] = (stamp, value)
        return value

    def clear(self) -> None:
        """Forget every file (another dataset was opened)."""
        with self._lock:
            self._entries.clear()
