"""engine.devices.model_device: parameters first, then buffers, then the CPU."""

from __future__ import annotations

import pytest
import torch

from engine.devices import model_device


def test_parameters_buffers_then_cpu() -> None:
    assert model_device(torch.nn.Linear(2, 2)) == torch.device("cpu")
    only_buffers = torch.nn.BatchNorm1d(3, affine=False)
    assert not list(only_buffers.parameters()) and model_device(only_buffers) == torch.device("cpu")
    assert model_device(torch.nn.Identity()) == torch.device("cpu")
    assert model_device(torch.nn.Linear(2, 2, device="meta")) == torch.device("meta")
    assert model_device(torch.nn.BatchNorm1d(3, affine=False, device="meta")) == torch.device("meta")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_model() -> None:
    assert model_device(torch.nn.BatchNorm1d(3, affine=False).cuda()).type == "cuda"
