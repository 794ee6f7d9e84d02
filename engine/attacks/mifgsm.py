"""MI-FGSM: Dong et al., "Boosting Adversarial Attacks with Momentum", CVPR 2018.

Threat model: white-box (and, by design, better transfer to other models). I-FGSM
(:mod:`engine.attacks.ifgsm`) with a velocity that accumulates L1-normalised gradients,
``g ← μ·g + ∇Lc / ‖∇Lc‖₁`` (the L1 norm over each whole sample), and steps along the budget's steepest direction
of ``g`` (``sign`` for the per-joint L∞ budget, per-joint normalisation for L2). Same budgets, strategies and
early stopping as I-FGSM.

Defaults: ``momentum = 1.0`` (the paper's μ); the rest as I-FGSM (``eps = 0.01`` m, 50 iterations,
``step_size = eps / 10``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.attacks.base import register_attack
from engine.attacks.ifgsm import IFGSM, IFGSMParams
from engine.params import param


@dataclass(frozen=True)
class MIFGSMParams(IFGSMParams):
    """I-FGSM's parameters plus the momentum μ."""

    momentum: float = param(1.0, "momentum μ of the accumulated, L1-normalised gradient", min=0.0)


@register_attack("mifgsm")
class MIFGSM(IFGSM):
    """MI-FGSM: I-FGSM with momentum ``momentum`` (μ, default 1.0); parameters :class:`MIFGSMParams`."""

    Params = MIFGSMParams

    @property
    def params(self) -> dict:
        return {**super().params, "momentum": self.momentum}

    def momentum_update(self, g: torch.Tensor, state: torch.Tensor | None):
        l1 = g.abs().flatten(1).sum(1).clamp_min(1e-12).view(-1, 1, 1, 1, 1)
        state = self.momentum * state + g / l1
        return state, state
