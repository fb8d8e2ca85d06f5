"""napari-detlab's Qt-free core: everything the docks and the ``detlab`` CLI do, without a viewer.

The wings, from the ground up (each imports only the ones above it in this list):

- the base: :mod:`.boxes` (box formats, overlaps, the one xyxy <-> napari conversion),
  :mod:`.images`, :mod:`.stacks` (a multi-page or 3-D / 4-D TIFF as planes named by file and
  plane), :mod:`.orientation` (a photo's EXIF orientation on pixels, sizes and boxes),
  :mod:`.atomic` (atomic writes, safe ``.pt`` reads), :mod:`.errors`, :mod:`.json_dataclass`;
- :mod:`.annotations`: the store of a person's boxes, the Annotator's model, history, prefetch;
- :mod:`.model`: config, device, builder, weights, checkpoints, prediction;
- :mod:`.anchors`: anchor layout on the real feature maps, coverage, fitted anchors;
- :mod:`.evaluation`: COCO metrics and the Review rules;
- :mod:`.training`: the training loop, its data and its validation step, and launching it
  in a child process;
- :mod:`.assist`: the model helping the person annotate (pre-labels, what to label next).

The names below are imported on first use (``from napari_detlab.core import train`` loads the
training wing then, not before), so importing one module of the core never pays for all of
it: the CLI's verbs and napari's reader stay quick to start.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submodules=["anchors", "annotations", "assist", "evaluation", "model", "training"],
    submod_attrs={
        "errors": ["DetlabError"],
        "annotations": ["AnnotationStore", "ClassSpec", "ImageAnnotation"],
        "model": ["ModelConfig", "Prediction", "predict_folder", "resolve_model_config"],
        "training": ["TrainOptions", "train"],
        "anchors": ["AnchorLayout", "anchor_report", "suggest_anchors"],
        "evaluation": ["coco_metrics", "filter_predictions", "match_predictions"],
    },
)
