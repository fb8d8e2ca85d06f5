"""pycocotools' per-image evaluations kept by content, so that one changed image costs one image.

``COCOeval.evaluate()`` judges every (image, class, area range) on its own: which detections
of that image and class match which of its ground-truth boxes, at each IoU threshold. Nothing
in that judgement depends on another image, on the image's id or on the category's id. Only
``accumulate()`` mixes the images: it ranks all detections of a class by score (a stable
sort, images in id order) and reads the precision-recall curve off the ranking.

The Review asks for the dataset's COCO figures after every save, where one image changed
among thousands; pycocotools' ``evaluate()`` of 5,000 images takes seconds. So each image's
evaluation is kept here under a digest of its boxes, labels and scores (the caller's
:func:`image digest <napari_detlab.core.evaluation.metrics.coco_metrics>`); only images not
seen before go through pycocotools' own ``evaluate()`` (on a dataset of those images alone),
and the accumulation runs again over all of them.

The accumulation is pycocotools' ``accumulate()`` done with the same numpy operations in the
same order, so its arrays are bit-for-bit the same (the tests compare them with a fresh
``COCOeval`` on random datasets): its per-detection Python loop (the running maximum of
precision from the right) is ``np.maximum.accumulate`` on the reversed row, which takes the
same maxima, and the per-image slices of each ``maxDets`` are one mask over the detections
concatenated once per class. ``summarize()`` stays pycocotools' own.
"""

from __future__ import annotations

import datetime
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pycocotools is imported when first scoring, as everywhere in the core
    from pycocotools.cocoeval import COCOeval, Params

__all__ = ["ImageEvaluations"]


@dataclass(frozen=True)
class _ClassEvaluation:
    """What ``evaluateImg`` says of one image and one class, over every area range.

    Attributes
    ----------
    scores
        ``dtScores``: the image's detections of the class, best first, at most ``maxDets[-1]``.
    matched, ignored
        ``dtMatches != 0`` and ``dtIgnore``, ``(areas, IoU thresholds, detections)``.
    objects
        Ground-truth boxes not ignored (``gtIgnore == 0``), per area range.
    """

    scores: np.ndarray
    matched: np.ndarray
    ignored: np.ndarray
    objects: np.ndarray


# One image's evaluations by class name; classes with neither boxes nor detections are absent
# (pycocotools' ``None``), so an image with nothing at all is an empty dict.
_ImageEvaluation = dict[str, _ClassEvaluation]


class ImageEvaluations:
    """Each image's pycocotools evaluation under the digest of its boxes (bounded, thread-safe).

    Parameters
    ----------
    limit
        Images kept; the ones used longest ago go first.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self._limit = limit
        self._kept: OrderedDict[bytes, _ImageEvaluation] = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every image (a benchmark's cold start)."""
        with self._lock:
            self._kept.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._kept)

    def accumulated(
        self,
        digests: Mapping[str, bytes],
        classes: Sequence[str],
        evaluate: Callable[[list[str]], COCOeval],
        max_detections: int = 100,
    ) -> COCOeval:
        """A ``COCOeval`` holding the accumulated ``eval`` of every image, ready to summarize.

        Parameters
        ----------
        digests
            ``{stem: digest of the image's ground truth and predictions}``: every image
            scored; images are ranked in sorted-stem order, as pycocotools ranks image ids.
        classes
            Class names in category-id order.
        evaluate
            ``evaluate(stems)``: a ``COCOeval`` after ``evaluate()`` on those images alone,
            with these classes; called once, only for images not kept here.
        max_detections
            The last of ``maxDets`` (``[1, 10, max_detections]``), as ``evaluate`` used it:
            the digests must change with it, since each image's evaluation depends on it.
        """
        from pycocotools.cocoeval import COCOeval

        stems = sorted(digests)
        images: list[_ImageEvaluation | None] = []
        with self._lock:
            for stem in stems:
                known = self._kept.get(digests[stem])
                if known is not None:
                    self._kept.move_to_end(digests[stem])
                images.append(known)
        missing = [stem for stem, known in zip(stems, images, strict=True) if known is None]
        if missing:
            fresh = _split_by_image(evaluate(missing))
            with self._lock:
                for stem in missing:
                    self._kept[digests[stem]] = fresh.get(str(stem), {})
                while len(self._kept) > self._limit:
                    self._kept.popitem(last=False)
            images = [
                fresh.get(str(stem), {}) if known is None else known
                for stem, known in zip(stems, images, strict=True)
            ]
        evaluator = COCOeval(iouType="bbox")
        params = evaluator.params
        params.imgIds = list(range(1, len(stems) + 1))
        params.catIds = list(range(1, len(classes) + 1))
        params.maxDets = [1, 10, max_detections]
        evaluator.eval = _accumulate(images, list(classes), params)
        return evaluator


def _split_by_image(evaluator: COCOeval) -> dict[str, _ImageEvaluation]:
    """``evaluator.evalImgs`` by stem and class name (``file_name`` and category ``name``)."""
    params = evaluator.params
    images, areas = len(params.imgIds), len(params.areaRng)
    truth = evaluator.cocoGt
    stem_of = {image_id: str(entry["file_name"]) for image_id, entry in truth.imgs.items()}
    name_of = {cat_id: str(entry["name"]) for cat_id, entry in truth.cats.items()}
    found: dict[tuple[str, str], list[dict]] = {}
    for index, result in enumerate(evaluator.evalImgs):
        if result is None:  # neither boxes nor detections of the class in the image
            continue
        area = (index // images) % areas
        entries = found.setdefault(
            (stem_of[result["image_id"]], name_of[result["category_id"]]), [None] * areas
        )
        entries[area] = result
    out: dict[str, _ImageEvaluation] = {}
    for (stem, name), entries in found.items():
        out.setdefault(stem, {})[name] = _ClassEvaluation(
            np.asarray(entries[0]["dtScores"], dtype=np.float64).reshape(-1),
            np.stack([np.asarray(e["dtMatches"]) != 0 for e in entries]),
            np.stack([np.asarray(e["dtIgnore"], dtype=bool) for e in entries]),
            np.array([np.count_nonzero(np.asarray(e["gtIgnore"]) == 0) for e in entries]),
        )
    return out


def _accumulate(
    images: Sequence[_ImageEvaluation], classes: list[str], params: Params
) -> dict[str, object]:
    """``COCOeval.accumulate()``'s ``eval`` dict from the images' evaluations, in image order."""
    thresholds, recall_points = len(params.iouThrs), len(params.recThrs)
    areas, max_dets = len(params.areaRng), list(params.maxDets)
    shape = (thresholds, recall_points, len(classes), areas, len(max_dets))
    precision, scores = -np.ones(shape), -np.ones(shape)
    recall = -np.ones((thresholds, len(classes), areas, len(max_dets)))
    for k, name in enumerate(classes):
        pieces = [image[name] for image in images if name in image]
        if not pieces:
            continue
        lengths = np.array([len(piece.scores) for piece in pieces])
        all_scores = np.concatenate([piece.scores for piece in pieces])
        # Each detection's place in its image's list (best first): maxDets keeps the first n.
        rank = np.arange(len(all_scores)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        matched = np.concatenate([piece.matched for piece in pieces], axis=2)
        ignored = np.concatenate([piece.ignored for piece in pieces], axis=2)
        objects = np.sum([piece.objects for piece in pieces], axis=0)
        for a in range(areas):
            if objects[a] == 0:
                continue
            for m, max_det in enumerate(max_dets):
                keep = rank < max_det
                dt_scores = all_scores[keep]
                order = np.argsort(-dt_scores, kind="mergesort")
                sorted_scores = dt_scores[order]
                dtm = matched[a][:, keep][:, order]
                dt_ignored = ignored[a][:, keep][:, order]
                tps = np.logical_and(dtm, np.logical_not(dt_ignored))
                fps = np.logical_and(np.logical_not(dtm), np.logical_not(dt_ignored))
                tp_sum = np.cumsum(tps, axis=1).astype(dtype=float)
                fp_sum = np.cumsum(fps, axis=1).astype(dtype=float)
                found = len(sorted_scores)
                rc = tp_sum / objects[a]
                pr = tp_sum / (fp_sum + tp_sum + np.spacing(1))
                # pycocotools' loop from the right: each precision becomes the largest after it.
                pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
                recall[:, k, a, m] = rc[:, -1] if found else 0
                for t in range(thresholds):
                    at = np.searchsorted(rc[t], params.recThrs, side="left")
                    inside = at < found  # pycocotools stops at the first point past the end
                    q, ss = np.zeros(recall_points), np.zeros(recall_points)
                    q[inside] = pr[t][at[inside]]
                    ss[inside] = sorted_scores[at[inside]]
                    precision[t, :, k, a, m] = q
                    scores[t, :, k, a, m] = ss
    return {
        "params": params,
        "counts": list(shape),
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
        "precision": precision,
        "recall": recall,
        "scores": scores,
    }
