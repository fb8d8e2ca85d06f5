"""A dataset's boxes as anchor coverage measures them, kept current one file at a time.

Reading every annotation file of a dataset takes seconds on a thousand images, and the
Annotator autosaves every few seconds while someone draws: re-reading them all on each save
made its ``n`` key twice as slow with the AnchorViewer open. :class:`DatasetBoxes` reads the
dataset once, then re-reads only the file that was written (:meth:`DatasetBoxes.update`).
"""

from __future__ import annotations

from pathlib import Path

from napari_detlab.core.anchors.coverage import ImageBoxes
from napari_detlab.core.annotations.store import AnnotationStore, stem_of
from napari_detlab.core.errors import DetlabError

__all__ = ["DatasetBoxes", "read_image_boxes"]


def read_image_boxes(store: AnnotationStore | None, image: str | Path) -> ImageBoxes:
    """``image``'s saved boxes with its size; no boxes when it has no annotation file.

    An unreadable file counts as no boxes here: the Annotator reports it, with its name and
    what is wrong, when the image is opened.

    Raises
    ------
    ImageReadError
        The size is in neither the annotation nor the image header.
    """
    annotation = None
    if store is not None:
        try:
            annotation = store.load(image)
        except (OSError, DetlabError):
            annotation = None
    return ImageBoxes.from_annotation(image, annotation)


class DatasetBoxes:
    """The boxes of a store's annotated images, each with its image's size.

    Images without boxes (negatives, files emptied since) are left out: they hold nothing
    for an anchor to catch.

    Order: :meth:`load` lists images in the store's order. After :meth:`update`, an image
    already in the list keeps its position and an image new to it goes last, so the list
    (and with it the order of ties in the uncaught table) may differ from a fresh load.

    Parameters
    ----------
    store
        The dataset that :meth:`update` re-reads files from.
    items
        Its images with boxes, as :meth:`load` reads them.

    Attributes
    ----------
    items
        The images with boxes. Never changed in place: each :meth:`update` makes a new list,
        so a worker thread measuring the previous one is not disturbed.
    """

    def __init__(self, store: AnnotationStore, items: list[ImageBoxes]) -> None:
        self.store = store
        self.items = items

    @classmethod
    def load(cls, store: AnnotationStore) -> DatasetBoxes:
        """Read every annotation file of ``store`` once (seconds for a large dataset).

        Raises
        ------
        AnnotationError
            A file breaks the store's rules (the message names it).
        ImageReadError
            A file records no image size and the image header cannot be read.
        """
        items = [
            ImageBoxes.from_annotation(image, annotation)
            for image, annotation in store.annotated()
            if len(annotation)
        ]
        return cls(store, items)

    def __len__(self) -> int:
        return len(self.items)

    def update(self, image: str | Path, boxes: ImageBoxes | None = None) -> None:
        """Bring ``image`` up to date after its annotation file was written.

        Parameters
        ----------
        image
            The image whose file changed (appeared, was emptied or deleted, or became
            unreadable: the last three take it out of the list).
        boxes
            Its boxes when the caller has just read them (the image on screen), to spare a
            second read of the same file.
        """
        if boxes is None:
            try:
                boxes = read_image_boxes(self.store, image)
            except DetlabError:  # no size to place anchors by: nothing to measure
                boxes = None
        stem = stem_of(image)
        stems = [stem_of(item.image) for item in self.items]
        kept = [item for item, other in zip(self.items, stems, strict=True) if other != stem]
        if boxes is not None and len(boxes.boxes):
            position = stems.index(stem) if stem in stems else len(kept)
            kept.insert(position, boxes)
        self.items = kept
