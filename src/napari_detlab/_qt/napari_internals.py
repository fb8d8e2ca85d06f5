"""Every place napari-detlab touches napari's or vispy's private parts, each named by what it does.

Each is here for a measured gain under software OpenGL, and each has a public fallback: when
napari or vispy renames or refuses the attribute, the function returns ``None`` (or does
nothing), the caller takes the slower public path, and nothing breaks. No other module spells
a private name of napari or vispy. napari gives plugin widgets a proxy of the viewer that warns
on private access (``FutureWarning``: "unavailable no earlier than 0.10.0"); the warning is
silenced here because the person at the viewer cannot act on it, and
``tests/qt/test_review_dock.py`` opens the docks through that proxy so CI notices the day a
fast path stops being taken.

- :func:`layer_meshes` (``Window._qt_viewer``, the canvas's layer-to-visual map, and a
  compound visual's ``_subvisuals``) and the colour-transform hooks of a vispy mesh
  (``_clim_values``, ``_build_color_transform``), for
  :mod:`~napari_detlab._qt.shader_reuse`: about 25 ms of each ``n`` at 4 MP;
- :func:`dims_updater` (``Viewer._on_layers_change``), blocked during a Review redraw: two
  dimension updates per slider step;
- :func:`limit_vectors_thumbnail` (``Vectors._max_vectors_thumbnail``): the Review outline
  thumbnail, half of a slider step with 4,000 segments; :func:`limit_shapes_thumbnail`
  (``Shapes._max_shapes_thumbnail``) the same for a class layer, 7 ms of each box edit
  among hundreds;
- :func:`rectangles_from_template` (napari's ``Rectangle`` shape class, its attributes and
  the shape factory ``shape_classes``), for :func:`~napari_detlab._qt.box_layers.
  set_layer_boxes`: axis-aligned rectangles differ only in their corners, so 1,000 of them
  are built from one napari built, their corner-dependent arrays computed at once, instead
  of one by one (0.25 ms each, the outline triangulated in Python);
- :func:`viewer_canvas` (``Window._qt_viewer.canvas``): the tests and benchmarks press keys
  and move the mouse on the real canvas, as a person does.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, cached_property
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import napari
    from napari._vispy.canvas import VispyCanvas
    from napari.layers import Layer, Shapes, Vectors
    from vispy.visuals import MeshVisual
    from vispy.visuals.shaders import Function

__all__ = [
    "RectangleFill",
    "RectangleTemplate",
    "class_color_transform_builder",
    "dims_updater",
    "layer_meshes",
    "limit_shapes_thumbnail",
    "limit_vectors_thumbnail",
    "mesh_color_limits",
    "mesh_color_transform_builder",
    "rectangles_from_template",
    "set_mesh_color_transform_builder",
    "shapes_thumbnail_limit",
    "vectors_thumbnail_limit",
    "viewer_canvas",
]

ColorTransformBuilder = Callable[["np.ndarray"], "Function"]


def _private(owner: object, name: str) -> object | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return getattr(owner, name, None)


def viewer_canvas(viewer: napari.Viewer) -> VispyCanvas:
    """The vispy canvas a viewer draws on (its ``.native`` is the Qt widget that gets keys)."""
    return _private(viewer.window, "_qt_viewer").canvas


def layer_meshes(viewer: napari.Viewer, layer: Layer) -> list[MeshVisual]:
    """The vispy meshes drawing ``layer``; empty when napari's canvas cannot be reached."""
    from vispy.visuals import MeshVisual

    qt_viewer = _private(getattr(viewer, "window", None), "_qt_viewer")
    visuals = getattr(qt_viewer, "layer_to_visual", None)
    vispy_layer = visuals.get(layer) if isinstance(visuals, dict) else None
    node = getattr(vispy_layer, "node", None)
    parts = getattr(node, "_subvisuals", [node])
    return [part for part in parts if isinstance(part, MeshVisual)]


def mesh_color_limits(mesh: MeshVisual) -> tuple[float, float]:
    """The contrast limits a mesh's colormap transform is built with."""
    low, high = (float(value) for value in mesh._clim_values)
    return low, high


def mesh_color_transform_builder(mesh: MeshVisual) -> ColorTransformBuilder:
    """The mesh's current colour-transform builder (the class's, until replaced)."""
    return mesh._build_color_transform


def set_mesh_color_transform_builder(mesh: MeshVisual, build: ColorTransformBuilder) -> None:
    """Make ``mesh`` build its colour transform with ``build`` from now on (this mesh only)."""
    mesh._build_color_transform = build


def class_color_transform_builder(mesh: MeshVisual) -> Callable[..., Function]:
    """vispy's own builder, unbound: ``build(mesh, colors)``."""
    return type(mesh)._build_color_transform


def dims_updater(viewer: napari.Viewer) -> Callable[..., None] | None:
    """The viewer's "recompute dimensions from all layers" callback, which every layer data
    event triggers; ``None`` when napari does not expose it (then nothing can be deferred)."""
    update = _private(viewer, "_on_layers_change")
    return update if callable(update) else None


def _limit_thumbnail(layer: Layer, attribute: str, count: int) -> bool:
    """Set a layer's private "at most this many in the thumbnail"; whether napari allowed it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        if not hasattr(layer, attribute):
            return False
        try:
            setattr(layer, attribute, count)
        except AttributeError:
            return False
        return True


def limit_vectors_thumbnail(layer: Vectors, count: int) -> bool:
    """Draw at most ``count`` vectors in the layer-list thumbnail; whether napari allowed it.

    The thumbnail is drawn vector by vector in Python; napari has no public setting for it.
    """
    return _limit_thumbnail(layer, "_max_vectors_thumbnail", count)


def limit_shapes_thumbnail(layer: Shapes, count: int) -> bool:
    """Draw at most ``count`` shapes in the layer-list thumbnail; whether napari allowed it.

    napari rasterises up to 100 shapes, one by one, into the 32-pixel thumbnail after every
    change of the layer: about 7 ms of each box drawn or deleted among hundreds.
    """
    return _limit_thumbnail(layer, "_max_shapes_thumbnail", count)


def shapes_thumbnail_limit(layer: Shapes) -> int | None:
    """How many shapes the layer's thumbnail draws at most; ``None`` when napari hides it."""
    limit = _private(layer, "_max_shapes_thumbnail")
    return limit if isinstance(limit, int) else None


def vectors_thumbnail_limit(layer: Vectors) -> int | None:
    """How many vectors the layer's thumbnail draws at most; ``None`` when napari hides it."""
    limit = _private(layer, "_max_vectors_thumbnail")
    return limit if isinstance(limit, int) else None


# Two rectangles in the corner order core.boxes.xyxy_to_napari gives (top-left, top-right,
# bottom-right, bottom-left as (row, col)): the template, and a check of another size.
_TEMPLATE_CORNERS = np.array([[10, 20], [10, 70], [40, 70], [40, 20]], dtype=np.float32)
_CHECK_CORNERS = np.array([[3, 5], [3, 6], [900.5, 6], [900.5, 5]], dtype=np.float32)
_NAPARI_DIMS_ORDER = (0, 1)  # what a 2-D Shapes layer passes its shapes
# What differs between two napari rectangles of other corners; everything else is copied.
_PER_BOX = frozenset(
    {"_data", "_bounding_box", "_face_vertices", "_edge_vertices", "_box", "data_displayed"}
)


@dataclass
class RectangleTemplate:
    """One rectangle napari built, whose per-box attributes :meth:`attributes` recomputes.

    ``outline`` maps each vertex of napari's outline mesh to the corner it sits on; the
    offsets and triangles of the mesh (copied with the other shared attributes) depend only
    on the four 90-degree turns, not on the size.
    """

    shape_class: type
    shared: dict[str, object]
    outline: np.ndarray
    outline_dtype: np.dtype

    def attributes(self, corners: np.ndarray) -> list[dict[str, object]]:
        """napari's per-box attributes of ``(N, 4, 2)`` float32 corners, computed at once."""
        low, high = corners.min(axis=1), corners.max(axis=1)
        c0, c1, c2, c3 = (corners[:, i] for i in range(4))
        boxes = np.stack(
            [
                c0,
                (c0 + c1) / 2,
                c1,
                (c1 + c2) / 2,
                c2,
                (c2 + c3) / 2,
                c3,
                (c3 + c0) / 2,
                (c0 + c1 + c2 + c3) / 4,
            ],
            axis=1,
        )  # napari's rectangle_to_box, for every box
        edges = corners[:, self.outline].astype(self.outline_dtype)
        bounds = np.stack([low, high], axis=1)
        displayed = corners.copy()
        return [
            {
                "_data": corners[i],
                "_bounding_box": bounds[i],
                "_face_vertices": displayed[i],
                "data_displayed": displayed[i],
                "_edge_vertices": edges[i],
                "_box": boxes[i],
            }
            for i in range(len(corners))
        ]

    def build(self, per_box: dict[str, object], edge_width: float, z_index: int) -> object:
        """A napari rectangle with the template's shared attributes and ``per_box``; arrays
        and lists are copied (napari reassigns them, but no shape may share one by chance)."""
        shape = self.shape_class.__new__(self.shape_class)
        state = dict(self.shared)
        for name in self.mutable:
            state[name] = state[name].copy()
        state.update(per_box, _edge_width=edge_width, _z_index=z_index)
        shape.__dict__.update(state)
        return shape

    @cached_property
    def mutable(self) -> tuple[str, ...]:
        """The shared attributes that are arrays or lists."""
        return tuple(n for n, v in self.shared.items() if isinstance(v, np.ndarray | list))


def _same_shape(one: object, other: object) -> bool:
    """Whether two napari shapes hold the same attributes (arrays compared by value)."""
    if one.__dict__.keys() != other.__dict__.keys():
        return False
    for name, value in one.__dict__.items():
        theirs = other.__dict__[name]
        if isinstance(value, np.ndarray) or isinstance(theirs, np.ndarray):
            same = np.array_equal(value, theirs) and np.asarray(value).dtype == theirs.dtype
        else:
            same = type(value) is type(theirs) and value == theirs
        if not same:
            return False
    return True


@cache
def _rectangle_template() -> RectangleTemplate | None:
    """The template, or ``None`` when napari's rectangles are not built as expected: a
    rectangle of another size built from the template must equal napari's in every
    attribute."""
    try:
        from napari.layers.shapes._shapes_models import Rectangle

        template = Rectangle(_TEMPLATE_CORNERS, dims_order=_NAPARI_DIMS_ORDER)
        expected = Rectangle(_CHECK_CORNERS, edge_width=3, z_index=2, dims_order=_NAPARI_DIMS_ORDER)
        varying = {
            name
            for name, value in template.__dict__.items()
            if not _same_shape(_Attribute(value), _Attribute(expected.__dict__.get(name)))
        }
        varying -= {"_edge_width", "_z_index"}  # the constructor's arguments
        if varying != _PER_BOX or template.__dict__.keys() != expected.__dict__.keys():
            return None
        vertices = template._edge_vertices
        distance = np.abs(vertices[:, None, :] - _TEMPLATE_CORNERS[None]).sum(axis=2)
        if not np.all(distance.min(axis=1) == 0):
            return None
        shared = {k: v for k, v in template.__dict__.items() if k not in _PER_BOX}
        made = RectangleTemplate(Rectangle, shared, distance.argmin(axis=1), vertices.dtype)
        (per_box,) = made.attributes(_CHECK_CORNERS[None].copy())
        built = made.build(per_box, expected.edge_width, expected.z_index)
    except (ImportError, AttributeError, KeyError, TypeError, ValueError):
        return None
    return made if _same_shape(built, expected) else None


@dataclass
class _Attribute:
    """One attribute as a shape-like object, to compare it with :func:`_same_shape`."""

    value: object


@dataclass
class RectangleFill:
    """What :func:`rectangles_from_template` hands the caller: the vertices to assign as the
    layer's data (``None``: napari's own path, nothing replaced) and how many rectangles the
    template built (the rest, if any, napari built)."""

    vertices: list[np.ndarray] | None
    built: int = 0


@contextmanager
def rectangles_from_template(corners: np.ndarray) -> Iterator[RectangleFill]:
    """While inside, napari builds the rectangles of ``corners`` from a template.

    napari builds each rectangle as a Python object in about 0.25 ms (its outline
    triangulated in Python, a dozen small numpy calls): 250 ms for 1,000 boxes. An
    axis-aligned rectangle in :func:`~napari_detlab.core.boxes.xyxy_to_napari`'s corner
    order differs from another only in its corners, so every per-box attribute is computed
    for all boxes at once and the rest copied from one rectangle napari built; a second one
    of another size built both ways must come out identical in every attribute, or nothing
    is replaced. Only the vertex arrays handed out in :attr:`RectangleFill.vertices` are
    served (napari's shape factory is swapped for the block and looks them up); every
    other shape goes through napari's own code.

    Parameters
    ----------
    corners
        ``(N, 4, 2)`` corners of boxes with a positive width and height (a zero-sized box
        has another outline), in ``xyxy_to_napari``'s order.
    """
    template = _rectangle_template()
    if template is None or corners.ndim != 3 or corners.shape[1:] != (4, 2):
        yield RectangleFill(None)
        return
    from napari.layers.shapes._shapes_constants import shape_classes

    data = np.ascontiguousarray(corners, dtype=np.float32)
    vertices = list(data)
    per_box = dict(zip(map(id, vertices), template.attributes(data), strict=True))
    fill = RectangleFill(vertices)
    napari_class = template.shape_class

    def make(
        vertex_array: object,
        *,
        edge_width: float = 1,
        z_index: int = 0,
        dims_order: list[int] | None = None,
        ndisplay: int = 2,
    ) -> object:
        attributes = per_box.get(id(vertex_array))
        if attributes is None or ndisplay != 2 or dims_order != _NAPARI_DIMS_ORDER:
            return napari_class(
                vertex_array,
                edge_width=edge_width,
                z_index=z_index,
                dims_order=dims_order,
                ndisplay=ndisplay,
            )
        fill.built += 1
        return template.build(attributes, edge_width, z_index)

    keys = [key for key, value in shape_classes.items() if value is napari_class]
    for key in keys:
        shape_classes[key] = make
    try:
        yield fill
    finally:
        for key in keys:
            shape_classes[key] = napari_class
