"""The Review dock's two layers: outlines as one Vectors layer, captions as one Points layer.

Both are refilled in one array assignment each per slider step (see the Review dock's module
doc for why not a Shapes layer); the viewer's dimension update that every assignment
triggers is held back during a refill and run once per image, the outline thumbnail is kept
small and the outline meshes reuse their shaders.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from napari.layers.utils.color_encoding import NominalColorEncoding
from napari.utils.colormaps.categorical_colormap import CategoricalColormap

from napari_detlab._layers import REVIEW_CAPTIONS_LAYER, REVIEW_OUTLINES_LAYER
from napari_detlab._qt.napari_internals import dims_updater, limit_vectors_thumbnail
from napari_detlab._qt.shader_reuse import reuse_mesh_shaders
from napari_detlab.core.evaluation.image_review import STATUSES, ReviewOverlay

if TYPE_CHECKING:
    import napari
    from napari.layers import Points, Vectors

__all__ = ["STATUS_COLORS", "ReviewLayers"]

# The colour of each status: true positive, false positive, missed ground truth, and
# predictions on an image nobody has annotated (nothing to compare with).
STATUS_COLORS = dict(zip(STATUSES, ("#2ecc40", "#ff4136", "#ffdc00", "#39cccc"), strict=True))
_STATUS_RGBA = {
    name: np.array([int(c[i : i + 2], 16) / 255 for i in (1, 3, 5)] + [1.0])
    for name, c in STATUS_COLORS.items()
}


class ReviewLayers:
    """The outlines and captions layers of one viewer, created on first use.

    Parameters
    ----------
    viewer
        Where the layers go; a user may delete them, and they come back on the next draw.
    """

    def __init__(self, viewer: napari.Viewer) -> None:
        self.viewer = viewer
        self._outlines: Vectors | None = None
        self._captions: Points | None = None
        self._dims_synced = -1  # the load the viewer's dimensions were last updated for

    @property
    def present(self) -> bool:
        """Whether both layers are in the viewer (a deleted one needs a full redraw)."""
        layers = self.viewer.layers
        return self._outlines in layers and self._captions in layers

    def set_visible(self, shown: bool) -> None:
        """Show or hide the layers that exist (none are created to be hidden)."""
        for layer in (self._outlines, self._captions):
            if layer is not None and layer in self.viewer.layers:
                layer.visible = shown

    def draw(self, overlay: ReviewOverlay, load: int) -> None:
        """Refill both layers, one array assignment each (no per-box objects).

        Every data assignment makes the viewer recompute its dimensions from all layers
        (twice for Points); the review layers never reach beyond their image, so that is
        done once per ``load`` (a count the dock raises whenever it reads another image or
        annotation) instead of three times per slider step.
        """
        outlines, captions = self.get()
        recompute_dims = dims_updater(self.viewer)
        with contextlib.ExitStack() as stack:
            if recompute_dims is not None:
                for layer in (outlines, captions):
                    stack.enter_context(layer.events.data.blocker(recompute_dims))
            outlines.data = overlay.segments
            if len(overlay.segments):
                colors = np.array([_STATUS_RGBA[s] for s in overlay.status]).reshape(-1, 4)
                outlines.edge_color = np.repeat(colors, 4, axis=0)
            if captions.selected_data:
                captions.selected_data = set()
            captions.data = overlay.corners
            captions.features = pd.DataFrame(
                {"caption": overlay.captions, "status": overlay.caption_status}
            )
        if recompute_dims is not None and self._dims_synced != load:
            self._dims_synced = load
            recompute_dims()

    def get(self) -> tuple[Vectors, Points]:
        """The two layers, created on first use (or again if the user deleted one)."""
        layers = self.viewer.layers
        active = layers.selection.active
        if self._outlines is None or self._outlines not in layers:
            self._outlines = self.viewer.add_vectors(
                np.zeros((0, 2, 2)),
                name=REVIEW_OUTLINES_LAYER,
                edge_width=2,
                length=1,
                vector_style="line",
                opacity=1.0,
            )
            # The thumbnail is drawn vector by vector in Python: with 4,000 segments that is
            # half of a slider step (bench_review: p95 94 ms with a sample, 175 ms without).
            # napari has no public setting for it; if the private one goes, only speed is lost.
            limit_vectors_thumbnail(self._outlines, 32)
            reuse_mesh_shaders(self.viewer, self._outlines)  # no recompile per slider step
        if self._captions is None or self._captions not in layers:
            self._captions = self.viewer.add_points(
                np.zeros((0, 2)),
                name=REVIEW_CAPTIONS_LAYER,
                size=6,
                border_width=0,
                face_color="white",
                features=pd.DataFrame(
                    {"caption": pd.Series([], dtype=object), "status": pd.Series([], dtype=object)}
                ),
                # New rows get these until the features of the update arrive a moment later.
                feature_defaults={"caption": "", "status": "unchecked"},
                text={
                    "string": "{caption}",
                    "size": 9,
                    "anchor": "upper_left",
                    "color": NominalColorEncoding(
                        feature="status", colormap=CategoricalColormap(colormap=STATUS_COLORS)
                    ),
                },
            )
        # Adding a layer selects it; give the selection back so the Annotator keeps drawing
        # in its class layer.
        if active is not None and active in layers and layers.selection.active is not active:
            layers.selection.active = active
        return self._outlines, self._captions
