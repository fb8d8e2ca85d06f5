"""Where the work on a dataset stands: its figures, kept current one file at a time.

:class:`DatasetStatistics` says how many images are annotated, reviewed negative, untouched or
unreadable, how many boxes each class has, how large the boxes are (width and height in pixels
of the image as shown, COCO's small / medium / large counts and a histogram of
``sqrt(area)``) and which images hold the most boxes. ``detlab stats`` prints it and the
Dataset statistics dock draws it.

The dock follows a person annotating: the Annotator writes a file every few seconds, and
reading a thousand files again on each write would cost seconds. :class:`StatisticsTracker`
therefore keeps each image's contribution (:class:`ImageFigures`) and re-reads only the file
that was written (:meth:`StatisticsTracker.update`); :meth:`StatisticsTracker.changes` finds
the files rewritten behind its back (an import, a class renamed) by their stamps, reading only
those. The figures are summed from the contributions in memory, never from the folder.

Only the store's public methods are used (``images``, ``derived``, ``derived_each``,
``path_for``, ``listed_classes``). Each image's contribution is derived once per version of
its file and kept beside the store's index (:meth:`AnnotationStore.derived`), so a new
tracker on a folder already read (``detlab stats`` again, the dock reopened) costs a lookup
per file, and a file rewritten by any program is read again by its new stamp.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.file_cache import Stamp, file_stamp
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.boxes import SIZE_BUCKETS, as_boxes
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.wording import counted

__all__ = [
    "ANNOTATED",
    "IMAGE_STATES",
    "MODEL_ACCEPTED",
    "NEGATIVE",
    "TOP_IMAGES",
    "UNREADABLE",
    "UNTOUCHED",
    "ClassCount",
    "DatasetStatistics",
    "ImageCount",
    "ImageFigures",
    "StatisticsChanges",
    "StatisticsTracker",
    "UnreadableFile",
    "dataset_statistics",
    "read_image_figures",
    "summarise",
    "unreviewed_among",
]

# What an image is, as far as the work on it goes.
ANNOTATED = "annotated"  # it has boxes
NEGATIVE = "negative"  # reviewed, no boxes: a confirmed negative example
UNTOUCHED = "untouched"  # no file (or a file with neither boxes nor the reviewed flag)
UNREADABLE = "unreadable"  # a file the store refuses (the reason is kept)
# boxes accepted from the model in a batch, no person has reviewed them yet
MODEL_ACCEPTED = "model_accepted"
IMAGE_STATES = (ANNOTATED, MODEL_ACCEPTED, NEGATIVE, UNTOUCHED, UNREADABLE)

TOP_IMAGES = 10  # images listed by their box count: more is a list nobody reads
HISTOGRAM_BINS = 20


@dataclass(frozen=True)
class ImageFigures:
    """One image's part of the dataset's figures.

    Attributes
    ----------
    image
        The image file.
    state
        One of :data:`IMAGE_STATES`.
    labels
        The class of each box.
    sizes
        ``(N, 2)`` width and height of each box, pixels of the image as shown.
    error
        Why the file is unreadable (``state == UNREADABLE``), naming the file.
    boxes, class_boxes
        How many boxes, and how many of each class (in the order first met): counted once
        here, so that summing a dataset's images costs a few steps per image, not per box.
    """

    image: Path
    state: str = UNTOUCHED
    labels: tuple[str, ...] = ()
    sizes: np.ndarray = field(default_factory=lambda: _NO_SIZES)
    error: str = ""
    boxes: int = field(init=False)
    class_boxes: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:  # frozen: the derived fields are set once, here
        object.__setattr__(self, "boxes", len(self.labels))
        # Half of a large folder is untouched: those images pay no Counter.
        object.__setattr__(self, "class_boxes", dict(Counter(self.labels)) if self.labels else {})


# The sizes of an image without boxes, shared (read-only) by every such image.
_NO_SIZES = np.zeros((0, 2))
_NO_SIZES.flags.writeable = False


def read_image_figures(store: AnnotationStore, image: str | Path) -> ImageFigures:
    """``image``'s figures from its annotation file; a file the store refuses is
    :data:`UNREADABLE` with the store's message (it names the file and what is wrong).

    They are derived once per version of the file and kept beside the store's index
    (:meth:`AnnotationStore.derived`): asked again, they cost a lookup."""
    image = Path(image)
    try:
        figures = store.derived(image, _FIGURES_KEY, _figures_of)
    except (OSError, DetlabError) as error:
        return _unreadable(image, error)
    return ImageFigures(image) if figures is None else figures


# What the store keeps this module's per-image figures under.
_FIGURES_KEY = "statistics.image_figures"


def _unreadable(image: Path, error: Exception) -> ImageFigures:
    return ImageFigures(image, UNREADABLE, error=str(error))


def _figures_of(image: Path, annotation: ImageAnnotation) -> ImageFigures:
    if not annotation.trainable:
        return ImageFigures(image)
    if not len(annotation):
        return ImageFigures(image, MODEL_ACCEPTED if annotation.model_accepted else NEGATIVE)
    boxes = as_boxes(annotation.boxes)
    sizes = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1)
    sizes.flags.writeable = False  # kept beside the index and shared by every tracker
    state = MODEL_ACCEPTED if annotation.model_accepted else ANNOTATED
    return ImageFigures(image, state, tuple(annotation.labels), sizes)


@dataclass(frozen=True)
class ClassCount:
    """A class, its boxes and their share of all boxes (0 when there are none)."""

    name: str
    boxes: int
    share: float


@dataclass(frozen=True)
class ImageCount:
    """An image and how many boxes it holds."""

    image: Path
    boxes: int


@dataclass(frozen=True)
class UnreadableFile:
    """An image whose annotation file the store refuses, and why."""

    image: Path
    reason: str


@dataclass
class DatasetStatistics:
    """Where the work on one dataset stands.

    Attributes
    ----------
    dataset
        The folder.
    total, annotated, negative, untouched
        Images in all; with boxes; reviewed without boxes; never looked at (no file).
    model_accepted
        Images whose boxes were accepted from the model in a batch and that no person has
        reviewed since (not among ``annotated``; their boxes are counted with the others,
        as training uses them).
    unreadable
        Images whose annotation file the store refuses, with the reason (counted apart:
        their boxes are unknown). Two images with one stem (``a.jpg``, ``a.png``) share one
        file and are both here, each with the store's message naming both.
    classes
        Every class in the class list's order (classes without boxes included), then labels
        found in files but missing from the list.
    widths, heights
        Of every box, pixels of the image as shown (EXIF orientation applied).
    size_bins
        Boxes per COCO area bucket (small < 32², medium < 96², large), in that order.
    histogram_edges, histogram_counts
        A histogram of ``sqrt(area)`` (pixels): at most 20 equal, round bins from 0 up to
        the largest box. The plot's data.
    top_images
        The images with the most boxes, most first (ties in the dataset's order).
    """

    dataset: Path
    total: int
    annotated: int
    negative: int
    untouched: int
    unreadable: list[UnreadableFile]
    classes: list[ClassCount]
    widths: np.ndarray
    heights: np.ndarray
    size_bins: dict[str, int]
    histogram_edges: np.ndarray
    histogram_counts: np.ndarray
    top_images: list[ImageCount]
    model_accepted: int = 0

    @property
    def boxes(self) -> int:
        return len(self.widths)

    def summary(self) -> str:
        """The counts line: ``"12 annotated, 3 reviewed negative, 9 untouched of 24 images"``."""
        parts = [f"{self.annotated} annotated"]
        if self.model_accepted:
            parts.append(f"{self.model_accepted} accepted from model, not yet reviewed")
        parts += [
            f"{self.negative} reviewed negative",
            f"{self.untouched} untouched of {counted(self.total, 'image')}",
        ]
        line = ", ".join(parts)
        if self.unreadable:
            unusable = ("image with an unreadable file", "images with an unreadable file")
            line += f"; {counted(len(self.unreadable), *unusable)}"
        return f"{line}; {counted(self.boxes, 'box', 'boxes')}"

    def to_dict(self) -> dict[str, object]:
        """The figures as JSON-ready values (``detlab stats --json``)."""
        sqrt_area = np.sqrt(self.widths * self.heights)
        return {
            "dataset": str(self.dataset),
            "images": {
                "total": self.total,
                "annotated": self.annotated,
                "model_accepted": self.model_accepted,
                "negative": self.negative,
                "untouched": self.untouched,
                "unreadable": len(self.unreadable),
            },
            "unreadable": [
                {"image": str(entry.image), "reason": entry.reason} for entry in self.unreadable
            ],
            "boxes": self.boxes,
            "classes": [
                {"name": c.name, "boxes": c.boxes, "share": round(c.share, 6)} for c in self.classes
            ],
            "box_sizes": {
                "bins": dict(self.size_bins),
                "width": _spread(self.widths),
                "height": _spread(self.heights),
                "sqrt_area": _spread(sqrt_area),
                "histogram": {
                    "edges": [round(float(edge), 3) for edge in self.histogram_edges],
                    "counts": [int(count) for count in self.histogram_counts],
                },
            },
            "top_images": [
                {"image": str(entry.image), "boxes": entry.boxes} for entry in self.top_images
            ],
        }


def _spread(values: np.ndarray) -> dict[str, float] | None:
    """Min, median and max (pixels, rounded to 0.01); None without boxes."""
    if not len(values):
        return None
    low, mid, high = np.percentile(values, [0, 50, 100])
    return {
        "min": round(float(low), 2),
        "median": round(float(mid), 2),
        "max": round(float(high), 2),
    }


def _histogram(sqrt_area: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Equal bins from 0 up to the largest box, at most ``bins`` of them, whose width is a
    round number (1, 2, 2.5 or 5 times a power of ten): edges a person reads at a glance."""
    top = float(sqrt_area.max()) if len(sqrt_area) else 1.0
    raw = max(top / bins, 1e-9)
    power = 10.0 ** np.floor(np.log10(raw))
    width = next(step * power for step in (1.0, 2.0, 2.5, 5.0, 10.0) if step * power >= raw)
    count = min(bins, max(1, int(np.ceil(top / width))))
    counts, edges = np.histogram(sqrt_area, bins=count, range=(0.0, width * count))
    return edges, counts


def summarise(
    dataset: Path,
    figures: Iterable[ImageFigures],
    class_names: Iterable[str],
    *,
    top: int = TOP_IMAGES,
    bins: int = HISTOGRAM_BINS,
) -> DatasetStatistics:
    """Sum images' figures (in the dataset's order) into the dataset's."""
    figures = list(figures)
    states = Counter(entry.state for entry in figures)
    per_class = dict.fromkeys(class_names, 0)
    with_boxes = [entry for entry in figures if entry.boxes]
    for entry in with_boxes:
        for label, boxes in entry.class_boxes.items():
            per_class[label] = per_class.get(label, 0) + boxes
    sizes = np.concatenate([np.zeros((0, 2))] + [entry.sizes for entry in with_boxes])
    widths, heights = sizes[:, 0], sizes[:, 1]
    area = widths * heights
    total_boxes = len(area)
    size_bins = {
        name: int(((area >= low) & (area < high)).sum()) for name, low, high in SIZE_BUCKETS
    }
    edges, counts = _histogram(np.sqrt(area), bins)
    # as sorted(..., reverse=True)[:top]: ties keep the dataset's order
    ranked = heapq.nlargest(top, with_boxes, key=lambda entry: entry.boxes)
    return DatasetStatistics(
        dataset=Path(dataset),
        total=len(figures),
        annotated=states[ANNOTATED],
        model_accepted=states[MODEL_ACCEPTED],
        negative=states[NEGATIVE],
        untouched=states[UNTOUCHED],
        unreadable=[
            UnreadableFile(entry.image, entry.error)
            for entry in figures
            if entry.state == UNREADABLE
        ],
        classes=[
            ClassCount(name, boxes, boxes / total_boxes if total_boxes else 0.0)
            for name, boxes in per_class.items()
        ],
        widths=widths,
        heights=heights,
        size_bins=size_bins,
        histogram_edges=edges,
        histogram_counts=counts,
        top_images=[ImageCount(entry.image, entry.boxes) for entry in ranked],
    )


@dataclass
class StatisticsChanges:
    """What :meth:`StatisticsTracker.changes` read: apply it with
    :meth:`StatisticsTracker.apply` (on the thread that owns the tracker).

    Attributes
    ----------
    figures
        The new figures of each image whose file changed.
    stamps
        Their files' stamps (None: no file).
    known
        The stamps the tracker knew when the reading began.
    class_names, classes_stamp
        The class list when ``classes.json`` changed (else None), and that file's stamp.
    """

    figures: dict[Path, ImageFigures]
    stamps: dict[Path, Stamp | None]
    known: dict[Path, Stamp | None]
    class_names: list[str] | None = None
    classes_stamp: Stamp | None = None


class StatisticsTracker:
    """Each image's figures, kept current by re-reading only the files that change.

    Parameters
    ----------
    store
        The dataset. Its image list is taken once; a folder whose images changed is a new
        tracker (the docks get a new dataset then).

    Attributes
    ----------
    classes_stale
        ``classes.json`` changed since the class list was read (a class was added, renamed or
        removed). A rename rewrites many files, so :meth:`update` leaves the list to the
        next :meth:`changes`, which finds them too; labels new to the list are counted at
        once all the same.
    """

    def __init__(self, store: AnnotationStore) -> None:
        self.store = store
        self.images = list(store.images)
        self._figures: dict[Path, ImageFigures] = {
            image: ImageFigures(image) for image in self.images
        }
        self._stamps: dict[Path, Stamp | None] = {}
        self._class_names: list[str] = []
        self._classes_stamp: Stamp | None = None
        self._classes_read = False
        self.classes_stale = False

    @classmethod
    def load(cls, store: AnnotationStore) -> StatisticsTracker:
        """Read every annotation file of ``store`` once (seconds for a large dataset)."""
        tracker = cls(store)
        tracker.apply(tracker.changes())
        return tracker

    # -- reading ---------------------------------------------------------------------------
    def changes(self) -> StatisticsChanges:
        """Read the files whose stamp differs from the one last read (all of them the first
        time), and the class list when ``classes.json`` changed.

        Reads only; safe in a worker thread while the owner keeps calling :meth:`update`
        (which then wins for its image: :meth:`apply` skips images updated meanwhile).
        """
        known = dict(self._stamps)  # one C call: a copy the owner's updates cannot tear
        figures: dict[Path, ImageFigures] = {}
        stamps: dict[Path, Stamp | None] = {}
        for image, stamp, image_figures in _figures_each(self.store, self.images, known):
            figures[image], stamps[image] = image_figures, stamp
        classes_stamp = _stamp(self.store.classes_path)
        class_names = None
        if not self._classes_read or classes_stamp != self._classes_stamp:
            class_names = _listed_class_names(self.store)
        return StatisticsChanges(figures, stamps, known, class_names, classes_stamp)

    def apply(self, changes: StatisticsChanges) -> None:
        """Take in what :meth:`changes` read, except images :meth:`update` read since."""
        unset = object()
        for image, figures in changes.figures.items():
            if self._stamps.get(image, unset) != changes.known.get(image, unset):
                continue
            self._figures[image] = figures
            self._stamps[image] = changes.stamps[image]
        if changes.class_names is not None:
            self._class_names = list(changes.class_names)
            self._classes_stamp = changes.classes_stamp
            self._classes_read = True
            self.classes_stale = False

    def update(self, image: str | Path) -> ImageFigures:
        """Re-read ``image``'s file alone (it was written, emptied or deleted); returns its
        figures. An image the tracker did not list (added to the folder since) joins last."""
        image = self._listed(Path(image))
        stamp = self._stamp_of(image)
        self._figures[image] = figures = read_image_figures(self.store, image)
        self._stamps[image] = stamp
        if self._classes_read and _stamp(self.store.classes_path) != self._classes_stamp:
            self.classes_stale = True
        return figures

    def _listed(self, image: Path) -> Path:
        if image not in self._figures:
            found = self.store.image_of(image)  # a file name or stem names a listed image
            image = found if found in self._figures else image
        if image not in self._figures:
            self.images.append(image)
            self._figures[image] = ImageFigures(image)
        return image

    def _stamp_of(self, image: Path) -> Stamp | None:
        return _stamp(self.store.path_for(image))

    # -- answers -----------------------------------------------------------------------------
    def figures(self, image: str | Path) -> ImageFigures | None:
        """The figures last read for ``image`` (None for an image not in the dataset)."""
        return self._figures.get(Path(image))

    def statistics(self, *, top: int = TOP_IMAGES) -> DatasetStatistics:
        """The dataset's figures, summed from the images' (no file is read)."""
        figures = [self._figures[image] for image in self.images]
        return summarise(self.store.root, figures, self._class_names, top=top)

    def next_image(
        self, after: str | Path | None = None, *, state: str | None = None, label: str | None = None
    ) -> Path | None:
        """The first image after ``after`` (wrapping around, ``after`` itself last) in the
        state ``state`` and with a box of class ``label``; None when no image is."""
        count = len(self.images)
        start = (
            self.images.index(Path(after))
            if after is not None and Path(after) in self._figures
            else -1
        )
        for step in range(1, count + 1):
            image = self.images[(start + step) % count]
            figures = self._figures[image]
            if state is not None and figures.state != state:
                continue
            if label is not None and label not in figures.labels:
                continue
            return image
        return None


def _figures_each(
    store: AnnotationStore,
    images: Iterable[Path],
    unchanged: Mapping[Path, Stamp | None] | None = None,
) -> Iterator[tuple[Path, Stamp | None, ImageFigures]]:
    """Each image's file stamp and figures, but those whose file still shows the stamp
    ``unchanged`` gives it. One pass over the folder; each file's figures are kept beside
    the store's index, so an unchanged file costs a lookup even for a new tracker."""
    each = store.derived_each(images, _FIGURES_KEY, _figures_of, unchanged=unchanged)
    for image, stamp, value in each:
        if value is None:
            yield image, stamp, ImageFigures(image)
        elif isinstance(value, ImageFigures):
            yield image, stamp, value
        else:
            yield image, stamp, _unreadable(image, value)


def _listed_class_names(store: AnnotationStore) -> list[str]:
    """The saved class list alone: labels missing from it are found in the figures
    (:func:`summarise` adds them in the order the store's class list does)."""
    try:
        return [spec.name for spec in store.listed_classes()]
    except DetlabError:  # an unreadable class list: the labels in the files still count
        return []


def _stamp(path: Path) -> Stamp | None:
    try:
        return file_stamp(path)
    except OSError:
        return None


def unreviewed_among(store: AnnotationStore, stems: Iterable[str]) -> int:
    """How many of the images named by ``stems`` hold boxes accepted from the model that no
    person has reviewed yet: training says so when it starts (they train like the others)."""
    wanted = set(stems)
    return sum(
        1
        for image, annotation in store.annotated(on_error=lambda image, error: None)
        if image.stem in wanted and annotation.model_accepted
    )


def dataset_statistics(store: AnnotationStore, *, top: int = TOP_IMAGES) -> DatasetStatistics:
    """The figures of ``store``'s dataset, every file read once (``detlab stats``); a file
    read before (by any store of the folder in this process) and unchanged since is not
    read again."""
    figures = [image_figures for _, _, image_figures in _figures_each(store, store.images)]
    return summarise(store.root, figures, _listed_class_names(store), top=top)
