"""The Annotator's image on screen: one Image layer, reused from image to image.

Replacing the data of one layer is far cheaper than removing and adding a layer on every
``n`` (napari rebuilds its layer controls, vispy its visual and shaders); a new layer is made
only when the user deleted it or when an RGB image follows a grey one (or back), which an
Image layer cannot switch. The view is reset only when the image size changes, so a person
who zoomed in on one corner keeps it across images of one size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from napari_detlab._layers import IMAGE_LAYER
from napari_detlab.core.images import contrast_for

if TYPE_CHECKING:
    import napari
    import numpy as np
    from napari.layers import Image

__all__ = ["show_pixels"]


def show_pixels(viewer: napari.Viewer, layer: Image | None, pixels: np.ndarray) -> Image:
    """Show ``pixels`` in ``layer`` (or a new layer, at the bottom); returns the layer used."""
    rgb = pixels.ndim == 3
    full, limits = contrast_for(pixels)
    if layer is not None and (layer not in viewer.layers or layer.rgb != rgb):
        if layer in viewer.layers:
            viewer.layers.remove(layer)
        layer = None
    if layer is None:
        layer = viewer.add_image(pixels, name=IMAGE_LAYER, rgb=rgb, contrast_limits=limits)
        viewer.layers.move(viewer.layers.index(layer), 0)
        viewer.reset_view()
        return layer
    old_shape = layer.data.shape
    layer.data = pixels
    if tuple(layer.contrast_limits_range) != full:
        layer.contrast_limits_range = full
    if tuple(layer.contrast_limits) != limits:
        layer.contrast_limits = limits
    if old_shape[:2] != pixels.shape[:2]:
        viewer.reset_view()
    return layer
