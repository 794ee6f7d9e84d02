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

import torch

from engine.attacks.base import register_attack
from engine.attacks.ifgsm import IFGSM
from engine.errors import AttackError


@register_attack("mifgsm")
class MIFGSM(IFGSM):
    """MI-FGSM: I-FGSM with momentum ``momentum`` (μ, default 1.0); other arguments as :class:`IFGSM`."""

    def __init__(
        self,
        model,
        *,
        strategy: str = "ab",
        top_n: int = 3,
        eps: float = 0.01,
        norm: str = "linf",
        iterations: int = 50,
        step_size: float | None = None,
        momentum: float = 1.0,
        random_start: bool = False,
        early_stop: bool = True,
        seed: int | None = 0,
        progress=None,
        cancel=None,
    ) -> None:
        super().__init__(
            model,
            strategy=strategy,
            top_n=top_n,
            eps=eps,
            norm=norm,
            iterations=iterations,
            step_size=step_size,
            random_start=random_start,
            early_stop=early_stop,
            seed=seed,
            progress=progress,
            cancel=cancel,
        )
        if momentum < 0:
            raise AttackError(f"momentum must be >= 0, got {momentum}")
        self.momentum = float(momentum)

    def momentum_update(self, g: torch.Tensor, state: torch.Tensor | None):
        l1 = g.abs().flatten(1).sum(1).clamp_min(1e-12).view(-1, 1, 1, 1, 1)
        state = self.momentum * state + g / l1
        return state, state
