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
  thumbnail, half of a slider step with 4,000 segments;
- :func:`viewer_canvas` (``Window._qt_viewer.canvas``): the tests and benchmarks press keys
  and move the mouse on the real canvas, as a person does.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import napari
    import numpy as np
    from napari._vispy.canvas import VispyCanvas
    from napari.layers import Layer, Vectors
    from vispy.visuals import MeshVisual
    from vispy.visuals.shaders import Function

__all__ = [
    "class_color_transform_builder",
    "dims_updater",
    "layer_meshes",
    "limit_vectors_thumbnail",
    "mesh_color_limits",
    "mesh_color_transform_builder",
    "set_mesh_color_transform_builder",
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


def limit_vectors_thumbnail(layer: Vectors, count: int) -> bool:
    """Draw at most ``count`` vectors in the layer-list thumbnail; whether napari allowed it.

    The thumbnail is drawn vector by vector in Python; napari has no public setting for it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        if not hasattr(layer, "_max_vectors_thumbnail"):
            return False
        try:
            layer._max_vectors_thumbnail = count
        except AttributeError:
            return False
        return True


def vectors_thumbnail_limit(layer: Vectors) -> int | None:
    """How many vectors the layer's thumbnail draws at most; ``None`` when napari hides it."""
    limit = _private(layer, "_max_vectors_thumbnail")
    return limit if isinstance(limit, int) else None
