"""A stand-in for the Annotator dock in tests of its model: the boxes per class it shows,
what it was told, and the files a user would find in ``annotations/``."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.annotator import Annotator, ShownImage
from napari_detlab.core.annotations.store import AnnotationStore, ClassSpec

HEIGHT, WIDTH = 40, 60


class Screen:
    """The dock, reduced to what it shows: the model's Drawing and its listener."""

    def __init__(self) -> None:
        self.boxes: dict[str, np.ndarray] = {}
        self.deleted: set[str] = set()  # classes whose layer the user deleted
        self.reviewed = False
        self.shown: list[ShownImage] = []
        self.notices: list[tuple[str, str]] = []
        self.statuses: list[str] = []
        self.saved: list[Path] = []
        self.renamed: list[tuple[str, str]] = []
        self.classes: list[ClassSpec] = []

    def watch(self, annotator: Annotator) -> None:
        annotator.image_shown.connect(self._on_image_shown)
        annotator.annotation_shown.connect(self.fill)
        annotator.reviewed_changed.connect(lambda checked: setattr(self, "reviewed", checked))
        annotator.classes_changed.connect(lambda classes: setattr(self, "classes", classes))
        annotator.class_renamed.connect(lambda old, new: self.renamed.append((old, new)))
        annotator.status_changed.connect(self.statuses.append)
        annotator.annotation_saved.connect(self.saved.append)
        annotator.notice.connect(lambda level, text: self.notices.append((level, text)))

    # -- the model's Drawing ---------------------------------------------------------------
    def boxes_of(self, class_name: str) -> np.ndarray | None:
        if class_name in self.deleted:
            return None
        return self.boxes.get(class_name, np.zeros((0, 4)))

    def discard(self, class_name: str, indices: np.ndarray) -> None:
        self.boxes[class_name] = np.delete(self.boxes[class_name], indices, axis=0)

    # -- what the user does ----------------------------------------------------------------
    def draw(self, class_name: str, *xyxy: tuple[float, float, float, float]) -> None:
        self.boxes[class_name] = np.concatenate([self.boxes_of(class_name), np.array(xyxy)])

    def fill(self, annotation: ImageAnnotation) -> None:
        self.deleted.clear()  # the dock makes deleted class layers again
        self.boxes = {label: annotation.boxes_of(label) for label in set(annotation.labels)}

    def _on_image_shown(self, shown: ShownImage) -> None:
        self.shown.append(shown)
        self.fill(shown.annotation)

    def told(self, level: str) -> list[str]:
        return [text for seen, text in self.notices if seen == level]


def write_images(folder: Path, names: tuple[str, ...] = ("img1.png", "img2.png", "img3.png")):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        iio.imwrite(folder / name, rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8))
    return folder


def open_annotator(folder: Path) -> tuple[Annotator, Screen]:
    screen = Screen()
    annotator = Annotator(screen)
    screen.watch(annotator)
    annotator.open(AnnotationStore(folder))
    return annotator, screen


def on_disk(folder: Path, stem: str) -> dict | None:
    """The annotation file as anyone would read it, or None when there is none."""
    path = folder / "annotations" / f"{stem}.pt"
    return torch.load(path, weights_only=True) if path.is_file() else None


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / "annotations").iterdir())
