"""Where a model lives: the one answer to "which device is this model on?"."""

from __future__ import annotations

import torch

__all__ = ["model_device"]


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of ``model``'s first parameter, else of its first buffer, else the CPU.

    Buffers count because a model may hold no parameters of its own (a frozen wrapper, a normalisation layer);
    a model with neither runs anywhere, and the CPU is where its inputs are made.
    """
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")
