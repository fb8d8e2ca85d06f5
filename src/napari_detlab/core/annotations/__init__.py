"""The annotation store and how a person's boxes get there.

A folder of images with one ``annotations/<stem>.pt`` per image (:mod:`.store`), what one such
file holds and how it is checked (:mod:`.annotation`), the Annotator's model
(:mod:`.annotator`) with the undo history, image prefetch, keys (:mod:`.keymap`) and box
copying it uses, a thread-safe cache of file reads and the in-memory index of each folder's
files built on it (:mod:`.index`), written down for the next process (:mod:`.saved_index`),
the dataset's statistics kept current one file at a time (:mod:`.statistics`), and the
built-in sample dataset.

A face: it re-exports the public names (``__all__``) of the modules below and defines
nothing; code inside the project imports from the modules themselves.
"""

from . import (
    annotation,
    annotator,
    copying,
    file_cache,
    history,
    index,
    keymap,
    prefetch,
    sample_data,
    saved_index,
    statistics,
    store,
)
from .annotation import *
from .annotator import *
from .copying import *
from .file_cache import *
from .history import *
from .index import *
from .keymap import *
from .prefetch import *
from .sample_data import *
from .saved_index import *
from .statistics import *
from .store import *

__all__ = [
    *annotation.__all__,
    *annotator.__all__,
    *copying.__all__,
    *file_cache.__all__,
    *history.__all__,
    *index.__all__,
    *keymap.__all__,
    *prefetch.__all__,
    *sample_data.__all__,
    *saved_index.__all__,
    *statistics.__all__,
    *store.__all__,
]
