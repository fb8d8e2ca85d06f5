"""Tiny datasets for the format tests, and hypothesis strategies for what a store can hold."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore, ClassSpec
from napari_detlab.formats import ExportReport, ImportReport, export_dataset, import_dataset

# (height, width) of the test images: small, not square, one side odd.
SIZES = ((20, 30), (48, 64), (101, 77))
CLASSES = ("cell", "crystal", "red blood cell")
HEADS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "heads"


def write_images(folder: Path, sizes=SIZES, suffix: str = ".png") -> list[Path]:
    """One small RGB image per size, ``img0.png`` ...; pixels differ so nothing is cached."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for index, (height, width) in enumerate(sizes):
        path = folder / f"img{index}{suffix}"
        iio.imwrite(path, rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
        paths.append(path)
    return paths


def copy_images(source: Path, target: Path) -> Path:
    """A fresh dataset folder with the same images and no annotations."""
    target.mkdir(parents=True, exist_ok=True)
    for path in AnnotationStore(source).images:
        shutil.copy2(path, target / path.name)
    return target


@dataclass
class Plan:
    """What each test image holds: ``None`` (never annotated) or ``(boxes, labels)``."""

    annotations: list[tuple[np.ndarray, list[str]] | None]


@st.composite
def box_lists(draw, height: int, width: int, integer: bool = False):
    """Boxes at least one pixel on each side, inside the image, as the store keeps them."""
    count = draw(st.integers(0, 4))
    boxes, labels = [], []
    for _ in range(count):
        if integer:
            x1 = draw(st.integers(0, width - 1))
            y1 = draw(st.integers(0, height - 1))
            x2 = draw(st.integers(x1 + 1, width))
            y2 = draw(st.integers(y1 + 1, height))
        else:
            x1 = draw(st.floats(0, width - 1, allow_subnormal=False))
            y1 = draw(st.floats(0, height - 1, allow_subnormal=False))
            x2 = draw(st.floats(min(x1 + 1, width), width, allow_subnormal=False))
            y2 = draw(st.floats(min(y1 + 1, height), height, allow_subnormal=False))
        boxes.append([x1, y1, x2, y2])
        labels.append(draw(st.sampled_from(CLASSES)))
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 4), labels


@st.composite
def plans(draw, integer: bool = False):
    """An annotation (or none) per test image: boxes of several classes, negatives, unannotated.

    At least one image is annotated: an export of nothing is refused (see
    ``test_export_import_bad_input.py``), not a round trip.
    """
    annotations = []
    for height, width in SIZES:
        kind = draw(st.sampled_from(["none", "negative", "boxes", "boxes"]))
        if kind == "none":
            annotations.append(None)
        elif kind == "negative":
            annotations.append((np.zeros((0, 4), np.float32), []))
        else:
            annotations.append(draw(box_lists(height, width, integer)))
    assume(any(annotation is not None for annotation in annotations))
    return Plan(annotations)


def write_plan(folder: Path, plan: Plan, images: Path) -> AnnotationStore:
    """A dataset in ``folder`` holding the images of ``images`` and ``plan``'s annotations."""
    copy_images(images, folder)
    store = AnnotationStore(folder)
    store.save_classes(
        [
            ClassSpec(name, color)
            for name, color in zip(CLASSES, ("#ff0000", "#00ff00", "#0000ff"), strict=True)
        ]
    )
    for image, annotation in zip(store.images, plan.annotations, strict=True):
        if annotation is not None:
            boxes, labels = annotation
            size = SIZES[int(image.stem.removeprefix("img"))]
            store.save(image, ImageAnnotation(boxes, labels, reviewed=True, image_size=size))
    return store


def store_contents(store: AnnotationStore) -> dict[str, tuple[np.ndarray, list[str], bool] | None]:
    """Each image's boxes, labels and reviewed flag (``None``: no file), by file name."""
    contents = {}
    for image in store.images:
        annotation = store.load(image)
        contents[image.name] = (
            None
            if annotation is None
            else (annotation.boxes, annotation.labels, annotation.reviewed)
        )
    return contents


@dataclass
class RoundTrip:
    """A dataset exported in a format and imported into a fresh copy of its images."""

    original: AnnotationStore
    copy: AnnotationStore
    exported: ExportReport
    imported: ImportReport
    written: Path

    def before_and_after(self) -> list[tuple[str, tuple | None, tuple | None]]:
        """Per image: its name, what the original store holds and what the copy holds."""
        before, after = store_contents(self.original), store_contents(self.copy)
        assert before.keys() == after.keys()
        return [(name, before[name], after[name]) for name in before]


def round_trip(fmt: str, plan: Plan, images: Path, tmp: Path) -> RoundTrip:
    """Store ``plan`` -> ``fmt`` -> a new store, with the reports of both steps."""
    original = write_plan(tmp / "a", plan, images)
    written = tmp / f"written_{fmt}"
    exported = export_dataset(original.root, fmt, written)
    copy = AnnotationStore(copy_images(images, tmp / "b"))
    imported = import_dataset(fmt, written, copy.root)
    return RoundTrip(original, copy, exported, imported, written)


def given_plans(count: int, integer: bool = False):
    """Run a round-trip test on ``count`` drawn plans (see :func:`plans`), as its ``plan``
    argument: no deadline (the first example pays for imports), and the image folder fixture
    shared by all examples."""
    shared_fixture = [HealthCheck.function_scoped_fixture]
    checked = settings(max_examples=count, deadline=None, suppress_health_check=shared_fixture)
    return lambda test: checked(given(plan=plans(integer))(test))
