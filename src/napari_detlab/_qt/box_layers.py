"""Boxes in napari Shapes layers: one layer per class, filled and read in the core's xyxy.

This is the widget edge where ``(x1, y1, x2, y2)`` meets napari's ``(row, col)`` vertices;
the conversion is always :func:`~napari_detlab.core.boxes.xyxy_to_napari` /
:func:`~napari_detlab.core.boxes.napari_to_xyxy`, never written out again here.
:class:`ClassLayers` is the Annotator's set of them: what its model reads the user's boxes from.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

import numpy as np

from napari_detlab._layers import BOX_EDGE_WIDTH, class_layer_name
from napari_detlab._qt.invisible_triangles import skip_invisible_triangles
from napari_detlab._qt.napari_internals import (
    dims_updater,
    held_refresh,
    limit_shapes_thumbnail,
    rectangle_shape_type,
    rectangles_from_template,
)
from napari_detlab._qt.shader_reuse import reuse_mesh_shaders
from napari_detlab.core.annotations.annotation import AnnotationError
from napari_detlab.core.boxes import napari_to_xyxy, xyxy_to_napari

if TYPE_CHECKING:
    import napari
    from napari.layers import Shapes

    from napari_detlab.core.annotations.annotation import ImageAnnotation
    from napari_detlab.core.annotations.store import ClassSpec

__all__ = [
    "THUMBNAIL_BOXES",
    "ClassLayers",
    "add_class_layer",
    "layer_boxes",
    "set_layer_boxes",
    "style_class_layer",
]


# Boxes drawn in a class layer's 32-pixel thumbnail in the layer list. napari rasterises up to
# 100, one by one, after every edit; the thumbnail paints shape faces, transparent here, so
# more boxes change nothing the user sees.
THUMBNAIL_BOXES = 16


def add_class_layer(
    viewer: napari.Viewer, spec: ClassSpec, edge_width: float = BOX_EDGE_WIDTH
) -> Shapes:
    """A new, empty Shapes layer for ``spec``: its colour, a transparent face, rectangles.

    Its meshes keep their compiled shaders when the boxes are replaced on every ``n``, its
    boxes' transparent faces are not rasterised on every repaint, and its thumbnail draws at
    most :data:`THUMBNAIL_BOXES` boxes.
    """
    layer = viewer.add_shapes(
        None,
        ndim=2,
        name=class_layer_name(spec.name),
        shape_type="rectangle",
        edge_color=spec.color,
        face_color="transparent",
        edge_width=edge_width,
    )
    style_class_layer(layer, spec.color, edge_width)
    reuse_mesh_shaders(viewer, layer)
    skip_invisible_triangles(viewer, layer)
    limit_shapes_thumbnail(layer, THUMBNAIL_BOXES)
    return layer


def style_class_layer(layer: Shapes, color: str, edge_width: float = BOX_EDGE_WIDTH) -> None:
    """Colour existing boxes and the ones the user will draw next in ``color``."""
    layer.current_edge_color = color
    layer.current_face_color = "transparent"
    layer.current_edge_width = edge_width
    if layer.nshapes:
        layer.edge_color = color


def set_layer_boxes(layer: Shapes, boxes: np.ndarray, edge_width: float = BOX_EDGE_WIDTH) -> None:
    """Replace the layer's shapes by ``boxes`` (``(N, 4)`` xyxy) in one assignment.

    One assignment of ``layer.data`` rebuilds napari's shape list once and emits one data
    event (each costs the viewer a dims update); emptying the layer first and then adding
    would pay twice. The layer's refreshes inside napari's assignment are held back and
    done once at the end (:func:`~napari_detlab._qt.napari_internals.held_refresh`), the
    layer-list thumbnail with them, instead of after every internal refresh. New shapes
    take the layer's current colours, set by :func:`style_class_layer`; only the edge width
    needs restoring. Boxes of a positive size
    (all of them, unless a file holds a degenerate one) are built from a template, computed
    for all boxes at once, instead of one by one by napari (0.25 ms each)
    (:func:`~napari_detlab._qt.napari_internals.rectangles_from_template`).
    """
    layer.selected_data = set()
    if not len(boxes):
        if layer.nshapes:
            layer.data = []
        return
    corners = xyxy_to_napari(boxes)
    positive = bool(np.all(boxes[:, 2:] > boxes[:, :2]))
    rectangle = rectangle_shape_type()
    with (
        held_refresh(layer) as held,
        layer.block_thumbnail_update(),
        _from_template(corners, positive, edge_width) as vertices,
    ):
        layer.data = [(one, rectangle) for one in vertices]
        if np.any(np.asarray(layer.edge_width) != edge_width):
            layer.edge_width = edge_width
    if not held:
        layer.refresh(data_displayed=False, highlight=False, extent=False)  # the thumbnail


@contextmanager
def _from_template(
    corners: np.ndarray, wanted: bool, edge_width: float
) -> Iterator[Sequence[np.ndarray]]:
    """The vertices to give napari: built from the template while inside when ``wanted``,
    with their edge width (napari would give new shapes 1, then update each one)."""
    if not wanted:
        yield corners
        return
    with rectangles_from_template(corners, edge_width) as fill:
        yield corners if fill.vertices is None else fill.vertices


def layer_boxes(layer: Shapes) -> np.ndarray:
    """The layer's shapes as ``(N, 4)`` xyxy hulls: rotated or dragged shapes included."""
    data = layer.data
    if not data:
        return np.zeros((0, 4), dtype=np.float64)
    try:  # shapes of as many vertices (rectangles): one array, not a check of each first
        stacked = np.stack(data)
    except ValueError:
        return napari_to_xyxy(data)
    return napari_to_xyxy(stacked)


class ClassLayers:
    """The Annotator's Shapes layers, one per class: the :class:`~napari_detlab.core.annotations.
    annotator.Drawing` its model reads the user's boxes from.

    Parameters
    ----------
    viewer
        The viewer the layers live in; the user may delete one, and :meth:`fill` makes it again.
    on_edit
        Called when the user changed a layer's boxes (not when this class refilled it).
    on_release
        Called when the mouse button that drew or dragged a box is released.
    edge_width
        The boxes' edge width (screen pixels at zoom 1), as the person last chose it.
    on_edge_width
        Told the new width when the person changes it in a class layer's controls; it then
        holds for every class layer and every image, so it is worth remembering.

    Attributes
    ----------
    dragging
        A mouse button is down on a class layer: a box may still be being drawn.
    tracker
        The mouse-drag callback on every class layer (remove it to give the layers back).
    """

    def __init__(
        self,
        viewer: napari.Viewer,
        on_edit: Callable[[], None],
        on_release: Callable[[], None],
        edge_width: float = BOX_EDGE_WIDTH,
        on_edge_width: Callable[[float], None] | None = None,
    ) -> None:
        self.viewer = viewer
        self._on_edit, self._on_release = on_edit, on_release
        self.edge_width = edge_width
        self._on_edge_width = on_edge_width
        self._layers: dict[str, Shapes] = {}
        self._colors: dict[str, str] = {}
        self._classes: list[ClassSpec] = []
        self._filling = False  # programmatic updates are not user edits
        self.dragging = False
        # Weak: the layers outlive a closed dock and must not keep it alive.
        self.tracker = _drag_tracker(weakref.ref(self))

    def layer_for(self, class_name: str) -> Shapes | None:
        """The class's Shapes layer if it is still in the viewer."""
        layer = self._layers.get(class_name)
        return layer if layer is not None and layer in self.viewer.layers else None

    def class_of(self, layer: object) -> str | None:
        """The class ``layer`` draws, or ``None`` for a layer that is not a class layer."""
        return next((name for name, mine in self._layers.items() if mine is layer), None)

    def live(self) -> list[Shapes]:
        """The class layers still in the viewer, in class-list order."""
        return [layer for c in self._classes if (layer := self.layer_for(c.name)) is not None]

    # -- the model's Drawing -------------------------------------------------------------
    def boxes_of(self, class_name: str) -> np.ndarray | None:
        """The class's boxes as xyxy hulls; ``None`` when the user deleted its layer."""
        layer = self.layer_for(class_name)
        return None if layer is None else layer_boxes(layer)

    def discard(self, class_name: str, indices: np.ndarray) -> None:
        """Remove refused boxes, unless one may still be being drawn (it is not saved anyway)."""
        layer = self.layer_for(class_name)
        if layer is None or self.dragging:
            return
        with self.filling():
            layer.selected_data = {int(i) for i in indices}
            layer.remove_selected()

    # -- following the model -------------------------------------------------------------
    def sync(self, classes: list[ClassSpec]) -> None:
        """One Shapes layer per class, in the class colour; layers of old classes removed."""
        self._classes = list(classes)
        with self.filling():
            names = {c.name for c in classes}
            for name in [name for name in self._layers if name not in names]:
                layer = self._layers.pop(name)  # gone from the dict first: not a user's removal
                self._colors.pop(name, None)
                if layer in self.viewer.layers:
                    self.viewer.layers.remove(layer)
            for spec in classes:
                layer = self.layer_for(spec.name)
                if layer is None:
                    layer = add_class_layer(self.viewer, spec, self.edge_width)
                    layer.events.data.connect(self._edited)
                    layer.events.edge_width.connect(self._edge_width_chosen)
                    layer.mouse_drag_callbacks.append(self.tracker)
                    self._layers[spec.name] = layer
                elif self._colors.get(spec.name) != spec.color:
                    style_class_layer(layer, spec.color, self.edge_width)
                self._colors[spec.name] = spec.color

    def rename(self, old: str, new: str) -> None:
        """The class's layer, with its boxes and the user's settings, takes the new name."""
        layer = self._layers.pop(old, None)
        if layer is not None:
            layer.name = class_layer_name(new)
            self._layers[new] = layer
            self._colors[new] = self._colors.pop(old, "")

    def fill(self, annotation: ImageAnnotation) -> None:
        """Show ``annotation`` in every class layer (not an edit); deleted layers come back.

        Every data assignment makes the viewer recompute its dimensions from all layers,
        each layer's extent over every box: twice per class layer. The boxes of an image
        do not change the layers' dimensionality, and the result depends only on the
        layers as they end, so it is done once, after the last class layer.
        """
        self.sync(self._classes)
        labels = np.asarray(annotation.labels, dtype=object)
        recompute_dims = dims_updater(self.viewer)
        with self.filling(), ExitStack() as held:
            if recompute_dims is not None:
                for spec in self._classes:  # two dims updates per layer: one after all
                    held.enter_context(self._layers[spec.name].events.data.blocker(recompute_dims))
            for spec in self._classes:
                boxes = annotation.boxes[labels == spec.name]
                set_layer_boxes(self._layers[spec.name], boxes, self.edge_width)
        if recompute_dims is not None:
            recompute_dims()

    def add_boxes(self, class_name: str, boxes: np.ndarray) -> None:
        """Add ``boxes`` (xyxy) to the class's layer as the person's own edit: reported to
        ``on_edit`` and saved like a drawn box (accepted proposals arrive this way)."""
        layer = self.layer_for(class_name)
        if layer is not None and len(boxes):
            combined = np.concatenate([layer_boxes(layer), np.asarray(boxes, np.float64)])
            set_layer_boxes(layer, combined, self.edge_width)

    def move_selected(self, target: str) -> int:
        """Move the boxes selected in the other class layers to ``target``'s; returns how many."""
        destination = self.layer_for(target)
        if destination is None:
            raise AnnotationError(f"no class named {target!r}")
        moved: list[np.ndarray] = []
        with self.filling():
            for layer in self.live():
                if layer is destination or not layer.selected_data:
                    continue
                moved.append(layer_boxes(layer)[sorted(layer.selected_data)])
                layer.remove_selected()
            if moved:
                boxes = np.concatenate([layer_boxes(destination), *moved])
                set_layer_boxes(destination, boxes, self.edge_width)
        return int(sum(len(m) for m in moved))

    @contextmanager
    def filling(self) -> Iterator[None]:
        """Changes made inside are the program's, not the user's: no edit is reported."""
        self._filling = True
        try:
            yield
        finally:
            self._filling = False

    def _edited(self, _event: object = None) -> None:
        if not self._filling:
            self._on_edit()

    def _edge_width_chosen(self, event: object) -> None:
        """The person set a width in a class layer's controls: every class layer takes it."""
        width = float(event.source.current_edge_width)
        if self._filling or width == self.edge_width:
            return
        self.edge_width = width
        with self.filling():
            for layer in self.live():
                layer.current_edge_width = width
                if layer.nshapes:
                    layer.edge_width = width
        if self._on_edge_width is not None:
            self._on_edge_width(width)


def _drag_tracker(layers_ref: weakref.ref[ClassLayers]) -> Callable[..., Iterator[None]]:
    """A mouse-drag callback telling :class:`ClassLayers` while a box is drawn or dragged.

    The autosave waits while the button is down (a half-drawn rectangle is not worth a
    write) and restarts its delay on release.
    """

    def track(_layer: object, event: object) -> Iterator[None]:
        layers = layers_ref()
        if layers is None:
            return
        layers.dragging = True
        try:
            yield
            while event.type == "mouse_move":
                yield
        finally:
            layers.dragging = False
            layers._on_release()

    return track
