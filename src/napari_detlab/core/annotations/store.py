"""The annotation store: one ``.pt`` dict per image, beside the images, written atomically.

Layout of a dataset folder (the names are this module's constants; nothing else spells them)::

    my_images/
        img001.jpg ...
        annotations/         ANNOTATIONS_DIRNAME
            img001.pt        {"boxes": float32 [N, 4] xyxy, "labels": [str] * N,
                              "reviewed": bool, "image_size": [height, width], "version": 2}
            classes.json     {"classes": [{"name": ..., "color": "#rrggbb"}, ...]}
        predictions/         PREDICTIONS_DIRNAME: <stem>.pt per image, written by the model
        runs/                RUNS_DIRNAME: <date>-<time>[-n]/ per training run started here

An image without a file has never been looked at; an image whose file has no boxes and
``reviewed=True`` is a confirmed negative example. Files load with
``torch.load(weights_only=True)`` and are validated, so a bad file is reported with its name
and what is wrong instead of crashing training hours later. A box must lie in its image:
when the file records no ``image_size`` (another tool wrote it), the boxes are checked
against the image's real size, read from its header, by the same rule.

Boxes and ``image_size`` are in pixels of the image as shown, its EXIF orientation applied
(:func:`~napari_detlab.core.images.read_image`): version 2. Files of version 1 were written
before the orientation was honoured, in the stored pixels; for a photo whose orientation is
not 1 they are validated against their own size and moved onto the shown image on load, and
written as version 2 at the next save. Nothing else changes for them.

One image, one stem, one file: images whose names differ only in their extension
(``a.jpg`` and ``a.png``) would share ``annotations/a.pt``, so the store reads, writes and
deletes that file for neither of them (:class:`AmbiguousImageError`, naming both images),
and every verb and dock meets them as it meets any annotation file it cannot use.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from napari_detlab.core.atomic import (
    atomic_torch_save,
    atomic_write_json,
    remove_stale_temporaries,
    safe_torch_load,
)
from napari_detlab.core.boxes import BoxRecord, as_boxes, clip_xyxy, nonempty_mask
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.images import (
    IMAGE_SUFFIXES,
    ImageReadError,
    image_size,
    list_images,
    orient_stored_boxes,
    read_header,
)

__all__ = [
    "ANNOTATIONS_DIRNAME",
    "DEFAULT_CLASS",
    "DEFAULT_COLORS",
    "PREDICTIONS_DIRNAME",
    "RUNS_DIRNAME",
    "AmbiguousImageError",
    "AnnotationError",
    "AnnotationStore",
    "ClassInUseError",
    "ClassSpec",
    "ImageAnnotation",
    "next_color",
    "predictions_dir_of",
    "sanitize_boxes",
    "stem_of",
    "validate_annotation",
    "written_on_stored_pixels",
]

ANNOTATIONS_DIRNAME = "annotations"
PREDICTIONS_DIRNAME = "predictions"
RUNS_DIRNAME = "runs"
CLASSES_FILENAME = "classes.json"
# The class a new dataset starts with, so that a box can be drawn before any class is named.
DEFAULT_CLASS = "object"
FORMAT_VERSION = 2
# Files of this version hold boxes in the image's stored pixels, its orientation not applied.
STORED_PIXELS_VERSION = 1
# How far (pixels) a box may overshoot the image and still be clipped rather than refused.
CLIP_TOLERANCE = 1.0
DEFAULT_COLORS = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4",
    "#46f0f0", "#f032e6", "#bcf60c", "#fabebe", "#008080",
)  # fmt: skip


def next_color(classes: Sequence[ClassSpec]) -> str:
    """The default colour of a class added after ``classes``: the palette, in turn."""
    return DEFAULT_COLORS[len(classes) % len(DEFAULT_COLORS)]


def predictions_dir_of(folder: str | Path) -> Path:
    """Where the model's predictions of the images in ``folder`` are written."""
    return Path(folder) / PREDICTIONS_DIRNAME


def stem_of(image: str | Path) -> str:
    """The stem that names an image's annotation file, from a path, file name or stem."""
    name = Path(image).name
    suffix = Path(name).suffix
    return name[: -len(suffix)] if suffix.lower() in IMAGE_SUFFIXES else name


_STORE_KEYS = frozenset({"boxes", "labels", "reviewed", "image_size", "version"})


class AnnotationError(DetlabError, ValueError):
    """An annotation file or dict that breaks the store's rules; the message names both."""


class ClassInUseError(AnnotationError):
    """Removing a class that boxes still use, without saying what to do with them."""


class AmbiguousImageError(AnnotationError):
    """Two or more images with one stem (``a.jpg``, ``a.png``): their one annotation file
    would belong to both, so the store neither reads nor writes it for either.

    Attributes
    ----------
    annotation_file
        The file they would share (``annotations/a.pt``).
    images
        The images, in the dataset's order.
    reason
        The message without the file's path: what a report line that names its own file says.
    """

    def __init__(self, annotation_file: Path, images: Sequence[Path]) -> None:
        self.annotation_file = Path(annotation_file)
        self.images = list(images)
        names = [image.name for image in self.images]
        listed = ", ".join(names[:-1]) + f" and {names[-1]}"
        self.reason = (
            f"images {listed} differ only in their extension and would share "
            f"{self.annotation_file.name}; rename one of them"
        )
        super().__init__(f"{self.annotation_file}: {self.reason}")


@dataclass
class ImageAnnotation(BoxRecord):
    """The boxes a person drew on one image, in the core's xyxy pixel coordinates.

    Attributes
    ----------
    boxes, labels
        See :class:`~napari_detlab.core.boxes.BoxRecord`.
    reviewed
        The user has looked at the image; with no boxes it is a negative example.
    image_size
        ``(height, width)`` of the image when known; used to clip and validate boxes.
    extra
        Any other keys of the file (VOC's per-box ``difficult`` flags, keys written by newer
        versions), kept so that a load and save round trip loses nothing. Values must be
        what ``torch.load(weights_only=True)`` reads: tensors, numbers, strings, lists, dicts.
    """

    reviewed: bool = False
    image_size: tuple[int, int] | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """The on-disk dict: tensors, strings, numbers and lists, which ``weights_only`` reads."""
        data: dict[str, object] = {
            **self.extra,
            "boxes": torch.from_numpy(np.ascontiguousarray(self.boxes, dtype=np.float32)),
            "labels": list(self.labels),
            "reviewed": bool(self.reviewed),
            "version": FORMAT_VERSION,
        }
        if self.image_size is not None:
            data["image_size"] = [int(self.image_size[0]), int(self.image_size[1])]
        return data

    @property
    def trainable(self) -> bool:
        """Whether the image takes part in training: it has boxes, or was reviewed as empty.

        An image that has a file but neither (its boxes were deleted and the flag cleared)
        counts as never looked at.
        """
        return self.reviewed or len(self) > 0

    def same_as(self, other: ImageAnnotation | None, *, ordered: bool = True) -> bool:
        """Equal boxes, labels and flag: lets a write that changes nothing be skipped.

        With ``ordered=False`` the same labelled boxes in another order count as equal: the
        Annotator's layers give boxes grouped by class while a file may interleave them (the
        sample dataset, other tools), and merely showing an image must not rewrite its file.
        """
        if (
            other is None
            or self.reviewed != other.reviewed
            or self.boxes.shape != other.boxes.shape
            or len(self) != len(other)
        ):
            return False
        if ordered:
            return self.labels == other.labels and bool(np.array_equal(self.boxes, other.boxes))
        return sorted(self._labelled_rows()) == sorted(other._labelled_rows())

    def _labelled_rows(self) -> list[tuple[str, tuple[float, ...]]]:
        return list(zip(self.labels, map(tuple, self.boxes.tolist()), strict=True))


def _as_label_list(labels: object, source: str) -> list[str]:
    """Labels as a list of non-empty strings (numpy string arrays, tuples and lists accepted)."""
    if isinstance(labels, str):
        raise AnnotationError(f"{source}: 'labels' must be a list of class names, got one string")
    if hasattr(labels, "tolist"):  # numpy arrays from the tutorial's files
        labels = labels.tolist()
    if not isinstance(labels, (list, tuple)):
        raise AnnotationError(
            f"{source}: 'labels' must be a list of class-name strings, got {type(labels).__name__}"
        )
    for index, label in enumerate(labels):
        if not isinstance(label, str):
            raise AnnotationError(
                f"{source}: label {index} is {type(label).__name__} {label!r}, not a class name"
            )
        if not label.strip():
            raise AnnotationError(f"{source}: label {index} is an empty class name")
    return list(labels)


def _as_image_size(size: object, source: str) -> tuple[int, int]:
    try:
        values = size.tolist() if hasattr(size, "tolist") else list(size)  # type: ignore[call-overload]
        height, width = (int(v) for v in values)
    except (TypeError, ValueError) as error:
        raise AnnotationError(
            f"{source}: 'image_size' must be [height, width], got {size!r}"
        ) from error
    if height <= 0 or width <= 0:
        raise AnnotationError(f"{source}: 'image_size' must be positive, got {[height, width]}")
    return height, width


def _check_extents(boxes: np.ndarray, source: str) -> None:
    for axis, name in ((0, "x1 >= x2"), (1, "y1 >= y2")):
        wrong = np.flatnonzero(boxes[:, axis] >= boxes[:, axis + 2])
        if wrong.size:
            raise AnnotationError(
                f"{source}: box {int(wrong[0])} has {name}: {boxes[wrong[0]].tolist()}"
            )


def validate_annotation(
    data: object,
    source: str = "annotation",
    real_size: tuple[int, int] | None = None,
    *,
    image: str | Path | None = None,
) -> ImageAnnotation:
    """Check a loaded dict against the store's rules and return it as an :class:`ImageAnnotation`.

    Boxes that stick out of the image by at most :data:`CLIP_TOLERANCE` pixels are clipped
    (drawing tools and float rounding overshoot); anything else wrong raises
    :class:`AnnotationError` naming ``source``, the box and the problem. A dict without a
    ``"reviewed"`` key (the tutorial's targets) counts as reviewed: someone wrote it.

    Parameters
    ----------
    data
        The loaded dict.
    source
        What the messages name (the file's path).
    real_size
        ``(height, width)`` of the image itself, read from its header, for a dict that
        records no ``"image_size"``: its boxes are held to that size by the same rule (a
        file another tool wrote with a box at x = 500 in a 160 px wide image is refused, not
        exported), and the annotation's ``image_size`` is that size.
    image
        The image file the dict belongs to. A dict of :data:`STORED_PIXELS_VERSION` is
        checked against the stored size it was written for and then moved onto ``image`` as
        shown (:func:`~napari_detlab.core.images.orient_stored_boxes`). A dict without a
        version is another tool's (the tutorial's targets) and, like every format's boxes,
        already in the shown image's pixels.
    """
    if not isinstance(data, dict):
        raise AnnotationError(
            f"{source}: expected a dict with 'boxes' and 'labels', got {type(data).__name__}"
        )
    for key in ("boxes", "labels"):
        if key not in data:
            raise AnnotationError(f"{source}: missing key {key!r}")
    try:
        boxes = as_boxes(data["boxes"], np.float64)
    except (TypeError, ValueError) as error:
        raise AnnotationError(f"{source}: 'boxes' {error}") from error
    labels = _as_label_list(data["labels"], source)
    if len(labels) != len(boxes):
        raise AnnotationError(f"{source}: {len(boxes)} boxes but {len(labels)} labels")
    if not np.isfinite(boxes).all():
        bad = int(np.flatnonzero(~np.isfinite(boxes).all(axis=1))[0])
        raise AnnotationError(
            f"{source}: box {bad} has a non-finite coordinate {boxes[bad].tolist()}"
        )
    _check_extents(boxes, source)
    image_size, measured = real_size, ""
    if data.get("image_size") is not None:
        image_size = _as_image_size(data["image_size"], source)
    elif real_size is not None:
        measured = " (size read from the image: the file records none)"
    if image_size is not None:
        height, width = image_size
        outside = (
            (boxes[:, 0] < -CLIP_TOLERANCE) | (boxes[:, 1] < -CLIP_TOLERANCE)
            | (boxes[:, 2] > width + CLIP_TOLERANCE) | (boxes[:, 3] > height + CLIP_TOLERANCE)
        )  # fmt: skip
        if outside.any():
            bad = int(np.flatnonzero(outside)[0])
            raise AnnotationError(
                f"{source}: box {bad} {boxes[bad].tolist()} lies outside the {width}x{height} "
                f"image{measured}"
            )
        boxes = clip_xyxy(boxes, width, height)
        # A box lying wholly in the overshoot margin clips to nothing: still an error.
        _check_extents(boxes, source)
    reviewed = data.get("reviewed", True)
    if not isinstance(reviewed, (bool, np.bool_, int)):
        raise AnnotationError(f"{source}: 'reviewed' must be true or false, got {reviewed!r}")
    annotation = ImageAnnotation(
        boxes=boxes.astype(np.float32),
        labels=labels,
        reviewed=bool(reviewed),
        image_size=image_size,
        extra={key: value for key, value in data.items() if key not in _STORE_KEYS},
    )
    if written_on_stored_pixels(data):
        orient_stored_boxes(annotation, image)
    return annotation


def written_on_stored_pixels(data: object) -> bool:
    """Whether a loaded annotation dict predates orientation (version 1): its boxes are on
    the image's stored pixels. Prediction files' version 1 means the same."""
    version = data.get("version") if isinstance(data, dict) else None
    return type(version) is int and version == STORED_PIXELS_VERSION


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
        # The images of each stem, and the image list it was made from.
        self._by_stem: tuple[list[Path], dict[str, list[Path]]] | None = None

    @classmethod
    def of(cls, store_or_root: AnnotationStore | str | Path) -> AnnotationStore:
        """``store_or_root`` itself when it is a store, else the store of that folder."""
        return store_or_root if isinstance(store_or_root, cls) else cls(store_or_root)

    # -- layout -------------------------------------------------------------------------
    @property
    def predictions_dir(self) -> Path:
        """Where the model's predictions of this dataset's images go."""
        return predictions_dir_of(self.root)

    @property
    def runs_dir(self) -> Path:
        """Where training runs started on this dataset keep their folders."""
        return self.root / RUNS_DIRNAME

    def new_run_dir(self, now: datetime | None = None) -> Path:
        """An unused run folder named by the time (``runs/20261201-101500``, then ``-2``...).

        Only the name is chosen; the folder is created by the run that uses it.
        """
        stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
        run_dir, suffix = self.runs_dir / stamp, 1
        while run_dir.exists():
            suffix += 1
            run_dir = self.runs_dir / f"{stamp}-{suffix}"
        return run_dir

    def tidy(self) -> list[Path]:
        """Remove what writes killed mid-way (``kill -9``, a power cut) left in the annotations
        folder: hidden temp files over an hour old. The annotations themselves are whole (each
        write replaces its file atomically); returns what was removed."""
        return remove_stale_temporaries(self.annotations_dir)

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
        return sorted(stem for stem, images in self._images_by_stem().items() if len(images) > 1)

    def images_named(self, image: str | Path) -> list[Path]:
        """The dataset's images whose annotation file is ``image``'s, in the dataset's order.

        One for an image of the dataset, none for a name it does not hold, several when
        images differ only in their extension (then :meth:`check_one_image` refuses them).
        """
        return list(self._images_by_stem().get(stem_of(image), []))

    def check_one_image(self, image: str | Path) -> None:
        """Refuse an annotation file that would belong to several images.

        Raises
        ------
        AmbiguousImageError
            ``image``'s stem names two or more of the dataset's images (``a.jpg`` and
            ``a.png``); the message names them and the file.
        """
        images = self.images_named(image)
        if len(images) > 1:
            raise AmbiguousImageError(self.path_for(image), images)

    def _images_by_stem(self) -> dict[str, list[Path]]:
        # The folder as listed for :attr:`images`; a store that has not listed it yet (a
        # script saving while it writes the images) looks without caching a list that the
        # next image would make stale.
        images = self._images if self._images is not None else list_images(self.root)
        if self._by_stem is None or self._by_stem[0] is not images:
            by_stem: dict[str, list[Path]] = {}
            for path in images:
                by_stem.setdefault(stem_of(path), []).append(path)
            self._by_stem = (images, by_stem)
        return self._by_stem[1]

    def image_of(self, image: str | Path) -> Path | None:
        """The dataset's image file for an image path, file name or stem; ``None`` if absent.

        An absolute path to an existing file is that file; otherwise the first image of the
        stem in natural order, the one whose annotation file the stem names.
        """
        path = Path(image)
        if path.is_absolute() and path.is_file():
            return path
        images = self.images_named(image)
        return images[0] if images else None

    def _real_size(self, image: str | Path, *, stored: bool = False) -> tuple[int, int] | None:
        """``(height, width)`` from the header of ``image``'s file, as shown (or as ``stored``,
        for a file of version 1); ``None`` when the dataset holds no such image or its header
        cannot be read (the Annotator reports that)."""
        images = self.images_named(image)
        if len(images) != 1:
            return None
        try:
            return read_header(images[0]).stored_size if stored else image_size(images[0])
        except ImageReadError:
            return None

    # -- annotations --------------------------------------------------------------------
    def path_for(self, image: str | Path) -> Path:
        """Where the annotation of ``image`` lives.

        ``image`` is an image path, a file name (``"img001.jpg"``) or a stem (``"img001"``);
        a stem may contain dots (``"scan.v2"``), only a known image suffix is dropped.
        """
        return self.annotations_dir / f"{stem_of(image)}.pt"

    def has(self, image: str | Path) -> bool:
        """Whether the image has an annotation file (it was looked at)."""
        return self.path_for(image).is_file()

    def load(self, image: str | Path) -> ImageAnnotation | None:
        """The image's annotation, or ``None`` if it was never annotated.

        A file that records no ``image_size`` is held to the image's real size, read from
        its header, and the annotation returned carries that size.

        Raises
        ------
        AnnotationError
            The file cannot be read (not a ``.pt`` file, truncated, or refused because it
            needs code to run) or breaks the rules; the message names the file and why.
        AmbiguousImageError
            The file exists and would belong to two images (``a.jpg`` and ``a.png``).

        A file of version 1 comes back in the shown image's pixels (see the module's notes);
        the file itself is only rewritten by the next :meth:`save`.
        """
        path = self.path_for(image)
        if not path.is_file():
            return None
        self.check_one_image(image)
        try:
            data = safe_torch_load(path)
        except DetlabError as error:  # unsafe or unreadable: the message names the file
            raise AnnotationError(str(error)) from error
        # Only a version-1 file needs its image: the folder is not listed for the others.
        legacy = written_on_stored_pixels(data)
        real_size = None
        if isinstance(data, dict) and data.get("image_size") is None:
            real_size = self._real_size(image, stored=legacy)
        return validate_annotation(
            data, source=str(path), real_size=real_size,
            image=self.image_of(image) if legacy else None,
        )  # fmt: skip

    def save(self, image: str | Path, annotation: ImageAnnotation) -> Path:
        """Validate, clip sub-pixel overshoot and write atomically; returns the file written.

        Raises :class:`AnnotationError` (and writes nothing) when the annotation breaks the
        rules, so a bad box never replaces a good file: an annotation without an
        ``image_size`` is checked against the image's real size, and one for an image whose
        stem another image shares is refused (:class:`AmbiguousImageError`).
        """
        path = self.path_for(image)
        self.check_one_image(image)
        real_size = None
        if annotation.image_size is None:
            real_size = self._real_size(image)
        checked = validate_annotation(annotation.to_dict(), source=str(path), real_size=real_size)
        if real_size is not None:
            checked.image_size = None  # checked against the header; written as it was given
        atomic_torch_save(path, checked.to_dict())
        return path

    def delete(self, image: str | Path) -> None:
        """Forget an image's annotation: it counts as never looked at again.

        Raises
        ------
        AmbiguousImageError
            The file would belong to two images: it is left alone.
        """
        path = self.path_for(image)
        if path.exists():
            self.check_one_image(image)
        path.unlink(missing_ok=True)

    def quarantine(self, image: str | Path) -> Path:
        """Set the image's unloadable file aside as ``<stem>.pt.unreadable``; returns where.

        The next edit would otherwise replace a file the user may still want to repair (or
        that a newer version wrote). Set aside, it is kept and the store no longer sees it;
        a file set aside earlier is not overwritten either (``.unreadable.2``, ...).
        """
        bad = self.path_for(image)
        aside, number = bad.with_name(f"{bad.name}.unreadable"), 1
        while aside.exists():
            number += 1
            aside = bad.with_name(f"{bad.name}.unreadable.{number}")
        bad.replace(aside)
        return aside

    def annotated(
        self, on_error: Callable[[Path, AnnotationError], None] | None = None
    ) -> Iterator[tuple[Path, ImageAnnotation]]:
        """Each image that has an annotation file, with the annotation, in image order.

        A bad file raises :class:`AnnotationError` unless ``on_error`` is given: then it is
        called with the image and the error, and the image is skipped. A file two images
        would share is reported once, with the first of them, and both are skipped.
        """
        reported: set[str] = set()
        for image in self.images:
            try:
                annotation = self.load(image)
            except AnnotationError as error:
                if on_error is None:
                    raise
                if isinstance(error, AmbiguousImageError):
                    if stem_of(image) in reported:
                        continue
                    reported.add(stem_of(image))
                on_error(image, error)
                continue
            if annotation is not None:
                yield image, annotation

    def trainable(self) -> Iterator[tuple[Path, ImageAnnotation]]:
        """Each image that takes part in training, with its annotation (bad files raise)."""
        return ((image, ann) for image, ann in self.annotated() if ann.trainable)

    def trainable_stems(self) -> list[str]:
        """Stems of the images that train, in the folder's natural order."""
        return [image.stem for image, _ in self.trainable()]

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
                raise AnnotationError(
                    f"{self.classes_path}: unreadable class list ({error})"
                ) from error
        known = {c.name for c in classes}
        if self.annotations_dir.is_dir():
            # A broken file is reported when its image is opened; it must not hide the list.
            for _, annotation in self.annotated(on_error=lambda image, error: None):
                for label in annotation.labels:
                    if label not in known:
                        known.add(label)
                        classes.append(ClassSpec(label, next_color(classes)))
        return classes

    def class_names(self) -> list[str]:
        """The dataset's class names, in the class list's order.

        The order is the one the user sees in the Annotator, and it fixes a model's label ids
        (``classes[i]`` is label ``i + 1``; 0 is background).
        """
        return [spec.name for spec in self.load_classes()]

    def save_classes(self, classes: list[ClassSpec]) -> None:
        """Write the class list (order and colours) atomically to ``annotations/classes.json``."""
        names = [c.name for c in classes]
        repeated = [name for index, name in enumerate(names) if name in names[:index]]
        if repeated:
            raise AnnotationError(
                f"class names must be unique: a class named {repeated[0]!r} exists already"
            )
        if any(not name.strip() for name in names):
            raise AnnotationError("a class name cannot be empty")
        atomic_write_json(
            self.classes_path, {"classes": [{"name": c.name, "color": c.color} for c in classes]}
        )

    def class_counts(self) -> dict[str, int]:
        """How many boxes use each class, over the whole dataset."""
        counts: dict[str, int] = {}
        for _, annotation in self.annotated():
            for label in annotation.labels:
                counts[label] = counts.get(label, 0) + 1
        return counts

    def rename_class(self, old: str, new: str) -> int:
        """Rename a class in the class list and in every file; returns the boxes relabelled."""
        new = new.strip()
        if not new:
            raise AnnotationError("a class name cannot be empty")
        classes = self.load_classes()
        names = {c.name for c in classes}
        if old not in names:
            raise AnnotationError(f"there is no class named {old!r}")
        if new == old:
            return 0
        if new in names:
            raise AnnotationError(f"a class named {new!r} exists already")
        changed = 0
        for image, annotation in self.annotated():
            if old in annotation.labels:
                changed += annotation.labels.count(old)
                annotation.labels = [new if label == old else label for label in annotation.labels]
                self.save(image, annotation)
        self.save_classes([ClassSpec(new if c.name == old else c.name, c.color) for c in classes])
        return changed

    def remove_class(self, name: str, *, delete_boxes: bool = False) -> int:
        """Remove a class; refuses while boxes use it unless ``delete_boxes`` says to drop them."""
        classes = self.load_classes()
        if name not in {c.name for c in classes}:
            raise AnnotationError(f"there is no class named {name!r}")
        used = self.class_counts().get(name, 0)
        if used and not delete_boxes:
            raise ClassInUseError(
                f"class {name!r} is used by {used} boxes; delete them or rename the class"
            )
        if used:
            for image, annotation in self.annotated():
                keep = [label != name for label in annotation.labels]
                if not all(keep):
                    annotation.boxes = annotation.boxes[np.asarray(keep, bool)]
                    annotation.labels = [label for label in annotation.labels if label != name]
                    self.save(image, annotation)
        self.save_classes([c for c in classes if c.name != name])
        return used
