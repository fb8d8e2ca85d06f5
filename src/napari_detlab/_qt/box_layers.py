"""Boxes in napari Shapes layers: one layer per class, filled and read in the core's xyxy.

This is the widget edge where ``(x1, y1, x2, y2)`` meets napari's ``(row, col)`` vertices;
the conversion is always :func:`~napari_detlab.core.boxes.xyxy_to_napari` /
:func:`~napari_detlab.core.boxes.napari_to_xyxy`, never written out again here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from napari_detlab._layers import BOX_EDGE_WIDTH, class_layer_name
from napari_detlab._qt.shader_reuse import reuse_mesh_shaders
from napari_detlab.core.boxes import napari_to_xyxy, xyxy_to_napari

if TYPE_CHECKING:
    import napari
    from napari.layers import Shapes

    from napari_detlab.core.annotations.store import ClassSpec

__all__ = [
    "add_class_layer",
    "layer_boxes",
    "set_layer_boxes",
    "style_class_layer",
]


def add_class_layer(viewer: napari.Viewer, spec: ClassSpec) -> Shapes:
    """A new, empty Shapes layer for ``spec``: its colour, a transparent face, rectangles.

    Its meshes keep their compiled shaders when the boxes are replaced on every ``n``.
    """
    layer = viewer.add_shapes(
        None,
        ndim=2,
        name=class_layer_name(spec.name),
        shape_type="rectangle",
        edge_color=spec.color,
        face_color="transparent",
        edge_width=BOX_EDGE_WIDTH,
    )
    style_class_layer(layer, spec.color)
    reuse_mesh_shaders(viewer, layer)
    return layer


def style_class_layer(layer: Shapes, color: str) -> None:
    """Colour existing boxes and the ones the user will draw next in ``color``."""
    layer.current_edge_color = color
    layer.current_face_color = "transparent"
    layer.current_edge_width = BOX_EDGE_WIDTH
    if layer.nshapes:
        layer.edge_color = color


def set_layer_boxes(layer: Shapes, boxes: np.ndarray) -> None:
    """Replace the layer's shapes by ``boxes`` (``(N, 4)`` xyxy) in one assignment.

    One assignment of ``layer.data`` rebuilds napari's shape list once and emits one data
    event (each costs the viewer a dims update); emptying the layer first and then adding
    would pay twice. The layer-list thumbnail is redrawn once at the end instead of after
    every internal refresh. New shapes take the layer's current colours, set by
    :func:`style_class_layer`; only the edge width needs restoring.
    """
    layer.selected_data = set()
    if not len(boxes):
        if layer.nshapes:
            layer.data = []
        return
    with layer.block_thumbnail_update():
        layer.data = [(corners, "rectangle") for corners in xyxy_to_napari(boxes)]
        if np.any(np.asarray(layer.edge_width) != BOX_EDGE_WIDTH):
            layer.edge_width = BOX_EDGE_WIDTH
    layer.refresh(data_displayed=False, highlight=False, extent=False)  # the thumbnail only


def layer_boxes(layer: Shapes) -> np.ndarray:
    """The layer's shapes as ``(N, 4)`` xyxy hulls: rotated or dragged shapes included."""
    data = layer.data
    if not data:
        return np.zeros((0, 4), dtype=np.float64)
    if all(len(vertices) == len(data[0]) for vertices in data):
        return napari_to_xyxy(np.stack(data))
    return napari_to_xyxy(data)
