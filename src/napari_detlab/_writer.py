"""napari writer: save Shapes layers as one annotation ``.pt`` in the store's format.

``File > Save Selected Layers…`` with one or more Shapes layers selected and a ``.pt`` name
writes ``{"boxes": float32 [N, 4] xyxy, "labels": [...], "reviewed": True, "image_size":
[h, w], "version": 2}``, the file
:class:`~napari_detlab.core.annotations.store.AnnotationStore` reads:
saved as ``<dataset>/annotations/<stem>.pt`` it *is* that image's annotation.

- Boxes are each shape's axis-aligned hull (:func:`~napari_detlab.core.boxes.napari_to_xyxy`),
  so rotated rectangles and polygons are saved as the box that contains them.
- A box's class is its ``class`` (or ``label``) feature; without one, the layer's class
  (``metadata["detlab_class"]``, set by the reader) or the layer's name minus ``boxes: ``.
- The image size comes from ``metadata["detlab_image_size"]`` (set by the reader) when
  present: boxes are then clipped to the image. Shapes with no width or height (a click in
  rectangle mode) are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_detlab._layers import class_of_layer_name
from napari_detlab.core.annotations.annotation import (
    ImageAnnotation,
    sanitize_boxes,
    validate_annotation,
)
from napari_detlab.core.annotations.store import DEFAULT_CLASS
from napari_detlab.core.atomic import atomic_torch_save
from napari_detlab.core.boxes import napari_to_xyxy

__all__ = ["layer_labels", "shapes_to_annotation", "write_shapes_layers"]

LABEL_FEATURES = ("class", "label")


def write_shapes_layers(path: str, layer_data: Sequence[tuple[Any, dict, str]]) -> list[str]:
    """npe2 writer for ``shapes+``: every given Shapes layer into one store ``.pt`` file."""
    target = Path(path)
    if target.suffix.lower() != ".pt":
        target = target.with_name(f"{target.name}.pt")
    shapes = [(data, attributes) for data, attributes, kind in layer_data if kind == "shapes"]
    annotation = shapes_to_annotation(shapes)
    payload = annotation.to_dict()
    validate_annotation(payload, source=str(target))
    atomic_torch_save(target, payload)
    return [str(target)]


def shapes_to_annotation(layers: Sequence[tuple[Any, dict]]) -> ImageAnnotation:
    """Shapes layers' ``(data, attributes)`` as one reviewed :class:`ImageAnnotation`."""
    image_size = next(
        (
            tuple(attributes["metadata"]["detlab_image_size"])
            for _, attributes in layers
            if (attributes.get("metadata") or {}).get("detlab_image_size")
        ),
        None,
    )
    all_boxes: list[np.ndarray] = []
    all_labels: list[str] = []
    for data, attributes in layers:
        boxes = napari_to_xyxy(list(data)) if len(data) else np.zeros((0, 4))
        boxes, keep = sanitize_boxes(boxes, image_size)
        labels = layer_labels(attributes, len(boxes))
        all_boxes.append(boxes[keep])
        all_labels.extend(label for label, k in zip(labels, keep, strict=True) if k)
    return ImageAnnotation(
        boxes=np.concatenate(all_boxes) if all_boxes else np.zeros((0, 4)),
        labels=all_labels,
        reviewed=True,
        image_size=image_size,
    )


def layer_labels(attributes: dict, count: int) -> list[str]:
    """One class name per shape: from a ``class``/``label`` feature, else the layer's class."""
    for table in (attributes.get("features"), attributes.get("properties")):
        for key in LABEL_FEATURES:
            column = _column(table, key)
            if column is not None and len(column) == count:
                return [str(value) for value in column]
    metadata = attributes.get("metadata") or {}
    name = metadata.get("detlab_class") or str(attributes.get("name") or "")
    return [class_of_layer_name(name) or DEFAULT_CLASS] * count


def _column(table: object, key: str) -> list[object] | None:
    """Column ``key`` of a DataFrame or dict of columns, if present."""
    if table is None:
        return None
    try:
        if key not in table:  # DataFrame: columns; dict: keys
            return None
        column = table[key]
    except TypeError:
        return None
    return list(column.tolist() if hasattr(column, "tolist") else column)
