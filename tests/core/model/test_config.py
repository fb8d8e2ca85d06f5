"""One model config for every caller: presets, files, checkpoints, the text form of levels."""

from __future__ import annotations

import pytest
import torch

from napari_detlab.core.model.checkpoint import save_checkpoint
from napari_detlab.core.model.config import (
    ConfigError,
    ModelConfig,
    format_levels,
    parse_levels,
    preset,
    resolve_model_config,
)


def test_parse_levels_and_format_levels_are_inverse():
    assert parse_levels("16, 24; 32, 48") == [[16, 24], [32, 48]]
    assert parse_levels("0.5, 1, 2", levels=3) == [[0.5, 1, 2]] * 3
    assert format_levels([[0.5, 1, 2]] * 3, collapse=True) == "0.5, 1, 2"
    assert parse_levels(format_levels([[16, 24], [32, 48]])) == [[16, 24], [32, 48]]
    with pytest.raises(ConfigError, match="not a number"):
        parse_levels("16; x")
    with pytest.raises(ConfigError, match="at least one value"):
        parse_levels(" ; ")


def test_preset_is_the_default_and_takes_the_dataset_classes():
    config = resolve_model_config(["cell", "crystal"], preset_name="fast")
    assert config == preset("fast", ["cell", "crystal"])
    with pytest.raises(ConfigError, match="names no classes"):
        resolve_model_config([], preset_name="fast")


def test_a_config_file_wins_and_keeps_its_own_classes_unless_told(tmp_path):
    path = tmp_path / "config.json"
    ModelConfig(classes=["b", "a"], min_size=300, max_size=600).to_json(path)
    from_file = resolve_model_config(["a", "b"], config=path, preset_name="accurate")
    assert (from_file.classes, from_file.min_size) == (["b", "a"], 300)
    replaced = resolve_model_config(["a", "b"], config=from_file, keep_config_classes=False)
    assert replaced.classes == ["a", "b"]
    ModelConfig(min_size=300, max_size=600).to_json(path)
    assert resolve_model_config(["a"], config=path).classes == ["a"]
    with pytest.raises(FileNotFoundError, match="no such config file"):
        resolve_model_config(["a"], config=tmp_path / "missing.json")


def test_a_resumed_run_keeps_its_checkpoint_config(tmp_path):
    config = preset("fast", ["cell"]).replace(min_size=200, max_size=400)
    model = torch.nn.Linear(1, 1)
    save_checkpoint(tmp_path / "last.pt", model=model, config=config, epoch=1, metrics=None)
    resumed = resolve_model_config(["cell", "other"], resume=tmp_path / "last.pt")
    assert resumed == config


def test_overrides_apply_last_and_are_validated():
    config = resolve_model_config(["a"], preset_name="fast", overrides={"min_size": 128})
    assert config.min_size == 128
    with pytest.raises(ConfigError, match="min_size"):
        resolve_model_config(["a"], preset_name="fast", overrides={"min_size": 0})


def test_switching_backbone_drops_coco_weights_it_cannot_have():
    coco = ModelConfig(classes=["a"], backbone="resnet50", fpn=True, pretrained="coco")
    assert coco.with_backbone("resnet18", True).validate().pretrained == "imagenet"
    assert coco.with_backbone("mobilenet_v3_large", True).pretrained == "coco"
    scratch = ModelConfig(classes=["a"], pretrained="none")
    assert scratch.with_backbone("resnet50", False).pretrained == "none"


def test_room_for_a_dense_image_raises_only_the_caps_that_are_too_low():
    config = preset("fast", ["cell"])  # 300 detections, 150 proposals when predicting
    assert config.with_room_for(70) is config  # room enough: the very same config
    assert config.with_room_for(80).rpn_post_nms_top_n_test == 200  # two proposals a box
    dense = config.with_room_for(960)
    assert dense.box_detections_per_img == 1000  # 960 rounded up to a hundred
    assert dense.rpn_post_nms_top_n_test == dense.rpn_pre_nms_top_n_test == 2000
    assert dense.rpn_post_nms_top_n_train == dense.rpn_pre_nms_top_n_train == 2000
    roomy = config.replace(rpn_pre_nms_top_n_train=5000)
    assert roomy.with_room_for(960).rpn_pre_nms_top_n_train == 5000  # never lowered
    unchanged = {k: v for k, v in dense.to_dict().items() if "top_n" not in k}
    assert unchanged == {k: v for k, v in config.to_dict().items() if "top_n" not in k} | {
        "box_detections_per_img": 1000
    }
