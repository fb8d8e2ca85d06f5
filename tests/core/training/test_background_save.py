"""Background checkpoint writes hold the state of the moment they were asked for."""

from __future__ import annotations

import pytest
import torch

from napari_detlab.core.model.checkpoint import load_checkpoint
from napari_detlab.core.model.config import ModelConfig
from napari_detlab.core.training.background_save import CheckpointWriter


def test_the_file_holds_the_step_of_the_call_not_a_later_one(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    weight_then = model.weight.detach().clone()
    momentum_then = optimizer.state[model.weight]["momentum_buffer"].clone()
    writer = CheckpointWriter()
    config = ModelConfig(classes=["cell"])

    path = writer.save(
        tmp_path / "last.pt", model=model, optimizer=optimizer, config=config, epoch=4, metrics={}
    )
    with torch.no_grad():  # training goes on while the file is written
        model.weight.add_(100.0)
        optimizer.state[model.weight]["momentum_buffer"].add_(100.0)
    writer.close()

    checkpoint = load_checkpoint(path)
    assert checkpoint["epoch"] == 4
    torch.testing.assert_close(checkpoint["model"]["weight"], weight_then)
    stored_momentum = next(iter(checkpoint["optimizer"]["state"].values()))["momentum_buffer"]
    torch.testing.assert_close(stored_momentum, momentum_then)


def test_a_failed_write_is_reported_by_wait(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    writer = CheckpointWriter()
    writer.save(
        blocker / "last.pt", model=torch.nn.Linear(1, 1), config=ModelConfig(classes=["a"]),
        epoch=0, metrics={},
    )  # fmt: skip
    with pytest.raises(OSError):
        writer.wait()
    writer.close()
