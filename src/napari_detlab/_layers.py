"""The names and looks of the layers napari-detlab puts in a viewer, in one place.

The reader, the writer and the docks all name layers; a Shapes layer called
``boxes: cell`` is the Annotator's layer of class ``cell`` whoever made it, and the writer
recognises it by the same prefix. Plain strings and numbers: no Qt, no napari.
"""

from __future__ import annotations

__all__ = [
    "ANCHORS_AT_POINT_LAYER",
    "ANCHOR_CENTRES_LAYER",
    "ANCHOR_IMAGE_LAYER",
    "ANCHOR_TRUTH_LAYER",
    "BOX_EDGE_WIDTH",
    "CLASS_LAYER_PREFIX",
    "IMAGE_LAYER",
    "PREDICTION_LAYER_PREFIX",
    "PROPOSALS_LAYER",
    "PROPOSAL_FACE_ALPHA",
    "REVIEW_CAPTIONS_LAYER",
    "REVIEW_OUTLINES_LAYER",
    "class_layer_name",
    "class_of_layer_name",
]

# The Annotator: the image on screen and one Shapes layer per class.
IMAGE_LAYER = "image"
CLASS_LAYER_PREFIX = "boxes: "
BOX_EDGE_WIDTH = 2
# The model's proposals (pre-labels) on an image nobody annotated yet: not saved until
# accepted. Their boxes are filled, translucent in the class colour, where a class layer's
# are hollow, so the two never look alike.
PROPOSALS_LAYER = "proposals (not saved)"
PROPOSAL_FACE_ALPHA = 0.25
# The reader shows a prediction file's boxes per class under this prefix.
PREDICTION_LAYER_PREFIX = "predictions: "
# The Review dock: outlines as one Vectors layer, captions as one Points layer.
REVIEW_OUTLINES_LAYER = "review: boxes"
REVIEW_CAPTIONS_LAYER = "review: predictions"
# The AnchorViewer's overlay.
ANCHOR_CENTRES_LAYER = "anchor centres"
ANCHORS_AT_POINT_LAYER = "anchors at point"
ANCHOR_TRUTH_LAYER = "ground truth by best IoU"
ANCHOR_IMAGE_LAYER = "anchor viewer image"


def class_layer_name(class_name: str) -> str:
    """The layer name of a class; the prefix keeps it apart from the user's own layers."""
    return f"{CLASS_LAYER_PREFIX}{class_name}"


def class_of_layer_name(layer_name: str) -> str:
    """The class a layer's name stands for: ``"boxes: cell"`` -> ``"cell"``; other names as
    they are (a Shapes layer the user named ``cell`` is class ``cell``)."""
    return layer_name.removeprefix(CLASS_LAYER_PREFIX).strip()
