"""The annotation index: every dataset's files read once per process, re-read when they change.

The ``.pt`` files stay the only truth; the index is derived from them and lives in memory;
what it learnt is written down for the next process (:mod:`.saved_index`), which trusts it
by the same stamps.
It is a :class:`~napari_detlab.core.annotations.file_cache.FileCache` per folder, shared by
every :class:`~napari_detlab.core.annotations.store.AnnotationStore` of that folder in the
process (the session's, the CLI's, the Review's and training's), holding each file's
validated annotation, or the error it raised, under the file's stamp. One ``os.scandir`` of
the annotations folder stamps every file, so a question about the whole dataset (the class
list, the counts, the AnchorViewer's boxes, training's checks) reads only the files added or
rewritten since the last one, by this program or any other, and forgets deleted ones. How a
stamp is made trustworthy (same-size rewrites within one clock tick) is the cache's business.

:func:`~napari_detlab.core.annotations.file_cache.index_disabled` turns it off, for the
benchmark's baseline and the tests that compare answers with and without it.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

from napari_detlab.core.annotations.file_cache import FileCache, index_enabled

__all__ = ["MAX_FOLDERS", "folder_cache", "forget_indexes"]

# Datasets whose files are kept; the least recently asked about goes first.
MAX_FOLDERS = 8

_CACHES: OrderedDict[str, FileCache] = OrderedDict()
_LOCK = threading.Lock()


def folder_cache(folder: Path) -> FileCache | None:
    """The shared cache of the files in ``folder``; ``None`` while the index is disabled."""
    if not index_enabled():
        return None
    key = os.path.abspath(folder)
    with _LOCK:
        cache = _CACHES.get(key)
        if cache is None:
            cache = _CACHES[key] = FileCache()
            while len(_CACHES) > MAX_FOLDERS:
                _CACHES.popitem(last=False)
        else:
            _CACHES.move_to_end(key)
        return cache


def forget_indexes() -> None:
    """Drop every folder's cache: the next question reads the files again (a cold start)."""
    with _LOCK:
        _CACHES.clear()
