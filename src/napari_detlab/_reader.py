"""napari reader: drop a dataset folder or an annotation ``.pt`` on the viewer to see its boxes.

- A **dataset folder** (one holding an ``annotations/`` folder) opens one image, the first
  that has an annotation file (else the first image), with one Shapes layer per class of the
  dataset's class list, in the class colours, named like the Annotator's (``boxes: cell``).
  Datasets hold thousands of images of different sizes, so neither a stack nor every image is
  loaded: browsing the rest is the Annotator's job.
- An **annotation file** (``<dataset>/annotations/<stem>.pt``, a prediction file
  ``<stem>.pt`` with ``scores``, or the tutorial's old ``.pt`` target) opens its boxes per
  class, and the image of the same stem when it is found next to the file, one folder up
  (the dataset of ``annotations/``) or in the dataset of a predictions folder. Prediction
  boxes carry a ``score`` feature and are named ``predictions: <class>``.

Every Shapes layer gets a ``class`` feature and ``metadata`` with the image path and size, so
the writer (:mod:`napari_detlab._writer`) can save it back exactly. ``.pt`` files are read
with ``weights_only=True`` only; anything else is declined so napari can try another reader.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from napari_detlab._layers import (
    BOX_EDGE_WIDTH,
    CLASS_LAYER_PREFIX,
    PREDICTION_LAYER_PREFIX,
    class_layer_name,
)
from napari_detlab.core.annotations.annotation import (
    AnnotationError,
    ImageAnnotation,
    validate_annotation,
)
from napari_detlab.core.annotations.store import (
    ANNOTATIONS_DIRNAME,
    DEFAULT_COLORS,
    AnnotationStore,
)
from napari_detlab.core.atomic import UnsafeFileError, safe_torch_load
from napari_detlab.core.boxes import xyxy_to_napari
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.images import IMAGE_SUFFIXES, ImageReadError, read_image
from napari_detlab.core.stacks import split_plane

__all__ = ["get_reader", "read_annotation_file", "read_dataset_folder"]

LayerData = tuple[Any, dict[str, Any], str]
# Annotation and prediction files hold at most thousands of boxes; a bigger .pt is a model.
MAX_BOXES_FILE_BYTES = 64 * 1024 * 1024


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    """The reader for ``path`` when it is a dataset folder or an annotation ``.pt``; else None."""
    paths = [Path(p) for p in (path if isinstance(path, list) else [path])]
    if all(_is_dataset_folder(p) for p in paths):
        return _read_each(read_dataset_folder)
    if all(_small_pt_file(p) for p in paths):
        try:
            loaded = {p: _load_boxes_file(p) for p in paths}
        except (DetlabError, OSError):
            return None  # a checkpoint, another plugin's file, or gone: not ours
        return _read_each(lambda p: read_annotation_file(p, loaded.get(Path(p))))
    return None


def _read_each(
    read: Callable[[Path], list[LayerData]],
) -> Callable[[str | list[str]], list[LayerData]]:
    def reader(path: str | list[str]) -> list[LayerData]:
        paths = path if isinstance(path, list) else [path]
        return [layer for p in paths for layer in read(Path(p))]

    return reader


def _small_pt_file(path: Path) -> bool:
    """A ``.pt`` small enough to be boxes: checkpoints are declined without being loaded."""
    return (
        path.suffix.lower() == ".pt"
        and path.is_file()
        and path.stat().st_size <= MAX_BOXES_FILE_BYTES
    )


def _is_dataset_folder(path: Path) -> bool:
    return path.is_dir() and (path / ANNOTATIONS_DIRNAME).is_dir()


# -- dataset folders ---------------------------------------------------------------------
def read_dataset_folder(path: str | Path) -> list[LayerData]:
    """The first annotated image of a dataset folder with one Shapes layer per class."""
    store = AnnotationStore(path)
    if not store.images:
        raise FileNotFoundError(f"{store.root}: no images in this dataset folder")
    image = next((p for p in store.images if store.has(p)), store.images[0])
    annotation = store.load(image) or ImageAnnotation()
    colors = {spec.name: spec.color for spec in store.load_classes()}
    layers = [_image_layer(image, {"detlab_dataset": str(store.root)})]
    size = annotation.image_size or layers[0][0].shape[:2]
    layers.extend(
        _class_layers(annotation, colors, image=image, image_size=size, dataset=store.root)
    )
    return layers


# -- single annotation files ---------------------------------------------------------------
def _load_boxes_file(path: Path) -> tuple[ImageAnnotation, np.ndarray | None]:
    """The annotation in ``path`` and its scores (predictions), or ``AnnotationError``.

    A version-1 file (store or prediction) is moved onto its image as shown, when found.
    """
    try:
        data = safe_torch_load(path)
    except UnsafeFileError:  # perhaps the tutorial's numpy-pickled target: its own allow list
        from napari_detlab.formats.tutorial import read_tutorial_target

        boxes, labels = read_tutorial_target(path)
        return ImageAnnotation(boxes=boxes, labels=labels, reviewed=True), None
    annotation = validate_annotation(data, source=str(path), image=_find_image(path))
    scores = data.get("scores") if isinstance(data, dict) else None
    if scores is not None:
        scores = np.asarray(scores.tolist() if hasattr(scores, "tolist") else scores, np.float64)
        if scores.shape != (len(annotation),):
            raise AnnotationError(f"{path}: {len(annotation)} boxes but {scores.size} scores")
    return annotation, scores


def read_annotation_file(
    path: str | Path, loaded: tuple[ImageAnnotation, np.ndarray | None] | None = None
) -> list[LayerData]:
    """An annotation or prediction ``.pt`` as Shapes layers per class, with its image if found."""
    path = Path(path)
    annotation, scores = loaded if loaded is not None else _load_boxes_file(path)
    image = _find_image(path)
    dataset = image.parent if image is not None else None
    colors: dict[str, str] = {}
    if dataset is not None and (dataset / ANNOTATIONS_DIRNAME).is_dir():
        try:
            colors = {spec.name: spec.color for spec in AnnotationStore(dataset).load_classes()}
        except DetlabError:  # a broken class list: default colours, the boxes still show
            colors = {}
    layers: list[LayerData] = []
    size = annotation.image_size
    if image is not None:
        try:
            layers.append(_image_layer(image, {"detlab_dataset": str(dataset)}))
            size = size or layers[0][0].shape[:2]
        except ImageReadError:
            image = None
    layers.extend(
        _class_layers(
            annotation, colors, image=image, image_size=size, dataset=dataset, scores=scores
        )
    )
    return layers


def _find_image(annotation_file: Path) -> Path | None:
    """The image named like the file: beside it, or in the dataset folder one level up."""
    stem = annotation_file.stem
    for folder in (annotation_file.parent.parent, annotation_file.parent):
        for suffix in IMAGE_SUFFIXES:
            for candidate in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
                if candidate.is_file() or split_plane(candidate) is not None:
                    return candidate  # a file, or a plane of a stack (cells.plane-0003.tif)
    return None


# -- layer tuples --------------------------------------------------------------------------
def _image_layer(image: Path, metadata: dict[str, object]) -> LayerData:
    pixels = read_image(image)
    return (
        pixels,
        {"name": image.name, "metadata": {**metadata, "detlab_image": str(image)}},
        "image",
    )


def _class_layers(
    annotation: ImageAnnotation,
    colors: dict[str, str],
    *,
    image: Path | None,
    image_size: tuple[int, int] | None,
    dataset: Path | None,
    scores: np.ndarray | None = None,
) -> list[LayerData]:
    """One Shapes layer per class (the dataset's classes first, then any others found)."""
    classes = list(dict.fromkeys([*colors, *annotation.labels]))
    labels = np.asarray(annotation.labels, dtype=object)
    prefix = CLASS_LAYER_PREFIX if scores is None else PREDICTION_LAYER_PREFIX
    layers: list[LayerData] = []
    for index, name in enumerate(classes):
        mask = labels == name if len(labels) else np.zeros(0, bool)
        color = colors.get(name, DEFAULT_COLORS[index % len(DEFAULT_COLORS)])
        features: dict[str, object] = {"class": [name] * int(mask.sum())}
        if scores is not None:
            features["score"] = scores[mask].tolist()
        metadata = {
            "detlab_class": name,
            "detlab_image": None if image is None else str(image),
            "detlab_image_size": None if image_size is None else [int(v) for v in image_size],
            "detlab_dataset": None if dataset is None else str(dataset),
        }
        attributes = {
            "name": class_layer_name(name) if scores is None else f"{prefix}{name}",
            "shape_type": "rectangle",
            "edge_color": color,
            "face_color": "transparent",
            "edge_width": BOX_EDGE_WIDTH,
            "features": features,
            "metadata": metadata,
            "ndim": 2,
        }
        layers.append((list(xyxy_to_napari(annotation.boxes[mask])), attributes, "shapes"))
    return layers
