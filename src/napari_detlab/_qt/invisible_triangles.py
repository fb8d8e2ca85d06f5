"""Keep the transparent faces of a Shapes layer's boxes out of the GPU's work.

A class layer draws its boxes as outlines: each rectangle is two face triangles with a
transparent colour and eight edge triangles. napari sends all of them to vispy, and under
Mesa's software OpenGL every repaint rasterises and blends the fragments of each transparent
face, which change no pixel. With 1,000 boxes on an image that was about a third of what the
boxes add to each repaint (each ``n``, each pan or zoom step).

:func:`skip_invisible_triangles` makes the mesh of one of *our* Shapes layers leave out the
triangles whose colour has zero alpha, while the layer blends as ``translucent``,
``translucent_no_depth`` or ``additive`` (where such a fragment adds nothing); under
``opaque`` or ``minimum`` blending a transparent face does paint, so every triangle is sent.
Only what vispy draws changes: napari's own mesh, which finds the box under the mouse, keeps
every face, so a click inside a box still selects it. When napari's canvas cannot be reached
nothing is changed and repaints are merely slower.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import numpy as np

from napari_detlab._qt.napari_internals import shapes_triangle_mesh

if TYPE_CHECKING:
    import napari
    from napari.layers import Shapes
    from vispy.visuals import MeshVisual

__all__ = [
    "BLENDINGS_HIDING_TRANSPARENT",
    "skip_invisible_triangles",
    "skips_invisible_triangles",
    "visible_triangles",
]

# napari's blendings under which a fragment of alpha 0 leaves the pixel as it was.
BLENDINGS_HIDING_TRANSPARENT = frozenset({"translucent", "translucent_no_depth", "additive"})


def visible_triangles(faces: np.ndarray, colors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``faces`` and their per-face ``colors`` without the fully transparent ones.

    One transparent triangle is kept when nothing else is left: vispy and napari give an
    empty mesh a single invisible triangle rather than none.
    """
    keep = colors[:, 3] > 0
    if keep.all():
        return faces, colors
    if not keep.any():
        return faces[:1], colors[:1]
    return faces[keep], colors[keep]


def skip_invisible_triangles(viewer: napari.Viewer, layer: Shapes) -> bool:
    """Make the mesh drawing ``layer`` leave out transparent triangles; whether it could.

    The layer's triangles are sent again when its blending changes, as that decides whether
    they may be left out.
    """
    found = shapes_triangle_mesh(viewer, layer)
    if found is None:
        return False
    mesh, resend = found
    layer_ref = weakref.ref(layer)
    mesh_ref = weakref.ref(mesh)  # the wrapper is stored on the mesh: no reference cycle
    set_all = type(mesh).set_data

    def set_data(
        vertices: np.ndarray | None = None,
        faces: np.ndarray | None = None,
        vertex_colors: np.ndarray | None = None,
        face_colors: np.ndarray | None = None,
        **others: object,
    ) -> None:
        owner = layer_ref()
        if (
            faces is not None
            and face_colors is not None
            and len(faces) == len(face_colors)
            and owner is not None
            and str(owner.blending) in BLENDINGS_HIDING_TRANSPARENT
        ):
            faces, face_colors = visible_triangles(faces, np.asarray(face_colors))
        set_all(
            mesh_ref(), vertices=vertices, faces=faces, vertex_colors=vertex_colors,
            face_colors=face_colors, **others,
        )  # fmt: skip

    set_data.skips_invisible_triangles = True
    mesh.set_data = set_data
    send_again = weakref.WeakMethod(resend)  # napari's vispy layer goes with the canvas

    def blending_changed(_event: object) -> None:
        method = send_again()
        if method is not None:
            method()

    layer.events.blending.connect(blending_changed)
    resend()
    return True


def skips_invisible_triangles(viewer: napari.Viewer, layer: Shapes) -> bool:
    """Whether the mesh drawing ``layer`` went through :func:`skip_invisible_triangles`."""
    found = shapes_triangle_mesh(viewer, layer)
    mesh: MeshVisual | None = None if found is None else found[0]
    return getattr(getattr(mesh, "set_data", None), "skips_invisible_triangles", False)
