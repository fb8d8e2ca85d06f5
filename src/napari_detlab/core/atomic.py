"""Crash-safe writes and the only way the project reads ``.pt`` files.

A file is written next to its destination under a temporary name, flushed to disk and then
moved over the old one with :func:`os.replace`, so a reader (or a user after a crash) sees
either the old file or the new one, never half of one. A write that fails (a full disk, a
read-only folder) raises :class:`WriteError`, which names the file the caller asked for, not
the temporary one, and keeps the ``errno``.

``.pt`` files are pickles, and unpickling can run any code the file's author chose. Every
``.pt`` read in the project therefore goes through :func:`safe_torch_load`, which only
builds tensors, containers and the few extra types a caller explicitly allows.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import pickle
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

import torch

from napari_detlab.core.errors import DetlabError

__all__ = [
    "UnreadableFileError",
    "UnsafeFileError",
    "WriteError",
    "atomic_torch_save",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_writer",
    "make_folder",
    "remove_stale_temporaries",
    "safe_torch_load",
    "writing",
]


class UnsafeFileError(DetlabError, ValueError):
    """A ``.pt`` file that needs arbitrary unpickling: refused, never executed."""


class UnreadableFileError(DetlabError, ValueError):
    """A file that is not what it claims to be (truncated, empty, another format)."""


# What a person can do about the usual reasons a write fails.
_WRITE_ADVICE = {
    errno.ENOSPC: "the disk is full; free some space or choose another folder",
    errno.EDQUOT: "the disk quota is used up; free some space or choose another folder",
    errno.EROFS: "the folder is on a read-only file system; choose another folder",
    errno.EACCES: "no permission to write there; choose another folder",
    errno.EPERM: "no permission to write there; choose another folder",
    errno.EFBIG: "the file is larger than this system allows; choose another folder",
    errno.ENOTDIR: "part of that path is a file, not a folder; choose another folder",
    errno.EEXIST: "a file is in the way of that folder; choose another folder",
}


class WriteError(DetlabError, OSError):
    """A file or folder that could not be written: a full disk, a read-only folder, no
    permission.

    An ``OSError`` with the ``errno`` and ``strerror`` of the failure and, as ``filename``,
    the file the user asked for (not the temporary file the write went through); ``str()`` is
    one line naming it, why, and what to do (``advice``, which a caller may extend).
    """

    advice: str = ""

    @classmethod
    def naming(cls, error: OSError, path: str | os.PathLike[str]) -> WriteError:
        """``error`` (its errno and reason) as a write of ``path`` that failed."""
        if isinstance(error, WriteError):
            return error
        named = cls(error.errno, error.strerror or str(error) or type(error).__name__, str(path))
        named.advice = _WRITE_ADVICE.get(error.errno or 0, "")
        return named

    def __str__(self) -> str:
        advice = f"; {self.advice}" if self.advice else ""
        return f"{self.filename}: cannot write ({self.strerror}){advice}"


@contextlib.contextmanager
def writing(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn an ``OSError`` in the block into a :class:`WriteError` naming ``path``."""
    try:
        yield
    except OSError as error:
        raise WriteError.naming(error, path) from error


def make_folder(folder: str | os.PathLike[str]) -> Path:
    """Create ``folder`` (and its parents) if needed; a failure is a :class:`WriteError`."""
    folder = Path(folder)
    with writing(folder):
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def _current_umask() -> int:
    """The process umask, read once (``os.umask`` can only be read by setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Files made by ``mkstemp`` are private (0600); a renamed temp file would keep that and a
# colleague sharing the dataset folder could not read the annotations. New files get the
# permissions ``open()`` would have given them.
_NEW_FILE_MODE = 0o666 & ~_current_umask()


def _fsync_folder(folder: Path) -> None:
    """Persist the rename itself (POSIX); silently skipped where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _open_temporary(path: Path) -> tuple[int, str]:
    """A new hidden temp file beside ``path``: its descriptor and name (tests replace this
    to make writes fail as a full disk or a read-only folder would)."""
    return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)


class _NamingWrites:
    """A file handle whose failed writes raise :class:`WriteError` naming the destination.

    Only the handle's own writes are converted: an ``OSError`` from elsewhere in the caller's
    block (a dropped connection during a download) keeps its type.
    """

    def __init__(self, handle: BinaryIO, destination: Path) -> None:
        self._handle, self._destination = handle, destination

    def write(self, data: bytes) -> int:
        with self._naming():
            return self._handle.write(data)

    def flush(self) -> None:
        with self._naming():
            self._handle.flush()

    def __getattr__(self, name: str) -> object:
        return getattr(self._handle, name)

    @contextlib.contextmanager
    def _naming(self) -> Iterator[None]:
        try:
            yield
        except OSError as error:
            # Bytes that could not be written stay buffered, and closing the handle would try
            # them again, raising the same error without the file's name: the file descriptor
            # is closed now, which makes that close a no-op (the temp file is removed anyway).
            with contextlib.suppress(AttributeError, OSError):
                self._handle.raw.close()  # type: ignore[attr-defined]
            raise WriteError.naming(error, self._destination) from error


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary file handle whose content replaces ``path`` only if the block ends normally.

    The data goes to a hidden temp file beside ``path`` (``.name.xxxx.tmp``), flushed to
    disk and then moved over ``path`` with :func:`os.replace`; if the block raises (a
    cancelled download, a full disk, Ctrl+C) the temp file is removed and ``path`` is as it
    was. An existing file keeps its permissions.

    Raises
    ------
    WriteError
        The folder, the temp file or its data could not be written (``errno`` says why);
        ``path`` is as it was and no temp file is left.
    """
    path = Path(path)
    make_folder(path.parent)
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        mode = _NEW_FILE_MODE
    with writing(path):
        fd, tmp_name = _open_temporary(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            named = _NamingWrites(handle, path)
            yield cast(BinaryIO, named)  # it writes, flushes and answers like the handle
            named.flush()
            with writing(path):
                os.fsync(handle.fileno())
        with writing(path):
            if hasattr(os, "chmod"):
                os.chmod(tmp_name, mode)
            os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


# What atomic_writer leaves behind when its process is killed mid-write (kill -9, a power
# cut): ".<name>.<8 random characters from mkstemp>.tmp". Nothing else matches.
_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
# A live write takes seconds (a 220 MB checkpoint included); an hour-old one is dead.
STALE_AFTER_S = 3600.0


def remove_stale_temporaries(
    folder: str | os.PathLike[str], *, older_than_s: float = STALE_AFTER_S
) -> list[Path]:
    """Delete the temp files of writes that never finished in ``folder``; return them.

    Only files named as :func:`atomic_writer` names them and untouched for ``older_than_s``
    seconds are removed, so a write in progress (this process or another) is never cut off,
    and a user's own files are never touched. A folder that does not exist, or a file that
    cannot be removed (read-only folder), is skipped silently: this is housekeeping.
    """
    folder = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        if not _TEMPORARY.match(entry.name):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if now - entry.stat(follow_symlinks=False).st_mtime < older_than_s:
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`): an interrupted
    write leaves the previous file untouched and no stray file behind."""
    with atomic_writer(path) as handle:
        handle.write(data)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode("utf-8"))


def atomic_torch_save(path: str | os.PathLike[str], obj: Any) -> None:
    """``torch.save`` to memory first, then one atomic write: no partial ``.pt`` on disk."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _first_line(error: BaseException) -> str:
    """A short reason for ``error``: its first sentence, or a plain phrase for messages that
    mean nothing to a user (``EOFError()`` has none; a text file gives ``KeyError: 101``)."""
    if isinstance(error, EOFError):
        return "the file is empty or cut short"
    if isinstance(error, (KeyError, UnicodeDecodeError)):
        return "it was not written by torch.save"
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    return lines[0].split(". ")[0]


_REFUSED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_REFUSAL_MARKERS = (
    "Unsupported global",
    "unsupported GLOBAL",
    "is blocked",
    "Can only build",
    "Unsupported operand",
    "not an allowed global",
    "Unsupported class",
)


def _looks_like_torch_file(path: Path) -> bool:
    """A zip (``torch.save``'s format) or a binary pickle (the legacy one), by the first bytes.

    A text file fed to the unpickler fails with "Unsupported operand": that is garbage, not
    an attack, and deserves "not a .pt file" rather than "refused".
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return False
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def _refusal_reason(error: pickle.UnpicklingError, path: Path) -> str | None:
    """What the weights-only unpickler refused to build, or ``None`` if it was not a refusal."""
    message = str(error)
    if not any(marker in message for marker in _REFUSAL_MARKERS):
        return None
    if "Unsupported operand" in message and not _looks_like_torch_file(path):
        return None
    found = _REFUSED_GLOBAL.search(message)
    if found:
        return f"it would have to call {found.group(1)}"
    detail = [
        line.strip() for line in message.splitlines() if "Unsupported" in line or "Can only" in line
    ]
    return detail[0] if detail else "it needs types outside the allowed set"


def safe_torch_load(path: str | os.PathLike[str], *, allow: list[Any] | None = None) -> Any:
    """Load a ``.pt`` file with ``weights_only=True``, naming the file when it is refused.

    Parameters
    ----------
    path
        The file to read.
    allow
        Extra globals the unpickler may build (for the tutorial's numpy arrays), passed to
        :func:`torch.serialization.safe_globals`; an entry may be ``(object, "module.name")``
        to accept an object under an older import path. Anything else that needs code to run
        is refused with :class:`UnsafeFileError`, before any of it runs.

    Raises
    ------
    FileNotFoundError
        No such file.
    UnsafeFileError
        The file asks for a global outside the allowed set (for example ``os.system``).
    UnreadableFileError
        Anything else that stops it loading (not a ``.pt`` file, truncated, empty); the
        message starts with the path.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        if allow:
            with torch.serialization.safe_globals(allow):
                return torch.load(path, map_location="cpu", weights_only=True)
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = _refusal_reason(error, path)
        if reason is not None:
            raise UnsafeFileError(f"{path}: refused to load, {reason}") from error
        raise UnreadableFileError(
            f"{path}: not a readable .pt file ({_first_line(error)})"
        ) from error
    except Exception as error:  # zip, pickle and storage readers raise many types
        raise UnreadableFileError(
            f"{path}: not a readable .pt file ({_first_line(error)})"
        ) from error
