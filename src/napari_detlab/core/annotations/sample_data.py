"""Generated scenes with exact boxes: the built-in sample dataset and synthetic test data.

A person trying the plugin needs a folder that looks like their own work (a bright-field
micrograph with two kinds of object) before they have labelled anything, and the tests need
data whose boxes are known exactly. Both come from one renderer: every object is drawn from a
pixel mask, and its box is that mask's extent (``x2`` is the last covered column + 1), so an
anchor-coverage or mAP figure computed on these scenes has a correct answer.

The two sample classes differ in shape, colour and shading, so a small Faster R-CNN trained
from scratch on a CPU separates them within minutes:

- ``cell``: a round, magenta, softly shaded body with a darker rim and a dark nucleus;
- ``crystal``: a rotated, angular, cyan polygon whose facets are lit from one side.

Only numpy (and Pillow, already a dependency, to encode files) is used.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore, ClassSpec
from napari_detlab.core.atomic import atomic_write_bytes
from napari_detlab.core.images import list_images

__all__ = [
    "SAMPLE_CLASSES",
    "SAMPLE_COLORS",
    "Scene",
    "render_scene",
    "sample_ground_truth",
    "write_sample_dataset",
    "write_synthetic_dataset",
]

SAMPLE_CLASSES: tuple[str, ...] = ("cell", "crystal")
SAMPLE_COLORS: dict[str, str] = {"cell": "#ff3fd2", "crystal": "#1fd3ff"}
# Further classes (synthetic data with more than two) cycle through these hues.
_EXTRA_COLORS = ("#ffb000", "#6cff3f", "#ff5a36", "#9b6bff", "#00e0a0", "#ffe14d")

# Object extent (longest side, pixels) before it is shrunk to fit small images.
MIN_OBJECT_SIZE = 15
MAX_OBJECT_SIZE = 120

# New objects (class, size, shape) tried for each object before a crowded scene gives up.
_PLACEMENT_ATTEMPTS = 3

# Where the sample dataset records that it was written completely.
_SAMPLE_MARKER = ".detlab-sample"
_SAMPLE_PREFIX = "sample_"


@dataclass
class Scene:
    """One rendered scene.

    Attributes
    ----------
    image
        ``uint8 (H, W, 3)``.
    boxes
        ``float64 (N, 4)`` xyxy, the extent of each object's visible pixels.
    labels
        Class name of each object.
    masks
        ``bool (N, H, W)``, the visible pixels of each object (objects never overlap).
    """

    image: np.ndarray
    boxes: np.ndarray
    labels: list[str]
    masks: np.ndarray


# -- small numpy image tools ------------------------------------------------------------------
def _gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of an ``(H, W[, C])`` float image with edge padding."""
    radius = max(1, math.ceil(3 * sigma))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-(offsets**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    out = image
    for axis in (0, 1):
        pad = [(0, 0)] * image.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="edge")
        length = out.shape[axis]
        window = [slice(None)] * image.ndim
        acc = np.zeros_like(out)
        for k, weight in enumerate(kernel):
            window[axis] = slice(k, k + length)
            acc += weight * padded[tuple(window)]
        out = acc
    return out


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Low-frequency noise in about ``[-1, 1]``: a coarse random grid, bilinearly upsampled."""
    grid_h = max(2, math.ceil(height / cell) + 1)
    grid_w = max(2, math.ceil(width / cell) + 1)
    grid = rng.uniform(-1.0, 1.0, size=(grid_h, grid_w))
    ys = np.linspace(0, grid_h - 1.0, height)
    xs = np.linspace(0, grid_w - 1.0, width)
    y0 = np.minimum(ys.astype(int), grid_h - 2)
    x0 = np.minimum(xs.astype(int), grid_w - 2)
    fy = (ys - y0)[:, None]
    fx = (xs - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _boundary(mask: np.ndarray) -> np.ndarray:
    """The mask's pixels that touch a pixel outside it (4-neighbourhood)."""
    padded = np.pad(mask, 1, constant_values=False)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:] & mask
    return mask & ~interior


# -- objects ----------------------------------------------------------------------------------
@dataclass
class _Shape:
    """An object before it is placed: its mask and colours on a local pixel grid."""

    mask: np.ndarray  # bool (h, w)
    color: np.ndarray  # float (h, w, 3), valid where mask is set


def _style_of(class_index: int) -> str:
    """Which renderer draws a class: classes alternate round and angular objects."""
    return "round" if class_index % 2 == 0 else "angular"


def _class_tint(class_index: int) -> np.ndarray:
    """A hue multiplier that separates classes 3, 4, ... from the first two."""
    if class_index < 2:
        return np.ones(3)
    hue = (class_index - 2) * 2.39996  # golden angle: well-spread hues
    return 0.6 + 0.4 * np.array([math.cos(hue), math.cos(hue + 2.094), math.cos(hue + 4.189)])


def _local_grid(size: float, angle: float, aspect: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Pixel-centre coordinates of a square patch, rotated into the object's own frame.

    Returns ``(u, v, half)`` where ``u`` runs along the object's long axis (normalised so the
    object spans ``[-1, 1]``) and ``half`` is the patch's half-width in pixels.
    """
    half = math.ceil(size / 2) + 2
    coords = np.arange(-half, half) + 0.5
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    cos, sin = math.cos(angle), math.sin(angle)
    along = (xx * cos + yy * sin) / (size / 2)
    across = (-xx * sin + yy * cos) / (size / 2 / aspect)
    return along, across, half


def _round_object(rng: np.random.Generator, size: float, light: float, tint: np.ndarray) -> _Shape:
    """A cell: shaded ellipse with a darker membrane and an off-centre dark nucleus."""
    aspect = rng.uniform(1.0, 1.35)
    u, v, _ = _local_grid(size, rng.uniform(0, math.pi), aspect)
    radius = np.sqrt(u**2 + v**2)
    mask = radius <= 1.0
    base = np.array([0.82, 0.38, 0.74]) * tint * rng.uniform(0.85, 1.05)
    # Dome shading, brighter towards the light, and a thin dark rim.
    lit = 0.5 * (u * math.cos(light) + v * math.sin(light))
    shade = 0.62 + 0.3 * np.sqrt(np.clip(1 - radius**2, 0, 1)) + 0.12 * lit
    shade = np.where(radius > 0.84, shade * 0.68, shade)
    color = base[None, None, :] * shade[..., None]
    # Nucleus: a dark purple ellipse well inside the cell.
    nucleus_radius = rng.uniform(0.28, 0.42)
    offset = rng.uniform(0, 0.78 - nucleus_radius - 0.1, size=2) * rng.choice([-1, 1], size=2)
    nucleus = ((u - offset[0]) / nucleus_radius) ** 2 + (
        (v - offset[1]) / (nucleus_radius * rng.uniform(0.75, 1.0))
    ) ** 2 <= 1.0
    nucleus_color = np.array([0.30, 0.10, 0.40]) * tint
    color = np.where(nucleus[..., None], nucleus_color[None, None, :] * shade[..., None], color)
    # Granular cytoplasm.
    grain = _smooth_noise(rng, *mask.shape, cell=max(2.0, size / 10))
    color = color * (1 + 0.08 * grain[..., None])
    return _Shape(mask=mask, color=color)


def _angular_object(
    rng: np.random.Generator, size: float, light: float, tint: np.ndarray
) -> _Shape:
    """A crystal: a convex, rotated polygon whose facets are lit from one direction."""
    aspect = rng.uniform(1.2, 2.6)
    angle = rng.uniform(0, math.pi)
    u, v, _ = _local_grid(size, angle, aspect)
    corners = int(rng.integers(4, 7))
    # Equal radii on sorted angles make a convex polygon inscribed in the unit circle.
    step = 2 * math.pi / corners
    vertex_angles = np.sort(
        rng.uniform(0, 2 * math.pi)
        + np.arange(corners) * step
        + rng.uniform(-0.2, 0.2, corners) * step
    )
    vx, vy = np.cos(vertex_angles), np.sin(vertex_angles)
    mask = np.ones(u.shape, bool)
    for i in range(corners):
        j = (i + 1) % corners
        cross = (vx[j] - vx[i]) * (v - vy[i]) - (vy[j] - vy[i]) * (u - vx[i])
        mask &= cross >= 0
    # Each facet is the triangle from the centre to one edge; its brightness follows the angle
    # between the edge's outward direction (in image space) and the light.
    pixel_angle = np.mod(np.arctan2(v, u) - vertex_angles[0], 2 * math.pi)
    facet = (
        np.searchsorted(np.mod(vertex_angles - vertex_angles[0], 2 * math.pi), pixel_angle, "right")
        - 1
    )
    facet = np.clip(facet, 0, corners - 1)
    mids = vertex_angles + np.diff(np.append(vertex_angles, vertex_angles[0] + 2 * math.pi)) / 2
    facing = np.cos(mids + angle - light)
    brightness = 0.5 + 0.38 * facing
    base = np.array([0.22, 0.68, 0.90]) * tint * rng.uniform(0.85, 1.05)
    color = base[None, None, :] * brightness[facet][..., None]
    # A specular highlight on the facet that faces the light most.
    highlight = (facet == int(np.argmax(facing))) & (np.sqrt(u**2 + v**2) < 0.55)
    color = np.where(highlight[..., None], 0.55 * color + 0.45, color)
    return _Shape(mask=mask, color=color)


def _draw_shape(rng: np.random.Generator, class_index: int, size: float, light: float) -> _Shape:
    tint = _class_tint(class_index)
    if _style_of(class_index) == "round":
        return _round_object(rng, size, light, tint)
    return _angular_object(rng, size, light, tint)


# -- scenes -----------------------------------------------------------------------------------
def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A bright-field backdrop: tinted, unevenly lit (vignetting) and mottled."""
    tint = np.array([0.88, 0.86, 0.80]) + rng.uniform(-0.06, 0.04, 3)
    yy, xx = np.mgrid[0:height, 0:width]
    cy, cx = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width
    falloff = ((yy - cy) ** 2 + (xx - cx) ** 2) / float(max(height, width) ** 2)
    light = 1.0 - rng.uniform(0.2, 0.45) * falloff
    mottle = 0.05 * _smooth_noise(rng, height, width, cell=48) + 0.025 * _smooth_noise(
        rng, height, width, cell=12
    )
    image = tint[None, None, :] * (light + mottle)[..., None]
    # A few grey specks of debris: far smaller than any object, as on a real slide.
    for _ in range(int(rng.integers(0, 7))):
        y, x = int(rng.integers(0, height)), int(rng.integers(0, width))
        r = int(rng.integers(1, 3))
        image[max(0, y - r) : y + r, max(0, x - r) : x + r] *= rng.uniform(0.6, 0.85)
    return image


def _place(
    rng: np.random.Generator,
    shape: _Shape,
    occupied: np.ndarray,
    height: int,
    width: int,
    near_border: bool,
) -> tuple[np.ndarray, tuple[int, int]] | None:
    """Find a spot where the object overlaps nothing and mostly shows; ``None`` if none.

    Returns the visible mask in image coordinates (cropped to its patch) and the patch's
    top-left corner. Objects may be cut by the image border (as in any real photograph), but
    at least half of each stays visible so its box is meaningful.
    """
    patch_h, patch_w = shape.mask.shape
    total = int(shape.mask.sum())
    ys, xs = np.nonzero(shape.mask)
    for _ in range(40):
        if near_border:
            edge = int(rng.integers(0, 4))
            cy = rng.uniform(0, height) if edge < 2 else (0 if edge == 2 else height)
            cx = rng.uniform(0, width) if edge >= 2 else (0 if edge == 0 else width)
            cy += rng.uniform(-0.15, 0.15) * patch_h
            cx += rng.uniform(-0.15, 0.15) * patch_w
        else:
            cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        top, left = round(cy) - patch_h // 2, round(cx) - patch_w // 2
        rows, cols = ys + top, xs + left
        inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
        if inside.sum() < 0.5 * total:
            continue
        rows, cols = rows[inside], cols[inside]
        if (cols.max() - cols.min() + 1) < 8 or (rows.max() - rows.min() + 1) < 8:
            continue
        if occupied[rows, cols].any():
            continue
        return np.stack([rows, cols]), (top, left)
    return None


def render_scene(
    rng: np.random.Generator,
    height: int,
    width: int,
    *,
    classes: tuple[str, ...] | list[str] = SAMPLE_CLASSES,
    max_objects: int = 8,
    empty: bool = False,
) -> Scene:
    """Render one generated micrograph, with the exact boxes and each object's mask.

    The backdrop (with its noise) and the objects come from two streams drawn from ``rng``,
    so the same ``rng`` state with ``empty=True`` renders the very same scene without its
    objects: the difference of the two images is exactly what the objects contribute.
    """
    if height < 16 or width < 16:
        raise ValueError(f"scenes need at least 16x16 pixels, got {width}x{height}")
    classes = tuple(classes)
    background_seed, object_seed = rng.integers(0, 2**63, size=2)
    background_rng = np.random.default_rng(int(background_seed))
    rng = np.random.default_rng(int(object_seed))
    image = _background(background_rng, height, width)
    # A 2-pixel margin around each object keeps neighbours' boxes apart from their pixels.
    margin = np.zeros((height, width), bool)
    masks: list[np.ndarray] = []
    labels: list[str] = []
    light = rng.uniform(0, 2 * math.pi)
    largest = min(MAX_OBJECT_SIZE, 0.5 * min(height, width))
    smallest = min(MIN_OBJECT_SIZE, largest)
    wanted = 0 if empty or not classes else int(rng.integers(1, max(1, max_objects) + 1))
    for _ in range(wanted):
        for _attempt in range(_PLACEMENT_ATTEMPTS):  # a smaller object may fit where this did not
            class_index = int(rng.integers(0, len(classes)))
            # Log-uniform sizes: as many small objects as large ones; anchors must cover both.
            size = math.exp(rng.uniform(math.log(smallest), math.log(largest)))
            shape = _draw_shape(rng, class_index, size, light)
            placed = _place(rng, shape, margin, height, width, near_border=rng.random() < 0.25)
            if placed is not None:
                break
        if placed is None:
            continue
        (rows, cols), (top, left) = placed
        image[rows, cols] = shape.color[rows - top, cols - left]
        mask = np.zeros((height, width), bool)
        mask[rows, cols] = True
        margin |= _dilate_once(_dilate_once(mask))
        masks.append(mask)
        labels.append(classes[class_index])
    for mask in masks:  # a thin dark outline, as refraction draws around real objects
        image[_boundary(mask)] *= 0.72
    image = _gaussian_blur(image, 0.7)
    image = image + background_rng.normal(0, 0.018, image.shape)
    image_u8 = np.clip(np.round(image * 255), 0, 255).astype(np.uint8)
    boxes = np.zeros((len(masks), 4), np.float64)
    for i, mask in enumerate(masks):
        rows_any, cols_any = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        boxes[i] = (cols_any[0], rows_any[0], cols_any[-1] + 1, rows_any[-1] + 1)
    stacked = np.stack(masks) if masks else np.zeros((0, height, width), bool)
    return Scene(image=image_u8, boxes=boxes, labels=labels, masks=stacked)


def _dilate_once(mask: np.ndarray) -> np.ndarray:
    """Grow a mask by one pixel (4-neighbourhood)."""
    padded = np.pad(mask, 1, constant_values=False)
    return mask | padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]


# -- datasets on disk -------------------------------------------------------------------------
def _encode(image: np.ndarray, suffix: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    if suffix in (".jpg", ".jpeg"):
        Image.fromarray(image).save(buffer, format="JPEG", quality=92)
    else:
        # Fast compression: sensor-like noise leaves little to gain from more effort.
        Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def class_specs(classes: tuple[str, ...] | list[str]) -> list[ClassSpec]:
    """Class list with colours that match how each class is drawn."""
    specs = []
    for i, name in enumerate(classes):
        color = SAMPLE_COLORS.get(name) or _EXTRA_COLORS[i % len(_EXTRA_COLORS)]
        specs.append(ClassSpec(name, color))
    return specs


# Image sizes (height, width) of the sample dataset: mostly 256x320, some other aspects.
_SAMPLE_SIZES = ((256, 320),) * 5 + ((240, 360), (320, 240), (288, 288), (224, 384))
_SAMPLE_COUNT = 24
_SAMPLE_NEGATIVES = frozenset({4, 13, 20})  # reviewed, no objects
_SAMPLE_UNANNOTATED = frozenset({7, 16, 22, 23})  # objects present, left for the user


def _sample_plan(seed: int) -> list[tuple[str, tuple[int, int], bool, bool]]:
    """``(file name, (h, w), empty, annotated)`` of each sample image, fixed by ``seed``."""
    # A key no image index uses, so the plan's stream is not one of the scenes' streams.
    rng = np.random.default_rng([seed, 2**32 - 1])
    plan = []
    for i in range(_SAMPLE_COUNT):
        size = _SAMPLE_SIZES[int(rng.integers(0, len(_SAMPLE_SIZES)))]
        suffix = ".jpg" if i % 5 == 2 else ".png"
        name = f"{_SAMPLE_PREFIX}{i + 1:02d}{suffix}"
        plan.append((name, size, i in _SAMPLE_NEGATIVES, i not in _SAMPLE_UNANNOTATED))
    return plan


def _sample_scene(seed: int, index: int, size: tuple[int, int], empty: bool) -> Scene:
    # Each image has its own stream, so completing a half-written folder renders the
    # missing images exactly as a full run would.
    return render_scene(np.random.default_rng([seed, index]), *size, empty=empty, max_objects=9)


def sample_ground_truth(seed: int = 0) -> dict[str, tuple[np.ndarray, list[str]]]:
    """The true boxes and labels of every sample image, the unannotated ones included.

    Lets a test (or a demo) check what a user draws on the images left unannotated, or
    score a model on them; re-renders the scenes, about a second.
    """
    truth = {}
    for index, (name, size, empty, _) in enumerate(_sample_plan(seed)):
        scene = _sample_scene(seed, index, size, empty)
        truth[name] = (scene.boxes, scene.labels)
    return truth


def write_sample_dataset(folder: str | Path, *, seed: int = 0) -> Path:
    """Write the built-in sample dataset into ``folder`` (created if needed) and return it.

    24 generated micrographs (PNG and JPEG, mostly 256x320) with ``cell`` and ``crystal``
    objects: most are annotated and reviewed, 3 are reviewed negatives (no objects, an empty
    annotation file) and 4 contain objects but no annotation, for the user to label.

    Calling it again on a folder that holds the finished dataset changes nothing, so the
    user's edits survive; a folder left half-written (a crash) is completed without
    overwriting any file that exists. A folder holding other images is refused.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / _SAMPLE_MARKER
    if marker.is_file():
        return folder
    plan = _sample_plan(seed)
    ours = {name for name, *_ in plan}
    foreign = [p.name for p in list_images(folder) if p.name not in ours]
    if foreign:
        raise FileExistsError(
            f"{folder}: holds other images ({foreign[0]}, ...); choose an empty folder"
        )
    store = AnnotationStore(folder)
    if not store.classes_path.is_file():
        store.save_classes(class_specs(SAMPLE_CLASSES))
    for index, (name, (height, width), empty, annotated) in enumerate(plan):
        path = folder / name
        if path.exists():
            continue
        scene = _sample_scene(seed, index, (height, width), empty)
        atomic_write_bytes(path, _encode(scene.image, path.suffix))
        if annotated and not store.has(path):
            store.save(
                path,
                ImageAnnotation(
                    scene.boxes, scene.labels, reviewed=True, image_size=(height, width)
                ),
            )
    atomic_write_bytes(marker, b"napari-detlab sample dataset\n")
    store.refresh()
    return folder


def write_synthetic_dataset(
    folder: str | Path,
    n_images: int,
    *,
    size: tuple[int, int] = (256, 256),
    seed: int = 0,
    classes: tuple[str, ...] | list[str] = SAMPLE_CLASSES,
    negatives: int = 0,
    max_objects: int = 6,
    suffix: str = ".png",
) -> Path:
    """A fully annotated dataset of ``n_images`` scenes of one size, for tests and benchmarks.

    The last ``negatives`` images have no objects and are stored as reviewed negatives.
    Files are named ``img_0000.png`` ...; existing files of those names are overwritten.
    """
    if n_images < 0 or not 0 <= negatives <= n_images:
        raise ValueError(f"need 0 <= negatives <= n_images, got {negatives} and {n_images}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    store = AnnotationStore(folder)
    store.save_classes(class_specs(classes))
    height, width = size
    for index in range(n_images):
        rng = np.random.default_rng([seed, index])
        empty = index >= n_images - negatives
        scene = render_scene(
            rng, height, width, classes=classes, max_objects=max_objects, empty=empty
        )
        name = f"img_{index:04d}{suffix}"
        atomic_write_bytes(folder / name, _encode(scene.image, suffix))
        store.save(
            folder / name,
            ImageAnnotation(scene.boxes, scene.labels, reviewed=True, image_size=(height, width)),
        )
    store.refresh()
    return folder
