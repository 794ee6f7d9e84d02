"""I-FGSM / PGD on joint coordinates: Kurakin, Goodfellow and Bengio, "Adversarial examples in the physical
world", ICLR workshop 2017 (I-FGSM); Madry et al., "Towards Deep Learning Models Resistant to Adversarial
Attacks", ICLR 2018 (PGD: the same iteration started from a random point of the budget).

Threat model: white-box. The perturbation ``δ`` of every joint in every frame is bounded per joint, in metres:

``norm="linf"``  every coordinate of every joint's displacement within ``±eps``; steps ``−step_size·sign(∇Lc)``;
``norm="l2"``    every joint's 3-D displacement ``‖δ[t, v]‖₂ ≤ eps``; steps ``−step_size·∇Lc/‖∇Lc‖`` with the
                 gradient normalised per joint and frame.

After each step ``δ`` is projected back onto the budget. ``Lc`` and the success test follow the strategy
(:mod:`engine.attacks.common`: AB, ABN, SA). With ``early_stop`` (default) a sample stops at its first success
(its adversarial clip is that iterate), as SMART does; without it every sample runs all iterations and the
last adversarial iterate is kept.

Defaults (ours; the papers work on images in [0, 1]): ``eps = 0.01`` m (1 cm per joint, about 3% of a
forearm), ``iterations = 50``, ``step_size = eps / 10`` (so ten steps can cross the budget, 2.5·eps/iterations
would be Madry's rule for 50 steps without early stopping), ``random_start = False`` (I-FGSM; True gives PGD).
Absent (all-zero) performers are never perturbed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from engine.attacks.base import Attack, AttackResult, StrategyParams, register_attack
from engine.attacks.common import (
    IterativeState,
    check_strategy,
    present_performers,
    strategy_class_loss,
    strategy_success,
)
from engine.params import param


@dataclass(frozen=True)
class IFGSMParams(StrategyParams):
    """I-FGSM/PGD hyper-parameters (module docstring: defaults and sources)."""

    eps: float = param(0.01, "per-joint budget", unit="m", min=0.0, min_exclusive=True)
    norm: Literal["linf", "l2"] = param("linf", "linf: every coordinate within ±eps; l2: every joint's 3-D "
                                        "displacement within eps")
    iterations: int = param(50, "number of steps", min=1)
    step_size: float | None = param(None, "step length (none: eps / 10)", unit="m", min=0.0, min_exclusive=True)
    random_start: bool = param(False, "start uniformly inside the budget (PGD)")
    early_stop: bool = param(True, "stop each sample at its first success")
    seed: int = param(0, "seed of the random start")


@register_attack("ifgsm")
class IFGSM(Attack):
    """I-FGSM / PGD with a per-joint L∞ or L2 budget in metres (see the module docstring); hyper-parameters
    :class:`IFGSMParams`."""

    threat_model = "white-box"
    Params = IFGSMParams
    momentum = 0.0

    def __init__(self, model, params=None, **kwargs) -> None:
        super().__init__(model, params, **kwargs)
        self.step_size = float(self.hp.step_size) if self.hp.step_size is not None else self.eps / 10

    @property
    def params(self) -> dict:
        return {**super().params, "effective_step_size": self.step_size, "momentum": self.momentum}

    # -- budget geometry -------------------------------------------------------------------------------------
    def project(self, delta: torch.Tensor) -> torch.Tensor:
        if self.norm == "linf":
            return delta.clamp(-self.eps, self.eps)
        norm = delta.norm(dim=1, keepdim=True)
        return delta * torch.clamp(self.eps / (norm + 1e-12), max=1.0)

    def steepest(self, g: torch.Tensor) -> torch.Tensor:
        """Unit steepest-descent direction of the budget's norm for gradient ``g``."""
        if self.norm == "linf":
            return g.sign()
        return g / (g.norm(dim=1, keepdim=True) + 1e-12)

    def random_init(self, x: torch.Tensor) -> torch.Tensor:
        gen = torch.Generator(device=x.device)
        if self.seed is not None:
            gen.manual_seed(int(self.seed))
        else:
            gen.seed()
        if self.norm == "linf":
            return (torch.rand(x.shape, generator=gen, device=x.device, dtype=x.dtype) * 2 - 1) * self.eps
        direction = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
        direction = direction / (direction.norm(dim=1, keepdim=True) + 1e-12)
        radius = torch.rand(x.shape[:1] + (1,) + x.shape[2:], generator=gen, device=x.device, dtype=x.dtype)
        return direction * self.eps * radius ** (1 / 3)  # uniform in the 3-D ball

    def momentum_update(self, g: torch.Tensor, state: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """I-FGSM uses the gradient as is; MI-FGSM overrides this with its accumulated velocity."""
        return g, state

    # -- the attack ------------------------------------------------------------------------------------------
    def run(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> AttackResult:
        check_strategy(self.strategy, self.top_n, getattr(self.model, "num_classes", None), target)
        present = present_performers(x)
        delta = self.random_init(x) * present if self.random_start else torch.zeros_like(x)
        velocity = torch.zeros_like(x) if self.momentum else None
        state = IterativeState(x, history_keys=("Lc",))

        for it, final in state.steps(self.iterations, self.check_every):
            d = delta.detach().requires_grad_(not final)
            with torch.set_grad_enabled(not final):
                logits = self.model(x + d)
                lc = strategy_class_loss(logits, y, self.strategy, self.top_n, target)
            with torch.no_grad():
                success = strategy_success(logits, y, self.strategy, self.top_n, target)
                state.observe(it, d, logits.argmax(1), success, stop=self.early_stop, Lc=lc)
            if final:
                break
            (g,) = torch.autograd.grad(lc.sum(), d)
            with torch.no_grad():
                g, velocity = self.momentum_update(g, velocity)
                step = self.step_size * self.steepest(g) * present
                new = self.project(d.detach() - step)
                delta = torch.where(state.done.view(-1, 1, 1, 1, 1), d.detach(), new)
            self._tick(it + 1, self.iterations, lambda: {"active": (~state.done).sum()})

        return state.result(x, delta, self.iterations, self.params, host=not self.keep_on_device)
