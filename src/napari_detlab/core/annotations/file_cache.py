"""Files loaded once and re-loaded only when rewritten, shared by the GUI and worker threads.

The Review dock scores the whole prediction folder after each change, and the class list,
the class counts, the AnchorViewer and training each ask about every annotation file of a
dataset. Reading thousands of ``.pt`` files again every time would dominate; a file's stamp
(modification and change times in nanoseconds, inode, size) tells whether it changed.

The stamp alone is not proof. A file system keeps times at a granularity (a kernel tick of
a few milliseconds on ext4, 2 s on FAT), a rewrite in place keeps the inode, and a freed
inode number can come back for the next atomic write: another program may rewrite a file
with the same size within one tick and leave every field of the stamp as it was. So, as
git does for its index ("racily clean" entries), a value read from a file changed less than
:data:`SETTLE_NS` before it was stamped is never trusted: such a file is read again on every
call until it has been quiet for that long. Any later rewrite moves the change time (which
no program can set back), so a file that settled and then changed always shows a new stamp.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from napari_detlab.core.stacks import split_plane

__all__ = [
    "SETTLE_NS",
    "FileCache",
    "Stamp",
    "file_stamp",
    "index_disabled",
    "index_enabled",
    "regular_file_stamp",
    "settled",
    "stamp_of",
]

# A file changed this recently (nanoseconds) when it was stamped is read again next time.
SETTLE_NS = 2_000_000_000

Stamp = tuple[int, int, int, int]

_DISABLED = 0
_SWITCH_LOCK = threading.Lock()


@contextlib.contextmanager
def index_disabled() -> Iterator[None]:
    """Answer every question from the files, as before the index: no folder index
    (:mod:`~napari_detlab.core.annotations.index`), no :meth:`FileCache.derived` values and
    no remembered COCO scores, in every thread. The baseline of ``bench_large_folder`` and
    of the tests that compare answers with and without them."""
    global _DISABLED
    with _SWITCH_LOCK:
        _DISABLED += 1
    try:
        yield
    finally:
        with _SWITCH_LOCK:
            _DISABLED -= 1


def index_enabled() -> bool:
    """Whether the index and the values derived from cached files are in use."""
    return not _DISABLED


def stamp_of(status: os.stat_result) -> Stamp:
    """``(mtime_ns, ctime_ns, inode, size)``: what changes when a file is rewritten."""
    return (status.st_mtime_ns, status.st_ctime_ns, status.st_ino, status.st_size)


def file_stamp(path: Path) -> Stamp:
    """The stamp of ``path`` (see :func:`stamp_of`); ``OSError`` when it cannot be stat'ed.

    A plane of a stack (:mod:`~napari_detlab.core.stacks`) has its stack file's stamp: what
    was learnt from a plane holds until that file changes.
    """
    return stamp_of(_status(path))


def regular_file_stamp(path: Path) -> Stamp | None:
    """The stamp of ``path`` when it is a regular file (symlinks followed), else ``None``;
    a plane of a stack has its file's, as for :func:`file_stamp`."""
    try:
        status = _status(path)
    except OSError:
        return None
    return stamp_of(status) if stat.S_ISREG(status.st_mode) else None


def _status(path: Path) -> os.stat_result:
    try:
        return path.stat()
    except FileNotFoundError:  # only then is the name looked at: plain files pay nothing
        plane = split_plane(path)
        if plane is None:
            raise
        return plane[0].stat()


def settled(stamp: Stamp, now_ns: int) -> bool:
    """Whether a file stamped at ``now_ns`` had been quiet long enough to trust its stamp."""
    return now_ns - max(stamp[0], stamp[1]) >= SETTLE_NS


@dataclass
class _Entry:
    stamp: Stamp
    trusted: bool
    value: Any


class FileCache:
    """``load(path)`` results keyed by path and stamp; safe to use from several threads.

    The lock guards the tables only: two threads may load the same changed file at once,
    which costs a read but never returns a stale value. Besides files it keeps values
    derived from them (:meth:`derived`), recomputed when one of their inputs was re-read.
    """

    def __init__(self) -> None:
        self._entries: dict[Path, _Entry] = {}
        self._derived: dict[Hashable, tuple[tuple[object, ...], Hashable, Any]] = {}
        self._lock = threading.Lock()
        # Trusted values read from files since the last :meth:`mark_saved`.
        self._unsaved = 0
        self._seed_lock = threading.Lock()
        self._seeded = False

    def get(
        self,
        path: Path,
        load: Callable[[Path], Any],
        *,
        stamp: Stamp | None = None,
        valid: Callable[[Any], bool] | None = None,
    ) -> Any:
        """``load(path)``, re-run only when the file changed; None when it does not exist.

        Parameters
        ----------
        path, load
            The file and how to read it.
        stamp
            The file's stamp when the caller has just taken it (from ``os.scandir``), to
            spare a second ``stat``; it must be taken before the call, never after a read.
        valid
            Whether a cached value still holds for reasons outside the file (the image an
            annotation was checked against); a value it refuses is loaded again.
        """
        if stamp is None:
            try:
                stamp = file_stamp(path)
            except OSError:
                self.forget(path)
                return None
        now = time.time_ns()
        with self._lock:
            hit = self._entries.get(path)
        if (
            hit is not None
            and hit.trusted
            and hit.stamp == stamp
            and (valid is None or valid(hit.value))
        ):
            return hit.value
        value = load(path)  # after the stamp: a rewrite during the read shows a new one
        self._put(path, stamp, settled(stamp, now), value)
        return value

    def get_many(
        self,
        paths: Sequence[Path],
        load_many: Callable[[list[Path]], dict[Path, Any]],
    ) -> dict[Path, Any]:
        """:meth:`get` for many files at once: ``load_many`` is called once, with the files
        whose value is missing or stale (so it can spread them over threads), and returns a
        value for each. Files that cannot be stat'ed are left out of the answer."""
        stamps: dict[Path, Stamp] = {}
        for path in paths:
            try:
                stamps[path] = file_stamp(path)
            except OSError:
                self.forget(path)
        now = time.time_ns()
        values: dict[Path, Any] = {}
        with self._lock:
            for path, stamp in stamps.items():
                hit = self._entries.get(path)
                if hit is not None and hit.trusted and hit.stamp == stamp:
                    values[path] = hit.value
        missing = [path for path in stamps if path not in values]
        if missing:
            loaded = load_many(missing)  # after the stamps, as in get()
            for path in missing:
                stamp = stamps[path]
                self._put(path, stamp, settled(stamp, now), loaded[path])
            values.update((path, loaded[path]) for path in missing)
        return {path: values[path] for path in stamps}

    def _put(self, path: Path, stamp: Stamp, trusted: bool, value: Any) -> None:
        with self._lock:
            self._entries[path] = _Entry(stamp, trusted, value)
            self._unsaved += trusted

    def seed_once(self, read: Callable[[], Mapping[Path, tuple[Stamp, Any]]]) -> None:
        """Take in values an earlier process read (:mod:`.saved_index`), once per cache:
        ``read()`` runs on the first call only (other threads wait for it), and its values
        are trusted under their stamps, as if read here: each was stored only for a stamp
        that had settled, and is used only while the file shows that very stamp. A file
        this cache read itself meanwhile keeps its own value."""
        if self._seeded:
            return
        with self._seed_lock:
            if self._seeded:
                return
            entries = read()
            with self._lock:
                for path, (stamp, value) in entries.items():
                    self._entries.setdefault(path, _Entry(stamp, True, value))
            self._seeded = True

    def trusted(self) -> dict[Path, tuple[Stamp, Any]]:
        """``{path: (stamp, value)}`` of every value whose stamp had settled when read."""
        with self._lock:
            return {
                path: (entry.stamp, entry.value)
                for path, entry in self._entries.items()
                if entry.trusted
            }

    def unsaved(self) -> int:
        """How many trusted values were read from files since :meth:`mark_saved`."""
        return self._unsaved

    def mark_saved(self) -> None:
        """The values now kept were written down (:mod:`.saved_index`)."""
        with self._lock:
            self._unsaved = 0

    def derived(
        self,
        key: Hashable,
        inputs: Sequence[object],
        setting: Hashable,
        compute: Callable[[], Any],
    ) -> Any:
        """``compute()``, kept under ``key`` while ``inputs`` are the very same objects and
        ``setting`` is equal.

        Values read through :meth:`get` stay the same object until their file changes, so a
        figure computed from them (one image's review at one setting) is reused until one
        of its files is rewritten or the setting moves.
        """
        if not index_enabled():
            return compute()
        inputs = tuple(inputs)
        with self._lock:
            hit = self._derived.get(key)
        if (
            hit is not None
            and hit[1] == setting
            and len(hit[0]) == len(inputs)
            and all(a is b for a, b in zip(hit[0], inputs, strict=True))
        ):
            return hit[2]
        value = compute()
        with self._lock:
            self._derived[key] = (inputs, setting, value)
        return value

    def __len__(self) -> int:
        """How many files are kept."""
        return len(self._entries)

    def forget(self, path: Path) -> None:
        """Drop one file (it was deleted)."""
        with self._lock:
            self._entries.pop(path, None)

    def retain(self, paths: set[Path]) -> None:
        """Drop every file not in ``paths`` (the ones a folder listing no longer shows)."""
        with self._lock:
            for path in [path for path in self._entries if path not in paths]:
                del self._entries[path]

    def clear(self) -> None:
        """Forget every file (another dataset was opened)."""
        with self._lock:
            self._entries.clear()
            self._derived.clear()
            self._unsaved = 0
