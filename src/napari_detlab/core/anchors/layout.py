"""Where a config's anchors really are, for one image size: :class:`AnchorLayout`.

The tutorial's AnchorViewer asked for the feature-map size and fed a random tensor. Here every
number comes from the model itself: the resized size from torchvision's own
``GeneralizedRCNNTransform`` (shorter side to ``min_size`` unless the longer side would pass
``max_size``, then padded to a multiple of 32), the feature-map sizes from the config's actual
backbone, and the anchors from torchvision's ``AnchorGenerator`` on those maps. The backbone
runs on PyTorch's ``meta`` device, which computes shapes without arithmetic, so a layout costs
milliseconds even for a ResNet-50 at 1333 px; layouts are cached per config and image size.

Anchors live in the resized space (that is where the RPN matches them); :meth:`AnchorLayout.
to_original` maps them back to the original image's pixels by dividing by the very ratios
torchvision's ``resize_boxes`` multiplies ground-truth boxes with, so they overlay the image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList

from napari_detlab.core.boxes import as_boxes
from napari_detlab.core.model.builder import build_anchor_generator, build_backbone
from napari_detlab.core.model.config import ConfigError, ModelConfig

__all__ = [
    "AnchorLayout",
    "anchor_shapes",
    "feature_map_sizes",
    "resize_geometry",
    "transform_geometry",
]

# GeneralizedRCNNTransform pads every batch to a multiple of this (its ``size_divisible``).
SIZE_DIVISIBLE = 32


def _anchor_key(config: ModelConfig) -> tuple[object, ...]:
    """The config fields a layout depends on (hashable, so layouts can be cached)."""
    return (
        config.backbone,
        bool(config.fpn),
        int(config.min_size),
        int(config.max_size),
        tuple(tuple(level) for level in config.anchor_sizes),
        tuple(tuple(level) for level in config.aspect_ratios),
    )


@lru_cache(maxsize=4096)
def resize_geometry(
    image_size: tuple[int, int], min_size: int, max_size: int
) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(resized (h, w), padded (h, w))`` exactly as torchvision's transform computes them.

    ``GeneralizedRCNNTransform`` (eval mode) scales by ``min(min_size / short, max_size /
    long)`` and calls ``interpolate(scale_factor=..., recompute_scale_factor=True)``, whose
    output is ``floor(float(side) * scale)``; ``batch_images`` then pads each side up to a
    multiple of 32. The same Python float arithmetic is repeated here (a test checks it against
    the transform itself on many sizes) because running the transform costs milliseconds and
    a dataset may hold a thousand distinct sizes.
    """
    height, width = (int(v) for v in image_size)
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    scale = min(float(min_size) / min(height, width), float(max_size) / max(height, width))
    resized = (math.floor(float(height) * scale), math.floor(float(width) * scale))
    if min(resized) < 1:
        raise ValueError(
            f"a {height}x{width} image shrinks to {resized[0]}x{resized[1]} px under "
            f"min_size={min_size}, max_size={max_size}; torchvision cannot resize it"
        )
    padded = tuple(int(math.ceil(float(v) / SIZE_DIVISIBLE) * SIZE_DIVISIBLE) for v in resized)
    return resized, (padded[0], padded[1])


def transform_geometry(
    image_size: tuple[int, int], min_size: int, max_size: int
) -> tuple[tuple[int, int], tuple[int, int]]:
    """The same as :func:`resize_geometry`, asked of torchvision's transform on a meta tensor.

    Slower (milliseconds); the reference the fast version is tested against.
    """
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    transform = GeneralizedRCNNTransform(
        min_size, max_size, image_mean=[0.0] * 3, image_std=[1.0] * 3, size_divisible=SIZE_DIVISIBLE
    ).eval()
    image_list, _ = transform([torch.empty(3, *image_size, device="meta")])
    resized = tuple(int(v) for v in image_list.image_sizes[0])
    padded = tuple(int(v) for v in image_list.tensors.shape[-2:])
    return (resized[0], resized[1]), (padded[0], padded[1])


@lru_cache(maxsize=8)
def _meta_backbone(backbone: str, fpn: bool) -> torch.nn.Module:
    config = ModelConfig(classes=["_"], backbone=backbone, fpn=fpn)
    with torch.device("meta"):
        return build_backbone(config).eval()


@lru_cache(maxsize=512)
def feature_map_sizes(
    backbone: str, fpn: bool, padded_size: tuple[int, int]
) -> tuple[tuple[int, int], ...]:
    """The ``(h, w)`` of every feature map the backbone gives the RPN for a padded input.

    Obtained by running the config's real backbone (:func:`~napari_detlab.core.model.builder.
    build_backbone`) on a ``meta`` zeros tensor, so the sizes are those of training, whatever
    the strides and paddings inside the network.
    """
    model = _meta_backbone(backbone, fpn)
    with torch.no_grad():
        features = model(torch.zeros(1, 3, *padded_size, device="meta"))
    if isinstance(features, torch.Tensor):  # FasterRCNN wraps a single map as {"0": map}
        features = {"0": features}
    return tuple((int(f.shape[-2]), int(f.shape[-1])) for f in features.values())


def anchor_shapes(config: ModelConfig) -> list[np.ndarray]:
    """Per level, the zero-centred ``(A, 4)`` anchors torchvision tiles (rounded half-sizes)."""
    generator = build_anchor_generator(config)
    return [cell.numpy().astype(np.float32) for cell in generator.cell_anchors]


@dataclass(frozen=True, eq=False)
class AnchorLayout:
    """Every anchor of a config for one original image size, in both coordinate spaces.

    Attributes
    ----------
    image_size
        Original ``(height, width)``.
    resized_size, padded_size
        ``(height, width)`` the model sees after resizing, and after padding to 32.
    scale
        ``(ratio_h, ratio_w)``: resized / original, as float32 like torchvision's
        ``resize_boxes`` (multiply original boxes by it to get resized ones).
    grid_sizes, strides
        Per level, the feature map's ``(h, w)`` and the anchor spacing ``(sy, sx)``.
    cell_anchors
        Per level, the ``(A, 4)`` zero-centred anchors placed at each grid position.
    """

    image_size: tuple[int, int]
    resized_size: tuple[int, int]
    padded_size: tuple[int, int]
    scale: tuple[float, float]
    grid_sizes: tuple[tuple[int, int], ...]
    strides: tuple[tuple[int, int], ...]
    cell_anchors: tuple[np.ndarray, ...]
    sizes: tuple[tuple[float, ...], ...] = ()
    ratios: tuple[tuple[float, ...], ...] = ()

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: ModelConfig, image_size: Sequence[int]) -> AnchorLayout:
        """The layout of ``config`` for an image of ``(height, width)`` (cached)."""
        return _cached_layout(_anchor_key(config), (int(image_size[0]), int(image_size[1])))

    # -- sizes --------------------------------------------------------------------------
    @property
    def num_levels(self) -> int:
        return len(self.grid_sizes)

    @property
    def anchors_per_location(self) -> tuple[int, ...]:
        return tuple(len(cell) for cell in self.cell_anchors)

    @property
    def level_counts(self) -> np.ndarray:
        """How many anchors each level holds (grid cells x anchors per cell)."""
        return np.array(
            [
                h * w * len(cell)
                for (h, w), cell in zip(self.grid_sizes, self.cell_anchors, strict=True)
            ],
            np.int64,
        )

    @property
    def level_offsets(self) -> np.ndarray:
        """Index of each level's first anchor in torchvision's concatenated anchor list."""
        return np.concatenate([[0], np.cumsum(self.level_counts)])

    @property
    def num_anchors(self) -> int:
        return int(self.level_counts.sum())

    def level_of(self, anchor_index: np.ndarray) -> np.ndarray:
        """Level of anchors given by their index in the concatenated list."""
        return np.searchsorted(self.level_offsets, np.asarray(anchor_index), side="right") - 1

    # -- coordinates --------------------------------------------------------------------
    def to_resized(self, boxes: object) -> np.ndarray:
        """Original-pixel xyxy boxes as the RPN sees them (float32, torchvision's arithmetic)."""
        b = torch.from_numpy(as_boxes(boxes, np.float32))
        ratio_h, ratio_w = self.scale
        return (b * torch.tensor([ratio_w, ratio_h, ratio_w, ratio_h], dtype=torch.float32)).numpy()

    def to_original(self, boxes: object) -> np.ndarray:
        """Resized-space xyxy boxes (anchors) back in the original image's pixels."""
        b = as_boxes(boxes, np.float64)
        ratio_h, ratio_w = self.scale
        return b / np.array([ratio_w, ratio_h, ratio_w, ratio_h], np.float64)

    def anchors_resized(self, level: int | None = None) -> np.ndarray:
        """All anchors (or one level's) in torchvision's order, resized-space float32 xyxy.

        Produced by torchvision's ``AnchorGenerator`` itself on an ``ImageList`` of the padded
        size and feature maps of the backbone's sizes, so the order and rounding are the
        RPN's: per level, grid row-major, then the cell's anchors.
        """
        anchors = _generated_anchors(self)
        if level is None:
            return anchors
        offsets = self.level_offsets
        return anchors[offsets[level] : offsets[level + 1]]

    def anchors(self, level: int | None = None) -> np.ndarray:
        """Like :meth:`anchors_resized`, mapped back to original-image pixels (float64)."""
        return self.to_original(self.anchors_resized(level))

    def centres(self, level: int) -> np.ndarray:
        """``(n, 2)`` ``(x, y)`` anchor centres of one level, in original-image pixels.

        torchvision places a cell's anchors around the cell's top-left corner
        ``(j * sx, i * sy)`` (no half-stride offset); half-sizes are rounded symmetrically, so
        that corner is also each anchor's centre.
        """
        (gh, gw), (sy, sx) = self.grid_sizes[level], self.strides[level]
        ys, xs = np.meshgrid(np.arange(gh) * sy, np.arange(gw) * sx, indexing="ij")
        ratio_h, ratio_w = self.scale
        return np.stack([xs.ravel() / ratio_w, ys.ravel() / ratio_h], axis=1).astype(np.float64)

    def nearest_cell(self, x: float, y: float, level: int) -> tuple[int, int]:
        """``(row, col)`` of the level's grid position nearest an original-pixel point."""
        (gh, gw), (sy, sx) = self.grid_sizes[level], self.strides[level]
        ratio_h, ratio_w = self.scale
        col = int(np.clip(round(x * ratio_w / sx), 0, gw - 1))
        row = int(np.clip(round(y * ratio_h / sy), 0, gh - 1))
        return row, col

    def anchors_at(self, x: float, y: float, level: int | None = None) -> np.ndarray:
        """Original-pixel anchors at the grid position nearest ``(x, y)`` (one or all levels)."""
        levels = range(self.num_levels) if level is None else [level]
        found = []
        for lev in levels:
            row, col = self.nearest_cell(x, y, lev)
            sy, sx = self.strides[lev]
            shift = np.array([col * sx, row * sy, col * sx, row * sy], np.float32)
            found.append(self.cell_anchors[lev] + shift)
        return self.to_original(np.concatenate(found))

    def describe(self, level: int) -> str:
        """The resize and one level's grid in a line (``width x height``, as people say)."""
        (h, w), (rh, rw), (ph, pw) = self.image_size, self.resized_size, self.padded_size
        (gh, gw), (_, sx) = self.grid_sizes[level], self.strides[level]
        return (
            f"Image {w}x{h} -> resized {rw}x{rh} (padded {pw}x{ph}); level {level}: grid "
            f"{gw}x{gh}, stride {sx}, {self.anchors_per_location[level]} anchors per position; "
            f"{self.num_anchors} anchors in all"
        )

    def summary(self) -> dict[str, object]:
        """Plain numbers for text, JSON and tests."""
        return {
            "image_size": list(self.image_size),
            "resized_size": list(self.resized_size),
            "padded_size": list(self.padded_size),
            "grid_sizes": [list(g) for g in self.grid_sizes],
            "strides": [list(s) for s in self.strides],
            "anchors_per_location": list(self.anchors_per_location),
            "num_anchors": self.num_anchors,
        }


@lru_cache(maxsize=256)
def _cached_layout(key: tuple[object, ...], image_size: tuple[int, int]) -> AnchorLayout:
    backbone, fpn, min_size, max_size, sizes, ratios = key
    config = ModelConfig(
        classes=["_"], backbone=backbone, fpn=fpn, min_size=min_size, max_size=max_size,
        anchor_sizes=[list(s) for s in sizes], aspect_ratios=[list(r) for r in ratios],
    )  # fmt: skip
    resized, padded = resize_geometry(image_size, min_size, max_size)
    grids = feature_map_sizes(backbone, fpn, padded)
    if len(grids) != len(sizes):
        raise ConfigError(
            f"{backbone}{' + FPN' if fpn else ''} gives {len(grids)} feature map(s) but the "
            f"anchors have {len(sizes)} level(s)"
        )
    # AnchorGenerator.forward: stride = padded size // feature-map size (integer division).
    strides = tuple((padded[0] // gh, padded[1] // gw) for gh, gw in grids)
    # resize_boxes: ratio = resized / original, each a float32 tensor.
    ratio_h = float(
        torch.tensor(resized[0], dtype=torch.float32)
        / torch.tensor(image_size[0], dtype=torch.float32)
    )
    ratio_w = float(
        torch.tensor(resized[1], dtype=torch.float32)
        / torch.tensor(image_size[1], dtype=torch.float32)
    )
    return AnchorLayout(
        image_size=image_size,
        resized_size=resized,
        padded_size=padded,
        scale=(ratio_h, ratio_w),
        grid_sizes=grids,
        strides=strides,
        cell_anchors=tuple(anchor_shapes(config)),
        sizes=sizes,
        ratios=ratios,
    )


def _generated_anchors(layout: AnchorLayout) -> np.ndarray:
    """torchvision's ``AnchorGenerator`` output for the layout (memoised on the layout)."""
    cached = layout.__dict__.get("_anchors")
    if cached is not None:
        return cached
    generator = AnchorGenerator(sizes=layout.sizes, aspect_ratios=layout.ratios)
    # Only the shapes of the image batch and the maps matter: expanded scalars cost no memory.
    images = ImageList(torch.zeros(()).expand(1, 3, *layout.padded_size), [layout.resized_size])
    maps = [torch.zeros(()).expand(1, 1, gh, gw) for gh, gw in layout.grid_sizes]
    anchors = generator(images, maps)[0].numpy()
    object.__setattr__(layout, "_anchors", anchors)  # frozen dataclass: a private memo only
    return anchors
