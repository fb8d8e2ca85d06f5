"""The hub of one viewer's docks: the dataset they share, what is on screen, and requests.

Docks never import or look for each other. Each asks :func:`session_for` for its viewer's
session, and :meth:`DetlabSession.attach` connects it for its lifetime: the dock's slots get
the current state at once (so docks can be opened in any order, or alone) and every change
after, and when the dock closes or napari removes it, its teardown runs and it is
disconnected. What one dock wants another to do travels as a request signal (write your
pending edits now; show image N and select box K; open this folder), answered by whichever
dock listens; the asking dock learns whether anyone did.

The session owns the dataset as one :class:`~napari_detlab.core.annotations.store.
AnnotationStore`, so its image list and cached answers are shared instead of rebuilt per
dock. Apart from :meth:`DetlabSession.attach`, which watches a widget and lets its reactions
to a save wait for an event-loop turn of their own (:mod:`.later`), everything here is plain
Python with psygnal signals.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from psygnal import Signal

from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.model.config import ModelConfig

if TYPE_CHECKING:
    import napari
    from qtpy.QtWidgets import QWidget

    from napari_detlab.core.assist.prelabels import Predictor

__all__ = ["DetlabSession", "session_for"]

# The signals that describe state: a new subscriber is told their current value at once.
_STATE_SIGNALS = (
    "dataset_changed",
    "image_changed",
    "config_changed",
    "checkpoint_changed",
    "predictions_changed",
)


class DetlabSession:
    """What the docks of one viewer share, with a signal for each change and each request.

    Attributes
    ----------
    store
        The dataset the Annotator has open (``None`` before one is chosen).
    image_index, image_path
        The image on screen.
    config
        The model config the train dock will use; the AnchorViewer's "Use these anchors" sets it.
    checkpoint
        The checkpoint predictions come from (the last one trained or loaded).
    predictions_dir
        The folder of the predictions last made or chosen for review.
    make_predictor
        How a checkpoint becomes the model that pre-labels images (loaded once, kept); a
        script or a test puts a stand-in here.
    """

    # -- state -----------------------------------------------------------------------------
    dataset_changed = Signal(object)  # AnnotationStore | None
    image_changed = Signal(int, object)  # index, Path
    config_changed = Signal(object)  # ModelConfig
    checkpoint_changed = Signal(object)  # Path
    predictions_changed = Signal(object)  # Path of the predictions folder
    # -- events ----------------------------------------------------------------------------
    # Another dock wrote this image's annotation file (accepted predictions): the Annotator
    # reloads it, the others refresh what they show of it.
    annotations_changed = Signal(object)
    # The Annotator wrote this image's file itself (autosave): the other docks refresh what
    # they show of it, while the Annotator, which already shows it, does not reload.
    annotation_saved = Signal(object)
    # -- requests ----------------------------------------------------------------------------
    flush_requested = Signal()  # write pending edits now: another dock reads the files next
    show_image_requested = Signal(object, object)  # image Path, box index in its file or None
    open_folder_requested = Signal(object)  # Path: open this folder for annotation

    def __init__(self) -> None:
        self.store: AnnotationStore | None = None
        self.image_index: int = -1
        self.image_path: Path | None = None
        self.config: ModelConfig | None = None
        self.checkpoint: Path | None = None
        self.predictions_dir: Path | None = None
        self.make_predictor: Callable[[Path], Predictor] = _checkpoint_predictor

    @property
    def dataset(self) -> Path | None:
        """The folder of the open dataset."""
        return None if self.store is None else self.store.root

    # -- changing state ----------------------------------------------------------------------
    def open_dataset(self, folder: str | Path) -> AnnotationStore:
        """Make ``folder`` the dataset every dock works on; returns its store.

        Raises ``FileNotFoundError`` (and changes nothing) when it is not a folder.
        """
        store = AnnotationStore(folder)
        self.store, self.image_index, self.image_path = store, -1, None
        self.predictions_dir = None  # the new dataset's own predictions/ until told otherwise
        self.dataset_changed.emit(store)
        return store

    def set_image(self, index: int, path: Path) -> None:
        self.image_index, self.image_path = index, Path(path)
        self.image_changed.emit(index, self.image_path)

    def set_config(self, config: ModelConfig) -> None:
        self.config = config
        self.config_changed.emit(config)

    def set_checkpoint(self, checkpoint: Path) -> None:
        self.checkpoint = Path(checkpoint)
        self.checkpoint_changed.emit(self.checkpoint)

    def set_predictions(self, predictions_dir: Path) -> None:
        self.predictions_dir = Path(predictions_dir)
        self.predictions_changed.emit(self.predictions_dir)

    # -- requests ----------------------------------------------------------------------------
    def request_flush(self) -> None:
        """Ask the dock holding unsaved edits to write them; done when this returns."""
        self.flush_requested.emit()

    def request_image(self, image: Path, box: int | None = None) -> bool:
        """Ask the Annotator to show ``image`` (and select ``box``); whether a dock listens."""
        return _ask(self.show_image_requested, Path(image), box)

    def request_open_folder(self, folder: Path) -> bool:
        """Ask the Annotator to open ``folder``; whether a dock listens."""
        return _ask(self.open_folder_requested, Path(folder))

    def listens(self, signal_name: str) -> bool:
        """Whether any dock is connected to the signal called ``signal_name``."""
        return len(getattr(self, signal_name)) > 0

    # -- joining -----------------------------------------------------------------------------
    def subscribe(self, **slots: Callable[..., object]) -> Callable[[], None]:
        """Connect ``signal_name=slot`` pairs, tell state slots the current state, and return
        the one call that disconnects them all."""
        signals = []
        for name, slot in slots.items():
            signal = getattr(self, name, None)
            if name not in _SIGNAL_NAMES or signal is None:
                raise TypeError(f"the session has no signal {name!r}")
            signal.connect(slot)
            signals.append((signal, slot))
        for name in _STATE_SIGNALS:
            if name in slots:
                current = self._current(name)
                if current is not None:
                    slots[name](*current)

        def unsubscribe() -> None:
            for signal, slot in signals:
                signal.disconnect(slot)
            signals.clear()

        return unsubscribe

    def attach(
        self,
        widget: QWidget,
        *,
        teardown: Callable[[], None] | None = None,
        **slots: Callable[..., object],
    ) -> None:
        """Connect a dock for its lifetime: :meth:`subscribe` now; when it closes or napari
        removes it, ``teardown()`` and then the disconnection.

        The slots of the events in :data:`~napari_detlab._qt.later.LATER_EVENTS` (a save)
        run a moment later, one dock per event-loop turn, so that a save never stalls the
        viewer for the time of every dock's reaction added up.
        """
        from napari_detlab._qt.later import LATER_EVENTS, later_calls
        from napari_detlab._qt.lifecycle import DockLifecycle

        queue = later_calls()
        queued = {name: slot for name, slot in slots.items() if name in LATER_EVENTS}
        unsubscribe = self.subscribe(
            **(slots | {name: queue.deferred(slot) for name, slot in queued.items()})
        )

        def end() -> None:
            try:
                if teardown is not None:
                    teardown()
            finally:
                unsubscribe()
                for slot in queued.values():
                    queue.cancel(slot)

        DockLifecycle(widget, end)

    def _current(self, name: str) -> tuple[object, ...] | None:
        if name == "dataset_changed":
            return None if self.store is None else (self.store,)
        if name == "image_changed":
            return None if self.image_path is None else (self.image_index, self.image_path)
        value = {
            "config_changed": self.config,
            "checkpoint_changed": self.checkpoint,
            "predictions_changed": self.predictions_dir,
        }[name]
        return None if value is None else (value,)


_SIGNAL_NAMES = frozenset(
    name for name in vars(DetlabSession) if isinstance(vars(DetlabSession)[name], Signal)
)


def _checkpoint_predictor(checkpoint: Path) -> Predictor:
    """The checkpoint's model, loaded on its first prediction (torch is imported then)."""
    from napari_detlab.core.assist.prelabels import CheckpointPredictor

    return CheckpointPredictor(checkpoint)


def _ask(signal: object, *args: object) -> bool:
    if not len(signal):  # type: ignore[arg-type]
        return False
    signal.emit(*args)  # type: ignore[attr-defined]
    return True


_SESSIONS: weakref.WeakKeyDictionary[object, DetlabSession] = weakref.WeakKeyDictionary()


def session_for(viewer: napari.Viewer) -> DetlabSession:
    """The one session of ``viewer``, created on first use and dropped with the viewer."""
    session = _SESSIONS.get(viewer)
    if session is None:
        session = _SESSIONS[viewer] = DetlabSession()
    return session
