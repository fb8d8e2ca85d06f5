"""The annotation store and how a person's boxes get there.

A folder of images with one ``annotations/<stem>.pt`` per image (:mod:`.store`), the Annotator's
model (:mod:`.annotator`) with the undo history and image prefetch it uses, a thread-safe cache
of file reads, and the built-in sample dataset.
"""

from __future__ import annotations

from napari_detlab.core.annotations.annotator import (
    Annotator,
    Drawing,
    Level,
    ShownImage,
)
from napari_detlab.core.annotations.file_cache import (
    FileCache,
    file_stamp,
)
from napari_detlab.core.annotations.history import (
    AnnotationHistory,
)
from napari_detlab.core.annotations.prefetch import (
    ImagePrefetcher,
)
from napari_detlab.core.annotations.sample_data import (
    SAMPLE_CLASSES,
    SAMPLE_COLORS,
    Scene,
    make_scene,
    render_scene,
    sample_ground_truth,
    write_sample_dataset,
    write_synthetic_dataset,
)
from napari_detlab.core.annotations.store import (
    ANNOTATIONS_DIRNAME,
    DEFAULT_CLASS,
    DEFAULT_COLORS,
    PREDICTIONS_DIRNAME,
    RUNS_DIRNAME,
    AnnotationError,
    AnnotationStore,
    ClassInUseError,
    ClassSpec,
    ImageAnnotation,
    next_color,
    predictions_dir_of,
    sanitize_boxes,
    stem_of,
    validate_annotation,
)

__all__ = [
    "ANNOTATIONS_DIRNAME",
    "DEFAULT_CLASS",
    "DEFAULT_COLORS",
    "PREDICTIONS_DIRNAME",
    "RUNS_DIRNAME",
    "SAMPLE_CLASSES",
    "SAMPLE_COLORS",
    "AnnotationError",
    "AnnotationHistory",
    "AnnotationStore",
    "Annotator",
    "ClassInUseError",
    "ClassSpec",
    "Drawing",
    "FileCache",
    "ImageAnnotation",
    "ImagePrefetcher",
    "Level",
    "Scene",
    "ShownImage",
    "file_stamp",
    "make_scene",
    "next_color",
    "predictions_dir_of",
    "render_scene",
    "sample_ground_truth",
    "sanitize_boxes",
    "stem_of",
    "validate_annotation",
    "write_sample_dataset",
    "write_synthetic_dataset",
]
