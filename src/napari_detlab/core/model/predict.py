"""Run a trained detector over images and keep everything it finds, down to a low score.

The review dock filters predictions with a score slider and its own NMS, live; it can only
show what was kept. So prediction runs the model with a low score floor
(``ModelConfig.box_score_thresh``, 0.01 by default) and records that floor and the model's
own NMS IoU next to the boxes, so a reviewer knows what the file can and cannot contain.

Prediction files: ``<pred_dir>/<stem>.pt``::

    {"boxes": float32 [N, 4] xyxy pixels of the original image, "labels": [class name] * N,
     "scores": float32 [N], "image_size": [h, w], "score_floor": float,
     "model_nms_thresh": float, "checkpoint": str, "version": 2}

The model sees the image as shown, its EXIF orientation applied
(:func:`~napari_detlab.core.images.read_image`), so boxes and ``image_size`` are in those
pixels: version 2. Files of version 1 were predicted on the stored pixels; read with their
image (:func:`load_prediction`), they are moved onto the shown image, as the store does with
its own version-1 files, so an old prediction still lands on its object and accepting it in
Review does not put a misplaced box into the annotations.

On a GPU, images are decoded one batch ahead in a background thread while the model runs,
so a folder of JPEGs costs model time, not model time plus decode time. On a CPU the model
already uses every core and decoding stays inline.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from napari_detlab.core.atomic import (
    atomic_torch_save,
    make_folder,
    remove_stale_temporaries,
    safe_torch_load,
)
from napari_detlab.core.boxes import BoxRecord, as_boxes
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.images import (
    IMAGE_SUFFIXES,
    ImageReadError,
    list_images,
    orient_stored_boxes,
    read_image,
    to_float_rgb,
)
from napari_detlab.core.model.config import ModelConfig
from napari_detlab.core.model.crowded import CrowdedImage, detect_whole, detections_cap
from napari_detlab.core.model.device import resolve_device
from napari_detlab.core.model.tiling import Tiling
from napari_detlab.core.stacks import expand_planes, split_plane

__all__ = [
    "PREDICTION_VERSION",
    "Prediction",
    "PredictionError",
    "SkippedImage",
    "collect_images",
    "load_prediction",
    "predict_folder",
    "predict_images",
    "write_prediction",
]

log = logging.getLogger(__name__)
PREDICTION_VERSION = 2
# Files of this version were predicted on the stored pixels, the orientation not applied.
STORED_PIXELS_VERSION = 1


class PredictionError(DetlabError, ValueError):
    """A prediction file that breaks the format; the message names the file and the problem."""


@dataclass
class Prediction(BoxRecord):
    """What the model found in one image: labelled boxes with scores.

    Attributes
    ----------
    boxes, labels
        See :class:`~napari_detlab.core.boxes.BoxRecord`.
    scores
        ``float32 (N,)`` confidence of each box.
    image_size
        ``(height, width)`` of the image.
    score_floor, model_nms_thresh
        The model's score threshold and per-class NMS IoU when it predicted: nothing below the
        floor and no pair of same-class boxes overlapping above the IoU can be in the file.
    checkpoint
        The checkpoint that made the prediction (empty if unknown).
    """

    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    image_size: tuple[int, int] | None = None
    score_floor: float | None = None
    model_nms_thresh: float | None = None
    checkpoint: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        scores = (
            self.scores.detach().cpu().numpy() if hasattr(self.scores, "detach") else self.scores
        )
        self.scores = np.asarray(scores, dtype=np.float32).reshape(-1)


@dataclass(frozen=True)
class SkippedImage:
    """An image prediction could not read, and why."""

    path: Path
    reason: str


# -- files ------------------------------------------------------------------------------------
def write_prediction(
    pred_dir: str | Path,
    stem: str,
    prediction: Prediction,
    *,
    score_floor: float | None = None,
    model_nms_thresh: float | None = None,
    checkpoint: str | Path | None = None,
    image_size: tuple[int, int] | None = None,
) -> Path:
    """Write ``<pred_dir>/<stem>.pt`` atomically; keyword values override the prediction's."""
    size = image_size if image_size is not None else prediction.image_size
    floor = score_floor if score_floor is not None else prediction.score_floor
    nms = model_nms_thresh if model_nms_thresh is not None else prediction.model_nms_thresh
    data: dict[str, Any] = {
        "boxes": torch.from_numpy(np.ascontiguousarray(prediction.boxes, dtype=np.float32)),
        "labels": list(prediction.labels),
        "scores": torch.from_numpy(np.ascontiguousarray(prediction.scores, dtype=np.float32)),
        "image_size": [int(size[0]), int(size[1])] if size is not None else None,
        "score_floor": float(floor) if floor is not None else None,
        "model_nms_thresh": float(nms) if nms is not None else None,
        "checkpoint": str(checkpoint if checkpoint is not None else prediction.checkpoint),
        "version": PREDICTION_VERSION,
    }
    _validate(data, f"prediction for {stem!r}")
    path = Path(pred_dir) / f"{stem}.pt"
    atomic_torch_save(path, data)
    return path


def _validate(data: object, source: str, image: str | Path | None = None) -> Prediction:
    if not isinstance(data, dict):
        raise PredictionError(f"{source}: expected a dict with boxes, labels and scores")
    missing = [key for key in ("boxes", "labels", "scores") if key not in data]
    if missing:
        raise PredictionError(f"{source}: missing {', '.join(missing)}")
    try:
        boxes = as_boxes(data["boxes"], np.float32)
    except ValueError as error:
        raise PredictionError(f"{source}: 'boxes' {error}") from error
    scores = data["scores"]
    scores = np.asarray(scores.numpy() if hasattr(scores, "numpy") else scores, dtype=np.float32)
    labels = data["labels"]
    if not isinstance(labels, (list, tuple)) or not all(isinstance(v, str) for v in labels):
        raise PredictionError(f"{source}: 'labels' must be a list of class names")
    if not (len(boxes) == scores.reshape(-1).size == len(labels)) or scores.ndim > 1:
        raise PredictionError(
            f"{source}: {len(boxes)} boxes, {scores.size} scores and {len(labels)} labels"
        )
    if not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
        raise PredictionError(f"{source}: non-finite box or score")
    if (boxes[:, 2] < boxes[:, 0]).any() or (boxes[:, 3] < boxes[:, 1]).any():
        raise PredictionError(f"{source}: a box has x2 < x1 or y2 < y1")
    size = data.get("image_size")
    prediction = Prediction(
        boxes=boxes,
        labels=list(labels),
        scores=scores.reshape(-1),
        image_size=tuple(size) if size is not None else None,
        score_floor=data.get("score_floor"),
        model_nms_thresh=data.get("model_nms_thresh"),
        checkpoint=str(data.get("checkpoint") or ""),
    )
    version = data.get("version")
    if type(version) is int and version == STORED_PIXELS_VERSION:
        orient_stored_boxes(prediction, image)
    return prediction


def load_prediction(path: str | Path, image: str | Path | None = None) -> Prediction:
    """Read and validate a prediction file (``weights_only``; a bad file raises naming it).

    ``image`` is the image it predicts; a version-1 file's boxes are moved onto that image
    as shown (see the module's notes). Without it they are returned as written.
    """
    return _validate(safe_torch_load(path), str(path), image)


# -- running the model ------------------------------------------------------------------------
def collect_images(images: str | Path | Iterable[str | Path]) -> list[Path]:
    """A folder's images, one image, or a list of images and folders, as image paths.

    A stack stands for its planes (``cells.plane-0000.tif``, ...), each predicted as an image
    and written as ``<stem>.plane-NNNN.pt`` (:mod:`~napari_detlab.core.stacks`).

    Raises ``FileNotFoundError`` for a path that does not exist and :class:`PredictionError` when
    is no image, a file is not an image, or two images share a stem (they would share one
    prediction file).
    """
    items = [images] if isinstance(images, (str, Path)) else list(images)
    paths: list[Path] = []
    for item in items:
        item = Path(item)
        if item.is_dir():
            paths.extend(expand_planes(list_images(item)))
        elif item.is_file():
            if item.suffix.lower() not in IMAGE_SUFFIXES:
                raise PredictionError(f"{item}: not an image file ({', '.join(IMAGE_SUFFIXES)})")
            paths.extend(expand_planes([item]))
        elif split_plane(item) is not None:  # one plane of a stack, named as the store names it
            paths.append(item)
        else:
            raise FileNotFoundError(f"{item}: no such file or folder")
    if not paths:
        raise PredictionError(f"no images found in {', '.join(str(i) for i in items)}")
    seen: dict[str, Path] = {}
    for path in paths:
        if path.stem in seen and seen[path.stem] != path:
            raise PredictionError(
                f"{seen[path.stem].name} and {path.name} share the name {path.stem!r}"
            )
        seen[path.stem] = path
    return list(dict.fromkeys(paths))


def _decode(path: Path) -> tuple[torch.Tensor, tuple[int, int]] | SkippedImage:
    try:
        pixels = to_float_rgb(read_image(path))
    except (ImageReadError, OSError) as error:
        return SkippedImage(path, str(error))
    return torch.from_numpy(pixels).permute(2, 0, 1), (pixels.shape[0], pixels.shape[1])


def _batches(paths: Sequence[Path], batch_size: int) -> list[list[Path]]:
    return [list(paths[i : i + batch_size]) for i in range(0, len(paths), batch_size)]


Decoded = tuple[torch.Tensor, tuple[int, int]] | SkippedImage


def _decoded_batches(
    batches: list[list[Path]], *, prefetch: bool
) -> Iterator[tuple[list[Path], list[Decoded]]]:
    """Each batch with its decoded images, the next batch decoding meanwhile when ``prefetch``.

    Prefetching pays when the model runs on a GPU and the CPU would otherwise wait. On a CPU
    the model already uses every core, and a decode thread would only fight it for them.
    """
    if not prefetch:
        for batch in batches:
            yield batch, [_decode(path) for path in batch]
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="detlab-predict-decode") as pool:
        pending = [pool.submit(_decode, path) for path in batches[0]] if batches else []
        for index, batch in enumerate(batches):
            decoded = [future.result() for future in pending]
            following = batches[index + 1] if index + 1 < len(batches) else []
            pending = [pool.submit(_decode, path) for path in following]
            yield batch, decoded


def predict_images(
    model: nn.Module,
    config: ModelConfig,
    image_paths: Iterable[str | Path],
    *,
    batch_size: int = 2,
    device: str | torch.device = "cpu",
    cancel: threading.Event | None = None,
    skipped: list[SkippedImage] | None = None,
    amp: bool = False,
    channels_last: bool = False,
    tiling: Tiling | str = "auto",
    crowded: list[CrowdedImage] | None = None,
) -> Iterator[tuple[Path, Prediction]]:
    """Predict images in batches, yielding ``(path, Prediction)`` in input order.

    Parameters
    ----------
    model
        A torchvision detector (e.g. from
        :func:`~napari_detlab.core.model.checkpoint.model_from_checkpoint`); it is put in eval mode
        and on ``device``.
    config
        Its config; ``config.classes[label - 1]`` names a label.
    image_paths
        Image files.
    batch_size
        Images per forward pass.
    device
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    cancel
        When set, stops before the next batch.
    skipped
        A list that receives a :class:`SkippedImage` for each image that cannot be read; such
        images yield nothing and the run goes on (one broken file should not cost a folder).
        The caller reports them; without a list each is logged as a warning instead.
    amp, channels_last
        On a GPU, run the forward pass in mixed precision (autocast) and the convolutions
        in channels-last memory order; boxes and scores come back as float32 either way.
    tiling
        ``"auto"``, ``"on"``, ``"off"`` or a :class:`~napari_detlab.core.model.tiling.Tiling`:
        images much larger than the model's input are predicted in overlapping tiles at
        full resolution (:mod:`~napari_detlab.core.model.tiling`).

    An image whose objects fill the model's cap on detections per image, each of them
    confidently, is predicted again with room for more (:mod:`~napari_detlab.core.model.
    crowded`): a model trained on sparse images still finds every cell of a dense field.
    ``crowded``, when given, receives a :class:`~napari_detlab.core.model.crowded.
    CrowdedImage` for each, for the caller to tell the person.
    """
    tiling = Tiling.of(tiling)
    if batch_size < 1:
        raise PredictionError(f"batch_size must be at least 1, got {batch_size}")
    device = resolve_device(device)
    model.eval().to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    roi_heads = getattr(model, "roi_heads", None)
    floor = float(getattr(roi_heads, "score_thresh", config.box_score_thresh))
    nms = float(getattr(roi_heads, "nms_thresh", config.box_nms_thresh))
    classes = list(config.classes)
    batches = _batches([Path(p) for p in image_paths], batch_size)
    for batch, decoded in _decoded_batches(batches, prefetch=device.type != "cpu"):
        if cancel is not None and cancel.is_set():
            return
        good: list[tuple[Path, torch.Tensor, tuple[int, int]]] = []
        for path, item in zip(batch, decoded, strict=True):
            if isinstance(item, SkippedImage):
                if skipped is not None:
                    skipped.append(item)
                else:
                    log.warning("skipping %s", item.reason)
            else:
                good.append((path, item[0], item[1]))
        if not good:
            continue
        again: list[int] = []
        with torch.inference_mode():
            outputs = detect_whole(
                model, [tensor for _, tensor, _ in good], config.min_size, config.max_size,
                tiling, device=device, amp=amp, crowded=again,
            )  # fmt: skip
        if crowded is not None:
            cap = detections_cap(model) or 0
            crowded.extend(CrowdedImage(good[i][0], cap, len(outputs[i]["boxes"])) for i in again)
        for (path, _, size), output in zip(good, outputs, strict=True):
            labels = output["labels"].cpu().tolist()
            yield (
                path,
                Prediction(
                    boxes=output["boxes"].float().cpu().numpy(),
                    labels=[_class_name(classes, label) for label in labels],
                    scores=output["scores"].float().cpu().numpy(),
                    image_size=size,
                    score_floor=floor,
                    model_nms_thresh=nms,
                ),
            )


def _class_name(classes: list[str], label: int) -> str:
    if not 1 <= label <= len(classes):
        raise PredictionError(f"model predicted label {label} but has only {len(classes)} classes")
    return classes[label - 1]


def predict_folder(
    checkpoint: str | Path,
    images: str | Path | Iterable[str | Path],
    output_dir: str | Path,
    *,
    batch_size: int = 2,
    device: str | torch.device = "auto",
    on_progress: Callable[[int, int, Path], None] | None = None,
    cancel: threading.Event | None = None,
    skipped: list[SkippedImage] | None = None,
    score_floor: float | None = None,
    tiling: Tiling | str = "auto",
    crowded: list[CrowdedImage] | None = None,
) -> list[Path]:
    """Predict images with a checkpoint and write one prediction file per image.

    This is the one function the ``detlab predict`` CLI and the train dock call (the dock
    through :func:`~napari_detlab.core.relay.relay`, in a napari worker).

    Parameters
    ----------
    checkpoint
        A napari-detlab checkpoint (refused with a clear message otherwise).
    images
        A folder, an image, or a list of images and folders.
    output_dir
        Where ``<stem>.pt`` files go (created).
    batch_size, device
        As in :func:`predict_images`.
    on_progress
        Called as ``on_progress(done, total, path)`` after each image, readable or skipped.
    cancel
        Set it to stop after the current batch; files already written stay valid.
    skipped
        Receives the images that could not be read.
    score_floor
        Lower (or raise) the model's score threshold for this run, between 0 and 1; default:
        the checkpoint's.
    tiling, crowded
        As in :func:`predict_images`.

    Returns
    -------
    list of Path
        The prediction files written, in image order.

    Raises
    ------
    PredictionError
        No images, a score floor outside [0, 1], an output path that is a file.
    WriteError
        A prediction file (or the folder) could not be written; the files written before it
        are complete, and an older prediction of that image is intact.
    """
    from napari_detlab.core.model.checkpoint import model_from_checkpoint

    if score_floor is not None and not 0.0 <= score_floor <= 1.0:
        raise PredictionError(f"the score floor must be between 0 and 1, got {score_floor}")
    tiling = Tiling.of(tiling)
    paths = collect_images(images)
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise PredictionError(f"{output_dir}: exists and is not a folder; choose another output")
    device = resolve_device(device)
    model, config = model_from_checkpoint(checkpoint, device=device)
    if score_floor is not None:
        model.roi_heads.score_thresh = float(score_floor)
    source = str(Path(checkpoint).resolve())
    make_folder(output_dir)
    remove_stale_temporaries(output_dir)
    written: list[Path] = []
    failures: list[SkippedImage] = skipped if skipped is not None else []
    done = 0
    position = {path: index for index, path in enumerate(paths)}

    def count_to(stop: int) -> None:
        nonlocal done
        while done < stop:
            done += 1
            if on_progress is not None:
                on_progress(done, len(paths), paths[done - 1])

    for path, prediction in predict_images(
        model, config, paths, batch_size=batch_size, device=device, cancel=cancel,
        skipped=failures, tiling=tiling, crowded=crowded,
    ):  # fmt: skip
        written.append(write_prediction(output_dir, path.stem, prediction, checkpoint=source))
        # Count the skipped images before ``path`` too, so the counter never stalls.
        count_to(position[path] + 1)
    if failures and (cancel is None or not cancel.is_set()):
        count_to(len(paths))  # skipped images after the last one predicted
    return written
