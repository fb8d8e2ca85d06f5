"""Keep vispy from recompiling a layer's shaders each time its data is replaced.

Every ``n`` replaces the boxes of each class layer, every Review slider step the outlines,
every hover of the AnchorViewer the anchors. vispy's ``MeshVisual`` then builds a
*new* colour-transform shader function on its next draw, although its code is the same as
before, and a new function object means a new program: vispy regenerates the GLSL in Python
and the driver compiles and links it again. Under Mesa's software OpenGL that was about
25 ms of every ``n`` at 4 MP (two class layers, two meshes each), a quarter of the
navigation budget.

:func:`reuse_mesh_shaders` gives the meshes of *our* layers a colour transform that
is built once per distinct input (per-vertex colours, or a colormap with given limits) and
then handed back as the same object, which vispy recognises as unchanged. Other layers and
other plugins are not touched. Reaching the visual goes through napari's canvas, which has
no public accessor (see :mod:`~napari_detlab._qt.napari_internals`); when that path is
missing, nothing is changed and navigation is merely slower.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from napari_detlab._qt.napari_internals import (
    class_color_transform_builder,
    layer_meshes,
    mesh_color_limits,
    mesh_color_transform_builder,
    set_mesh_color_transform_builder,
)

if TYPE_CHECKING:
    import napari
    from napari.layers import Layer
    from vispy.visuals import MeshVisual
    from vispy.visuals.shaders import Function

__all__ = ["reuse_mesh_shaders", "reuses_mesh_shaders"]


def _transform_key(mesh: MeshVisual, colors: np.ndarray) -> tuple[object, ...]:
    """What the colour transform's GLSL depends on, mirroring ``MeshVisual``'s own test."""
    if colors.ndim == 2 and colors.shape[1] == 1:
        low, high = mesh_color_limits(mesh)
        return ("colormap", low, high, mesh.cmap.glsl_map)
    return ("per-vertex colour",)


def _built_once(mesh: MeshVisual) -> Callable[[np.ndarray], Function]:
    """vispy's colour-transform builder of ``mesh``, returning the same function for the same key.

    The mesh is held weakly so the wrapper, stored on the mesh, makes no reference cycle.
    """
    build = class_color_transform_builder(mesh)
    mesh_ref = weakref.ref(mesh)
    built: dict[tuple[object, ...], Function] = {}

    def build_color_transform(colors: np.ndarray) -> Function:
        owner = mesh_ref()
        key = _transform_key(owner, colors)
        if key not in built:
            built.clear()
            built[key] = build(owner, colors)
        return built[key]

    build_color_transform.reuses_shaders = True
    return build_color_transform


def reuse_mesh_shaders(viewer: napari.Viewer, layer: Layer) -> int:
    """Make the meshes drawing ``layer`` reuse their compiled shaders; returns how many.

    Returns 0 (and changes nothing) when the layer's visual cannot be found, e.g. a viewer
    without a window or a napari whose canvas is organised differently.
    """
    meshes = layer_meshes(viewer, layer)
    for mesh in meshes:
        set_mesh_color_transform_builder(mesh, _built_once(mesh))
    return len(meshes)


def reuses_mesh_shaders(viewer: napari.Viewer, layer: Layer) -> bool:
    """Whether every mesh drawing ``layer`` went through :func:`reuse_mesh_shaders`."""
    meshes = layer_meshes(viewer, layer)
    return bool(meshes) and all(
        getattr(mesh_color_transform_builder(mesh), "reuses_shaders", False) for mesh in meshes
    )
