"""Editing the selected boxes of a class layer from the keyboard: arrow keys move and resize.

Only the selected shapes are replaced (removed, then added back moved), so a key press costs
the same among 1,000 boxes as among 10; assigning the layer's whole ``data`` would rebuild
every shape (about 0.6 ms each in napari). The moved boxes stay selected, for the next press.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from napari_detlab.core.boxes import napari_to_xyxy, nudged_boxes, xyxy_to_napari

if TYPE_CHECKING:
    from napari.layers import Shapes

__all__ = ["nudge_selected"]


def nudge_selected(
    layer: Shapes,
    move: tuple[float, float],
    grow: tuple[float, float],
    image_size: tuple[int, int] | None,
) -> int:
    """Move the selected boxes by ``move`` and resize them by ``grow`` (image pixels, x then
    y), within an image of ``image_size``; returns how many boxes changed."""
    chosen = sorted(layer.selected_data)
    if not chosen:
        return 0
    boxes = napari_to_xyxy([layer.data[index] for index in chosen])
    changed = nudged_boxes(boxes, move, grow, image_size)
    layer.remove_selected()
    layer.add_rectangles(list(xyxy_to_napari(changed)))
    count = layer.nshapes
    layer.selected_data = set(range(count - len(chosen), count))
    return len(chosen)
