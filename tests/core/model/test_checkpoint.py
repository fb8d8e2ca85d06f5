"""Checkpoints rebuild the same model from one file, load safely, and refuse anything else."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import pytest
import torch

from napari_detlab.core.atomic import UnsafeFileError
from napari_detlab.core.model.builder import build_model
from napari_detlab.core.model.checkpoint import (
    CheckpointError,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
)
from napari_detlab.core.model.config import preset


@dataclass
class Options:
    epochs: int = 3
    lr: float = 0.01


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    config = preset("fast", ["cell", "crystal"]).replace(min_size=96, max_size=96)
    return build_model(config, load_weights=False).eval(), config


def test_round_trip_rebuilds_the_same_detector(tmp_path, tiny):
    model, config = tiny
    optimizer = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9
    )
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 2)
    path = save_checkpoint(
        tmp_path / "run" / "best.pt", model=model, config=config, epoch=4,
        metrics={"map": 0.5, "per_class": {"cell": 0.4}}, optimizer=optimizer,
        scheduler=scheduler, options=Options(),
    )  # fmt: skip
    raw = torch.load(path, weights_only=True)  # loads with no allow-list at all
    assert raw["format"] == "napari-detlab-checkpoint" and raw["version"] == 1
    assert raw["classes"] == ["cell", "crystal"] and raw["epoch"] == 4
    assert raw["options"] == {"epochs": 3, "lr": 0.01} and raw["metrics"]["map"] == 0.5
    assert raw["torch_version"] == str(torch.__version__)
    optimizer.load_state_dict(raw["optimizer"])
    scheduler.load_state_dict(raw["scheduler"])

    rebuilt, rebuilt_config = model_from_checkpoint(path)
    assert rebuilt_config == config and not rebuilt.training
    image = [torch.rand(3, 80, 110, generator=torch.Generator().manual_seed(1))]
    with torch.inference_mode():
        expected, got = model(image)[0], rebuilt(image)[0]
    assert len(got["boxes"]) > 0
    assert torch.equal(expected["boxes"], got["boxes"]) and torch.equal(
        expected["scores"], got["scores"]
    )


def test_ddp_prefixed_weights_load(tmp_path, tiny):
    model, config = tiny
    path = save_checkpoint(tmp_path / "c.pt", model=model, config=config, epoch=1, metrics=None)
    data = load_checkpoint(path)
    data["model"] = OrderedDict((f"module.{key}", value) for key, value in data["model"].items())
    torch.save(data, tmp_path / "ddp.pt")
    rebuilt, _ = model_from_checkpoint(tmp_path / "ddp.pt")
    assert torch.equal(
        rebuilt.backbone.fpn.layer_blocks[0][0].weight, model.backbone.fpn.layer_blocks[0][0].weight
    )


def test_unsafe_content_is_refused_before_anything_is_written(tmp_path, tiny):
    model, config = tiny
    with pytest.raises(CheckpointError, match="Payload"):
        save_checkpoint(
            tmp_path / "c.pt", model=model, config=config, epoch=1, metrics={"x": Payload()}
        )
    assert not (tmp_path / "c.pt").exists()


class Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_non_checkpoints_are_refused_with_a_reason(tmp_path, tiny, capsys):
    model, config = tiny
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a zip file")
    with pytest.raises(CheckpointError, match=r"garbage\.pt: not a checkpoint"):
        load_checkpoint(tmp_path / "garbage.pt")
    torch.save(model.state_dict(), tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="bare state dict"):
        load_checkpoint(tmp_path / "bare.pt")
    torch.save({"x": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(UnsafeFileError):
        load_checkpoint(tmp_path / "evil.pt")
    assert "code ran" not in capsys.readouterr().out
    path = save_checkpoint(tmp_path / "c.pt", model=model, config=config, epoch=1, metrics={})
    data = load_checkpoint(path)
    torch.save({**data, "version": 99}, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(tmp_path / "future.pt")
    other = preset("fast", ["a", "b", "c"]).replace(min_size=96, max_size=96)
    torch.save(
        {**data, "config": other.to_dict(), "classes": other.classes}, tmp_path / "mismatch.pt"
    )
    with pytest.raises(CheckpointError, match="do not fit"):
        model_from_checkpoint(tmp_path / "mismatch.pt")
