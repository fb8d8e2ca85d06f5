"""The Review figures of a whole dataset: precision, recall and COCO mAP at one setting.

Each image is reviewed exactly as the dock reviews the one on screen (:func:`review_image`),
and the kept predictions are then scored by pycocotools. The Review dock runs
:func:`review_prediction_folder` in a worker thread after each change: COCO evaluation of a
few hundred images takes about a second.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.file_cache import FileCache
from napari_detlab.core.annotations.store import AmbiguousImageError, AnnotationStore
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.evaluation.image_review import ImagePredictions, review_image
from napari_detlab.core.evaluation.metrics import coco_metrics, max_detections_for
from napari_detlab.core.evaluation.review import Counts, ReviewThresholds
from napari_detlab.core.evaluation.split_figures import (
    EvaluationFigures,
    ImageFigures,
    evaluation_figures,
    image_figures,
)
from napari_detlab.core.evaluation.split_groups import RunSplit, group_stems, split_of_checkpoint
from napari_detlab.core.model.predict import Prediction, load_prediction
from napari_detlab.core.wording import counted

__all__ = [
    "DatasetReview",
    "FolderReview",
    "review_dataset",
    "review_prediction_folder",
]


@dataclass
class DatasetReview:
    """Dataset figures at the current thresholds.

    Attributes
    ----------
    counts
        TP/FP/missed summed over every image with both predictions and ground truth.
    per_image
        The counts of each image (by stem).
    metrics
        COCO metrics (``map``, ``map_50``, ...) of the *filtered* predictions, or empty when
        there was nothing to evaluate.
    scored
        Those filtered predictions (each image's best per class, as many as COCO scoring
        counts), by stem: what the figures of each split score too.
    """

    counts: Counts = field(default_factory=Counts)
    per_image: dict[str, Counts] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    scored: dict[str, Prediction] = field(default_factory=dict)


def review_dataset(
    predictions: Mapping[str, Prediction],
    ground_truth: Mapping[str, ImageAnnotation],
    classes: Sequence[str],
    thresholds: ReviewThresholds,
    *,
    with_map: bool = True,
    cache: FileCache | None = None,
) -> DatasetReview:
    """Filter every image's predictions at ``thresholds`` and score the dataset.

    Parameters
    ----------
    predictions
        ``{stem: raw predictions}``.
    ground_truth
        ``{stem: annotation}``; only stems present in both mappings count.
    classes
        The class names, for COCO's category ids.
    thresholds
        The setting every image is filtered and matched at.
    with_map
        Also compute COCO mAP through :func:`napari_detlab.core.evaluation.metrics.coco_metrics`
        (tens of milliseconds per call, so the panel debounces it).
    cache
        Where each image's figures are kept (:meth:`FileCache.derived`) while its prediction
        and annotation are the very same objects and ``thresholds`` do not move: the
        :class:`FileCache` the files were read through, so that after one file changed only
        its image is reviewed again.
    """
    review = DatasetReview()
    filtered: dict[str, Prediction] = {}
    # The most detections per image and class that COCO scoring counts here (more than 100
    # only on dense images): the rest can change no figure.
    limit = max_detections_for(ground_truth[stem] for stem in predictions if stem in ground_truth)
    for stem, prediction in predictions.items():
        truth = ground_truth.get(stem)
        if truth is None:
            continue

        def compute(prediction: Prediction = prediction, truth: ImageAnnotation = truth):
            return _review_one(prediction, truth, thresholds, limit)

        if cache is None:
            counts, top = compute()
        else:
            counts, top = cache.derived(
                ("review", stem), (prediction, truth), (thresholds, limit), compute
            )
        review.per_image[stem] = counts
        review.counts = review.counts + counts
        if with_map:
            filtered[stem] = top
    review.scored = filtered
    if with_map and filtered:

        def score() -> dict[str, Any]:
            truths = {stem: ground_truth[stem] for stem in filtered}
            return dict(coco_metrics(filtered, truths, list(classes)))

        if cache is None:
            review.metrics = score()
        else:  # the same kept boxes and annotations as last time: the same figures
            inputs = [*filtered.values(), *(ground_truth[stem] for stem in filtered)]
            kept = cache.derived(("coco", tuple(filtered)), inputs, tuple(classes), score)
            review.metrics = copy.deepcopy(kept)
    return review


@dataclass
class FolderReview:
    """A prediction folder scored against the annotations, at one set of thresholds.

    Attributes
    ----------
    images
        Annotated images that have predictions (the only ones scored).
    dataset
        Their figures together; None when there are none.
    image
        The figures of the image on screen alone, when it is one of them.
    shared
        Images left out because they share a stem and so one annotation file, one entry
        per stem (``"a.jpg and a.png"``): the store reads that file for neither.
    figures
        The same images' figures split into validation, training, new and unknown, with
        per-class AP, PR curves and confusion matrices; None when there are none.
    """

    images: int = 0
    dataset: DatasetReview | None = None
    image: DatasetReview | None = None
    shared: list[str] = field(default_factory=list)
    figures: EvaluationFigures | None = None

    def left_out_note(self) -> str:
        """What the figures leave out and why, for the line under them; empty if nothing."""
        if not self.shared:
            return ""
        return (
            f"left out: {'; '.join(self.shared)} (one annotation file for two images: rename "
            "one of them)"
        )

    def headline(self) -> str:
        """``"12 images: 10 TP · ..."``: the dataset's counts; ``""`` without figures.

        These counts take every image together. When the split says some of them were
        trained on, the line says so (``"All 12 images (training images included, see the
        split below): ..."``): on its own it would flatter the model, and the honest
        figures are the validation split's, under it.
        """
        if self.dataset is None:
            return ""
        images = counted(self.images, "image")
        trained = None if self.figures is None else self.figures.splits.get("training")
        if trained is not None and trained.images:
            images = f"All {images} (training images included, see the split below)"
        return f"{images}: {self.dataset.counts.summary()}"


def review_prediction_folder(
    predictions_dir: Path,
    store: AnnotationStore,
    cache: FileCache,
    thresholds: ReviewThresholds,
    *,
    current_stem: str | None = None,
    split: RunSplit | None = None,
) -> FolderReview:
    """Score every ``<stem>.pt`` of ``predictions_dir`` that has an annotation in ``store``.

    Files are read through ``cache``, so only the ones rewritten since the last call are
    read again. A file that cannot be read is left out (the panel reports it when its image
    is opened): one bad file must not hide the figures of the others. So is the file of a
    stem two images share (``a.jpg``, ``a.png``), which the store reads for neither; those
    are listed in :attr:`FolderReview.shared`. Runs in a worker thread: COCO evaluation of a
    few hundred images takes about a second. ``split`` replaces the split each prediction's
    checkpoint records (:func:`~.split_groups.group_stems`).
    """
    predictions: dict[str, Prediction] = {}
    truths: dict[str, ImageAnnotation] = {}
    shared: list[str] = []

    def read_prediction(path: Path) -> Prediction:  # a version-1 file is oriented like its image
        return load_prediction(path, store.image_of(path.stem))

    for path in sorted(Path(predictions_dir).glob("*.pt")):
        truth_path = store.path_for(path.stem)
        try:
            if truth_path.is_file():  # asked here: the cache may hold a refused file as None
                store.check_one_image(path.stem)
            truth = cache.get(truth_path, lambda p: store.load(p.stem))
            prediction = None if truth is None else cache.get(path, read_prediction)
        except AmbiguousImageError as error:
            shared.append(" and ".join(image.name for image in error.images))
            continue
        except DetlabError:
            continue
        if prediction is not None:
            predictions[path.stem], truths[path.stem] = prediction, truth
    if not predictions:
        return FolderReview(shared=shared)
    # Category ids only need to be consistent within this call: the labels in use are
    # enough (the store's class list would re-read every annotation file).
    classes = list(
        dict.fromkeys(
            label for item in (*predictions.values(), *truths.values()) for label in item.labels
        )
    ) or ["object"]
    image = None
    if current_stem in predictions:
        image = review_dataset(
            {current_stem: predictions[current_stem]}, truths, classes, thresholds, cache=cache
        )
    dataset = review_dataset(predictions, truths, classes, thresholds, cache=cache)
    try:  # the figures list the classes as the Annotator does (the index has them read)
        listed = [name for name in store.class_names() if name in classes]
    except DetlabError:
        listed = []
    in_order = listed + [name for name in classes if name not in listed]
    figures = _split_figures(predictions, truths, in_order, thresholds, dataset, cache, split)
    return FolderReview(len(predictions), dataset, image, shared, figures)


def _split_figures(
    predictions: Mapping[str, Prediction],
    truths: Mapping[str, ImageAnnotation],
    classes: list[str],
    thresholds: ReviewThresholds,
    dataset: DatasetReview,
    cache: FileCache,
    split: RunSplit | None,
) -> EvaluationFigures:
    """Each split's figures, the per-image work and each checkpoint's split kept in ``cache``
    while their files are unchanged."""

    def lookup(checkpoint: str) -> RunSplit | None:
        path = Path(checkpoint)
        if not path.is_file():
            return None
        # A file's read once per stamp; the run's split.json can only be older than it.
        return cache.get(path, split_of_checkpoint)

    def per_image(stem: str) -> ImageFigures:
        prediction, truth = predictions[stem], truths[stem]
        return cache.derived(
            ("figures", stem), (prediction, truth), (thresholds, tuple(classes)),
            lambda: image_figures(prediction, truth, classes, thresholds),
        )  # fmt: skip

    checkpoints = {stem: prediction.checkpoint for stem, prediction in predictions.items()}
    groups, sources = group_stems(checkpoints, override=split, lookup=lookup)
    return evaluation_figures(
        predictions, truths, classes, thresholds, groups,
        scored=dataset.scored, sources=sources, per_image=per_image,
    )  # fmt: skip


def _review_one(
    prediction: Prediction, truth: ImageAnnotation, thresholds: ReviewThresholds, limit: int
) -> tuple[Counts, Prediction]:
    """One image's counts and the kept predictions COCO scores (its best ``limit`` per
    class)."""
    image = ImagePredictions(prediction)
    figures = review_image(image, truth, thresholds)
    counts = figures.counts or Counts()  # never None: the image has ground truth
    top = _top_per_class(figures.kept, image.labels, limit)
    kept = Prediction(prediction.boxes[top], list(image.labels[top]), prediction.scores[top])
    return counts, kept


def _top_per_class(keep: np.ndarray, labels: np.ndarray, limit: int) -> np.ndarray:
    """The first ``limit`` of ``keep`` (best first) in each class.

    COCO evaluation looks at no more than its largest ``maxDets`` detections per image and
    class (:func:`~napari_detlab.core.evaluation.metrics.max_detections_for`), so dropping
    the rest changes no figure and saves most of pycocotools' time.
    """
    seen: dict[str, int] = {}
    top = []
    for index in keep:
        label = str(labels[index])
        if seen.get(label, 0) < limit:
            seen[label] = seen.get(label, 0) + 1
            top.append(index)
    return np.asarray(top, dtype=np.int64)
