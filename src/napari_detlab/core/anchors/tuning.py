"""The AnchorViewer's model: the config being tuned, the boxes it is measured on, the answers.

The dock (:mod:`napari_detlab._qt.anchor_viewer`) keeps the form, the layers, the timers and
the worker threads. What the form's text means, which config follows from it, which image
and which dataset boxes the overlay and the figures describe, and how "Suggest" and
"Revert" change the config live here, where a script or a test drives them without a
viewer (as napari-animation's ``Animation`` sits under its widget). The slow steps
(:meth:`DatasetBoxes.load <napari_detlab.core.anchors.dataset_boxes.DatasetBoxes.load>`,
:func:`~napari_detlab.core.anchors.report.anchor_report`,
:func:`~napari_detlab.core.anchors.suggest.suggest_anchors`) are plain functions the dock runs
in workers and whose results it hands back here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from napari_detlab.core.anchors.coverage import BoxCoverage, ImageBoxes, measure_coverage
from napari_detlab.core.anchors.dataset_boxes import DatasetBoxes, read_image_boxes
from napari_detlab.core.anchors.layout import AnchorLayout
from napari_detlab.core.anchors.report import AnchorReport
from napari_detlab.core.anchors.suggest import AnchorSuggestion
from napari_detlab.core.annotations.store import DEFAULT_CLASS, AnnotationStore, stem_of
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.model.config import (
    ModelConfig,
    format_levels,
    parse_levels,
    resolve_model_config,
)

__all__ = ["AnchorFields", "AnchorTuning"]


@dataclass(frozen=True)
class AnchorFields:
    """The anchor settings as a form shows them, per-level lists as text (``"16; 32; 64"``).

    Attributes
    ----------
    backbone, fpn
        The feature extractor, which fixes how many levels of anchors there are.
    sizes
        Anchor sizes per level: ``"16; 32; 64"`` or ``"16, 24; 32, 48"``.
    ratios
        Aspect ratios h/w: one group for every level, or one per level.
    min_size, max_size
        The resize torchvision applies before the anchors are laid.
    """

    backbone: str
    fpn: bool
    sizes: str
    ratios: str
    min_size: int
    max_size: int

    @classmethod
    def of(cls, config: ModelConfig) -> AnchorFields:
        """``config``'s settings as text; ratios equal on every level show once."""
        return cls(
            backbone=config.backbone,
            fpn=config.fpn,
            sizes=format_levels(config.anchor_sizes),
            ratios=format_levels(config.aspect_ratios, collapse=True),
            min_size=config.min_size,
            max_size=config.max_size,
        )

    def apply_to(self, config: ModelConfig) -> ModelConfig:
        """``config`` with these settings (not yet validated).

        The backbone changes first (:meth:`ModelConfig.with_backbone`: a COCO detector that
        the new backbone lacks falls back to ImageNet weights), so that ratios given once are
        repeated on as many levels as the new backbone has.

        Raises
        ------
        ConfigError
            A size or ratio that is not a number, or an unknown backbone.
        """
        config = config.with_backbone(self.backbone, self.fpn)
        return config.replace(
            min_size=self.min_size,
            max_size=self.max_size,
            anchor_sizes=parse_levels(self.sizes),
            aspect_ratios=parse_levels(self.ratios, config.num_levels),
        )


class AnchorTuning:
    """What the AnchorViewer shows and changes, without Qt.

    Parameters
    ----------
    store
        The dataset open in the session, if any.

    Attributes
    ----------
    store
        The dataset whose class names fill a config without classes, and whose files are read.
    base_config
        The config the form was last loaded from: the fields' settings are applied to it.
    config
        The last valid config the fields described (kept while the fields are invalid, so the
        overlay keeps showing it).
    dataset
        The dataset's boxes once loaded (``None`` while loading or without a dataset).
    image_path, image
        The image the overlay describes, and its saved boxes with its size.
    layout
        The anchors of :attr:`config` on that image (or on the canvas's image).
    report
        The last figures measured on the dataset.
    suggestion, before_suggestion
        The last fitted anchors, and the config to go back to while they are shown.
    """

    def __init__(self, store: AnnotationStore | None = None) -> None:
        self.store = store
        self.base_config: ModelConfig | None = None
        self.config: ModelConfig | None = None
        self.dataset: DatasetBoxes | None = None
        self.image_path: Path | None = None
        self.image: ImageBoxes | None = None
        self.layout: AnchorLayout | None = None
        self.report: AnchorReport | None = None
        self.suggestion: AnchorSuggestion | None = None
        self.before_suggestion: ModelConfig | None = None

    # -- the config ---------------------------------------------------------------------
    def dataset_classes(self) -> list[str]:
        """The dataset's class names, or :data:`DEFAULT_CLASS` alone when it names none.

        Read only when a config lacks classes: the store reads every annotation file for it.
        """
        if self.store is not None:
            try:
                return self.store.class_names() or [DEFAULT_CLASS]
            except (OSError, DetlabError):  # a broken class list: the Annotator says why
                pass
        return [DEFAULT_CLASS]

    def default_config(self) -> ModelConfig:
        """The config shown before any dock chose one: the fast preset for the dataset."""
        return resolve_model_config(self.dataset_classes(), preset_name="fast")

    def load_config(self, config: ModelConfig) -> AnchorFields:
        """Start from ``config``; returns the settings for the form to show."""
        self.base_config = config
        return AnchorFields.of(config)

    def read_fields(self, fields: AnchorFields) -> ModelConfig:
        """The validated config ``fields`` describe, which becomes :attr:`config`.

        Raises
        ------
        ConfigError
            The fields describe no working model (the message names the fix);
            :attr:`config` keeps the last valid one.
        """
        base = self.base_config if self.base_config is not None else self.default_config()
        config = fields.apply_to(base)
        classes = config.classes or self.dataset_classes()
        self.config = resolve_model_config(classes, config=config)
        return self.config

    # -- the dataset and the image ------------------------------------------------------
    def set_store(self, store: AnnotationStore | None) -> None:
        """Another dataset (or none): its boxes and figures are still to be read."""
        self.store = store
        self.dataset = None
        self.report = None

    def accept_dataset(self, dataset: DatasetBoxes) -> bool:
        """Take the boxes a worker loaded; False (and ignored) when they are of another store."""
        if dataset.store is not self.store:
            return False
        self.dataset = dataset
        return True

    def set_image(self, path: str | Path) -> ImageBoxes:
        """Make ``path`` the image the overlay describes: read its saved boxes and size.

        Raises
        ------
        ImageReadError
            Its size is unknown; :attr:`image` then stays the previous image's.
        """
        self.image_path = Path(path)
        self.image = read_image_boxes(self.store, self.image_path)
        return self.image

    @property
    def image_size(self) -> tuple[int, int] | None:
        """``(height, width)`` of :attr:`image`, if one was read."""
        return None if self.image is None else self.image.image_size

    def shows(self, path: str | Path) -> bool:
        """Whether ``path`` is the image the overlay describes."""
        return self.image_path is not None and stem_of(path) == stem_of(self.image_path)

    def update_dataset(self, path: str | Path) -> None:
        """``path``'s annotation file was written: re-read it alone into :attr:`dataset`.

        For the image on screen, call :meth:`set_image` first: the boxes it read are reused
        rather than read a second time.
        """
        if self.dataset is None:
            return
        current = self.image
        same = current is not None and stem_of(current.image) == stem_of(path)
        self.dataset.update(path, current if same else None)

    # -- what the overlay and the figures show -----------------------------------------
    def place_anchors(self, image_size: tuple[int, int]) -> AnchorLayout | None:
        """Lay :attr:`config`'s anchors on an image of ``image_size``: the new :attr:`layout`
        (``None`` before any config).

        Raises
        ------
        ConfigError
            The config's backbone gives another number of levels than its anchors have.
        """
        if self.config is None:
            return None
        self.layout = AnchorLayout.from_config(self.config, image_size)
        return self.layout

    def image_coverage(self) -> BoxCoverage | None:
        """How :attr:`config` covers the image's own boxes; ``None`` with nothing to measure."""
        if self.config is None or self.image is None or not len(self.image.boxes):
            return None
        return measure_coverage(self.config, [self.image])

    # -- suggestions --------------------------------------------------------------------
    def accept_suggestion(self, suggestion: AnchorSuggestion) -> AnchorFields:
        """Show fitted anchors, keeping the config to revert to; returns the form's settings."""
        self.suggestion = suggestion
        self.before_suggestion = self.config
        return self.load_config(suggestion.config)

    def revert(self) -> AnchorFields | None:
        """Back to the config shown before the suggestion; ``None`` when there is none."""
        if self.before_suggestion is None:
            return None
        fields = self.load_config(self.before_suggestion)
        self.before_suggestion = None
        return fields
