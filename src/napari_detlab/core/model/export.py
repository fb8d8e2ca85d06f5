"""Take a trained detector elsewhere: a checkpoint as TorchScript or ONNX, with its contract.

A napari-detlab checkpoint needs napari-detlab to rebuild its model. An export needs only
``torch`` and ``torchvision`` (TorchScript: ``import torchvision`` registers the ``nms`` and
``roi_align`` operators the model calls) or an ONNX runtime, so the model can run in a script
on a microscope PC, a C++ service or any ONNX runtime. Beside the model goes
``<output>.json`` (and, in a TorchScript file, the same text as the extra file
``detlab.json``): the class names by label (0 is the background) and the preprocessing
contract, since a model fed misprepared input gives wrong boxes without an error.

What exports, with torch 2.14 / torchvision 0.29 (checked by tests/core/model/test_export.py):

- **TorchScript** (``torch.jit.script``): the whole detector, any image size, any batch. Its
  forward returns ``(losses, detections)`` when scripted (torchvision's choice). torchvision's
  own resize computes the scale as a float32 tensor under scripting, so for many image sizes
  (361 of 940 from 20 to 159 px at ``min_size`` 96, ``max_size`` 128; 100 wide, 70 high is
  one) the resized image is one pixel smaller than in eager mode and the boxes differ
  (pytorch/vision#3654, pytorch/pytorch#58234). The exported model therefore resizes with
  :class:`ExactResizeTransform`, which computes the size in double precision as eager mode
  does: its boxes equal the checkpoint's.
- **ONNX** (``torch.onnx.export(..., dynamo=False)``, opset 11+, torchvision's documented
  route; it needs the ``onnx`` package, refused with that fix without it): one image per
  call, any size. The graph keeps torchvision's float32 scale (a traced graph needs it as a
  tensor; computing the size in double precision inside the traced graph was tried and
  still gave other boxes in onnxruntime), so the one-pixel difference above remains for
  some image sizes (4 of 32 from 20 to 700 px, e.g. 47 wide, 33 high at 96 / 128), where
  its boxes differ from the checkpoint's; on the others they match within 0.01 px.
  The newer exporter (``dynamo=True``, torch's default) cannot export the detector: its
  ``torch.export`` step stops on the data-dependent box count in ``batched_nms``
  (``GuardOnDataDependentSymNode``; open upstream: pytorch/vision#9462,
  pytorch/pytorch#146152), so it is not used.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import Tensor, nn
from torchvision.models.detection.transform import GeneralizedRCNNTransform, resize_boxes

from napari_detlab.core.atomic import atomic_write_bytes, atomic_write_json
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.model.checkpoint import load_checkpoint, model_from_checkpoint
from napari_detlab.core.model.config import ModelConfig

__all__ = [
    "EXPORT_FORMATS",
    "ONNX_CAVEAT",
    "ONNX_OPSET",
    "ExactResizeTransform",
    "ExportError",
    "ExportedModel",
    "default_export_path",
    "export_metadata",
    "export_model",
]

EXPORT_FORMATS = ("torchscript", "onnx")
ONNX_OPSET = 17  # torchvision's detection export needs >= 11; 17 is what onnxruntime knows well
_SUFFIX = {"torchscript": ".torchscript.pt", "onnx": ".onnx"}
METADATA_NAME = "detlab.json"  # the extra file inside a TorchScript export


# What a user of an ONNX file must know; the CLI prints it beside the file's name.
ONNX_CAVEAT = (
    "some image sizes (about 1 in 8) are resized one pixel short in ONNX, which moves their "
    "boxes; the torchscript export matches the checkpoint exactly"
)


class ExportError(DetlabError, ValueError):
    """A model that cannot be exported as asked; the message names the format and why."""


@dataclass(frozen=True)
class ExportedModel:
    """What :func:`export_model` wrote: the model file, its JSON sidecar, the format."""

    path: Path
    metadata_path: Path
    format: str


class ExactResizeTransform(GeneralizedRCNNTransform):
    """torchvision's transform, resizing to the size eager mode computes, when scripted too.

    Eager torchvision scales by ``min(min_size / short side, max_size / long side)`` in
    Python floats (double); scripted, it computes that scale as a float32 tensor, and
    ``floor(side * scale)`` can then come out one pixel smaller. Here the size is computed
    in double precision in both modes and passed to ``interpolate`` (what eager mode's
    ``recompute_scale_factor=True`` does), so the exported model sees the same pixels. For
    inference only: it always resizes to the last ``min_size``, never to a random one of
    them as torchvision does in training.
    """

    def resize(
        self, image: Tensor, target: dict[str, Tensor] | None = None
    ) -> tuple[Tensor, dict[str, Tensor] | None]:
        height, width = image.shape[-2], image.shape[-1]
        fixed = self.fixed_size
        if fixed is not None:
            size = [fixed[1], fixed[0]]
        else:
            scale = min(
                float(self.min_size[-1]) / float(min(height, width)),
                float(self.max_size) / float(max(height, width)),
            )
            size = [math.floor(height * scale), math.floor(width * scale)]
        image = nn.functional.interpolate(
            image[None], size=size, mode="bilinear", align_corners=False
        )[0]
        if target is not None:
            target["boxes"] = resize_boxes(target["boxes"], [height, width], [size[0], size[1]])
        return image, target


def default_export_path(checkpoint: str | Path, model_format: str) -> Path:
    """``runs/x/best.pt`` -> ``runs/x/best.torchscript.pt`` or ``runs/x/best.onnx``."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + _SUFFIX[_checked_format(model_format)])


def export_metadata(
    config: ModelConfig, model_format: str, checkpoint: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What a user of the exported model needs without napari-detlab, as JSON-ready values.

    The class of each label (0 is the background, as in torchvision), what the model expects
    and what it returns, the thresholds baked into it, and where it came from.
    """
    names = {"0": "__background__"}
    names.update({str(index): name for index, name in enumerate(config.classes, start=1)})
    if model_format == "torchscript":
        call = "losses, detections = model([image, ...])  # scripted detectors return both"
        tensors = "a list of float32 tensors [3, H, W]"
        returns = "per image a dict: boxes float32 [N, 4], labels int64 [N], scores float32 [N]"
    else:
        call = "boxes, labels, scores = session.run(None, {'images': image})  # one image a call"
        tensors = "one float32 array [3, H, W] named 'images'"
        returns = "boxes float32 [N, 4], labels int64 [N], scores float32 [N]"
    source = checkpoint or {}
    return {
        "format": "napari-detlab-export",
        "version": 1,
        "model_format": model_format,
        "requires": (
            "torch and torchvision: import torchvision before torch.jit.load (it registers "
            "the nms and roi_align operators)"
            if model_format == "torchscript"
            else "an ONNX runtime (opset 17)"
        ),
        "classes": names,
        "input": {  # what napari-detlab feeds it (core.images.read_image, to_float_rgb)
            "tensors": tensors,
            "channels": "RGB; grayscale repeated over the three, alpha dropped",
            "values": "0..1: 8-bit divided by 255, 16-bit and float images stretched "
            "between their own minimum and maximum",
            "orientation": "EXIF orientation applied, as photo viewers show the image",
            "size": "any H and W: the model resizes (short side to min_size, long side at "
            "most max_size) and normalises by itself",
        },
        "call": call,
        "output": returns + "; boxes are x1, y1, x2, y2 in pixels of the input image",
        "known_differences": ONNX_CAVEAT if model_format == "onnx" else None,
        "score_threshold": config.box_score_thresh,
        "nms_iou": config.box_nms_thresh,
        "detections_per_image": config.box_detections_per_img,
        "min_size": config.min_size,
        "max_size": config.max_size,
        "epoch": source.get("epoch"),
        "metrics": source.get("metrics") or {},
        "torch_version": str(torch.__version__),
        "torchvision_version": str(torchvision.__version__),
    }


def export_model(
    checkpoint: str | Path, model_format: str = "torchscript", output: str | Path | None = None
) -> ExportedModel:
    """Export a checkpoint's detector as TorchScript or ONNX, with its JSON sidecar.

    Parameters
    ----------
    checkpoint
        A napari-detlab checkpoint; it alone rebuilds the model.
    model_format
        ``"torchscript"`` or ``"onnx"`` (see the module's notes for what each supports).
    output
        The model file; default :func:`default_export_path`. ``<output>.json`` is written
        beside it. Both writes are atomic.

    Raises
    ------
    ExportError
        An unknown format, an output that is a folder or the checkpoint itself, or an exporter
        that refuses the model (its first line of reason).
    FileNotFoundError, CheckpointError
        No such checkpoint, or not a napari-detlab checkpoint.
    WriteError
        The model or its sidecar could not be written.
    """
    model_format = _checked_format(model_format)
    path = Path(output) if output is not None else default_export_path(checkpoint, model_format)
    if path.is_dir():
        raise ExportError(f"{path}: is a folder; give the model file's name, e.g. model.onnx")
    if path.resolve() == Path(checkpoint).resolve():
        raise ExportError(f"{path}: is the checkpoint itself; give the export another name")
    if model_format == "onnx" and importlib.util.find_spec("onnx") is None:
        raise ExportError(
            "ONNX export needs the onnx package, which is not installed: pip install onnx "
            "(and onnxruntime to run the result)"
        )
    model, config = model_from_checkpoint(checkpoint, device="cpu")
    metadata = export_metadata(config, model_format, load_checkpoint(checkpoint))
    text = json.dumps(metadata, indent=2)
    try:
        with warnings.catch_warnings():
            # torch marks torch.jit and the TorchScript-based ONNX exporter deprecated and the
            # tracer warns about torchvision's own code; both still export this detector
            # (the tests check the boxes), and the notices would only alarm a CLI user.
            warnings.simplefilter("ignore")
            data = _torchscript(model, text) if model_format == "torchscript" else _onnx(model)
    except Exception as error:  # the exporters raise many types; each means "not exportable"
        reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise ExportError(f"{checkpoint}: {model_format} export failed ({reason})") from error
    atomic_write_bytes(path, data)
    metadata_path = path.with_name(path.name + ".json")
    atomic_write_json(metadata_path, metadata)
    return ExportedModel(path, metadata_path, model_format)


def _checked_format(model_format: str) -> str:
    if model_format not in EXPORT_FORMATS:
        raise ExportError(
            f"unknown export format {model_format!r}; choose one of {', '.join(EXPORT_FORMATS)}"
        )
    return model_format


def _torchscript(model: nn.Module, metadata: str) -> bytes:
    transform = model.transform
    model.transform = ExactResizeTransform(
        transform.min_size, transform.max_size, transform.image_mean, transform.image_std,
        transform.size_divisible, transform.fixed_size,
    ).eval()  # fmt: skip
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(model), buffer, _extra_files={METADATA_NAME: metadata})
    return buffer.getvalue()


def _onnx(model: nn.Module) -> bytes:
    height, width = model.transform.min_size[-1], model.transform.max_size
    buffer = io.BytesIO()
    torch.onnx.export(
        model, ([torch.rand(3, height, width)],), buffer, opset_version=ONNX_OPSET,
        dynamo=False, input_names=["images"], output_names=["boxes", "labels", "scores"],
        dynamic_axes={"images": {1: "height", 2: "width"}, "boxes": {0: "detections"},
                      "labels": {0: "detections"}, "scores": {0: "detections"}},
    )  # fmt: skip
    return buffer.getvalue()
