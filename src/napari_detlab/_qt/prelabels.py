"""Pre-labels in the Annotator: the model's boxes proposed on images nobody annotated yet.

With a checkpoint chosen (trained or picked in the Train / predict dock; the session carries
it), an image without an annotation file shows the model's boxes in one Shapes layer of
their own, :data:`~napari_detlab._layers.PROPOSALS_LAYER`: filled, translucent in the class
colour, with the class and score written on each, where confirmed boxes are hollow. They
are filtered by the Review dock's score threshold and NMS IoU (its settings). The
Annotator's key (``Shift-A`` unless changed) accepts them all; editing one (moving or
resizing it in the proposals layer) accepts that one; deleting one declines it. Only
accepted boxes reach the class layers, and only what the class layers hold is ever saved,
so an image left with its proposals untouched keeps no file.

Prediction never delays ``n``: one image at a time runs on napari's workers
(:mod:`~napari_detlab._qt.jobs`), the image on screen first, then the next unannotated
images (:meth:`~napari_detlab.core.assist.prelabels.Prelabels.plan`), with the model loaded
once per checkpoint. A proposal appears when its prediction arrives, usually before the
person gets there.

"Next most informative" ranks the unannotated images predicted so far, and those with a
prediction file from ``detlab predict`` (:mod:`~napari_detlab.core.assist.ranking`); "Rank
all" predicts the rest in the background.
"""

from __future__ import annotations

import weakref
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from napari.utils.colormaps.standardize_color import transform_color
from napari.utils.notifications import show_error
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QCheckBox, QLabel, QPushButton, QVBoxLayout, QWidget

from napari_detlab._layers import PROPOSAL_FACE_ALPHA, PROPOSALS_LAYER
from napari_detlab._qt.box_layers import layer_boxes, set_layer_boxes
from napari_detlab._qt.jobs import start_worker
from napari_detlab._qt.plugin_settings import values, watch
from napari_detlab._qt.widgets.label_next import LabelNextControl
from napari_detlab.core.assist.prelabels import (
    Predicted,
    Prelabels,
    proposals,
    saved_predictions,
)
from napari_detlab.core.assist.ranking import ImageUncertainty, rank_images
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.evaluation.review import ReviewThresholds
from napari_detlab.core.wording import counted

if TYPE_CHECKING:
    from napari.layers import Shapes
    from napari.qt.threading import WorkerBase

    from napari_detlab._qt.annotator import AnnotatorWidget
    from napari_detlab.core.annotations.store import AnnotationStore
    from napari_detlab.core.model.predict import Prediction

__all__ = ["PrelabelPanel"]

REVIEW_SETTINGS = "review"  # the Review dock's thresholds decide what is proposed
_UNKNOWN_CLASS_COLOR = "#bbbbbb"


class PrelabelPanel(QWidget):
    """The Annotator's pre-labels: the proposals layer, the background prediction, the
    "accept" button and the "next most informative" row.

    Parameters
    ----------
    host
        The Annotator dock: its model (dataset, image on screen, classes), its class layers
        (where accepted boxes go) and its session (the checkpoint, the image changes).

    Attributes
    ----------
    prelabels
        The current checkpoint's predictions (``None`` without a checkpoint).
    shown_for
        The image whose proposals the layer shows (``None`` when it shows none).
    """

    def __init__(self, host: AnnotatorWidget) -> None:
        super().__init__()
        self.host = host
        self.viewer = host.viewer
        self.session = host.session
        self.prelabels: Prelabels | None = None
        self.checkpoint: Path | None = None
        self.shown_for: Path | None = None
        self._layer: Shapes | None = None
        self._worker: WorkerBase | None = None
        self._rank_all = False
        self._filling = False
        self._closed = False
        self._build_ui()
        self._unsubscribe = self.session.subscribe(
            dataset_changed=self._on_dataset,
            checkpoint_changed=self._on_checkpoint,
            image_changed=self._on_image,
            annotations_changed=self._on_annotations_changed,
        )
        self._stop_watching = watch(REVIEW_SETTINGS, self.refresh)

    def _build_ui(self) -> None:
        self.enabled = QCheckBox("Propose the model's boxes on unannotated images")
        self.enabled.setChecked(True)
        self.enabled.toggled.connect(self._on_enabled)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.accept_button = QPushButton("Accept the proposals")
        self.accept_button.clicked.connect(self.accept_proposals)
        self.label_next = LabelNextControl()
        self.label_next.next_requested.connect(self.next_most_informative)
        self.label_next.predict_all_requested.connect(self.rank_all)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.label_next, self.enabled, self.status_label, self.accept_button):
            layout.addWidget(widget)
        self._show_status()

    # -- the session's state ---------------------------------------------------------------
    @property
    def store(self) -> AnnotationStore | None:
        return self.host.annotator.store

    def _on_dataset(self, store: AnnotationStore | None) -> None:
        self._rank_all = False
        if self.prelabels is not None and store is not None:
            self.prelabels.forget(store.images)
        self._clear()

    def _on_checkpoint(self, checkpoint: Path) -> None:
        """A new checkpoint: a new model and an empty cache (its boxes may all differ)."""
        self.checkpoint = Path(checkpoint)
        self._close_model()
        self.prelabels = Prelabels(self.session.make_predictor(self.checkpoint))
        self.refresh()
        self._schedule()

    def _on_image(self, _index: int, _path: Path) -> None:
        self.refresh()
        self._schedule()

    def _on_annotations_changed(self, image: object) -> None:
        if self.host.annotator.shows(image):  # another dock wrote its file: no proposals
            self.refresh()

    def _on_enabled(self, on: bool) -> None:
        self.refresh()
        if on:
            self._schedule()

    # -- proposals on screen ---------------------------------------------------------------
    def refresh(self) -> None:
        """Show the proposals of the image on screen, if it has no file and they are ready."""
        path = self.host.current_path
        prediction = self._ready(path)
        if prediction is None or path is None:
            self._clear()
            return
        kept = proposals(prediction, ReviewThresholds(**values(REVIEW_SETTINGS)))
        self._fill(kept)
        self.shown_for = path
        self._show_status()

    def _ready(self, path: Path | None) -> Prediction | None:
        store = self.store
        if path is None or store is None or self.prelabels is None or store.has(path):
            return None
        return self.prelabels.ready(path) if self.enabled.isChecked() else None

    def _fill(self, kept: Prediction) -> None:
        layer = self._proposals_layer()
        colors = {spec.name: spec.color for spec in self.host.classes}
        self._filling = True
        try:
            set_layer_boxes(layer, kept.boxes, self.host.class_layers.edge_width)
            if len(kept):
                edges = transform_color([colors.get(c, _UNKNOWN_CLASS_COLOR) for c in kept.labels])
                faces = edges.copy()
                faces[:, 3] = PROPOSAL_FACE_ALPHA
                layer.features = {"label": kept.labels, "score": kept.scores}
                layer.edge_color, layer.face_color = edges, faces
        finally:
            self._filling = False

    def _clear(self) -> None:
        self.shown_for = None
        layer = self._layer
        if layer is not None and layer in self.viewer.layers and layer.nshapes:
            self._filling = True
            try:
                set_layer_boxes(layer, np.zeros((0, 4)))
            finally:
                self._filling = False
        self._show_status()

    def _proposals_layer(self) -> Shapes:
        """The proposals layer, made (again, if the person deleted it) without taking the
        selection from the class layer being drawn in."""
        if self._layer is not None and self._layer in self.viewer.layers:
            return self._layer
        active = self.viewer.layers.selection.active
        layer = self.viewer.add_shapes(
            None, ndim=2, name=PROPOSALS_LAYER, shape_type="rectangle",
            features={"label": np.array([], object), "score": np.array([], np.float32)},
            text={"string": "{label} {score:.2f}", "size": 8, "anchor": "upper_left"},
        )  # fmt: skip
        layer.feature_defaults = {"label": "", "score": 0.0}  # captions of new boxes work
        layer.events.data.connect(self._on_proposals_edited)
        if active is not None:
            self.viewer.layers.selection.active = active
        self._layer = layer
        return layer

    def _show_status(self) -> None:
        count = self._layer.nshapes if self.shown_for is not None and self._layer else 0
        key = self.host.keys.key_of("accept_proposals") if hasattr(self.host, "keys") else ""
        if self.checkpoint is None:
            text = "No model: train one or choose a checkpoint in Train / predict"
        elif not self.enabled.isChecked():
            text = f"Proposals off ({self.checkpoint.name})"
        elif self.shown_for is not None:
            text = (
                f"{counted(count, 'proposal')} from {self.checkpoint.name}: "
                f"{key or 'the button'} accepts all; edit one to accept it, delete to decline"
            )
        else:
            text = f"Proposals from {self.checkpoint.name} on images without boxes"
        self.status_label.setText(text)
        self.accept_button.setEnabled(count > 0)

    # -- accepting -------------------------------------------------------------------------
    def accept_proposals(self) -> int:
        """Make every proposal on screen a box of its class, saved as one edit; how many."""
        layer = self._layer
        if self.shown_for is None or layer is None or not layer.nshapes:
            self.host.status_label.setText("No proposals on this image")
            return 0
        return self._accept(list(range(layer.nshapes)))

    def _on_proposals_edited(self, event: object) -> None:
        """A proposal moved or resized is accepted as edited; one drawn in the layer goes to
        the class chosen in the dock. Done after napari has finished its own handling."""
        action = str(getattr(event, "action", ""))
        if self._filling or self.shown_for is None or action not in ("changed", "added"):
            return
        count = self._layer.nshapes if self._layer is not None else 0
        indices = sorted({i % count for i in getattr(event, "data_indices", ()) if count})
        if indices:
            drawn = action == "added"
            QTimer.singleShot(0, partial(_accept_later, weakref.ref(self), indices, drawn))

    def _accept(self, indices: list[int], drawn: bool = False) -> int:
        layer = self._layer
        if layer is None or self.shown_for != self.host.current_path:
            return 0
        indices = [i for i in indices if i < layer.nshapes]
        boxes = layer_boxes(layer)[indices]
        chosen = self.host.class_list.selected() or self.host.classes[0].name
        labels = [chosen if drawn else _label(layer, i, chosen) for i in indices]
        self._filling = True
        try:
            layer.selected_data = set(indices)
            layer.remove_selected()
        finally:
            self._filling = False
        for label in dict.fromkeys(labels):
            self.host.annotator.ensure_class(label)
            mine = np.array([name == label for name in labels])
            self.host.class_layers.add_boxes(label, boxes[mine])
        self.host.flush()
        self._show_status()
        return len(indices)

    # -- predicting ahead ------------------------------------------------------------------
    def _schedule(self) -> None:
        """Predict the next image the plan asks for, unless a prediction is running."""
        store, prelabels = self.store, self.prelabels
        if self._closed or self._worker is not None or store is None or prelabels is None:
            return
        if not self.enabled.isChecked():
            return
        ahead = len(store.images) if self._rank_all else None
        plan = prelabels.plan(store.images, self.host.index, store.has, ahead)
        if not plan:
            return
        self._worker = start_worker(
            prelabels.predict, plan[0], description="detlab pre-labels",
            on_done=partial(self._on_predicted, prelabels),
            on_error=partial(self._on_failed, prelabels),
        )  # fmt: skip

    def _on_predicted(self, prelabels: Prelabels, predicted: Predicted) -> None:
        self._worker = None
        if self._closed or prelabels is not self.prelabels:  # another checkpoint since
            self._schedule()
            return
        prelabels.keep(predicted)
        if self.host.annotator.shows(predicted.image) and self.shown_for is None:
            self.refresh()
        self._schedule()

    def _on_failed(self, prelabels: Prelabels, error: Exception) -> None:
        self._worker = None
        if self._closed:
            return
        if prelabels is not self.prelabels:  # its model was closed for another checkpoint
            self._schedule()
            return
        self.prelabels = None  # a checkpoint that cannot predict: no retry on every n
        show_error(f"Pre-labels stopped: {error}")
        self._show_status()
        if not isinstance(error, (DetlabError, OSError)):  # a bug: napari's crash report too
            raise error

    # -- what to label next ----------------------------------------------------------------
    def rank_all(self) -> None:
        """Predict every unannotated image in the background, so the ranking covers all."""
        if self.prelabels is None:
            self.label_next.show_reason("Choose a checkpoint first (Train / predict)")
            return
        self._rank_all = True
        self.label_next.show_reason("Predicting every unannotated image in the background…")
        self._schedule()

    def next_most_informative(self) -> None:
        """Go to the unannotated image the model is least sure of, and say why.

        It ranks this model's predictions made so far, and for the other unannotated images
        the prediction files in the dataset's predictions folder (``detlab predict``, the
        train dock's *Predict dataset*), read in the background.
        """
        store = self.store
        if store is None:
            return
        current = self.host.current_path
        unannotated = [i for i in store.images if i != current and not store.has(i)]
        made = self.prelabels.predictions(unannotated) if self.prelabels else {}
        missing = [image for image in unannotated if image not in made]
        folder = self.session.predictions_dir or store.predictions_dir
        self.label_next.show_reason("Ranking…")
        start_worker(
            _rank, made, missing, folder, store.images, description="detlab label next",
            on_done=partial(self._go_to_choice, len(unannotated)), on_error=self._rank_failed,
        )  # fmt: skip

    def _go_to_choice(self, unannotated: int, ranked: list[ImageUncertainty]) -> None:
        if self._closed:
            return
        if not ranked:
            self.label_next.show_reason(
                "No unannotated image predicted yet: choose a checkpoint (Train / predict), "
                "wait a moment, or press Rank all"
            )
            return
        choice = ranked[0]
        waiting = unannotated - len(ranked)
        self.host.annotator.show(choice.image)
        self.label_next.show_reason(
            f"{choice.image.name}: {choice.reason()} (the least sure of "
            f"{counted(len(ranked), 'predicted image')}"
            + (f"; {waiting} not predicted yet)" if waiting else ")")
        )

    def _rank_failed(self, error: Exception) -> None:
        self.label_next.show_reason(f"Could not rank: {error}")

    # -- closing ---------------------------------------------------------------------------
    def teardown(self) -> None:
        """Stop listening; a prediction still running is dropped when it ends."""
        self._closed = True
        self._unsubscribe()
        self._stop_watching()
        self._close_model()

    def _close_model(self) -> None:
        close = getattr(self.prelabels.predictor, "close", None) if self.prelabels else None
        if close is not None:
            close()


def _rank(
    made: dict[Path, Prediction], missing: list[Path], folder: Path, order: list[Path]
) -> list[ImageUncertainty]:
    """The ranking, with the saved prediction files of the images not predicted here."""
    return rank_images(made | saved_predictions(folder, missing), order)


def _accept_later(panel_ref: weakref.ref[PrelabelPanel], indices: list[int], drawn: bool) -> None:
    panel = panel_ref()
    if panel is not None and not panel._closed:
        panel._accept(indices, drawn)


def _label(layer: Shapes, index: int, chosen: str) -> str:
    """The class of proposal ``index`` (``chosen`` if it has none)."""
    column = layer.features.get("label")
    value = None if column is None else column.iloc[index]
    return value if isinstance(value, str) and value else chosen
