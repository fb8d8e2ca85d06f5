"""``detlab export-model``: a checkpoint as a model that runs without napari-detlab.

TorchScript (default) needs only ``torch`` and ``torchvision`` (``import torchvision``, then
``torch.jit.load``); ONNX (needs ``pip install onnx``) runs in any ONNX runtime, one image
per call. Beside the model, ``<output>.json`` names the class of each
label (0 is the background) and says what the model expects (float RGB images, 0..1,
``[3, H, W]``) and returns (boxes x1, y1, x2, y2 in pixels of the input image, labels,
scores); a TorchScript file also carries it as its extra file ``detlab.json``.

Example::

    detlab export-model runs/exp1/best.pt --format torchscript
    detlab export-model runs/exp1/best.pt --format onnx --output deploy/detector.onnx

The default output is beside the checkpoint: ``best.torchscript.pt`` or ``best.onnx``.
TorchScript gives the checkpoint's boxes exactly; ONNX resizes some image sizes one pixel
short (torchvision's float32 resize scale), which moves their boxes: a note says so.
Exit codes: 0 exported, 2 refused (no such checkpoint, not a napari-detlab checkpoint, an
unknown format, an exporter that cannot export the model) or a file that cannot be written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from napari_detlab.cli.verb import add_verb

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_verb(subparsers, "export-model", run, __doc__)
    parser.add_argument("checkpoint", type=Path, help="checkpoint .pt written by detlab train")
    parser.add_argument(
        "--format",
        default="torchscript",
        metavar="{torchscript,onnx}",
        help="torchscript (default: runs with torch and torchvision alone) or onnx",
    )
    parser.add_argument(
        "--output", "-o", type=Path, default=None, metavar="PATH",
        help="the model file (default: beside the checkpoint); PATH.json goes beside it",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from napari_detlab.core.model.export import ONNX_CAVEAT, export_model

    exported = export_model(args.checkpoint, args.format, args.output)
    print(f"{exported.path} ({exported.format}); classes and input contract: "
          f"{exported.metadata_path}")  # fmt: skip
    if exported.format == "onnx":
        print(f"detlab export-model: note: {ONNX_CAVEAT}", file=sys.stderr)
    return 0
