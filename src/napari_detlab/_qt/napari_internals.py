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
- :func:`shapes_triangle_mesh` (the same map, napari's ``ShapesVisual.shape_faces`` and
  its vispy layer's ``_on_data_change``), for :mod:`~napari_detlab._qt.invisible_triangles`:
  the transparent faces of 1,000 boxes are not rasterised on every repaint;
- :func:`dims_updater` (``Viewer._on_layers_change``), blocked during a Review redraw: two
  dimension updates per slider step; and during a fill of the class layers, done once after
  it (two per class layer, each over every box's bounds);
- :func:`limit_vectors_thumbnail` (``Vectors._max_vectors_thumbnail``): the Review outline
  thumbnail, half of a slider step with 4,000 segments; :func:`limit_shapes_thumbnail`
  (``Shapes._max_shapes_thumbnail``) the same for a class layer, 7 ms of each box edit
  among hundreds;
- :func:`rectangles_from_template` (napari's ``Rectangle`` shape class, its attributes and
  the shape factory ``shape_classes``), for :func:`~napari_detlab._qt.box_layers.
  set_layer_boxes`: axis-aligned rectangles differ only in their corners, so 1,000 of them
  are built from one napari built, their corner-dependent arrays computed at once, instead
  of one by one (0.25 ms each, the outline triangulated in Python);
  napari's shape list then sizes and fills its mesh arrays for them in a few numpy
  assignments (its ``_calculate_array_sizes``, ``_fill_arrays`` and
  ``ShapeList._update_z_order``, swapped for the block; checked array by array against
  napari's own, else left alone): about 10 ms of each ``n`` with 1,000 boxes;
- :func:`held_refresh` (``Layer._block_refresh``), for ``set_layer_boxes``: one assignment of
  a Shapes layer's data refreshes the layer four times (slice, mesh upload, highlight,
  extent of every box), three of them before its last change; they are held back and done
  once, checked once per session against napari's own refreshes on two layers (else left
  alone); :func:`rectangle_shape_type` (napari's ``ShapeType``) names the shape type as
  napari's factory is keyed, so its lookup of each box compares no strings;
- :func:`viewer_canvas` (``Window._qt_viewer.canvas``): the tests and benchmarks press keys
  and move the mouse on the real canvas, as a person does.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
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
    "held_refresh",
    "held_refresh_checked",
    "layer_meshes",
    "limit_shapes_thumbnail",
    "limit_vectors_thumbnail",
    "mesh_color_limits",
    "mesh_color_transform_builder",
    "rectangle_shape_type",
    "rectangles_from_template",
    "same_layer_state",
    "set_mesh_color_transform_builder",
    "shapes_thumbnail_limit",
    "shapes_triangle_mesh",
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


def _vispy_layer(viewer: napari.Viewer, layer: Layer) -> object | None:
    """napari's vispy counterpart of ``layer`` (``None`` without a window, or elsewhere)."""
    qt_viewer = _private(getattr(viewer, "window", None), "_qt_viewer")
    visuals = getattr(qt_viewer, "layer_to_visual", None)
    return visuals.get(layer) if isinstance(visuals, dict) else None


def layer_meshes(viewer: napari.Viewer, layer: Layer) -> list[MeshVisual]:
    """The vispy meshes drawing ``layer``; empty when napari's canvas cannot be reached."""
    from vispy.visuals import MeshVisual

    node = getattr(_vispy_layer(viewer, layer), "node", None)
    parts = getattr(node, "_subvisuals", [node])
    return [part for part in parts if isinstance(part, MeshVisual)]


def shapes_triangle_mesh(
    viewer: napari.Viewer, layer: Shapes
) -> tuple[MeshVisual, Callable[[], None]] | None:
    """The vispy mesh a Shapes layer's triangles are drawn with, and the vispy layer's
    method that sends them to it again; ``None`` when napari's canvas cannot be reached."""
    from vispy.visuals import MeshVisual

    vispy_layer = _vispy_layer(viewer, layer)
    mesh = getattr(getattr(vispy_layer, "node", None), "shape_faces", None)
    resend = _private(vispy_layer, "_on_data_change")
    if not isinstance(mesh, MeshVisual) or not callable(resend):
        return None
    return mesh, resend


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


@contextmanager
def held_refresh(layer: Shapes) -> Iterator[bool]:
    """While inside, the layer's refreshes are held back; one full refresh when leaving.
    Yields whether they are (else napari refreshes as it always does).

    napari's assignment of a Shapes layer's data refreshes it at every step (the drawing
    finished, the shapes added, the dimensions updated): each refresh slices every shape,
    uploads the meshes and computes the extent of every box, so with 1,000 boxes the three
    refreshes before the last are about 3 ms of each ``n``. The refresh at the end leaves
    the layer as napari's last one does; :func:`held_refresh_checked` holds that to
    napari's on two layers once, and when it fails (or napari hides the blocker) every
    refresh happens as napari does it.
    """
    block = _private(layer, "_block_refresh")
    if not callable(block) or not held_refresh_checked():
        yield False
        return
    try:
        with block():
            yield True
    finally:
        layer.refresh()


@cache
def held_refresh_checked() -> bool:
    """Whether a layer filled with its refreshes held back ends as napari leaves one:
    the same displayed meshes, extent, thumbnail and slice, with a highlight drawn."""
    try:
        from napari.layers import Shapes

        first = np.array([_TEMPLATE_CORNERS, _CHECK_CORNERS]).astype(float)
        second = np.array([_CHECK_CORNERS + 4, _TEMPLATE_CORNERS * 2, _TEMPLATE_CORNERS])
        layers = []
        for held in (False, True):
            layer = Shapes(first, shape_type="rectangle", edge_color="red", edge_width=2)
            layer.refresh()
            block = layer._block_refresh if held else _no_block
            with block():
                layer.data = [(corners.astype(float), "rectangle") for corners in second]
                layer.selected_data = {1}
            if held:
                layer.refresh()
            layers.append(layer)
        return same_layer_state(*layers)
    except (ImportError, AttributeError, KeyError, TypeError, ValueError, IndexError):
        return False


@contextmanager
def _no_block() -> Iterator[None]:
    yield


def same_layer_state(napari_layer: Shapes, held_layer: Shapes) -> bool:
    """Whether what napari draws and reports of the two layers is the same."""
    pairs = [(napari_layer.extent.data, held_layer.extent.data)]
    pairs += [(napari_layer.thumbnail, held_layer.thumbnail)]
    for name in ("displayed_triangles", "displayed_triangles_colors", "vertices"):
        pairs.append((getattr(napari_layer._data_view._mesh, name),
                      getattr(held_layer._data_view._mesh, name)))  # fmt: skip
    for name in ("_displayed", "displayed_vertices"):
        pairs.append((getattr(napari_layer._data_view, name),
                      getattr(held_layer._data_view, name)))  # fmt: skip
    pairs += zip(
        napari_layer._compute_vertices_and_box(),
        held_layer._compute_vertices_and_box(),
        strict=True,
    )  # the highlight
    same = all(
        np.array_equal(np.asarray(a, dtype=object), np.asarray(b, dtype=object)) for a, b in pairs
    )
    return same and napari_layer._slice_input == held_layer._slice_input


def rectangle_shape_type() -> object:
    """The shape type to give napari for a rectangle: its own ``ShapeType`` member (its
    factory is keyed by them; a string is compared with each key, for every box), or the
    string when napari no longer has it."""
    try:
        from napari.layers.shapes._shapes_constants import ShapeType, shape_classes
    except ImportError:
        return "rectangle"
    member = getattr(ShapeType, "RECTANGLE", None)
    return member if member in shape_classes else "rectangle"


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
    # Whether napari's shape list takes their mesh arrays computed at once (else its own).
    meshes_at_once: bool = False


@contextmanager
def rectangles_from_template(
    corners: np.ndarray, edge_width: float | None = None
) -> Iterator[RectangleFill]:
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
    edge_width
        The edge width the rectangles are built with, when given, instead of the one
        napari passes (1 for shapes beyond the layer's former count): setting it afterwards
        makes napari update every shape's mesh one by one.
    """
    template = _rectangle_template()
    if template is None or corners.ndim != 3 or corners.shape[1:] != (4, 2):
        yield RectangleFill(None)
        return
    from napari.layers.shapes._shapes_constants import shape_classes

    data = np.ascontiguousarray(corners, dtype=np.float32)
    vertices = list(data)
    attributes = template.attributes(data)
    per_box = dict(zip(map(id, vertices), attributes, strict=True))
    meshes = _TemplateMeshes(template, data, attributes) if _template_meshes_checked() else None
    fill = RectangleFill(vertices, meshes_at_once=meshes is not None)
    napari_class = template.shape_class
    wanted_width = edge_width

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
        width = edge_width if wanted_width is None else wanted_width
        shape = template.build(attributes, width, z_index)
        if meshes is not None:
            meshes.built(shape, attributes)
        return shape

    keys = [key for key, value in shape_classes.items() if value is napari_class]
    for key in keys:
        shape_classes[key] = make
    try:
        with _mesh_functions(meshes):
            yield fill
    finally:
        for key in keys:
            shape_classes[key] = napari_class


@contextmanager
def _mesh_functions(meshes: _TemplateMeshes | None) -> Iterator[None]:
    """While inside, napari's shape list sizes and fills its mesh arrays through
    ``meshes`` (for a batch of template rectangles; any other batch goes to napari's own
    functions) and orders its triangles by z at once."""
    if meshes is None:
        yield
        return
    from napari.layers.shapes import _shape_list

    sizes, fill = _shape_list._calculate_array_sizes, _shape_list._fill_arrays
    z_order = _shape_list.ShapeList._update_z_order
    _shape_list._calculate_array_sizes = meshes.sizes_or(sizes)
    _shape_list._fill_arrays = meshes.fill_or(fill)
    _shape_list.ShapeList._update_z_order = _update_z_order_at_once
    try:
        yield
    finally:
        _shape_list._calculate_array_sizes, _shape_list._fill_arrays = sizes, fill
        _shape_list.ShapeList._update_z_order = z_order


class _TemplateMeshes:
    """The mesh arrays of template rectangles, computed for a whole batch at once.

    napari's shape list sizes and fills its mesh arrays shape by shape in Python (about
    10 ms for 1,000 rectangles); rectangles built from one template share every count and
    the triangles and edge offsets, and their corner-dependent arrays were computed for all
    of them at once already, so the arrays are a few numpy assignments.
    :func:`_template_meshes_checked` holds the result to napari's, array by array.
    """

    def __init__(
        self, template: RectangleTemplate, corners: np.ndarray, attributes: list[dict[str, object]]
    ) -> None:
        shared = template.shared
        self.face_triangles = np.asarray(shared["_face_triangles"])
        self.edge_triangles = np.asarray(shared["_edge_triangles"])
        self.edge_offsets = np.asarray(shared["_edge_offsets"])
        self.attributes = attributes
        self.rows: dict[int, tuple[object, int]] = {}
        self._row_of = {id(one): row for row, one in enumerate(attributes)}
        # What attributes() gave each box, for all of them (as it computes them).
        self.displayed = corners
        self.edges = corners[:, template.outline].astype(template.outline_dtype)

    def built(self, shape: object, attributes: dict[str, object]) -> None:
        """``shape`` was built from ``attributes`` (one of this batch's)."""
        self.rows[id(shape)] = (shape, self._row_of[id(attributes)])

    def batch_rows(self, shapes: Sequence[object]) -> np.ndarray | None:
        """The row of each of ``shapes``; ``None`` unless all were built in this batch."""
        rows = []
        for shape in shapes:
            found = self.rows.get(id(shape))
            if found is None or found[0] is not shape:
                return None
            rows.append(found[1])
        return np.asarray(rows, dtype=np.intp)

    def sizes_or(self, napari_sizes: Callable[..., tuple[int, ...]]) -> Callable[..., object]:
        def sizes(shapes: Sequence[object]) -> tuple[int, ...]:
            rows = self.batch_rows(shapes)
            if rows is None:
                return napari_sizes(shapes)
            count, corners, edge = len(rows), self.displayed.shape[1], self.edges.shape[1]
            return (
                count * corners, count * corners, count * (corners + edge),
                count * len(self.face_triangles), count * len(self.edge_triangles),
            )  # fmt: skip

        return sizes

    def fill_or(self, napari_fill: Callable[..., None]) -> Callable[..., None]:
        def fill(
            start_mesh: int,
            start_triangle: int,
            start_vertices: int,
            shapes: Sequence[object],
            face_colors: np.ndarray,
            edge_colors: np.ndarray,
            arrays: dict[str, np.ndarray],
        ) -> None:
            rows = self.batch_rows(shapes)
            if rows is None:
                napari_fill(
                    start_mesh, start_triangle, start_vertices, shapes, face_colors,
                    edge_colors, arrays,
                )  # fmt: skip
                return
            self._fill(rows, shapes, (start_mesh, start_triangle, start_vertices),
                       face_colors, edge_colors, arrays)  # fmt: skip

        return fill

    def _fill(
        self,
        rows: np.ndarray,
        shapes: Sequence[object],
        starts: tuple[int, int, int],
        face_colors: np.ndarray,
        edge_colors: np.ndarray,
        arrays: dict[str, np.ndarray],
    ) -> None:
        """napari's ``_fill_arrays`` for rectangles of this batch, at once."""
        start_mesh, start_triangle, start_vertices = starts
        count, displayed, edges = len(rows), self.displayed[rows], self.edges[rows]
        corners, n_face_tri = displayed.shape[1], len(self.face_triangles)
        per_shape_vertices = corners + edges.shape[1]
        per_shape_triangles = n_face_tri + len(self.edge_triangles)
        steps = np.arange(1, count + 1)
        arrays["z_index"][:] = [shape._z_index for shape in shapes]
        widths = np.asarray([shape._edge_width for shape in shapes])
        arrays["vertices_index"][:] = start_vertices + corners * steps
        arrays["mesh_triangles_index"][:] = start_triangle + per_shape_triangles * steps
        arrays["mesh_vertices_index"][:] = start_mesh + per_shape_vertices * steps
        arrays["vertices"][:] = displayed.reshape(-1, displayed.shape[2])
        dim = displayed.shape[2]
        mesh = arrays["mesh_vertices"].reshape(count, per_shape_vertices, dim)
        centers = arrays["mesh_vertices_centers"].reshape(count, per_shape_vertices, dim)
        offsets = arrays["mesh_vertices_offsets"].reshape(count, per_shape_vertices, dim)
        mesh[:, :corners] = displayed
        mesh[:, corners:] = edges + widths[:, None, None] * self.edge_offsets
        centers[:, :corners] = displayed
        centers[:, corners:] = edges
        offsets[:, :corners] = 0
        offsets[:, corners:] = self.edge_offsets
        first = start_mesh + per_shape_vertices * (steps - 1)
        triangles = arrays["mesh_triangles"].reshape(count, per_shape_triangles, 3)
        triangles[:, :n_face_tri] = self.face_triangles + first[:, None, None]
        triangles[:, n_face_tri:] = self.edge_triangles + (first + corners)[:, None, None]
        colors = arrays["mesh_triangles_colors"].reshape(count, per_shape_triangles, 4)
        colors[:, :n_face_tri] = np.asarray(face_colors)[:, None]
        colors[:, n_face_tri:] = np.asarray(edge_colors)[:, None]


def _update_z_order_at_once(shape_list: object) -> None:
    """napari's ``ShapeList._update_z_order`` with the triangles' order built in one go
    (napari makes one ``arange`` per shape: 3 ms for 1,000); the same arrays."""
    with shape_list.batched_updates():
        _order_triangles(shape_list)


def _order_triangles(shape_list: object) -> None:
    z_order = np.argsort(shape_list._z_index, kind="stable")
    shape_list._z_order = z_order
    mesh = shape_list._mesh
    if len(z_order) == 0:
        mesh.triangles_z_order = np.empty(0, dtype=np.int32)
    else:
        index = mesh.triangles_index
        counts = np.empty(index.shape, dtype=index.dtype)
        counts[:-1] = index[1:] - index[:-1]
        counts[-1] = len(mesh.triangles) - index[-1]
        sizes, starts = counts[z_order], index[z_order]
        before = np.cumsum(sizes) - sizes
        dtype = np.arange(index[0], index[0] + 1).dtype  # napari's arange of the index type
        order = np.repeat(starts - before, sizes) + np.arange(int(sizes.sum()))
        mesh.triangles_z_order = order.astype(dtype, copy=False)
    shape_list._update_displayed()


@cache
def _template_meshes_checked() -> bool:
    """Whether :class:`_TemplateMeshes` and :func:`_update_z_order_at_once` give napari's
    arrays: two shape lists filled with the same rectangles (of other sizes, edge widths,
    z-indices and colours, after a polygon) through napari's code and through them must
    hold equal arrays of equal types."""
    try:
        return _meshes_match()
    except (ImportError, AttributeError, KeyError, TypeError, ValueError, IndexError):
        return False


def _meshes_match() -> bool:
    from napari.layers.shapes import _shape_list
    from napari.layers.shapes._shapes_models import Polygon

    template = _rectangle_template()
    if template is None:
        return False
    corners = np.array([_CHECK_CORNERS, _TEMPLATE_CORNERS, _CHECK_CORNERS + 7.25], np.float32)
    attributes = template.attributes(corners)
    widths, z_indices = (2.0, 1, 3.5), (0, 2, 1)
    face = np.array([[0, 0, 0, 0], [1, 0, 0, 1], [0, 1, 0, 0.5]], np.float32)
    edge = np.array([[1, 0, 0, 1], [0, 0, 1, 1], [0.2, 0.4, 0.6, 1]], np.float32)
    polygon = Polygon(np.array([[0, 0], [9, 1], [4, 8]], float), dims_order=_NAPARI_DIMS_ORDER)
    lists = []
    for ours in (False, True):
        meshes = _TemplateMeshes(template, corners, attributes)
        shapes = []
        for one, width, z_index in zip(attributes, widths, z_indices, strict=True):
            shapes.append(template.build(one, width, z_index))
            meshes.built(shapes[-1], one)
        shape_list = _shape_list.ShapeList()
        shape_list.add(polygon, face_color=face[0], edge_color=edge[0])
        with _mesh_functions(meshes if ours else None):
            shape_list.add(shapes, face_color=face, edge_color=edge, z_refresh=False)
            shape_list._update_z_order()
        lists.append(shape_list)
    napari_list, our_list = lists
    mesh_names = ("vertices", "triangles", "vertices_centers", "vertices_offsets",
                  "triangles_index", "triangles_colors", "triangles_z_order", "vertices_index",
                  "displayed_triangles", "displayed_triangles_colors")  # fmt: skip
    pairs = [(getattr(napari_list._mesh, n), getattr(our_list._mesh, n)) for n in mesh_names]
    list_names = ("_vertices", "_vertices_index", "_z_index", "_z_order")
    pairs += [(getattr(napari_list, n), getattr(our_list, n)) for n in list_names]
    return all(
        np.array_equal(a, b) and np.asarray(a).dtype == np.asarray(b).dtype for a, b in pairs
    )
