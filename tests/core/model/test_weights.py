"""Pretrained weights come from files on disk, land in the right layers, and never download.

Each test writes the weights file itself (a freshly initialised torchvision network saved
under the name torchvision would have downloaded it as) into a private ``TORCH_HOME``, then
checks the tensors are the ones inside the built detector.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.models import mobilenet_v3_large, resnet18
from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn

from napari_detlab.core.model.builder import build_model
from napari_detlab.core.model.checkpoint import save_checkpoint
from napari_detlab.core.model.config import ModelConfig
from napari_detlab.core.model.weights import (
    WeightsNotFoundError,
    expected_weights_files,
    load_pretrained,
    load_weights_file,
)


def levels(config_kwargs: dict) -> ModelConfig:
    """A config with one anchor size per feature map of its backbone."""
    config = ModelConfig(classes=["cell", "crystal"], **config_kwargs)
    count = config.num_levels
    return config.replace(anchor_sizes=[[32.0]] * count, aspect_ratios=[[0.5, 1.0, 2.0]] * count)


def save_state(state: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)


def test_imagenet_resnet18_loads_from_the_torch_cache(torch_home):
    config = levels({"backbone": "resnet18", "pretrained": "imagenet"})
    (expected,) = expected_weights_files(config)
    assert expected == torch_home / "resnet18-f37072fd.pth"
    torch.manual_seed(123)
    source = resnet18().state_dict()
    save_state(source, expected)

    model = build_model(config)

    body = model.backbone.body
    torch.testing.assert_close(body.conv1.weight, source["conv1.weight"])
    torch.testing.assert_close(body.layer4[1].conv2.weight, source["layer4.1.conv2.weight"])
    # Frozen BatchNorm keeps the file's statistics.
    torch.testing.assert_close(body.bn1.running_mean, source["bn1.running_mean"])


def test_imagenet_mobilenet_without_fpn_maps_features_into_the_backbone(torch_home):
    config = levels({"backbone": "mobilenet_v3_large", "fpn": False, "pretrained": "imagenet"})
    torch.manual_seed(5)
    source = mobilenet_v3_large().state_dict()
    save_state(source, expected_weights_files(config)[0])

    model = build_model(config)

    torch.testing.assert_close(model.backbone[0][0][0].weight, source["features.0.0.weight"])
    torch.testing.assert_close(model.backbone[0][16][0].weight, source["features.16.0.weight"])


def test_missing_weights_name_the_file_and_the_ways_out(torch_home):
    config = levels({"backbone": "resnet34", "pretrained": "imagenet"})
    with pytest.raises(WeightsNotFoundError) as error:
        build_model(config)
    message = str(error.value)
    assert str(torch_home / "resnet34-b627a593.pth") in message
    assert "weights_path" in message and 'pretrained="none"' in message
    assert "\n" not in message


def test_missing_weights_path_is_reported(tmp_path):
    config = levels({"weights_path": str(tmp_path / "nope.pth")})
    with pytest.raises(WeightsNotFoundError, match=r"nope\.pth does not exist"):
        build_model(config)


def test_coco_detector_weights_skip_the_class_head(torch_home):
    """COCO has 91 classes: everything but the box predictor fits a 2-class detector."""
    config = levels({"backbone": "mobilenet_v3_large", "pretrained": "coco", "trainable_layers": 3})
    config = config.replace(
        anchor_sizes=[[32.0, 64.0, 128.0, 256.0, 512.0]] * 3,
        aspect_ratios=[[0.5, 1.0, 2.0]] * 3,
    )
    torch.manual_seed(7)
    source = fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None).state_dict()
    save_state(source, expected_weights_files(config)[0])

    model = build_model(config, load_weights=False)
    report = load_pretrained(model, config)

    assert report.kind == "detector"
    skipped = {entry.split(" ")[0] for entry in report.skipped}
    assert skipped == {
        "roi_heads.box_predictor.cls_score.weight", "roi_heads.box_predictor.cls_score.bias",
        "roi_heads.box_predictor.bbox_pred.weight", "roi_heads.box_predictor.bbox_pred.bias",
    }  # fmt: skip
    state = model.state_dict()
    for key in ("backbone.body.0.0.weight", "backbone.fpn.inner_blocks.0.0.weight",
                "rpn.head.cls_logits.weight", "roi_heads.box_head.fc6.weight"):  # fmt: skip
        torch.testing.assert_close(state[key], source[key])
    assert "skipped 4" in report.summary()


def test_weights_path_accepts_a_detlab_checkpoint_of_other_classes(tmp_path):
    trained_config = levels({"backbone": "resnet18"}).replace(classes=["a", "b", "c"])
    torch.manual_seed(11)
    trained = build_model(trained_config)
    save_checkpoint(tmp_path / "best.pt", model=trained, config=trained_config, epoch=3, metrics={})
    config = levels({"backbone": "resnet18", "weights_path": str(tmp_path / "best.pt")})

    model = build_model(config)

    torch.testing.assert_close(
        model.backbone.fpn.layer_blocks[0][0].weight, trained.backbone.fpn.layer_blocks[0][0].weight
    )
    torch.testing.assert_close(model.rpn.head.conv[0][0].weight, trained.rpn.head.conv[0][0].weight)
    assert model.roi_heads.box_predictor.cls_score.weight.shape[0] == 3  # 2 classes + background


def test_weights_of_another_backbone_are_refused(tmp_path):
    torch.manual_seed(1)
    save_state(mobilenet_v3_large().state_dict(), tmp_path / "mobilenet.pth")
    config = levels({"backbone": "resnet18"})
    model = build_model(config)
    with pytest.raises(ValueError, match="none of its tensors fit a resnet18 FPN"):
        load_weights_file(model, tmp_path / "mobilenet.pth", config)


def test_no_pretrained_weights_means_nothing_is_loaded(torch_home):
    config = levels({"backbone": "resnet18"})
    assert expected_weights_files(config) == []
    assert load_pretrained(build_model(config, load_weights=False), config) is None
