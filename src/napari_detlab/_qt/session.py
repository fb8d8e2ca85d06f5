"""State the docks of one viewer share: the dataset, the current image, the model config.

Each dock asks :func:`session_for` for the viewer's session instead of reaching into the other
docks, so the Annotator, AnchorViewer, train dock and review panel can be opened in any order
(or alone) and still agree. Everything here is plain Python with psygnal signals; no Qt.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from psygnal import Signal

from napari_detlab.core.model.config import ModelConfig

if TYPE_CHECKING:
    import napari

__all__ = ["DetlabSession", "session_for"]


class DetlabSession:
    """What the docks of one viewer share, with a signal for each change.

    Attributes
    ----------
    dataset
        The dataset folder the Annotator has open (``None`` before one is chosen).
    image_index, image_path
        The image on screen.
    config
        The model config the train dock will use; the AnchorViewer's "Use these anchors" sets it.
    checkpoint
        The checkpoint predictions come from (the last one trained or loaded).
    """

    dataset_changed = Signal(object)  # Path | None
    image_changed = Signal(int, object)  # index, Path
    config_changed = Signal(object)  # ModelConfig
    checkpoint_changed = Signal(object)  # Path
    predictions_changed = Signal(object)  # Path of the predictions folder
    annotations_changed = Signal(object)  # Path of the image whose annotation was written
    # The Annotator wrote this image's file itself (autosave): the other docks refresh what
    # they show of it, while the Annotator, which already shows it, does not reload.
    annotation_saved = Signal(object)

    def __init__(self) -> None:
        self.dataset: Path | None = None
        self.image_index: int = -1
        self.image_path: Path | None = None
        self.config: ModelConfig | None = None
        self.checkpoint: Path | None = None

    def set_dataset(self, dataset: Path | None) -> None:
        self.dataset = None if dataset is None else Path(dataset)
        self.dataset_changed.emit(self.dataset)

    def set_image(self, index: int, path: Path) -> None:
        self.image_index, self.image_path = index, Path(path)
        self.image_changed.emit(index, self.image_path)

    def set_config(self, config: ModelConfig) -> None:
        self.config = config
        self.config_changed.emit(config)

    def set_checkpoint(self, checkpoint: Path) -> None:
        self.checkpoint = Path(checkpoint)
        self.checkpoint_changed.emit(self.checkpoint)


_SESSIONS: weakref.WeakKeyDictionary[object, DetlabSession] = weakref.WeakKeyDictionary()


def session_for(viewer: napari.Viewer) -> DetlabSession:
    """The one session of ``viewer``, created on first use and dropped with the viewer."""
    session = _SESSIONS.get(viewer)
    if session is None:
        session = _SESSIONS[viewer] = DetlabSession()
    return session
