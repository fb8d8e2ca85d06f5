"""The Annotator's folder as a torch dataset, and its stable train / validation split.

Which images train
------------------
An image takes part when it has an annotation file and either has boxes or was marked
reviewed: a reviewed image without boxes is a confirmed negative (it teaches the model what
is *not* an object). Images without a file were never looked at and are left out; so is a
file with no boxes that was never marked reviewed, because "nothing drawn yet" is not the
same as "nothing there".

Annotations are read and checked once, when the dataset is built, so a box with an unknown
class is reported with its file before training starts, not hours into it.

Which images validate
---------------------
A hash of each image's name decides its side (:func:`split_by_name`), not a shuffle of the
whole list: a shuffle moved a few validation images into training whenever one image was
added, so two runs a day apart were scored on different images. A split file still wins.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore, stem_of
from napari_detlab.core.images import image_size, read_image, to_float_rgb
from napari_detlab.core.training.augment import Augmenter, clean_boxes
from napari_detlab.core.training.crops import CropSampler
from napari_detlab.core.training.options import TrainingInputError

__all__ = [
    "DetectionDataset",
    "collate",
    "read_split_file",
    "split_by_name",
    "split_train_val",
]

Target = dict[str, torch.Tensor]


def read_split_file(path: str | Path) -> tuple[list[str] | None, list[str]]:
    """Read a fixed split: ``(train_stems or None, val_stems)``.

    Accepted forms: a JSON list of validation images, a JSON object
    ``{"train": [...], "val": [...]}`` (``"train"`` optional), or a text file with one
    validation image per line (blank lines and ``#`` comments ignored). Names may carry their
    image suffix.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise FileNotFoundError(f"{path}: cannot read split file ({error.strerror})") from error
    train: list[str] | None = None
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("[", "{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise TrainingInputError(f"{path}: not valid JSON ({error})") from error
        if isinstance(data, dict):
            if "val" not in data:
                raise TrainingInputError(
                    f'{path}: a split object needs a "val" list (and optionally "train")'
                )
            val_names, train_names = data["val"], data.get("train")
        else:
            val_names, train_names = data, None
        for key, names in (("val", val_names), ("train", train_names)):
            if names is not None and (
                not isinstance(names, list) or not all(isinstance(n, str) for n in names)
            ):
                raise TrainingInputError(f"{path}: {key!r} must be a list of image names")
        val = [stem_of(n.strip()) for n in val_names]
        if train_names is not None:
            train = [stem_of(n.strip()) for n in train_names]
    else:
        # Names may carry their image suffix ("img001.jpg"); "a.b" without one stays as is.
        val = [
            stem_of(line.split("#", 1)[0].strip())
            for line in text.splitlines()
            if line.split("#", 1)[0].strip()
        ]
    return train, val


def split_train_val(
    store: AnnotationStore | str | Path,
    val_fraction: float = 0.2,
    seed: int = 0,
    split_file: str | Path | None = None,
    *,
    stratify: bool = False,
) -> tuple[list[str], list[str]]:
    """Split the trainable images into training and validation stems.

    Each image's side follows from a hash of its name (:func:`split_by_name`), so an image
    keeps its side as the folder grows and run N and run N+1 are scored on the same images.

    Parameters
    ----------
    store
        The dataset (an :class:`AnnotationStore` or its folder).
    val_fraction
        Share of images held out for validation, on average. With at least two trainable
        images at least one is held out and at least one trains.
    seed
        Salts the hash: another seed gives another split, as stable as the first.
    split_file
        A fixed split (see :func:`read_split_file`); overrides ``val_fraction``, ``seed`` and
        ``stratify``. Without a ``"train"`` list every other trainable image trains. Names
        that are not images of the dataset raise ``ValueError``; listed images that are not
        annotated yet are skipped, as they would be without a split file.
    stratify
        Every class with at least two images gets images on both sides (see
        :func:`split_by_name`).

    Returns
    -------
    train_stems, val_stems
        Disjoint lists, each in the folder's natural order.
    """
    store = AnnotationStore.of(store)
    if split_file is not None:
        return _fixed_split(store, store.trainable_stems(), split_file)
    labels = {image.stem: annotation.labels for image, annotation in store.trainable()}
    return split_by_name(labels, val_fraction, seed, stratify=stratify)


def split_by_name(
    labels: Mapping[str, Collection[str]],
    val_fraction: float = 0.2,
    seed: int = 0,
    *,
    stratify: bool = False,
) -> tuple[list[str], list[str]]:
    """The stable split of images given as ``{stem: class names of its boxes}``.

    An image validates when a hash of its stem (salted by ``seed``), read as a number in
    [0, 1), is below ``val_fraction``: no image's side depends on the others, so adding
    images never moves an earlier one, and about ``val_fraction`` of a large folder (and of
    each of its classes) validates.

    Small folders need two corrections, each the smallest move (an image whose hash is
    lowest goes to validation, highest to training), and they are what stability costs:

    - with at least two images and ``val_fraction > 0``, at least one validates and at
      least one trains;
    - with ``stratify``, a class whose only images all validate gets one back to training
      (a class never trained on cannot be learnt), then every class with at least two images
      and none in validation gets one there, unless that would take the last training image
      of another class.

    An image moved by a correction may go back to its hash's side when later images make
    the correction unneeded; every other image stays where its hash put it.

    Returns
    -------
    train_stems, val_stems
        Disjoint lists, in the order of ``labels``.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise TrainingInputError(f"val_fraction must be in [0, 1), got {val_fraction}")
    stems = list(labels)
    if len(stems) < 2 or val_fraction == 0.0:
        return stems, []
    key = {stem: _name_hash(stem, seed) for stem in stems}
    val = {stem for stem in stems if key[stem] < val_fraction}
    if stratify:
        _stratify(val, labels, key)
    if not val:
        val.add(min(stems, key=key.__getitem__))
    elif len(val) == len(stems):
        val.discard(max(stems, key=key.__getitem__))
    return [s for s in stems if s not in val], [s for s in stems if s in val]


def _name_hash(stem: str, seed: int) -> float:
    """``stem`` salted by ``seed``, hashed to a number in [0, 1) (the same on every machine)."""
    digest = hashlib.sha256(f"{seed}/{stem}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _stratify(
    val: set[str], labels: Mapping[str, Collection[str]], key: Mapping[str, float]
) -> None:
    """Move the fewest images so that every class trains and, from two images on, validates."""
    images_of: dict[str, list[str]] = {}
    for stem, names in labels.items():
        for name in set(names):
            images_of.setdefault(name, []).append(stem)
    rarest_first = sorted(images_of, key=lambda name: (len(images_of[name]), name))
    for name in rarest_first:
        if all(stem in val for stem in images_of[name]):
            val.discard(max(images_of[name], key=key.__getitem__))

    def others_still_train(stem: str) -> bool:
        return all(
            any(other != stem and other not in val for other in images_of[name])
            for name in set(labels[stem])
        )

    for name in rarest_first:
        images = images_of[name]
        if len(images) < 2 or any(stem in val for stem in images):
            continue
        for stem in sorted(images, key=key.__getitem__):
            if others_still_train(stem):
                val.add(stem)
                break


def _fixed_split(
    store: AnnotationStore, stems: list[str], split_file: str | Path
) -> tuple[list[str], list[str]]:
    train_names, val_names = read_split_file(split_file)
    known = {image.stem for image in store.images}
    named = set(val_names) | set(train_names or [])
    unknown = sorted(named - known)
    if unknown:
        raise TrainingInputError(
            f"{split_file}: {len(unknown)} name(s) are not images of {store.root}: "
            f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}"
        )
    both = sorted(set(val_names) & set(train_names or []))
    if both:
        raise TrainingInputError(
            f"{split_file}: image(s) listed as both train and val: {', '.join(both[:5])}"
        )
    val_set = set(val_names)
    val = [s for s in stems if s in val_set]
    if train_names is None:
        train = [s for s in stems if s not in val_set]
    else:
        train_set = set(train_names)
        train = [s for s in stems if s in train_set]
    return train, val


def collate(
    batch: Sequence[tuple[torch.Tensor, Target, str]],
) -> tuple[list[torch.Tensor], list[Target], list[str]]:
    """Keep images as a list: torchvision detectors take images of different sizes."""
    images, targets, stems = zip(*batch, strict=True) if batch else ((), (), ())
    return list(images), list(targets), list(stems)


class DetectionDataset(Dataset):
    """Images and boxes of an Annotator folder, as torchvision's Faster R-CNN expects them.

    Parameters
    ----------
    root
        The dataset folder (or its :class:`AnnotationStore`).
    stems
        The images to serve (e.g. one side of :func:`split_train_val`); ``None`` takes every
        trainable image.
    classes
        Class names in the model's order; a box's label is ``classes.index(name) + 1``.
    augment
        ``True`` for the default :class:`~napari_detlab.core.training.augment.Augmenter`, or an
        ``Augmenter`` (or any callable ``(image, boxes, labels) -> same``) to use.
    crops
        A :class:`~napari_detlab.core.training.crops.CropSampler`: the images it applies to
        are served as random crops, each standing for ``crops.repeats`` items per epoch
        (before augmentation).

    Items are ``(image, target, stem)``: ``image`` a ``float32 3 x H x W`` tensor in
    ``[0, 1]`` (:func:`~napari_detlab.core.images.to_float_rgb`), ``target`` a dict with
    ``"boxes"`` ``float32 (N, 4)`` xyxy pixels and ``"labels"`` ``int64 (N,)``. Negatives have
    ``(0, 4)`` boxes.

    Raises
    ------
    ValueError
        A stem without an image or an annotation file, or a box whose class is not in
        ``classes`` (the message names the file and the class).
    """

    def __init__(
        self,
        root: AnnotationStore | str | Path,
        stems: Sequence[str] | None,
        classes: Sequence[str],
        *,
        augment: bool | Any = False,
        crops: CropSampler | None = None,
    ) -> None:
        self.store = AnnotationStore.of(root)
        self.root = self.store.root
        self.classes = [str(c) for c in classes]
        if len(set(self.classes)) != len(self.classes):
            raise TrainingInputError(f"class names must be unique, got {self.classes}")
        self.stems = list(self.store.trainable_stems() if stems is None else stems)
        self.augment = Augmenter() if augment is True else (augment or None)
        paths = {image.stem: image for image in self.store.images}
        clashes = sorted(set(self.store.duplicate_stems()) & set(self.stems))
        if clashes:
            names = ", ".join(p.name for p in self.store.images if p.stem == clashes[0])
            raise TrainingInputError(
                f"{self.root}: images {names} share one annotation file; rename one"
            )
        label_of = {name: index + 1 for index, name in enumerate(self.classes)}
        self.image_paths: list[Path] = []
        self._targets: list[tuple[np.ndarray, np.ndarray]] = []
        self._annotations: list[ImageAnnotation] = []
        for stem in self.stems:
            if stem not in paths:
                raise TrainingInputError(f"{self.root}: no image named {stem!r}")
            annotation = self.store.load(stem)
            if annotation is None:
                raise TrainingInputError(
                    f"{self.store.path_for(stem)}: {stem!r} has no annotation file"
                )
            unknown = [label for label in annotation.labels if label not in label_of]
            if unknown:
                raise TrainingInputError(
                    f"{self.store.path_for(stem)}: class {unknown[0]!r} is not one of the model's "
                    f"classes {self.classes}"
                )
            labels = np.asarray([label_of[label] for label in annotation.labels], dtype=np.int64)
            self.image_paths.append(paths[stem])
            self._annotations.append(annotation)
            self._targets.append((annotation.boxes.astype(np.float32).reshape(-1, 4), labels))
        self.crops = crops
        # Item -> image: a large image trained on crops stands for several items.
        self._items = list(range(len(self.stems)))
        if crops is not None:
            pairs = zip(self.image_paths, self._annotations, strict=True)
            self._items = crops.items([a.image_size or image_size(p) for p, a in pairs])

    def __len__(self) -> int:
        return len(self._items)

    def box_count(self) -> int:
        """Boxes over all served images (0 means every image is a negative)."""
        return sum(len(labels) for _, labels in self._targets)

    def ground_truth(self) -> dict[str, ImageAnnotation]:
        """``{stem: ImageAnnotation}`` of the served images, as read when the dataset was built:
        the ground truth that :func:`~napari_detlab.core.evaluation.metrics.coco_metrics`
        scores against."""
        return dict(zip(self.stems, self._annotations, strict=True))

    def load_image(self, index: int) -> torch.Tensor:
        """The ``float32 3 x H x W`` model input of one image, without augmentation."""
        pixels = to_float_rgb(read_image(self.image_paths[index]))
        return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()

    def __getitem__(self, item: int) -> tuple[torch.Tensor, Target, str]:
        index = self._items[item]
        image = self.load_image(index)
        boxes_np, labels_np = self._targets[index]
        height, width = image.shape[-2:]
        boxes, labels = clean_boxes(
            torch.from_numpy(boxes_np.copy()), torch.from_numpy(labels_np.copy()), width, height
        )
        if self.crops is not None:
            image, boxes, labels = self.crops(image, boxes, labels)
        if self.augment is not None:
            image, boxes, labels = self.augment(image, boxes, labels)
        target = {"boxes": boxes.float().reshape(-1, 4), "labels": labels.long().reshape(-1)}
        return image, target, self.stems[index]
