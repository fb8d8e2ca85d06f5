"""What to label next: the unannotated images ordered by how unsure the model is about them.

A person's next box teaches the model most where the model is unsure (uncertainty sampling,
Settles, *Active Learning Literature Survey*, 2009). For a detector the uncertainty of an
image is built from the uncertainty of each object it found; this module uses the
**1-vs-2 margin** aggregated by **sum**, as Brust, Käding and Denzler do for detectors
(*Active Learning for Deep Object Detection*, VISAPP 2019, arXiv:1809.09875):

- An object's class posterior is recovered from the raw predictions. torchvision's Faster
  R-CNN scores every class of one region proposal with one softmax and keeps each class
  above its score floor as a box of its own, nearly on top of the others; boxes of any class
  overlapping by :data:`GROUP_IOU` or more are grouped back into one object, the best score
  of each class is its probability, and the rest (``1 - sum``) is the background's.
- The object's uncertainty is ``v = (1 - (p1 - p2)) ** 2``, ``p1`` and ``p2`` the two largest
  of those probabilities, background included: 0 for a sure object or a sure background, 1
  when two hypotheses tie (a box at 0.5: object or not; cell 0.45 against crystal 0.40).
  The square keeps many confident objects (``v`` about 0.01 each) from outweighing one
  undecided one.
- The image's uncertainty is the sum over its objects (Brust et al.'s "sum" aggregation:
  an image with three undecided objects is worth more labelling than one with one).

An image where the model found nothing scores 0: uncertainty sampling cannot see the
objects a model misses without a trace (a known limit of every such measure; a person
still meets those images through "next unannotated").

The reason shown beside the choice counts what a person can check on screen: boxes whose
best score lies in :data:`UNDECIDED` and objects on which two classes both score in it or
above.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_detlab.core.boxes import box_iou
from napari_detlab.core.model.predict import Prediction
from napari_detlab.core.wording import counted

__all__ = [
    "GROUP_IOU",
    "UNDECIDED",
    "ImageUncertainty",
    "ObjectGuess",
    "image_uncertainty",
    "object_guesses",
    "rank_images",
]

# Boxes of any class overlapping this much are one object's competing class guesses.
GROUP_IOU = 0.5
# Scores in this band are neither a confident object nor confident background.
UNDECIDED = (0.3, 0.7)


@dataclass(frozen=True)
class ObjectGuess:
    """One object the model found: the best score of each class guessed for it.

    Attributes
    ----------
    scores
        ``{class name: best score}``, highest first.
    """

    scores: dict[str, float]

    @property
    def probabilities(self) -> np.ndarray:
        """The classes' scores and the background's remainder, highest first."""
        values = np.array(list(self.scores.values()), dtype=np.float64)
        background = max(0.0, 1.0 - float(values.sum()))
        return np.sort(np.append(values, background))[::-1]

    @property
    def uncertainty(self) -> float:
        """Brust et al.'s 1-vs-2 value ``(1 - (p1 - p2)) ** 2`` (see the module's notes)."""
        p = self.probabilities
        return float((1.0 - (p[0] - p[1])) ** 2)

    @property
    def best(self) -> float:
        return max(self.scores.values())

    @property
    def undecided(self) -> bool:
        """Whether its best score lies in :data:`UNDECIDED`."""
        return UNDECIDED[0] <= self.best <= UNDECIDED[1]

    @property
    def disputed(self) -> tuple[str, str] | None:
        """The two classes that both score at least :data:`UNDECIDED`'s low end, if any."""
        names = [name for name, score in self.scores.items() if score >= UNDECIDED[0]]
        return (names[0], names[1]) if len(names) >= 2 else None


def object_guesses(prediction: Prediction, iou: float = GROUP_IOU) -> list[ObjectGuess]:
    """The objects of ``prediction``: its boxes grouped greedily, best score first.

    The best remaining box starts an object and takes every remaining box (of any class)
    overlapping it by ``iou`` or more, as class-agnostic NMS would suppress them.
    """
    scores = np.asarray(prediction.scores, dtype=np.float64)
    if not len(scores):
        return []
    labels = list(prediction.labels)
    overlap = box_iou(prediction.boxes, prediction.boxes)
    order = np.lexsort((np.arange(len(scores)), -scores))
    free = np.ones(len(scores), dtype=bool)
    guesses = []
    for lead in order:
        if not free[lead]:
            continue
        members = [i for i in order if free[i] and overlap[lead, i] >= iou]
        free[members] = False
        best: dict[str, float] = {}
        for i in members:  # by descending score: a class's first box is its best
            best.setdefault(labels[i], float(scores[i]))
        guesses.append(ObjectGuess(best))
    return guesses


@dataclass(frozen=True)
class ImageUncertainty:
    """How unsure the model is about one image, and why, in words.

    Attributes
    ----------
    image
        The image.
    score
        The sum of its objects' 1-vs-2 uncertainties (higher: label it sooner).
    objects
        How many objects the model found (any score).
    undecided
        Objects whose best score is in :data:`UNDECIDED`.
    disputes
        For each object two classes claim, the two classes.
    """

    image: Path
    score: float
    objects: int
    undecided: int
    disputes: tuple[tuple[str, str], ...]

    def reason(self) -> str:
        """What a person reads beside the choice, e.g. ``"3 boxes with scores in 0.3-0.7;
        classes cell/crystal disagree on 1 object"``."""
        low, high = UNDECIDED
        parts = []
        if self.undecided:
            parts.append(f"{counted(self.undecided, 'box', 'boxes')} with scores in {low}-{high}")
        pairs: dict[tuple[str, str], int] = {}
        for pair in self.disputes:
            pairs[pair] = pairs.get(pair, 0) + 1
        for (first, second), count in pairs.items():
            parts.append(f"classes {first}/{second} disagree on {counted(count, 'object')}")
        if not parts:
            found = counted(self.objects, "object")
            parts.append(f"no undecided box ({found} found, uncertainty {self.score:.2f})")
        return "; ".join(parts)


def image_uncertainty(image: Path, prediction: Prediction) -> ImageUncertainty:
    """The uncertainty of one image from its raw predictions (see the module's notes)."""
    guesses = object_guesses(prediction)
    disputes = tuple(pair for g in guesses if (pair := g.disputed) is not None)
    return ImageUncertainty(
        image=Path(image),
        score=float(sum(g.uncertainty for g in guesses)),
        objects=len(guesses),
        undecided=sum(g.undecided for g in guesses),
        disputes=disputes,
    )


def rank_images(
    predictions: Mapping[Path, Prediction], order: Sequence[Path] | None = None
) -> list[ImageUncertainty]:
    """The images of ``predictions``, most uncertain first.

    Ties (images the model is equally sure of, e.g. two with nothing found) keep ``order``
    (the folder's), or the mapping's order without one.
    """
    images = list(order) if order is not None else list(predictions)
    position = {Path(image): i for i, image in enumerate(images)}
    ranked = [image_uncertainty(Path(i), p) for i, p in predictions.items()]
    return sorted(ranked, key=lambda u: (-u.score, position.get(u.image, len(position))))
