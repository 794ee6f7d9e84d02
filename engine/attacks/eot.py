"""EOT (expectation over transformation) for attacks on stochastic and Bayesian defences, after Athalye,
Carlini and Wagner, "Obfuscated Gradients Give a False Sense of Security", ICML 2018 (and Athalye et al.,
"Synthesizing Robust Adversarial Examples", ICML 2018).

A defended model whose prediction averages over randomness (BEAT's posterior samples, randomized smoothing's
noise) can hide its gradient (a majority vote has none) or present the gradient of one particular average.
EOT attacks the expectation instead: :class:`EOTModel` wraps the defended model and its ``forward`` returns
the mean over ``draws`` random draws of the draw's log-probabilities,

    EOT(x) = 1/k Σ_j log softmax(h_j(x)),

so the gradient of any loss that is linear in these scores is the average of the draws' gradients
(``∇ E[log p] = E[∇ log p]``). A model exposes its randomness through
``stochastic_logits(x, draws, generator) -> (draws, N, K)`` (:class:`~engine.defenses.beat.BEATClassifier`:
posterior samples, all of them when ``draws ≥ N``; :class:`~engine.defenses.smoothing.SmoothedClassifier`:
fresh Gaussian noise each call); a deterministic model is used as it is (one draw).

``eot-smart`` is SMART run through :class:`EOTModel`. Its iterations steer by the EOT scores, but success,
predictions and the returned adversarial clip are judged by the **defended model itself** (its own
prediction on the final clip), so a reported success is a real one. Defaults: ``eot_samples`` = 8 draws per
gradient, ``eot_seed`` = 0, ``refine_steps`` = 0 (refining walks along the EOT decision boundary, which is not
the defended model's); every other SMART argument as :mod:`engine.attacks.smart`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from engine.attacks.base import AttackResult, register_attack
from engine.attacks.common import strategy_success
from engine.attacks.smart import SMART, SMARTParams
from engine.params import param


class EOTModel(nn.Module):
    """``forward(x)`` = mean over ``draws`` random draws of ``log softmax`` of the wrapped model's logits."""

    def __init__(self, model: nn.Module, draws: int = 8, seed: int = 0) -> None:
        super().__init__()
        self.model = model
        self.draws = max(1, int(draws))
        self.generator = torch.Generator().manual_seed(int(seed))
        for name in ("skeleton", "class_names", "preprocessing"):
            if hasattr(model, name):
                setattr(self, name, getattr(model, name))

    @property
    def num_classes(self) -> int | None:
        return getattr(self.model, "num_classes", None)

    @property
    def stochastic(self) -> bool:
        return callable(getattr(self.model, "stochastic_logits", None))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.stochastic:
            return torch.log_softmax(self.model(x), dim=-1)
        logits = self.model.stochastic_logits(x, self.draws, self.generator)
        return torch.log_softmax(logits, dim=-1).mean(dim=0)


@dataclass(frozen=True)
class EOTSMARTParams(SMARTParams):
    """SMART's parameters (same defaults, so the two cannot drift) plus the EOT draws; no refinement."""

    refine_steps: int = param(0, "steps after the first success that lower Lp (0: refining walks along the EOT "
                                 "decision boundary, not the defended model's)", min=0)
    eot_samples: int = param(8, "random draws of the defended model averaged per gradient", min=1)
    eot_seed: int = param(0, "seed of the draws")

    PRESETS: ClassVar[dict[str, dict]] = {"published": {**SMARTParams.PRESETS["published"]}}


@register_attack("eot-smart")
class EOTSMART(SMART):
    """SMART with gradients averaged over the defended model's randomness (see the module docstring).

    Its parameters (:class:`EOTSMARTParams`) are SMART's plus ``eot_samples`` (random draws averaged per
    gradient) and ``eot_seed``.
    """

    Params = EOTSMARTParams

    def __init__(self, model, params=None, **kwargs) -> None:
        super().__init__(model, params, **kwargs)
        self.defended = model
        self.model = EOTModel(model, self.eot_samples, self.eot_seed)  # the iterations steer by the EOT scores

    @property
    def check_every(self) -> int:
        """Every iteration on a stochastic model: its random draws are taken for the samples computed, so SMART's
        batch must be exactly the active samples at every step (a batch refreshed only every few iterations would
        draw different noise and change the results)."""
        return 1 if self.model.stochastic else super().check_every

    def run(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> AttackResult:
        self.model.generator.manual_seed(self.eot_seed)
        result = super().run(x, y, target)
        with torch.no_grad():
            logits = torch.cat([self.defended(result.adversarial[lo:lo + 256].to(x.device))
                                for lo in range(0, len(x), 256)])
            success = strategy_success(logits, y, self.strategy, self.top_n, target).cpu()
        result.extras["eot_success"] = result.success
        result.success = success
        result.predictions = logits.argmax(dim=1).cpu()
        return result
