"""Running a model in eval mode for a while without changing how the caller left it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


@contextlib.contextmanager
def eval_mode(model: nn.Module, *, freeze: bool = False) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the ``with`` block and restore its train/eval mode afterwards (also on an
    error). With ``freeze``, its parameters stop requiring gradients for the block too (attacks take gradients
    with respect to the input only) and get their own ``requires_grad`` back afterwards."""
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()] if freeze else []
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)
