"""The annotation store: one ``.pt`` dict per image, beside the images, written atomically.

Layout of a dataset folder::

    my_images/
        img001.jpg ...
        annotations/
            img001.pt        {"boxes": float32 [N, 4] xyxy, "labels": [str] * N,
                              "reviewed": bool, "image_size": [height, width], "version": 1}
            classes.json     {"classes": [{"name": ..., "color": "#rrggbb"}, ...]}

An image without a file has never been looked at; an image whose file has no boxes and
``reviewed=True`` is a confirmed negative example. Files load with
``torch.load(weights_only=True)`` and are validated, so a bad file is reported with its name
and what is wrong instead of crashing training hours later.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from napari_detlab.core.atomic import atomic_torch_save, atomic_write_json, safe_torch_load
from napari_detlab.core.boxes import as_boxes, clip_xyxy, nonempty_mask
from napari_detlab.core.images import list_images

__all__ = [
    "ANNOTATIONS_DIRNAME",
    "AnnotationError",
    "AnnotationStore",
    "ClassInUseError",
    "ClassSpec",
    "ImageAnnotation",
    "sanitize_boxes",
    "validate_annotation",
]

ANNOTATIONS_DIRNAME = "annotations"
CLASSES_FILENAME = "classes.json"
FORMAT_VERSION = 1
DEFAULT_COLORS = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4",
    "#46f0f0", "#f032e6", "#bcf60c", "#fabebe", "#008080",
)  # fmt: skip


class AnnotationError(ValueError):
    """An annotation file or dict that breaks the store's rules; the message names both."""


class ClassInUseError(ValueError):
    """Removing a class that boxes still use, without saying what to do with them."""


@dataclass
class ImageAnnotation:
    """The boxes of one image, in the core's xyxy pixel coordinates.

    Attributes
    ----------
    boxes
        ``float32 (N, 4)`` xyxy in pixels of the original image.
    labels
        One class name per box.
    reviewed
        The user has looked at the image; with no boxes it is a negative example.
    image_size
        ``(height, width)`` of the image when known; used to clip and validate boxes.
    """

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    labels: list[str] = field(default_factory=list)
    reviewed: bool = False
    image_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        self.boxes = as_boxes(self.boxes, np.float32)
        self.labels = [str(label) for label in self.labels]
        if self.image_size is not None:
            self.image_size = (int(self.image_size[0]), int(self.image_size[1]))

    def __len__(self) -> int:
        return len(self.labels)

    def to_dict(self) -> dict[str, object]:
        """The on-disk dict: only tensors, strings, numbers and lists, so ``weights_only`` loads it."""
        data: dict[str, object] = {
            "boxes": torch.from_numpy(np.ascontiguousarray(self.boxes, dtype=np.float32)),
            "labels": list(self.labels),
            "reviewed": bool(self.reviewed),
            "version": FORMAT_VERSION,
        }
        if self.image_size is not None:
            data["image_size"] = [int(self.image_size[0]), int(self.image_size[1])]
        return data

    def same_as(self, other: ImageAnnotation | None) -> bool:
        """Equal boxes, labels and flag: lets the autosave skip writes that change nothing."""
        return (
            other is not None
            and self.reviewed == other.reviewed
            and self.labels == other.labels
            and self.boxes.shape == other.boxes.shape
            and bool(np.array_equal(self.boxes, other.boxes))
        )


def validate_annotation(data: object, source: str = "annotation") -> ImageAnnotation:
    """Check a loaded dict against the store's rules and return it as an :class:`ImageAnnotation`.

    Boxes that stick out of the image by less than a pixel are clipped (drawing tools round);
    anything else wrong raises :class:`AnnotationError` naming ``source`` and the problem.
    """
    if not isinstance(data, dict):
        raise AnnotationError(f"{source}: expected a dict with 'boxes' and 'labels', got {type(data).__name__}")
    if "boxes" not in data or "labels" not in data:
        raise AnnotationError(f"{source}: missing key {'boxes' if 'boxes' not in data else 'labels'!r}")
    try:
        boxes = as_boxes(data["boxes"], np.float64)
    except ValueError as error:
        raise AnnotationError(f"{source}: 'boxes' {error}") from error
    labels = data["labels"]
    if isinstance(labels, np.ndarray) or hasattr(labels, "tolist"):
        labels = labels.tolist()
    if not isinstance(labels, (list, tuple)) or not all(isinstance(v, str) for v in labels):
        raise AnnotationError(f"{source}: 'labels' must be a list of class-name strings")
    if len(labels) != len(boxes):
        raise AnnotationError(f"{source}: {len(boxes)} boxes but {len(labels)} labels")
    if not np.isfinite(boxes).all():
        bad = int(np.flatnonzero(~np.isfinite(boxes).all(axis=1))[0])
        raise AnnotationError(f"{source}: box {bad} has a non-finite coordinate {boxes[bad].tolist()}")
    for axis, name in ((0, "x1 >= x2"), (1, "y1 >= y2")):
        wrong = np.flatnonzero(boxes[:, axis] >= boxes[:, axis + 2])
        if wrong.size:
            raise AnnotationError(f"{source}: box {int(wrong[0])} has {name}: {boxes[wrong[0]].tolist()}")
    size = data.get("image_size")
    image_size = None
    if size is not None:
        height, width = (int(v) for v in (size.tolist() if hasattr(size, "tolist") else size))
        image_size = (height, width)
        tolerance = 1.0
        outside = (
            (boxes[:, 0] < -tolerance) | (boxes[:, 1] < -tolerance)
            | (boxes[:, 2] > width + tolerance) | (boxes[:, 3] > height + tolerance)
        )  # fmt: skip
        if outside.any():
            bad = int(np.flatnonzero(outside)[0])
            raise AnnotationError(
                f"{source}: box {bad} {boxes[bad].tolist()} lies outside the {width}x{height} image"
            )
        boxes = clip_xyxy(boxes, width, height)
    return ImageAnnotation(
        boxes=boxes.astype(np.float32),
        labels=list(labels),
        reviewed=bool(data.get("reviewed", len(labels) > 0)),
        image_size=image_size,
    )


def sanitize_boxes(
    boxes: object, image_size: tuple[int, int] | None, min_size: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Clip drawn boxes to the image and find the ones too small to keep.

    Returns the clipped boxes and a boolean mask of those at least ``min_size`` pixels on
    each side. A click in rectangle mode makes a zero-size box: the widget drops it rather
    than storing something training would crash on.
    """
    b = as_boxes(boxes, np.float64)
    if image_size is not None:
        b = clip_xyxy(b, image_size[1], image_size[0])
    return b, nonempty_mask(b, min_size)


@dataclass
class ClassSpec:
    """A class a box can have, with the colour its layer is drawn in."""

    name: str
    color: str


class AnnotationStore:
    """Reads and writes the annotations of one dataset folder.

    Parameters
    ----------
    root
        The folder holding the images; annotations live in ``root/annotations``.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: not a folder")
        self.annotations_dir = self.root / ANNOTATIONS_DIRNAME
        self._images: list[Path] | None = None

    # -- images -------------------------------------------------------------------------
    @property
    def images(self) -> list[Path]:
        """The dataset's image files, natural order (cached; :meth:`refresh` re-reads)."""
        if self._images is None:
            self._images = list_images(self.root)
        return self._images

    def refresh(self) -> None:
        """Forget the cached image list after files were added or removed."""
        self._images = None

    def duplicate_stems(self) -> list[str]:
        """Stems shared by two images (``a.jpg`` and ``a.png``): they would share one file."""
        seen: dict[str, int] = {}
        for path in self.images:
            seen[path.stem] = seen.get(path.stem, 0) + 1
        return sorted(stem for stem, count in seen.items() if count > 1)

    # -- annotations --------------------------------------------------------------------
    def path_for(self, image: str | Path) -> Path:
        """Where the annotation of ``image`` (a path or a stem) lives."""
        stem = Path(image).stem if isinstance(image, Path) or "/" in str(image) else str(image)
        return self.annotations_dir / f"{stem}.pt"

    def has(self, image: str | Path) -> bool:
        """Whether the image has an annotation file (it was looked at)."""
        return self.path_for(image).is_file()

    def load(self, image: str | Path) -> ImageAnnotation | None:
        """The image's annotation, or ``None`` if it was never annotated."""
        path = self.path_for(image)
        if not path.is_file():
            return None
        return validate_annotation(safe_torch_load(path), source=str(path))

    def save(self, image: str | Path, annotation: ImageAnnotation) -> Path:
        """Validate and write atomically; returns the file written."""
        path = self.path_for(image)
        validate_annotation(annotation.to_dict(), source=str(path))
        atomic_torch_save(path, annotation.to_dict())
        return path

    def delete(self, image: str | Path) -> None:
        """Forget an image's annotation: it counts as never looked at again."""
        self.path_for(image).unlink(missing_ok=True)

    def annotated(self) -> Iterator[tuple[Path, ImageAnnotation]]:
        """Each image that has an annotation file, with the annotation."""
        for image in self.images:
            annotation = self.load(image)
            if annotation is not None:
                yield image, annotation

    def next_unannotated(self, after: int = -1) -> int | None:
        """Index of the first image after ``after`` (wrapping around) with no annotation file."""
        count = len(self.images)
        for step in range(1, count + 1):
            index = (after + step) % count
            if not self.has(self.images[index]):
                return index
        return None

    # -- classes ------------------------------------------------------------------------
    @property
    def classes_path(self) -> Path:
        return self.annotations_dir / CLASSES_FILENAME

    def load_classes(self) -> list[ClassSpec]:
        """The class list saved with the dataset, plus any label found in files but not listed."""
        classes: list[ClassSpec] = []
        if self.classes_path.is_file():
            try:
                raw = json.loads(self.classes_path.read_text(encoding="utf-8"))
                classes = [ClassSpec(str(c["name"]), str(c["color"])) for c in raw["classes"]]
            except (ValueError, KeyError, TypeError) as error:
                raise AnnotationError(f"{self.classes_path}: unreadable class list ({error})") from error
        known = {c.name for c in classes}
        if self.annotations_dir.is_dir():
            for _, annotation in self.annotated():
                for label in annotation.labels:
                    if label not in known:
                        known.add(label)
                        classes.append(ClassSpec(label, DEFAULT_COLORS[len(classes) % len(DEFAULT_COLORS)]))
        return classes

    def save_classes(self, classes: list[ClassSpec]) -> None:
        names = [c.name for c in classes]
        if len(set(names)) != len(names):
            raise ValueError(f"class names must be unique, got {names}")
        atomic_write_json(self.classes_path, {"classes": [{"name": c.name, "color": c.color} for c in classes]})

    def class_counts(self) -> dict[str, int]:
        """How many boxes use each class, over the whole dataset."""
        counts: dict[str, int] = {}
        for _, annotation in self.annotated():
            for label in annotation.labels:
                counts[label] = counts.get(label, 0) + 1
        return counts

    def rename_class(self, old: str, new: str) -> int:
        """Rename a class in the class list and in every file; returns the boxes relabelled."""
        classes = self.load_classes()
        if new in {c.name for c in classes}:
            raise ValueError(f"a class named {new!r} exists already")
        changed = 0
        for image, annotation in self.annotated():
            if old in annotation.labels:
                annotation.labels = [new if label == old else label for label in annotation.labels]
                changed += sum(label == new for label in annotation.labels)
                self.save(image, annotation)
        self.save_classes([ClassSpec(new if c.name == old else c.name, c.color) for c in classes])
        return changed

    def remove_class(self, name: str, *, delete_boxes: bool = False) -> int:
        """Remove a class; refuses while boxes use it unless ``delete_boxes`` says to drop them."""
        used = self.class_counts().get(name, 0)
        if used and not delete_boxes:
            raise ClassInUseError(f"class {name!r} is used by {used} boxes; delete them or rename the class")
        if used:
            for image, annotation in self.annotated():
                keep = [label != name for label in annotation.labels]
                if not all(keep):
                    annotation.boxes = annotation.boxes[np.asarray(keep, bool)]
                    annotation.labels = [label for label in annotation.labels if label != name]
                    self.save(image, annotation)
        self.save_classes([c for c in self.load_classes() if c.name != name])
        return used
