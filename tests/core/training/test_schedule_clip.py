"""Gradient clipping: the norm is capped at the limit, and left alone under it."""

from __future__ import annotations

import math

import pytest
import torch

from napari_detlab.core.training.schedule import clip_gradients


def _with_gradients(*gradients: list[float]) -> list[torch.nn.Parameter]:
    parameters = []
    for values in gradients:
        parameter = torch.nn.Parameter(torch.zeros(len(values)))
        parameter.grad = torch.tensor(values)
        parameters.append(parameter)
    return parameters


def test_gradients_over_the_limit_are_scaled_to_it():
    parameters = _with_gradients([3.0, 0.0], [0.0, 4.0])  # total norm 5
    assert clip_gradients(parameters, 1.0, "cpu") == pytest.approx(5.0)
    assert torch.allclose(parameters[0].grad, torch.tensor([0.6, 0.0]), atol=1e-6)
    assert torch.allclose(parameters[1].grad, torch.tensor([0.0, 0.8]), atol=1e-6)


def test_gradients_under_the_limit_are_untouched():
    parameters = _with_gradients([3.0, 0.0], [0.0, 4.0])
    before = [p.grad.clone() for p in parameters]
    assert clip_gradients(parameters, 10.0, "cpu") == pytest.approx(5.0)
    assert all(torch.equal(p.grad, b) for p, b in zip(parameters, before, strict=True))


def test_the_gpu_path_scales_without_reading_the_norm():
    parameters = _with_gradients([3.0, 0.0], [0.0, 4.0])
    assert math.isnan(clip_gradients(parameters, 1.0, "cuda"))  # never synchronised
    assert torch.allclose(parameters[1].grad, torch.tensor([0.0, 0.8]), atol=1e-6)
    assert clip_gradients(_with_gradients(), 1.0, "cpu") == 0.0
