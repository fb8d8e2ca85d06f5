"""COCO detection metrics, computed by pycocotools itself so the numbers are the reference ones.

The ground truth and the predictions are turned into pycocotools' in-memory structures
exactly as a COCO JSON file would describe them (``bbox`` as ``[x, y, w, h]``, ``area`` =
``w * h``, ``iscrowd`` 0, category ids ``1..K`` in the order of ``classes``, every evaluated
image listed including negatives) and :class:`pycocotools.cocoeval.COCOeval` does the rest,
with its default parameters (IoU 0.50:0.95, at most 100 detections per image and class,
COCO's small / medium / large area ranges), except on dense images: where an image holds more
than 100 objects of one class, as many detections as that count (:func:`max_detections_for`).
Each image's evaluation is kept by a digest of its boxes
(:mod:`.coco_images`), so scoring again after one image changed evaluates that image alone,
with the very numbers of a fresh run; each image's matching is pycocotools' rule at all
IoU thresholds at once (:mod:`.coco_matching`), field for field its ``evaluateImg``, many
times faster on dense images.

Undefined values
----------------
pycocotools reports ``-1`` for a number that has nothing to average: no ground-truth box at
all, none in an area range, or a class without boxes. Here these are ``float("nan")`` so that
nobody mistakes them for a (terrible) score; :func:`metrics_to_json` writes them as ``null``.
Every key is always present and ``per_class`` / ``per_class_50`` name every class.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import hashlib
import json
import math
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_detlab.core.annotations.file_cache import Stamp, index_enabled, regular_file_stamp
from napari_detlab.core.annotations.index import folder_cache
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.boxes import as_boxes
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.evaluation.coco_images import ImageEvaluations

if TYPE_CHECKING:  # pycocotools is imported when first scoring
    from pycocotools.cocoeval import COCOeval

__all__ = [
    "COCO_MAX_DETECTIONS",
    "METRIC_KEYS",
    "EvaluationError",
    "coco_evaluator",
    "coco_ground_truth",
    "coco_metrics",
    "coco_metrics_from_folders",
    "coco_results",
    "empty_metrics",
    "forget_scores",
    "format_metrics_table",
    "load_folder_pairs",
    "max_detections_for",
    "metrics_to_json",
]


class EvaluationError(DetlabError, ValueError):
    """Predictions and ground truth that cannot be compared (other classes, nothing shared)."""


# pycocotools' default: its figures count at most this many detections per image and class.
COCO_MAX_DETECTIONS = 100

# COCOeval.stats, in its order.
METRIC_KEYS = (
    "map", "map_50", "map_75", "map_small", "map_medium", "map_large",
    "mar_1", "mar_10", "mar_100", "mar_small", "mar_medium", "mar_large",
)  # fmt: skip


def _field(item: Any, name: str) -> Any:
    # Predictions may be dicts ({"boxes", "scores", "labels"}) or objects with those attributes
    # (core.predict.Prediction); ground truth may be ImageAnnotation or a dict.
    if isinstance(item, (dict, Mapping)):  # dict first: an ABC check is slower
        return item[name]
    return getattr(item, name)


def _category_ids(classes: Sequence[str]) -> dict[str, int]:
    classes = [str(c) for c in classes]
    if len(set(classes)) != len(classes):
        raise EvaluationError(f"class names must be unique, got {classes}")
    return {name: index + 1 for index, name in enumerate(classes)}


def _array(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float64)


def _labels(item: Any) -> list[str]:
    labels = _field(item, "labels")
    if hasattr(labels, "tolist"):
        labels = labels.tolist()
    return [str(label) for label in labels]


def max_detections_for(ground_truth: Iterable[Any]) -> int:
    """How many detections per image and class the figures count: COCO's 100, or the most
    objects of one class in one image where that is more.

    With COCO's 100 on a field of 1,000 cells, recall can never pass 10 %: a detector that
    finds 96 % of them scored an mAP of 0.09 (pycocotools keeps each image's best 100 per
    class). Counting as many detections as the image has objects lets it score what it
    found. On datasets with at most 100 objects of a class per image the figures are COCO's
    own; ``mar_100`` is then the recall at this count (the table names it).
    """
    most = COCO_MAX_DETECTIONS
    for truth in ground_truth:
        if len(_field(truth, "labels")) > most:  # only a dense image is counted by class
            most = max(most, *Counter(_labels(truth)).values())
    return most


def coco_ground_truth(
    ground_truth: Mapping[str, Any], classes: Sequence[str]
) -> tuple[dict, dict[str, int]]:
    """The COCO dataset dict of ``ground_truth`` and the image id of each stem.

    Images get ids ``1..N`` in sorted-stem order; boxes get ids ``1..M``.
    """
    category = _category_ids(classes)
    images, annotations, image_ids = [], [], {}
    for image_id, stem in enumerate(sorted(ground_truth), start=1):
        annotation = ground_truth[stem]
        image_ids[stem] = image_id
        entry: dict[str, Any] = {"id": image_id, "file_name": str(stem)}
        size = (
            annotation.get("image_size")
            if isinstance(annotation, Mapping)
            else getattr(annotation, "image_size", None)
        )
        if size is not None:
            entry["height"], entry["width"] = int(size[0]), int(size[1])
        images.append(entry)
        boxes = as_boxes(_field(annotation, "boxes"), np.float64)
        labels = _labels(annotation)
        if len(labels) != len(boxes):
            raise EvaluationError(f"{stem}: {len(boxes)} boxes but {len(labels)} labels")
        for box, label in zip(boxes, labels, strict=True):
            if label not in category:
                raise _unknown_class(stem, "ground-truth", label, category)
            x1, y1, x2, y2 = (float(v) for v in box)
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": category[label],
                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0,
            })  # fmt: skip
    dataset = {
        "info": {"description": "napari-detlab evaluation"},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": cid, "name": name} for name, cid in category.items()],
    }
    return dataset, image_ids


def coco_results(
    predictions: Mapping[str, Any], image_ids: Mapping[str, int], classes: Sequence[str]
) -> list[dict[str, Any]]:
    """Predictions as a COCO results list (``loadRes`` input), for the images in ``image_ids``.

    Predictions of images without ground truth cannot be scored and are ignored; a predicted
    class that is not in ``classes`` raises ``ValueError`` (the model and dataset disagree).
    """
    category = _category_ids(classes)
    results: list[dict[str, Any]] = []
    for stem in sorted(predictions):
        if stem not in image_ids:
            continue
        prediction = predictions[stem]
        boxes = as_boxes(_field(prediction, "boxes"), np.float64)
        scores = _array(_field(prediction, "scores")).reshape(-1)
        labels = _labels(prediction)
        if not len(boxes) == len(scores) == len(labels):
            raise EvaluationError(
                f"{stem}: {len(boxes)} boxes, {len(scores)} scores, {len(labels)} labels"
            )
        for box, score, label in zip(boxes, scores, labels, strict=True):
            if label not in category:
                raise _unknown_class(stem, "predicted", label, category)
            x1, y1, x2, y2 = (float(v) for v in box)
            results.append({
                "image_id": image_ids[stem], "category_id": category[label],
                "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(score),
            })  # fmt: skip
    return results


# pycocotools reports its progress with ``print``. ``contextlib.redirect_stdout`` cannot hush
# it: it swaps ``sys.stdout`` for the whole process, so two evaluations in two threads (the
# Review dock scores in a worker while a benchmark or the CLI scores too) restore each
# other's buffers, and pycocotools' text leaks to the real stdout while later output is
# swallowed. Instead pycocotools' two modules get a module-level ``print`` that stays quiet
# only in a thread that is evaluating and forwards to the built-in one everywhere else; it is
# installed once and never swapped back, so no thread changes what another one sees.
_QUIET = threading.local()
_INSTALL_LOCK = threading.Lock()


def _print_unless_quiet(*args: object, **kwargs: Any) -> None:
    if not getattr(_QUIET, "depth", 0):
        builtins.print(*args, **kwargs)


def _silence_pycocotools_prints() -> None:
    """Give pycocotools' modules the thread-aware ``print`` (idempotent, thread-safe)."""
    import pycocotools.coco
    import pycocotools.cocoeval

    with _INSTALL_LOCK:
        for module in (pycocotools.coco, pycocotools.cocoeval):
            if vars(module).get("print") is not _print_unless_quiet:
                module.print = _print_unless_quiet  # type: ignore[attr-defined]


@contextlib.contextmanager
def _quiet_in_this_thread() -> Iterator[None]:
    _QUIET.depth = getattr(_QUIET, "depth", 0) + 1
    try:
        yield
    finally:
        _QUIET.depth -= 1


def _nan_if_undefined(value: float) -> float:
    return float("nan") if value < 0 else float(value)


def empty_metrics(classes: Sequence[str]) -> dict[str, Any]:
    """The metrics dict with every value undefined (NaN): the shape callers can rely on."""
    nan = float("nan")
    out: dict[str, Any] = dict.fromkeys(METRIC_KEYS, nan)
    out["per_class"] = dict.fromkeys((str(c) for c in classes), nan)
    out["per_class_50"] = dict.fromkeys((str(c) for c in classes), nan)
    out["max_detections"] = COCO_MAX_DETECTIONS
    return out


def coco_metrics(
    predictions: Mapping[str, Any], ground_truth: Mapping[str, Any], classes: Sequence[str]
) -> dict[str, Any]:
    """COCO bbox metrics of ``predictions`` against ``ground_truth``, by pycocotools.

    Parameters
    ----------
    predictions
        ``{stem: {"boxes": (N, 4) xyxy, "scores": (N,), "labels": [class name] * N}}`` (or
        objects with those attributes). Images without an entry count as "predicted nothing".
    ground_truth
        ``{stem: ImageAnnotation}`` (or dicts with ``boxes`` and ``labels``); every stem is
        evaluated, negatives included (their predictions are false positives).
    classes
        Class names; their order gives COCO category ids ``1..K``.

    Returns
    -------
    dict
        :data:`METRIC_KEYS` as floats (``map`` is AP@[.5:.95], ``map_50`` AP@.5, ``mar_100``
        AR with 100 detections, ...), plus ``per_class`` ``{name: AP@[.5:.95]}`` and
        ``per_class_50`` ``{name: AP@.5}``, and ``max_detections``: the detections per image
        and class counted (:func:`max_detections_for`). Undefined values are NaN (see the
        module doc).
    """
    classes = [str(c) for c in classes]
    if not ground_truth:
        return empty_metrics(classes)
    limit = max_detections_for(ground_truth.values())
    if not index_enabled():
        return _coco_metrics(predictions, ground_truth, classes, limit)
    category = _category_ids(classes)
    digests = {
        stem: _image_digest(stem, predictions.get(stem), ground_truth[stem], category, limit)
        for stem in sorted(ground_truth)
    }
    whole = hashlib.blake2b(repr(classes).encode(), digest_size=20)
    for stem, digest in digests.items():
        whole.update(repr(str(stem)).encode() + digest)
    key = whole.digest()
    with _MEMO_LOCK:
        known = _MEMO.get(key)
    if known is not None:
        return copy.deepcopy(known)

    def evaluate(stems: list[str]) -> COCOeval:
        return _evaluated(
            {stem: predictions[stem] for stem in stems if stem in predictions},
            {stem: ground_truth[stem] for stem in stems},
            classes,
            limit,
        )

    evaluator = _IMAGES.accumulated(digests, classes, evaluate, limit)
    metrics = _summarized(evaluator, classes)
    with _MEMO_LOCK:
        _MEMO[key] = copy.deepcopy(metrics)
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.pop(next(iter(_MEMO)))
    return metrics


# The last few scorings, keyed by a digest of everything they were computed from: the
# Review dock asks again after every slider release, and even accumulating thousands of
# images takes longer than the digest. Keyed by content, an answer can never be stale.
# One Review update scores the dataset, the image on screen and each split (validation,
# training, new, unknown): room for two updates' worth, so none pushes out its own answers.
_MEMO: dict[bytes, dict[str, Any]] = {}
_MEMO_SIZE = 12
_MEMO_LOCK = threading.Lock()
# Each image's pycocotools evaluation by the digest of its boxes: after a save the Review
# scores the dataset again, and only the saved image is evaluated again (seconds for
# 5,000 images with pycocotools' evaluate(), see core/evaluation/coco_images.py).
_IMAGES = ImageEvaluations()


def forget_scores() -> None:
    """Forget the remembered COCO scores and image evaluations (a benchmark's cold start)."""
    with _MEMO_LOCK:
        _MEMO.clear()
    _IMAGES.clear()


def _image_digest(
    stem: str, prediction: Any, truth: Any, category: Mapping[str, int], limit: int
) -> bytes:
    """A digest of one image's ground truth and predictions, and of the detections per
    class counted (``limit``): what pycocotools judges in it.

    Raises the same :class:`EvaluationError` as :func:`coco_ground_truth` and
    :func:`coco_results` for a class not in ``category``: a kept evaluation was checked
    against the classes of its own call. Arrays are digested as they are (dtype, shape and
    bytes), which fixes the float64 values pycocotools is given.
    """
    digest = hashlib.blake2b(repr(limit).encode(), digest_size=20)
    for side, item, fields in (
        ("ground-truth", truth, ("boxes",)),
        ("predicted", prediction, ("boxes", "scores")),
    ):
        if item is None:  # no predictions: nothing more to judge
            break
        labels = _labels(item)
        for label in labels:
            if label not in category:
                raise _unknown_class(stem, side, label, category)
        digest.update(repr((side, labels)).encode())
        for name in fields:
            values = _field(item, name)
            if hasattr(values, "detach"):
                values = values.detach().cpu().numpy()
            array = np.ascontiguousarray(values)
            if array.dtype.kind not in "fiub":  # objects: their values, not their addresses
                array = np.ascontiguousarray(array, dtype=np.float64)
            digest.update(repr((array.dtype.str, array.shape)).encode())
            digest.update(array.tobytes())
    return digest.digest()


def _unknown_class(
    stem: str, side: str, label: str, category: Mapping[str, int]
) -> EvaluationError:
    if side == "predicted":
        return EvaluationError(
            f"{stem}: predicted class {label!r} is not one of the dataset's classes "
            f"{list(category)}"
        )
    return EvaluationError(f"{stem}: ground-truth class {label!r} is not one of {list(category)}")


def coco_evaluator(
    predictions: Mapping[str, Any],
    ground_truth: Mapping[str, Any],
    classes: Sequence[str],
    *,
    limit: int = COCO_MAX_DETECTIONS,
    kind: type[COCOeval] | None = None,
) -> COCOeval:
    """A pycocotools evaluator of these images, ready for ``evaluate()``: the COCO structures
    built in memory as :func:`coco_ground_truth` and :func:`coco_results` describe them,
    counting at most ``limit`` detections per image and class.

    ``kind`` is the evaluator class: :class:`~napari_detlab.core.evaluation.coco_matching.
    ThresholdsAtOnceCOCOeval` unless given (a benchmark or a test passes pycocotools' own
    ``COCOeval`` to compare).
    """
    from pycocotools.coco import COCO

    if kind is None:
        from napari_detlab.core.evaluation.coco_matching import ThresholdsAtOnceCOCOeval

        kind = ThresholdsAtOnceCOCOeval
    _silence_pycocotools_prints()
    dataset, image_ids = coco_ground_truth(ground_truth, classes)
    results = coco_results(predictions, image_ids, classes)
    with _quiet_in_this_thread():
        coco_gt = COCO()
        coco_gt.dataset = dataset
        coco_gt.createIndex()
        if results:
            coco_dt = coco_gt.loadRes(results)
        else:
            # loadRes cannot take an empty list; an empty result set is what it would build.
            coco_dt = COCO()
            coco_dt.dataset = {**dataset, "annotations": []}
            coco_dt.createIndex()
        evaluator = kind(coco_gt, coco_dt, iouType="bbox")
    evaluator.params.maxDets = [1, 10, limit]
    return evaluator


def _evaluated(
    predictions: Mapping[str, Any], ground_truth: Mapping[str, Any], classes: list[str], limit: int
) -> COCOeval:
    """:func:`coco_evaluator` after ``evaluate()``."""
    evaluator = coco_evaluator(predictions, ground_truth, classes, limit=limit)
    with _quiet_in_this_thread():
        evaluator.evaluate()
    return evaluator


def _coco_metrics(
    predictions: Mapping[str, Any], ground_truth: Mapping[str, Any], classes: list[str], limit: int
) -> dict[str, Any]:
    """:func:`coco_metrics` by pycocotools alone, every image evaluated afresh."""
    evaluator = _evaluated(predictions, ground_truth, classes, limit)
    with _quiet_in_this_thread():
        evaluator.accumulate()
    return _summarized(evaluator, classes)


def _summarized(evaluator: COCOeval, classes: list[str]) -> dict[str, Any]:
    """The metrics dict of an accumulated ``COCOeval``: its 12 stats as ``summarize()``
    computes them (:func:`_coco_stats`), per-class APs and the detections counted."""
    metrics: dict[str, Any] = {
        key: _nan_if_undefined(value)
        for key, value in zip(METRIC_KEYS, _coco_stats(evaluator), strict=True)
    }
    # precision: [IoU thresholds, recall points, classes, area ranges, max detections];
    # area "all" is index 0 and the largest maxDets the last, as in COCOeval.summarize.
    precision = evaluator.eval["precision"]
    per_class, per_class_50 = {}, {}
    for k, name in enumerate(classes):
        per_class[name] = _mean_defined(precision[:, :, k, 0, -1])
        per_class_50[name] = _mean_defined(precision[0, :, k, 0, -1])
    metrics["per_class"] = per_class
    metrics["per_class_50"] = per_class_50
    metrics["max_detections"] = int(evaluator.params.maxDets[-1])
    return metrics


def _coco_stats(evaluator: COCOeval) -> list[float]:
    """``COCOeval.summarize()``'s 12 stats, with the same slices and means, at any maxDets.

    pycocotools' own summary asks its mAP at ``maxDets=100`` by value, so with a larger last
    ``maxDets`` it finds no slice and reports -1; here every AP and the last AR are read at
    the last ``maxDets``, which is what it does with its defaults.
    """
    params, results = evaluator.params, evaluator.eval
    area = {label: index for index, label in enumerate(params.areaRngLbl)}

    def mean(ap: bool, iou: float | None = None, where: str = "all", m: int = -1) -> float:
        values = results["precision"] if ap else results["recall"]
        if iou is not None:
            values = values[np.where(iou == params.iouThrs)[0]]
        values = values[..., [area[where]], [m % len(params.maxDets)]]
        defined = values[values > -1]
        return -1.0 if defined.size == 0 else float(np.mean(defined))

    return [
        mean(True), mean(True, 0.5), mean(True, 0.75),
        mean(True, where="small"), mean(True, where="medium"), mean(True, where="large"),
        mean(False, m=0), mean(False, m=1), mean(False),
        mean(False, where="small"), mean(False, where="medium"), mean(False, where="large"),
    ]  # fmt: skip


def _mean_defined(values: np.ndarray) -> float:
    defined = values[values > -1]
    return float(np.mean(defined)) if defined.size else float("nan")


def load_folder_pairs(
    pred_dir: str | Path, dataset_root: str | Path
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Predictions and ground truth of the images that have both, and the dataset's classes.

    Ground truth is every image that would train (boxes, or reviewed as negative). Raises
    ``FileNotFoundError`` for a missing folder and :class:`EvaluationError` when nothing can be
    compared, a predicted class is not one of the dataset's, or prediction files cannot be
    read (all of them named: leaving one out would change the score).
    """
    from napari_detlab.core.model.predict import load_prediction

    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise FileNotFoundError(f"{pred_dir}: not a folder")
    store = AnnotationStore(dataset_root)
    classes = store.class_names()
    ground_truth = {image.stem: annotation for image, annotation in store.trainable()}
    if not ground_truth:
        raise EvaluationError(f"{store.root}: no annotated images to evaluate against")
    cache = folder_cache(pred_dir)

    def read(path: Path) -> tuple[Stamp | None, Any]:
        # A version-1 file is turned with its image: kept while the image is unchanged.
        image = store.image_of(path.stem)
        stamp = None if image is None else regular_file_stamp(image)
        return stamp, load_prediction(path, image)

    def same_image(value: tuple[Stamp | None, Any], path: Path) -> bool:
        image = store.image_of(path.stem)
        return value[0] == (None if image is None else regular_file_stamp(image))

    predictions, unreadable = {}, []
    for path in sorted(pred_dir.glob("*.pt")):
        if path.stem in ground_truth:
            try:
                if cache is None:
                    predictions[path.stem] = read(path)[1]
                else:
                    kept = cache.get(path, read, valid=lambda v, p=path: same_image(v, p))
                    if kept is None:  # deleted since the folder was listed
                        continue
                    predictions[path.stem] = kept[1]
            except DetlabError as error:  # its message starts with the file's path
                unreadable.append(f"{path.name} ({str(error).removeprefix(f'{path}: ')})")
    if unreadable:
        raise EvaluationError(
            f"{pred_dir}: {len(unreadable)} prediction file(s) cannot be read: "
            f"{', '.join(unreadable)}; predict those images again"
        )
    if not predictions:
        raise EvaluationError(
            f"{pred_dir}: no prediction file matches an annotated image of {store.root}"
        )
    unknown = sorted({label for p in predictions.values() for label in p.labels} - set(classes))
    if unknown:
        raise EvaluationError(
            f"class mismatch: predictions use {', '.join(map(repr, unknown))}, which the dataset "
            f"{store.root} does not have (its classes: {classes})"
        )
    ground_truth = {stem: ground_truth[stem] for stem in predictions}
    return predictions, ground_truth, classes


def coco_metrics_from_folders(pred_dir: str | Path, dataset_root: str | Path) -> dict[str, Any]:
    """COCO metrics of a prediction folder against an Annotator dataset.

    Only images with both a prediction file and an annotation are scored (see
    :func:`load_folder_pairs`).
    """
    predictions, ground_truth, classes = load_folder_pairs(pred_dir, dataset_root)
    return coco_metrics(predictions, ground_truth, classes)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def metrics_to_json(metrics: Mapping[str, Any], **extra: Any) -> str:
    """Metrics as strict JSON (NaN written as ``null``), with optional extra keys."""
    return json.dumps(_json_safe({**metrics, **extra}), indent=2)


def format_metrics_table(metrics: Mapping[str, Any]) -> str:
    """A readable plain-text table of the metrics, for terminals."""

    def fmt(value: float) -> str:
        return "   n/a" if value is None or math.isnan(value) else f"{value:6.3f}"

    labels = {
        "map": "mAP @[.50:.95]", "map_50": "mAP @.50", "map_75": "mAP @.75",
        "map_small": "mAP small", "map_medium": "mAP medium", "map_large": "mAP large",
        "mar_1": "mAR @1", "mar_10": "mAR @10",
        "mar_100": f"mAR @{metrics.get('max_detections', COCO_MAX_DETECTIONS)}",
        "mar_small": "mAR small", "mar_medium": "mAR medium", "mar_large": "mAR large",
    }  # fmt: skip
    lines = [f"{labels[key]:<16}{fmt(metrics[key])}" for key in METRIC_KEYS if key in metrics]
    per_class = metrics.get("per_class") or {}
    if per_class:
        width = max(12, *(len(name) for name in per_class)) + 2
        lines += ["", f"{'class':<{width}}{'AP':>6}  {'AP50':>6}"]
        for name, value in per_class.items():
            ap50 = (metrics.get("per_class_50") or {}).get(name, float("nan"))
            lines.append(f"{name:<{width}}{fmt(value)}  {fmt(ap50)}")
    return "\n".join(lines)
