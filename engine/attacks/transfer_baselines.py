"""Transfer baselines on surrogate models: an ensemble of surrogates, input diversity (DIM) adapted to motion, and
SVRE. Each crafts clips white-box on its surrogate(s) to be replayed on unseen victims
(:mod:`engine.attacks.transfer`).

Papers:

* ``ens``  Dong et al., "Boosting Adversarial Attacks with Momentum", CVPR 2018, §3.2 (ensemble in logits): the
  surrogates' logits are averaged with equal weights, ``l(x) = 1/K Σ_k l_k(x)``, and MI-FGSM attacks the fused
  model.
* ``dim``  Xie et al., "Improving Transferability of Adversarial Examples with Input Diversity", CVPR 2019 (DI²-FGSM,
  with momentum: M-DI²-FGSM): at every step, with probability ``p``, the gradient is taken on a randomly transformed
  input. Images are resized and padded; a motion is transformed here by what resizing means for it: a random
  **temporal crop-resample** (a random contiguous ``r ∈ [time_crop_min, 1]`` share of the window, linearly resampled
  back to T frames: the motion played a little faster) and a random **body scale** ``s ∈ [scale_min, 1]`` about the
  first frame's root (the image's shrink-then-pad; DIM's 299→[299, 330) is a ratio of 0.906). The TASAR code's
  DIM baseline (``Attackers/Augment.py``) crops to [0.95, 1] of the frames and then corrupts joints or augments
  the pose; we keep only the two transforms the DIM paper motivates (a resize in each of the motion's axes).
* ``svre`` Xiong et al., "Stochastic Variance Reduced Ensemble Adversarial Attack for Boosting the Adversarial
  Transferability", CVPR 2022, Algorithm 1: each outer step computes the fused ensemble gradient ``g_ens`` at
  ``x_t``; an inner loop of ``M`` steps starts at ``x_t`` and, with one randomly drawn surrogate ``k`` per step, uses
  the variance-reduced gradient ``g̃ = ∇J_k(x̃) − (∇J_k(x_t) − g_ens)``, accumulated with inner momentum μ₂ and
  stepped by ``β·sign``; the outer update steps ``α·sign`` of the outer momentum (μ₁) of the inner accumulator.
  The TASAR code's ``Attackers/SVRE.py`` steps along the plain ensemble gradient (no inner loop); we follow the paper.

Threat model: white-box on the surrogates, black-box on the victims. The budget is per joint and coordinate
(L∞, metres): every coordinate of every joint's displacement within ``±eps``; steps are ``step_size·sign``.
Strategies AB/ABN/SA as everywhere (:mod:`engine.attacks.common`). Surrogates beyond the first (the attack's
``model``) are the keyword input ``surrogates`` (a list of classifiers of the same skeleton and frame rate).
The reported success and prediction are the fused surrogate's (the first model alone when there is no other).

Defaults (the papers run 10 iterations at ε = 16/255 on [0, 1] images with α = ε/10): ``eps = 0.01`` m (the
project's per-joint budget, as I-FGSM), ``iterations = 50``, ``step_size = eps / 10``, ``momentum = 1.0``
(MI-FGSM's μ; SVRE's μ₁ = μ₂ = 1.0), ``early_stop = False`` (a transfer attack runs every step: stopping at the
surrogate's first success leaves the clip on the surrogate's boundary, which transfers worst). DIM: ``p = 0.5``
(the paper's), ``time_crop_min = 0.9`` and ``scale_min = 0.9`` (ours, DIM's 0.906 ratio). SVRE:
``inner_iterations = 4 K`` (the paper's M = 4 × the number of surrogates), ``inner_step_size = step_size`` (β = α,
the paper's).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from engine.attacks.base import Attack, AttackResult, StrategyParams, register_attack
from engine.attacks.common import (
    IterativeState,
    check_strategy,
    present_performers,
    strategy_class_loss,
    strategy_success,
)
from engine.errors import AttackError
from engine.modes import eval_mode
from engine.params import param

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TransferParams(StrategyParams):
    """What every transfer baseline shares (module docstring: defaults and sources)."""

    eps: float = param(0.01, "per-joint L∞ budget: every coordinate within ±eps", unit="m", min=0.0,
                       min_exclusive=True)
    iterations: int = param(50, "number of steps", min=1)
    step_size: float | None = param(None, "step length (none: eps / 10)", unit="m", min=0.0, min_exclusive=True)
    momentum: float = param(1.0, "momentum μ of the accumulated, L1-normalised gradient", min=0.0)
    early_stop: bool = param(False, "stop each sample at its first success on the surrogate(s)")
    seed: int = param(0, "seed of the random draws (input transforms, SVRE's surrogate picks)")


def l1_normalise(g: torch.Tensor) -> torch.Tensor:
    """``g`` divided by each sample's L1 norm (MI-FGSM's normalisation)."""
    return g / g.abs().flatten(1).sum(1).clamp_min(1e-12).view(-1, *([1] * (g.ndim - 1)))


def check_surrogates(model, surrogates: Sequence) -> list:
    """The surrogate list ``[model, *surrogates]`` after checking the extra ones take the same input."""
    from engine.attacks.transfer import check_compatible

    extra = list(surrogates or [])
    for i, s in enumerate(extra):
        if not isinstance(s, torch.nn.Module):
            raise AttackError(f"surrogate {i + 1} is a {type(s).__name__}, not a model; pass classifiers")
        check_compatible(model, s, f"surrogate {i + 1}")
    return [model, *extra]


@register_attack("ens")
class SurrogateAttack(Attack):
    """Iterative sign attack with momentum on the logit average of one or more surrogates (the ``ens`` attack;
    ``dim`` and ``svre`` refine it). ``surrogates``: models besides ``model``."""

    threat_model = "transfer (white-box on the surrogates)"
    Params = TransferParams
    resources = ("surrogates",)

    def __init__(self, model, params=None, *, surrogates: Sequence | None = None, **kwargs) -> None:
        super().__init__(model, params, **kwargs)
        self.models = check_surrogates(model, surrogates or [])
        self.step = float(self.hp.step_size) if self.hp.step_size is not None else self.eps / 10
        self.generator = random.Random(self.seed)

    @property
    def params(self) -> dict:
        return {**super().params, "effective_step_size": self.step, "n_surrogates": len(self.models)}

    def fused_logits(self, x: torch.Tensor, models: Sequence | None = None) -> torch.Tensor:
        models = self.models if models is None else models
        out = models[0](x)
        for m in models[1:]:
            out = out + m(x.to(next(m.parameters()).device)).to(out.device)
        return out / len(models)

    def loss_grad(self, x_adv: torch.Tensor, y, target, models: Sequence | None = None) -> torch.Tensor:
        """Gradient of the summed class loss ``Lc`` on the fused ``models`` at ``x_adv`` (after ``transform``)."""
        xa = x_adv.detach().requires_grad_(True)
        lc = strategy_class_loss(self.fused_logits(self.transform(xa), models), y, self.strategy, self.top_n, target)
        (g,) = torch.autograd.grad(lc.sum(), xa)
        return g

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """The input the gradient is taken on (identity; DIM draws a random transform)."""
        return x

    def direction(self, x: torch.Tensor, delta: torch.Tensor, y, target, velocity, present) -> tuple:
        """(descent direction of this step, new velocity): MI-FGSM's momentum of the L1-normalised gradient."""
        g = self.loss_grad(x + delta, y, target)
        velocity = self.momentum * velocity + l1_normalise(g)
        return velocity, velocity

    def run(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> AttackResult:
        check_strategy(self.strategy, self.top_n, getattr(self.model, "num_classes", None), target)
        present = present_performers(x)
        delta = torch.zeros_like(x)
        velocity = torch.zeros_like(x)
        state = IterativeState(x, history_keys=("Lc",))
        with _all_eval(self.models[1:]):
            for it, final in state.steps(self.iterations, self.check_every):
                with torch.no_grad():
                    logits = self.fused_logits(x + delta)
                    lc = strategy_class_loss(logits, y, self.strategy, self.top_n, target)
                    success = strategy_success(logits, y, self.strategy, self.top_n, target)
                    state.observe(it, delta, logits.argmax(1), success, stop=self.early_stop, Lc=lc)
                if final:
                    break
                step_dir, velocity = self.direction(x, delta, y, target, velocity, present)
                with torch.no_grad():
                    new = (delta - self.step * step_dir.sign() * present).clamp(-self.eps, self.eps)
                    delta = torch.where(state.done.view(-1, 1, 1, 1, 1), delta, new)
                self._tick(it + 1, self.iterations, lambda: {"active": (~state.done).sum()})
        result = state.result(x, delta, self.iterations, self.params, host=not self.keep_on_device)
        return result


class _all_eval:
    """Eval mode (and frozen parameters) for the extra surrogates, restored afterwards (the base class does the
    attack's own model)."""

    def __init__(self, models) -> None:
        self.models = list(models)
        self.stack = []

    def __enter__(self):
        for m in self.models:
            ctx = eval_mode(m, freeze=True)
            ctx.__enter__()
            self.stack.append(ctx)
        return self

    def __exit__(self, *exc):
        while self.stack:
            self.stack.pop().__exit__(*exc)
        return False


@dataclass(frozen=True)
class DIMParams(TransferParams):
    """The shared transfer parameters plus DIM's input diversity (module docstring)."""

    diversity_prob: float = param(0.5, "probability p that a step's gradient is taken on a transformed input",
                                  min=0.0, max=1.0)
    time_crop_min: float = param(0.9, "smallest share of the window kept by the temporal crop-resample",
                                 min=0.0, max=1.0, min_exclusive=True)
    scale_min: float = param(0.9, "smallest body scale about the root", min=0.0, max=1.0, min_exclusive=True)


@register_attack("dim")
class DIM(SurrogateAttack):
    """MI-FGSM with motion input diversity (DIM, module docstring); parameters :class:`DIMParams`."""

    Params = DIMParams

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        if self.generator.random() >= self.diversity_prob:
            return x
        t = x.shape[2]
        keep = self.generator.uniform(self.time_crop_min, 1.0)
        length = keep * (t - 1)
        start = self.generator.uniform(0.0, (t - 1) - length)
        out = temporal_resample(x, start, length)
        s = self.generator.uniform(self.scale_min, 1.0)
        root = getattr(getattr(self.model, "skeleton", None), "root", 0)
        pivot = out[:, :, :1, root : root + 1, :]
        present = (x.abs().amax(dim=(1, 2, 3), keepdim=True) > 0).to(x.dtype)
        return (pivot + s * (out - pivot)) * present


def temporal_resample(x: torch.Tensor, start: float, length: float) -> torch.Tensor:
    """``x`` (N, C, T, V, M) linearly resampled at T evenly spaced times from ``start`` to ``start + length`` (in
    frames): a crop played back over the whole window. Differentiable in ``x``."""
    t = x.shape[2]
    times = torch.linspace(start, start + length, t, device=x.device, dtype=x.dtype).clamp(0, t - 1)
    lo = times.floor().long().clamp(max=t - 1)
    hi = (lo + 1).clamp(max=t - 1)
    w = (times - lo.to(x.dtype)).view(1, 1, t, 1, 1)
    return x.index_select(2, lo) * (1 - w) + x.index_select(2, hi) * w


@dataclass(frozen=True)
class SVREParams(TransferParams):
    """The shared transfer parameters plus SVRE's inner loop (module docstring)."""

    inner_iterations: int | None = param(None, "inner steps M per outer step (none: 4 × the number of surrogates)",
                                         min=1)
    inner_step_size: float | None = param(None, "inner step β (none: the outer step)", unit="m", min=0.0,
                                          min_exclusive=True)
    inner_momentum: float = param(1.0, "inner momentum μ₂", min=0.0)


@register_attack("svre")
class SVRE(SurrogateAttack):
    """SVRE (Xiong et al., CVPR 2022; module docstring); parameters :class:`SVREParams`. With a single surrogate
    the variance-reduced gradient equals the plain one and SVRE is MI-FGSM with an inner loop."""

    Params = SVREParams

    @property
    def params(self) -> dict:
        return {**super().params, "effective_inner_iterations": self.inner_m, "effective_inner_step": self.beta}

    @property
    def inner_m(self) -> int:
        return int(self.inner_iterations) if self.inner_iterations is not None else 4 * len(self.models)

    @property
    def beta(self) -> float:
        return float(self.inner_step_size) if self.inner_step_size is not None else self.step

    def direction(self, x, delta, y, target, velocity, present):
        x_t = x + delta
        per_model = [self.loss_grad(x_t, y, target, [m]) for m in self.models]
        g_ens = self.loss_grad(x_t, y, target)
        inner = torch.zeros_like(x)
        d_inner = delta.clone()
        for _ in range(self.inner_m):
            k = self.generator.randrange(len(self.models))
            g_k = self.loss_grad(x + d_inner, y, target, [self.models[k]])
            g_vr = g_k - (per_model[k] - g_ens)
            inner = self.inner_momentum * inner + l1_normalise(g_vr)
            d_inner = (d_inner - self.beta * inner.sign() * present).clamp(-self.eps, self.eps)
        velocity = self.momentum * velocity + l1_normalise(inner)
        return velocity, velocity


__all__ = ["DIM", "SVRE", "SurrogateAttack", "TransferParams", "l1_normalise", "temporal_resample"]
