"""Pre-labels: the model's boxes proposed on the images a person is about to annotate.

With a checkpoint chosen, the Annotator shows the model's boxes on an image that has no
annotation file yet, as proposals the person accepts, corrects or deletes; nothing proposed
is ground truth until then. Prediction must never make ``n`` slower, so it runs ahead of the
person, on the next few unannotated images, in the background; a proposal appears when its
prediction is ready.

This module is the Qt-free half: a :class:`Predictor` (a checkpoint's model loaded once, or a
test's stand-in), the :class:`Prelabels` cache of predictions keyed by each image's file
stamp (an image rewritten on disk is predicted again), the plan of which images to predict
next (:meth:`Prelabels.plan`), and the filter that turns raw predictions into proposals with
the Review's thresholds (:func:`proposals`). The dock runs :meth:`Prelabels.predict` in a
napari worker and hands the result back with :meth:`Prelabels.keep` on the GUI thread, the
only thread that touches the cache.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import CancelledError, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from napari_detlab.core.annotations.file_cache import Stamp, regular_file_stamp
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.evaluation.review import ReviewThresholds, filter_predictions
from napari_detlab.core.model.predict import (
    Prediction,
    SkippedImage,
    load_prediction,
    predict_images,
)

__all__ = [
    "AHEAD",
    "BACKGROUND_NICE",
    "CheckpointPredictor",
    "Predicted",
    "Predictor",
    "PredictorClosedError",
    "Prelabels",
    "lower_priority",
    "proposals",
    "saved_predictions",
]

# Unannotated images predicted ahead of the one on screen. A person spends seconds on an
# image and a CPU prediction takes about one, so three keep ahead without occupying the
# machine with images nobody will open soon.
AHEAD = 3
# The model's thread runs at this nice value (19: the lowest priority), see CheckpointPredictor.
BACKGROUND_NICE = 19


class Predictor(Protocol):
    """What pre-labels come from: one image in, the model's raw boxes out.

    May be called from a worker thread; must be safe to call from one thread at a time.
    """

    def __call__(self, image: Path) -> Prediction: ...


class PredictorClosedError(DetlabError):
    """A prediction asked of a model that was closed meanwhile: nothing went wrong, the
    answer is simply no longer wanted."""


class CheckpointPredictor:
    """A checkpoint's detector, loaded on first use and kept, predicting one image per call.

    Loading (reading the file, building the model) is the slow part, paid once per
    checkpoint instead of once per image. The model runs in a thread of its own, whatever
    thread calls: on Linux that thread (and the threads torch starts from it) runs at the
    lowest CPU priority (:data:`BACKGROUND_NICE`), so on a CPU the person's ``n`` and the
    canvas repaint are served first and the prediction takes the cycles left over. Calls
    from several threads wait for each other rather than load the model twice.

    Parameters
    ----------
    checkpoint
        A napari-detlab checkpoint.
    device
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    """

    def __init__(self, checkpoint: str | Path, device: str = "auto") -> None:
        self.checkpoint = Path(checkpoint)
        self.device = device
        self._loaded: tuple[object, object] | None = None
        self._closed = False
        self._thread = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="detlab-prelabels", initializer=lower_priority
        )

    def __call__(self, image: Path) -> Prediction:
        try:
            return self._thread.submit(self._predict, Path(image)).result()
        # Refused once shut down, or cancelled by the shutdown while it waited its turn.
        except (RuntimeError, CancelledError) as error:
            if not self._closed:
                raise
            raise PredictorClosedError(f"{self.checkpoint.name} was closed") from error

    def close(self) -> None:
        """Let the model's thread end once its current image is done; later calls raise
        :class:`PredictorClosedError` (another checkpoint was chosen, or the dock closed)."""
        self._closed = True
        self._thread.shutdown(wait=False, cancel_futures=True)

    def _predict(self, image: Path) -> Prediction:
        from napari_detlab.core.model.checkpoint import model_from_checkpoint
        from napari_detlab.core.model.device import resolve_device

        device = resolve_device(self.device)
        if self._loaded is None:
            self._loaded = model_from_checkpoint(self.checkpoint, device=device)
        model, config = self._loaded
        skipped: list[SkippedImage] = []
        found = list(
            predict_images(model, config, [image], batch_size=1, device=device, skipped=skipped)
        )
        # An image that cannot be decoded has nothing to propose; the Annotator reports it.
        return found[0][1] if found else Prediction()


def lower_priority() -> None:
    """Give the calling thread the lowest CPU priority (Linux; elsewhere nothing changes).

    Linux's ``nice`` is per thread and inherited by the threads it starts (torch's OpenMP
    team included). On other systems ``setpriority`` of this id would lower the whole
    process, the viewer with it, so nothing is done there.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
    except OSError:  # a sandbox may refuse it: predict at the normal priority then
        return


@dataclass(frozen=True)
class Predicted:
    """A prediction made in the background, with the image's stamp when it was read."""

    image: Path
    stamp: Stamp | None
    prediction: Prediction


class Prelabels:
    """The predictions of one model for a dataset's images, made ahead and kept.

    Parameters
    ----------
    predictor
        The model (one per checkpoint: a new checkpoint gets a new :class:`Prelabels`).
    ahead
        How many unannotated images after the current one :meth:`plan` asks for.
    """

    def __init__(self, predictor: Predictor, ahead: int = AHEAD) -> None:
        self.predictor = predictor
        self.ahead = ahead
        self._kept: dict[Path, Predicted] = {}

    def ready(self, image: Path) -> Prediction | None:
        """The prediction of ``image`` when one was made of the file as it is now."""
        kept = self._kept.get(Path(image))
        if kept is None or kept.stamp != regular_file_stamp(Path(image)):
            return None
        return kept.prediction

    def predictions(self, images: Iterable[Path]) -> dict[Path, Prediction]:
        """The ready predictions of ``images`` (those not yet predicted left out)."""
        found = {Path(image): self.ready(image) for image in images}
        return {image: p for image, p in found.items() if p is not None}

    def plan(
        self,
        images: Sequence[Path],
        current: int,
        annotated: Callable[[Path], bool],
        ahead: int | None = None,
    ) -> list[Path]:
        """The images to predict next, most urgent first.

        The image on screen when it has no annotation file (the person looks at it now),
        then the next ``ahead`` unannotated images after it (those ``n`` reaches first),
        wrapping around; images with a ready prediction are skipped.
        """
        ahead = self.ahead if ahead is None else ahead
        wanted: list[Path] = []
        found = 0  # unannotated images ahead, predicted already or not
        start = max(current, 0)
        for step in range(len(images)):
            image = images[(start + step) % len(images)]
            if step and found >= ahead:
                break
            if annotated(image):
                continue
            found += 1 if step else 0
            if self.ready(image) is None:
                wanted.append(image)
        return wanted

    def predict(self, image: Path) -> Predicted:
        """Run the model on ``image`` (in a worker thread); :meth:`keep` stores the result."""
        stamp = regular_file_stamp(Path(image))  # before the read: a rewrite shows a new one
        return Predicted(Path(image), stamp, self.predictor(Path(image)))

    def keep(self, predicted: Predicted) -> None:
        """Store a prediction made by :meth:`predict` (on the thread that reads the cache)."""
        self._kept[predicted.image] = predicted

    def forget(self, keep: Iterable[Path]) -> None:
        """Drop the predictions of images not in ``keep`` (another folder was opened)."""
        kept = {Path(p) for p in keep}
        self._kept = {image: p for image, p in self._kept.items() if image in kept}


def proposals(prediction: Prediction, thresholds: ReviewThresholds) -> Prediction:
    """The boxes worth proposing: the raw predictions filtered as the Review filters them.

    The same score threshold and NMS IoU a person set in the Review dock decide, so a
    proposal is exactly what Review would show as a prediction of that image.
    """
    keep = filter_predictions(
        prediction.boxes,
        prediction.scores,
        prediction.labels,
        score_threshold=thresholds.score_threshold,
        nms_iou=thresholds.nms_iou,
        class_agnostic=thresholds.class_agnostic,
    )
    labels = np.asarray(prediction.labels, dtype=object)
    return Prediction(
        boxes=prediction.boxes[keep],
        labels=[str(label) for label in labels[keep]],
        scores=prediction.scores[keep],
        image_size=prediction.image_size,
        checkpoint=prediction.checkpoint,
    )


def saved_predictions(folder: Path, images: Iterable[Path]) -> dict[Path, Prediction]:
    """The prediction files ``<folder>/<stem>.pt`` of ``images`` that exist and read well.

    What ``detlab predict`` or the train dock's *Predict dataset* wrote: the order of what to
    label next can use them at once, without predicting again. A file that cannot be read
    is left out (the Review dock names it); the others still count.
    """
    found: dict[Path, Prediction] = {}
    for image in images:
        path = Path(folder) / f"{Path(image).stem}.pt"
        if not path.is_file():
            continue
        try:
            found[Path(image)] = load_prediction(path, image)
        except (DetlabError, OSError):
            continue
    return found
