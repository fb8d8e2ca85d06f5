"""Downloading pretrained weights, only when the user asks for it.

The file goes where torchvision keeps it (:attr:`KnownWeights.path`), so torchvision and
napari-detlab both find it afterwards. It is streamed into a hidden temp file beside its
destination and moved into place only after its SHA-256 matches the hash torchvision's file
name carries: a download that is cancelled, breaks off, or brings the wrong bytes leaves no
file behind, partial or wrong. Progress is reported as ``(bytes done, bytes total)``.

Offline machines keep the old way: copy the file to :attr:`KnownWeights.path`.
"""

from __future__ import annotations

import hashlib
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from napari_detlab.core.atomic import atomic_writer, remove_stale_temporaries
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.model.weights_catalog import KnownWeights, known_weights

__all__ = [
    "DownloadCancelledError",
    "DownloadError",
    "download_weights",
    "find_weights",
    "progress_in_mb",
    "progress_text",
]

MEGABYTE = 1 << 20
CHUNK_BYTES = MEGABYTE
TIMEOUT_S = 30.0

ProgressCallback = Callable[[int, int], None]


class DownloadError(DetlabError):
    """A download that did not bring the right file; nothing was written."""


class DownloadCancelledError(DownloadError):
    """The user cancelled the download; nothing was written."""


def find_weights(name: str) -> KnownWeights:
    """The weights called ``name`` (``detlab weights`` lists them)."""
    catalog = known_weights()
    for weights in catalog:
        if weights.name == name:
            return weights
    raise DownloadError(
        f"no weights called {name!r}; choose one of {', '.join(w.name for w in catalog)}"
    )


def download_weights(
    weights: KnownWeights,
    *,
    source: str | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """Download ``weights`` into torchvision's cache and return the file.

    Parameters
    ----------
    weights
        What to download (:func:`find_weights`).
    source
        Another URL of the same file (a mirror inside an institute's network); the hash of
        the official file name is still checked.
    on_progress
        Called with ``(bytes done, bytes total)`` after each chunk (total 0 when the server
        does not say).
    cancel
        Set it to stop; the partial file is removed.

    Raises
    ------
    DownloadError
        The server could not be reached or answered with an error, or the bytes do not match
        the expected hash; the message names the URL. Nothing is written.
    DownloadCancelledError
        ``cancel`` was set. Nothing is written.
    """
    url = source or weights.url
    remove_stale_temporaries(weights.path.parent)  # downloads cut off by a kill -9
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            with atomic_writer(weights.path) as handle:
                while chunk := response.read(CHUNK_BYTES):
                    if cancel is not None and cancel.is_set():
                        raise DownloadCancelledError(f"download of {weights.name} cancelled")
                    handle.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if on_progress is not None:
                        on_progress(done, total)
                if total and done != total:
                    raise DownloadError(
                        f"{url}: the connection ended after {done} of {total} bytes"
                    )
                _check_hash(weights, digest.hexdigest(), url)
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise DownloadError(
            f"{url}: cannot download ({reason}); without a network, copy {weights.file_name} "
            f"to {weights.path}"
        ) from error
    return weights.path


def progress_in_mb(done: int, total: int) -> tuple[int, int]:
    """``(whole MB done, MB in all)`` of a download's ``(bytes done, bytes total)``, for a
    progress bar that is full exactly when the last byte has arrived (total 0: unknown)."""
    total_mb = -(-total // MEGABYTE)
    return (total_mb if total and done >= total else done // MEGABYTE), total_mb


def progress_text(weights: KnownWeights, done: int, total: int) -> str:
    """``"Downloading resnet18-imagenet: 12.0 of 44.7 MB"`` (without the total if unknown)."""
    of = f" of {total / MEGABYTE:.1f}" if total else ""
    return f"Downloading {weights.name}: {done / MEGABYTE:.1f}{of} MB"


def _check_hash(weights: KnownWeights, sha256: str, url: str) -> None:
    expected = weights.hash_prefix
    if expected and not sha256.startswith(expected):
        raise DownloadError(
            f"{url}: the file's SHA-256 starts {sha256[: len(expected)]}, not {expected} as its "
            f"name says; it was not kept (a broken download or another file)"
        )
