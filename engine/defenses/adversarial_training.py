"""Adversarial-training baselines that BEAT is measured against: SMART-AT, TRADES and MART.

All three fine-tune **every** weight of (a copy of) the pre-trained classifier, unlike BEAT which trains only a
small appended head. Each minibatch: adversarial examples are generated against the current model in eval
mode (batch-norm statistics untouched), then the model takes one AdamW step in train mode.

``smart-at`` (adversarial training on SMART examples, as the BEAT paper's SMART-AT baseline)
    Examples from :class:`engine.attacks.smart.SMART` (strategy AB, ``attack_iterations`` steps of
    ``attack_lr`` metres per frame, no refinement); loss ``(1 − adv_fraction)·CE(x) + adv_fraction·CE(x_adv)``.
``trades`` (Zhang et al., "Theoretically Principled Trade-off between Robustness and Accuracy", ICML 2019)
    ``CE(f(x), y) + β·KL(p(x) ‖ p(x_adv))``; ``x_adv`` maximises the KL within the budget by projected sign
    gradient ascent started at ``x + 0.001·N(0, 1)`` (as the paper's code). ``beta`` = 6 (paper).
``mart`` (Wang et al., "Improving Adversarial Robustness Requires Revisiting Misclassified Examples", ICLR 2020)
    ``BCE(p(x_adv), y) + λ·KL(p(x) ‖ p(x_adv))·(1 − p_y(x))`` with the boosted cross entropy
    ``BCE = −log p_y(x_adv) − log(1 − max_{k≠y} p_k(x_adv))``; ``x_adv`` by PGD on the cross entropy from a
    uniform random start. ``beta`` (λ) = 6 (paper).

Budget of the inner maximisation (TRADES, MART; ours, the papers work on [0, 1] images with ε = 8/255):
every coordinate of every joint within ``±eps`` metres, default 0.03 m, ``attack_steps`` = 5 steps of
``eps / 4``. Why 0.03: the attacks these baselines are measured against move joints that far (SMART's
successful perturbations move some joints a few cm at their peaks). Training defaults: ``epochs`` 5, ``lr`` 1e-4
(fine-tuning), ``batch_size`` 32. SMART-AT keeps SMART's own step (0.01 m per frame, 10 iterations).

The KL terms are computed in log space (``log_target``): with probabilities as the target, a confident model's
exact zeros put ``log 0`` in the gradient and the fine-tuning turned NaN (the cmu8 MLP-512 collapsed to one
class before this was fixed).

Measured (``bench/defence.py``, cmu8 benchmark, world-coordinate input centred inside the model, MLP-512 base,
10 epochs, all 97 held-out windows; clean / robust under SMART-AB / under I-FGSM ±1 cm): base 84.5% / 46.4% /
63.9%; TRADES 86.6% / 77.3% / 81.4%; MART 85.6% / 75.3% / 82.5%; SMART-AT 85.6% / 59.8% / 69.1% (BEAT:
85.6% / 60.8% / 70.1%). On the small ST-GCN (40 windows): base 92.8% / 2.5% / 0%; MART 83.5% / 37.5% / 62.5%;
SMART-AT 89.7% / 35.0% / 37.5%; TRADES at 3 cm gives clean accuracy away (54.6% / 57.5% / 60.0%): lower ``eps``
or ``beta`` to keep more of it. ``bench/results/`` holds the full tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine import distributed
from engine.defenses.common import Defence, DefenceParams, minibatches, num_batches, register_defence
from engine.params import param


@dataclass(frozen=True)
class FineTuneParams(DefenceParams):
    """The fine-tuning schedule every adversarial-training baseline shares (AdamW)."""

    epochs: int = param(5, "fine-tuning epochs", min=1)
    lr: float = param(1e-4, "AdamW learning rate", min=0.0, min_exclusive=True)
    batch_size: int = param(32, "windows per minibatch", min=2)


@dataclass(frozen=True)
class PGDTrainingParams(FineTuneParams):
    """TRADES and MART: the inner maximisation's budget and the robustness term's weight."""

    eps: float = param(0.03, "per-coordinate budget of the inner maximisation", unit="m", min=0.0,
                       min_exclusive=True)
    attack_steps: int = param(5, "steps of the inner maximisation (each eps / 4)", min=1)
    beta: float = param(6.0, "weight of the KL robustness term (TRADES β, MART λ)", min=0.0)


@dataclass(frozen=True)
class SmartATParams(FineTuneParams):
    """SMART-AT: SMART examples (AB, no refinement) mixed into the cross entropy."""

    attack_iterations: int = param(10, "SMART steps per minibatch", min=1)
    attack_lr: float = param(0.01, "SMART step length per frame", unit="m", min=0.0, min_exclusive=True)
    adv_fraction: float = param(0.5, "weight of the adversarial cross entropy", min=0.0, max=1.0)


def _present(x: torch.Tensor) -> torch.Tensor:
    return (x != 0).any(dim=1, keepdim=True).any(dim=2, keepdim=True).any(dim=3, keepdim=True).float()


class _AdversarialTraining(Defence):
    """Shared loop: generate adversaries in eval mode, take an optimiser step on :meth:`loss` in train mode."""

    Params = PGDTrainingParams

    def pgd(self, model, x: torch.Tensor, objective, start: torch.Tensor) -> torch.Tensor:
        """Projected sign-gradient ascent of ``objective(logits) -> (N,)`` within ``±eps`` of ``x``."""
        step = self.eps / 4
        present = _present(x)
        xa = (x + (start - x).clamp(-self.eps, self.eps) * present).detach()
        for _ in range(self.attack_steps):
            xa.requires_grad_(True)
            grad, = torch.autograd.grad(objective(model(xa)).sum(), xa)
            with torch.no_grad():
                xa = xa + step * grad.sign() * present
                xa = x + (xa - x).clamp(-self.eps, self.eps)
        return xa.detach()

    def adversaries(self, model, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, model, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def train(self, x: torch.Tensor, y: torch.Tensor):
        model = self.base_copy()
        gen = torch.Generator().manual_seed(self.seed)
        # Under torchrun: data-parallel (engine.distributed): same minibatches on every rank from `gen`, each
        # rank's part's gradients averaged before the step; attack noise from the rank's own generator.
        noise_gen = distributed.rank_generator(gen, self.seed)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.lr)
        total = self.epochs * num_batches(len(x), self.batch_size)
        done = 0
        for epoch in range(1, self.epochs + 1):
            # summed on the device in float64: the same sum as Python floats, read once per epoch
            loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
            for idx in minibatches(len(x), self.batch_size, gen):
                idx, weight = distributed.local_minibatch(idx)
                xb, yb = x[idx].to(self.device), y[idx].to(self.device)
                model.eval()
                flags = [p.requires_grad for p in params]
                for p in params:
                    p.requires_grad_(False)
                try:
                    x_adv = self.adversaries(model, xb, yb, noise_gen)
                finally:
                    for p, f in zip(params, flags):
                        p.requires_grad_(f)
                model.train()
                loss = self.loss(model, xb, x_adv, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                distributed.sync_gradients(params, weight)
                opt.step()
                loss_sum += loss.detach().double() * len(idx)
                done += 1
                self.tick_loss(done, total, epoch, loss)
            self.history.append({"epoch": epoch, "loss": float(loss_sum) / len(x)})
        return model.eval()


@register_defence("smart-at")
class SmartAT(_AdversarialTraining):
    """Adversarial training on SMART examples (see the module docstring); parameters :class:`SmartATParams`."""

    Params = SmartATParams

    def adversaries(self, model, x, y, gen):
        from engine.attacks.base import build

        attack = build("smart", model, strategy="ab", iterations=self.attack_iterations, lr=self.attack_lr,
                       refine_steps=0, record_history=False)
        attack.keep_on_device = True  # the examples go straight back to the model: no round trip to the host
        return attack(x, y).adversarial

    def loss(self, model, x, x_adv, y):
        a = self.adv_fraction
        return (1 - a) * F.cross_entropy(model(x), y) + a * F.cross_entropy(model(x_adv), y)


@register_defence("trades")
class TRADES(_AdversarialTraining):
    """TRADES (Zhang et al. 2019); see the module docstring; parameters :class:`PGDTrainingParams`."""

    def adversaries(self, model, x, y, gen):
        with torch.no_grad():
            logp_clean = F.log_softmax(model(x), dim=1)
        start = x + 0.001 * torch.randn(x.shape, generator=gen).to(x.device)

        def kl(logits):
            return F.kl_div(F.log_softmax(logits, dim=1), logp_clean, reduction="none", log_target=True).sum(dim=1)

        return self.pgd(model, x, kl, start)

    def loss(self, model, x, x_adv, y):
        logits = model(x)
        # KL in log space (log_target): with probabilities as the target, a confident model's exact zeros give
        # log(0) in the gradient and the fine-tuning turns NaN (seen on the cmu8 MLP-512)
        kl = F.kl_div(F.log_softmax(model(x_adv), dim=1), F.log_softmax(logits, dim=1), reduction="batchmean",
                      log_target=True)
        return F.cross_entropy(logits, y) + self.beta * kl


@register_defence("mart")
class MART(_AdversarialTraining):
    """MART (Wang et al. 2020); see the module docstring; parameters :class:`PGDTrainingParams`."""

    def adversaries(self, model, x, y, gen):
        start = x + (torch.rand(x.shape, generator=gen).to(x.device) * 2 - 1) * self.eps

        def ce(logits):
            return F.cross_entropy(logits, y, reduction="none")

        return self.pgd(model, x, ce, start)

    def loss(self, model, x, x_adv, y):
        logits, logits_adv = model(x), model(x_adv)
        p_adv = F.softmax(logits_adv, dim=1)
        logp_clean = F.log_softmax(logits, dim=1)
        p_clean = logp_clean.exp()
        others = p_adv.scatter(1, y[:, None], 0.0)
        bce = F.cross_entropy(logits_adv, y) - torch.log(1.0001 - others.max(dim=1).values).mean()
        kl = (F.kl_div(F.log_softmax(logits_adv, dim=1), logp_clean, reduction="none", log_target=True).sum(dim=1)
              * (1.0 - p_clean.gather(1, y[:, None]).squeeze(1))).mean()
        return bce + self.beta * kl
