"""Decode the images next to the one on screen before the user asks for them.

Pressing ``n`` should cost a texture upload, not a JPEG decode: while the user draws on image
*i*, a background thread decodes *i + 1* and *i - 1*. Only the main thread touches the cache,
so no lock is needed; the worker only runs the reader.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from napari_detlab.core.images import read_image

__all__ = ["ImagePrefetcher"]


class ImagePrefetcher:
    """A small cache of decoded images filled by one background thread.

    Parameters
    ----------
    reader
        Decodes one path; errors (e.g. :class:`~napari_detlab.core.images.ImageReadError`)
        are raised by :meth:`get` for that path, as if it had been read there.
    """

    def __init__(self, reader: Callable[[Path], np.ndarray] = read_image) -> None:
        self._reader = reader
        self._executor: ThreadPoolExecutor | None = None
        self._futures: dict[Path, Future[np.ndarray]] = {}

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="detlab-prefetch")
        return self._executor

    def get(self, path: Path) -> np.ndarray:
        """The pixels of ``path``: from the cache if prefetched, else decoded now."""
        future = self._futures.get(Path(path))
        if future is None or future.cancel():
            return self._reader(Path(path))
        return future.result()

    def prefetch(self, paths: Iterable[Path], keep: Iterable[Path] = ()) -> None:
        """Start decoding ``paths``; forget cached images not in ``paths`` or ``keep``.

        Bounding the cache to the neighbours keeps memory at a few images even for 4-MP
        16-bit files.
        """
        wanted = [Path(p) for p in paths]
        kept = set(wanted) | {Path(p) for p in keep}
        for path in list(self._futures):
            if path not in kept:
                self._futures.pop(path).cancel()
        for path in wanted:
            if path not in self._futures:
                self._futures[path] = self._pool().submit(self._reader, path)

    def clear(self) -> None:
        """Drop every cached image (another folder was opened, or files changed)."""
        for future in self._futures.values():
            future.cancel()
        self._futures.clear()

    def shutdown(self) -> None:
        """Stop the worker thread without waiting for a decode in progress."""
        self.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
