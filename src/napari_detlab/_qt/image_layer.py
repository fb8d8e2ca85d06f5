"""The Annotator's image on screen: one Image layer, reused from image to image.

Replacing the data of one layer is far cheaper than removing and adding a layer on every
``n`` (napari rebuilds its layer controls, vispy its visual and shaders); a new layer is made
only when the user deleted it or when an RGB image follows a grey one (or back), which an
Image layer cannot switch. The view is reset only when the image size changes, so a person
who zoomed in on one corner keeps it across images of one size.

A plane of a stack (:mod:`~napari_detlab.core.stacks`) is shown with its whole stack, planes
first, so napari's dims slider walks the stack: :class:`ImageView` moves the slider to the
plane the Annotator shows, and tells which plane the slider points at when the person moves
it (the Annotator then shows that plane, saving the one it leaves).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from napari_detlab._layers import IMAGE_LAYER
from napari_detlab.core.images import contrast_for, read_stack
from napari_detlab.core.stacks import PlaneStack, plane_path, split_plane

if TYPE_CHECKING:
    import napari
    from napari.layers import Image

__all__ = ["ImageView", "show_pixels"]


class ImageView:
    """The Annotator's image layer, showing a single image or a plane within its stack.

    Parameters
    ----------
    viewer
        The viewer the layer lives in.
    """

    def __init__(self, viewer: napari.Viewer) -> None:
        self.viewer = viewer
        self.layer: Image | None = None
        self._stack: tuple[Path, PlaneStack] | None = None  # the file and its planes on screen
        self._showing = False  # the slider moves because an image is being shown

    def show(self, image: Path, pixels: np.ndarray) -> None:
        """Show ``image`` (decoded as ``pixels``): a plane with its stack, at that plane."""
        self._showing = True
        try:
            self._show(image, pixels)
        finally:
            self._showing = False

    def _show(self, image: Path, pixels: np.ndarray) -> None:
        where = split_plane(image)
        if where is not None and (self._stack is None or self._stack[0] != where[0]):
            self._stack = (where[0], read_stack(image, pixels))
        elif where is not None and self._stack is not None:
            self._stack[1].put(where[1], pixels)  # decoded by the Annotator (or its prefetch)
        if where is None:
            self._stack = None
            self.layer = show_pixels(self.viewer, self.layer, pixels)
            return
        assert self._stack is not None
        self.layer = show_pixels(self.viewer, self.layer, self._stack[1], contrast_of=pixels)
        if self.viewer.dims.current_step[0] != where[1]:
            self.viewer.dims.set_current_step(0, where[1])

    def plane_on_slider(self) -> Path | None:
        """The plane napari's dims slider points at, while a stack is shown; else ``None``."""
        if self._showing or self._stack is None or self.layer not in self.viewer.layers:
            return None
        planes = len(self._stack[1])
        plane = int(self.viewer.dims.current_step[0])
        return plane_path(self._stack[0], plane) if 0 <= plane < planes else None


def show_pixels(
    viewer: napari.Viewer,
    layer: Image | None,
    pixels: np.ndarray | PlaneStack,
    *,
    contrast_of: np.ndarray | None = None,
) -> Image:
    """Show ``pixels`` in ``layer`` (or a new layer, at the bottom); returns the layer used.

    ``contrast_of`` is the plane the contrast is set from when ``pixels`` is a stack (planes
    first); without it ``pixels`` is one image.
    """
    plane = np.asarray(pixels) if contrast_of is None else contrast_of
    rgb = plane.ndim == 3
    full, limits = contrast_for(plane)
    if layer is not None and (
        layer not in viewer.layers or layer.rgb != rgb or layer.data.ndim != pixels.ndim
    ):
        if layer in viewer.layers:
            viewer.layers.remove(layer)
        layer = None
    if layer is None:
        layer = viewer.add_image(pixels, name=IMAGE_LAYER, rgb=rgb, contrast_limits=limits)
        viewer.layers.move(viewer.layers.index(layer), 0)
        viewer.reset_view()
        return layer
    old_shape = layer.data.shape
    if layer.data is not pixels:  # another plane of the stack on screen: the slider moves
        layer.data = pixels
    if tuple(layer.contrast_limits_range) != full:
        layer.contrast_limits_range = full
    if tuple(layer.contrast_limits) != limits:
        layer.contrast_limits = limits
    if old_shape != pixels.shape:
        viewer.reset_view()
    return layer
