"""Exported models give the checkpoint's boxes, loaded with torch (or onnxruntime) alone."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from napari_detlab.core.images import read_image, to_float_rgb
from napari_detlab.core.model.checkpoint import model_from_checkpoint
from napari_detlab.core.model.export import (
    ExactResizeTransform,
    ExportError,
    default_export_path,
    export_model,
)
from napari_detlab.core.model.predict import predict_images
from tiny_detector import noise_images, tiny_checkpoint

# (h, w). At min_size 96 / max_size 128, torchvision's scripted resize makes (70, 100) one
# pixel narrower than eager mode does (its float32 scale); the export must not.
SIZES = [(70, 100), (64, 64), (120, 90)]
BOX_TOLERANCE_PX = 1e-3  # measured: 0 for TorchScript, <= 4e-4 px for ONNX via onnxruntime
SCORE_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """An untrained checkpoint (60 boxes an image), 3 images and its predictions of them."""
    root = tmp_path_factory.mktemp("export")
    checkpoint = tiny_checkpoint(root / "run" / "best.pt", epoch=3)
    images = noise_images(root / "images", SIZES)
    model, config = model_from_checkpoint(checkpoint)
    # One image a forward pass: torchvision pads a batch to its largest image, so boxes also
    # depend on which images share a batch; one at a time is what an ONNX session does.
    predicted = predict_images(model, config, images, batch_size=1)
    expected = [prediction for _, prediction in predicted]
    assert all(len(prediction) > 0 for prediction in expected)
    return checkpoint, images, expected


def _pixels(path):
    return torch.from_numpy(to_float_rgb(read_image(path))).permute(2, 0, 1)


def _assert_same(expected, boxes, labels, scores, names):
    np.testing.assert_allclose(np.asarray(boxes), expected.boxes, rtol=0, atol=BOX_TOLERANCE_PX)
    np.testing.assert_allclose(np.asarray(scores), expected.scores, rtol=0, atol=SCORE_TOLERANCE)
    assert [names[str(int(label))] for label in labels] == expected.labels


# A user's script: torch and torchvision, no napari-detlab, in a fresh interpreter.
USER_SCRIPT = """
import sys
import torch
import torchvision  # registers the nms and roi_align operators the model calls
model = torch.jit.load(sys.argv[1])
found = []
with torch.inference_mode():
    for image in torch.load(sys.argv[2]):
        found.append(model([image])[1][0])
assert not any(name.startswith("napari_detlab") for name in sys.modules)
torch.save(found, sys.argv[3])
"""


def test_torchscript_export_matches_the_checkpoint_without_napari_detlab(workspace, tmp_path):
    checkpoint, images, expected = workspace
    exported = export_model(checkpoint, "torchscript")
    assert (
        exported.path
        == checkpoint.with_name("best.torchscript.pt")
        == default_export_path(checkpoint, "torchscript")
    )
    sidecar = json.loads(exported.metadata_path.read_text())
    assert sidecar["classes"] == {"0": "__background__", "1": "cell", "2": "crystal"}
    assert sidecar["epoch"] == 3 and sidecar["score_threshold"] == pytest.approx(0.01)
    extra = {"detlab.json": ""}
    torch.jit.load(str(exported.path), _extra_files=extra)
    assert json.loads(extra["detlab.json"]) == sidecar  # the contract travels inside too

    torch.save([_pixels(path) for path in images], tmp_path / "images.pt")
    ran = subprocess.run(
        [sys.executable, "-c", USER_SCRIPT, str(exported.path), "images.pt", "found.pt"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    found = torch.load(tmp_path / "found.pt", weights_only=True)
    for got, want, (h, w) in zip(found, expected, SIZES, strict=True):
        _assert_same(want, got["boxes"], got["labels"], got["scores"], sidecar["classes"])
        assert got["boxes"][:, 2].max() <= w and got["boxes"][:, 3].max() <= h  # input pixels


def test_the_scripted_resize_gives_eager_mode_sizes_and_pixels_for_any_image():
    """Every (h, w) from 20 to 159 px at min 96 / max 128: the exported transform, scripted,
    resizes exactly as the checkpoint's eager torchvision transform does."""
    eager = GeneralizedRCNNTransform(96, 128, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    exact = ExactResizeTransform(96, 128, eager.image_mean, eager.image_std).eval()
    with pytest.warns(FutureWarning):  # torch.jit is deprecated upstream, still works
        scripted = torch.jit.script(exact)
    upstream = torch.jit.script(eager.eval())
    torch.manual_seed(0)
    upstream_misses = 0
    for h in range(20, 160, 3):
        for w in range(20, 160, 7):
            image = torch.rand(3, h, w)
            want = eager.resize(image)[0]
            got = scripted.resize(image)[0]
            assert got.shape == want.shape and torch.equal(got, want), (h, w)
            upstream_misses += upstream.resize(image)[0].shape != want.shape
    assert upstream_misses > 0  # what the exported transform is for


def test_onnx_export_matches_the_checkpoint_in_onnxruntime(workspace, tmp_path):
    pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    checkpoint, images, expected = workspace
    exported = export_model(checkpoint, "onnx", tmp_path / "deploy" / "detector.onnx")
    assert exported.metadata_path == tmp_path / "deploy" / "detector.onnx.json"
    names = json.loads(exported.metadata_path.read_text())["classes"]
    session = onnxruntime.InferenceSession(str(exported.path), providers=["CPUExecutionProvider"])
    for path, want in zip(images, expected, strict=True):
        boxes, labels, scores = session.run(None, {"images": _pixels(path).numpy()})
        _assert_same(want, boxes, labels, scores, names)


def test_onnx_without_the_onnx_package_is_refused_naming_the_fix(workspace, monkeypatch):
    checkpoint, _, _ = workspace
    monkeypatch.setitem(sys.modules, "onnx", None)  # importlib finds no such package
    with pytest.raises(ExportError, match=r"needs the onnx package.*pip install onnx"):
        export_model(checkpoint, "onnx")
    assert not checkpoint.with_name("best.onnx").exists()


def test_an_unknown_format_is_refused(workspace):
    with pytest.raises(ExportError, match=r"unknown export format 'tflite'.*torchscript, onnx"):
        export_model(workspace[0], "tflite")
