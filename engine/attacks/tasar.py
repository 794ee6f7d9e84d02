"""TASAR: Diao, Wu, Zhang, Liu, Hao, Wei, Wang and Wang, "TASAR: Transfer-based Attack on Skeletal Action
Recognition", ICLR 2025 (arXiv:2409.02483); official code: github.com/yunfengdiao/Skeleton-Robustness-Benchmark
(``main_TASAR.py``, ``BayesianTrainer/PDBATrainer.py``, ``classifiers/BayesianClassifier.py``,
``Attackers/TASAR.py``, ``ARCal.py``).

Threat model: transfer. The attacker holds a pre-trained surrogate (white-box) and crafts clips that are replayed on
unseen victims (:mod:`engine.attacks.transfer`). TASAR's observation: skeletal classifiers have sharp loss surfaces,
so adversarial clips fitted to one set of weights transfer badly; smoothing the loss (over weights and inputs) and
following the motion's dynamics transfers better. Three parts:

1. **Post-train Bayesian surrogate** (:func:`post_train_bayesian`, the code's ``bayesianTrain`` then
   ``Dual_Bayesian`` routines). The pre-trained classifier ``g`` stays frozen; ``n_models`` small heads are appended
   (the code's ``AppendedModel``: ``r = ReLU(g(x))``, ``logits = r + ReLU(W₂(W₁ r + b₁) + b₂)``, W K×K). Each head is
   first trained on the cross-entropy, then post-trained with the *dual Bayesian* smoothing: the gradient of the loss
   at weights moved a distance ``radius`` along the normalised gradient enters as ``g + (λ/radius)(g(θ + radius·ĝ) −
   g(θ))`` — a finite-difference estimate of the gradient of ``L + λ‖∇_θ L‖`` (weight-space smoothing) — while the
   running first and second moments of the weights are collected SWAG-style (``swa_snapshots`` snapshots spread
   evenly over the phase). The paper also smooths in data space (Gaussian input perturbations); the released code's
   post-training has no input noise. We follow the code by default (``input_noise = 0``); ``input_noise = σ`` (m)
   adds the data-space term as a Monte Carlo draw of ``x + N(0, σ²)`` per epoch.
2. **Bayesian attack gradient**: at every step, ``samples`` weight draws per head from the diagonal Gaussian
   ``N(mean, (weight_scale)² · (sqmean − mean²))`` (the code's SWAG sampling, ``scale = 1.5``); the attack
   gradient is the average of their input gradients. The frozen ``g`` is shared by every draw, so all draws cost one
   forward and one backward pass of ``g`` here (the gradient is linear in the per-draw losses: exact, not an
   approximation). The code never resets its running sum of these averages between steps (a momentum of 1 on
   unnormalised gradients); ``bayes_momentum = 1`` follows it, 0 uses each step's own average.
3. **Motion-dynamics gradient** (``temporal``): each joint coordinate's clean trajectory is fitted by a
   time-varying AR(2) model ``x_t = a₁(t) x_{t−1} + a₂(t) x_{t−2}``; a perturbation of frame t then moves the next
   frames by ``∂x_{t+1}/∂x_t = a₁(t+1)`` and ``∂x_{t+2}/∂x_t = a₁(t+2) a₁(t+1) + a₂(t+2)``, so the gradient gains
   ``a₁(t+1)·∇_{t+1} + (a₁(t+2)a₁(t+1) + a₂(t+2))·∇_{t+2}``. The code adds that term to the gradient of the mean
   surrogate and accumulates it with momentum 1; the step mixes both directions, each normalised by its mean absolute
   value: ``x ← clip(x − step · (0.8 ĝ_bayes + 0.2 ĝ_dyn))``. The code fits the AR coefficients with R's ``tvReg``
   (local-linear, cross-validated bandwidth); we fit them by kernel-weighted local least squares (Gaussian kernel of
   ``ar_bandwidth`` × the window length, a small ridge towards the random walk a = (1, 0)), in torch, per clip.

Defaults and their source (code = the released code's README commands and ``main_TASAR.py`` defaults):

================  ===========================  =====================================================================
parameter         default                      source
================  ===========================  =====================================================================
``eps``           0.01 m per coordinate         ours: the project's per-joint L∞ budget (I-FGSM, MI-FGSM, transfer
                                               baselines), so methods compare at equal budgets. The code's ``-cp
                                               0.01`` is in its normalised units (σ = 0.279 m for its HDM05 data, as
                                               :mod:`engine.attacks.smart` converts): 0.0028 m (preset ``published``)
``step_size``     None = eps                   code: step 0.01 = the clip 0.01, along the gradient divided by its
                                               mean absolute value (not its sign)
``iterations``    200                          code (``--epochs 200``)
``samples``       20                           code: 20 weight draws per head and step
``weight_scale``  1.5                          code (``--scale 1.5``)
``temporal``      True, weight 0.2             code (``--temporal True``: ``0.8 ĝ_bayes + 0.2 ĝ_dyn``)
``bayes_momentum`` 1.0                         code (the running sum, see 2.)
``early_stop``    False                        code: a batch stops only when all of it is fooled; transfer wants
                                               every step
post-training     3 heads, 5 + 5 epochs,       code README (``--bayesianModelNum 3 -ep 5 -bs 32 -lr 2e-3``, run once
                  batch 32, lr 2e-3, λ 1e-3,   for ``bayesianTrain`` and once for ``DualBayesian``), ``--lam 1e-3``,
                  radius 0.1, 300 snapshots    the radius 0.1 and ``--swa_n 300``. The code's optimiser is SGAdaHMC
                                               (adaptive stochastic-gradient HMC at temperature 1e-5, where the
                                               injected noise is negligible); we use Adam, the closest adaptive
                                               optimiser in torch
================  ===========================  =====================================================================
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

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

HEAD_KEYS = ("w1", "b1", "w2", "b2")


def head_logits(r: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """The appended head on ``r = ReLU(g(x))``: ``r + ReLU(W₂(W₁ r + b₁) + b₂)``. Weights may carry a leading sample
    axis S (then ``r`` (N, K) gives (S, N, K))."""
    if p["w1"].ndim == 3:
        h = torch.einsum("skj,nj->snk", p["w1"], r) + p["b1"][:, None, :]
        h = torch.einsum("skj,snj->snk", p["w2"], h) + p["b2"][:, None, :]
        return r[None] + F.relu(h)
    return r + F.relu(F.linear(F.linear(r, p["w1"], p["b1"]), p["w2"], p["b2"]))


class BayesianSurrogate(nn.Module):
    """A frozen classifier ``base`` with ``n`` appended heads whose weights follow diagonal Gaussians (mean and
    second moment per weight). ``forward`` averages the heads at their mean weights (the deterministic prediction);
    :meth:`sample_heads` draws weights for the attack. Carries the base's skeleton, classes and preprocessing, so
    transfer checks and attacks treat it as any classifier."""

    def __init__(self, base: nn.Module, means: list[dict[str, torch.Tensor]],
                 sqmeans: list[dict[str, torch.Tensor]], info: dict | None = None) -> None:
        super().__init__()
        if not means or len(means) != len(sqmeans):
            raise AttackError("a Bayesian surrogate needs at least one head, with a mean and a second moment each")
        self.base = base
        for i, (m, s) in enumerate(zip(means, sqmeans, strict=True)):
            for key in HEAD_KEYS:
                self.register_buffer(f"mean{i}_{key}", m[key].detach().clone().float())
                self.register_buffer(f"sqmean{i}_{key}", s[key].detach().clone().float())
        self.n_heads = len(means)
        self.skeleton = getattr(base, "skeleton", None)
        self.preprocessing = getattr(base, "preprocessing", None)
        self.class_names = list(getattr(base, "class_names", []))
        self.info = dict(info or {})

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if self.class_names else int(self.mean0_w2.shape[0])

    @property
    def forward_passes_per_prediction(self) -> int:
        return 1

    def head_mean(self, i: int) -> dict[str, torch.Tensor]:
        return {k: getattr(self, f"mean{i}_{k}") for k in HEAD_KEYS}

    def head_std(self, i: int) -> dict[str, torch.Tensor]:
        """Per-weight standard deviation ``sqrt(max(sqmean − mean², 1e-30))`` (the code's variance floor)."""
        return {k: (getattr(self, f"sqmean{i}_{k}") - getattr(self, f"mean{i}_{k}") ** 2).clamp_min(1e-30).sqrt()
                for k in HEAD_KEYS}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``r = ReLU(g(x))``, what every head takes."""
        return F.relu(self.base(x))

    def mean_logits(self, r: torch.Tensor) -> torch.Tensor:
        return torch.stack([head_logits(r, self.head_mean(i)) for i in range(self.n_heads)]).mean(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mean_logits(self.features(x))

    def sample_heads(self, i: int, samples: int, scale: float, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """``samples`` weight draws of head ``i``: ``mean + scale · std · ε`` stacked on a leading axis."""
        mean, std = self.head_mean(i), self.head_std(i)
        out = {}
        for k in HEAD_KEYS:
            eps = torch.randn((samples, *mean[k].shape), generator=generator, device=mean[k].device)
            out[k] = mean[k][None] + scale * std[k][None] * eps.to(mean[k].dtype)
        return out


# -- post-training ------------------------------------------------------------------------------------------------
def _init_head(k: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    bound = 1.0 / np.sqrt(k)  # nn.Linear's default uniform initialisation

    def u(*shape):
        return ((torch.rand(shape, generator=generator) * 2 - 1) * bound).requires_grad_(True)

    return {"w1": u(k, k), "b1": u(k), "w2": u(k, k), "b2": u(k)}


@torch.no_grad()
def _relu_logits(model: nn.Module, x: np.ndarray | torch.Tensor, batch: int, noise: float,
                 generator: torch.Generator, device) -> torch.Tensor:
    out = []
    x = torch.as_tensor(x)
    for lo in range(0, len(x), batch):
        xb = x[lo : lo + batch]
        if noise > 0:
            present = (xb.abs().amax(dim=(1, 2, 3), keepdim=True) > 0).to(xb.dtype)
            xb = xb + noise * torch.randn(xb.shape, generator=generator) * present
        out.append(F.relu(model(xb.to(device))).float().cpu())
    return torch.cat(out)


def post_train_bayesian(
    classifier: nn.Module,
    train,
    *,
    n_models: int = 3,
    epochs: int = 5,
    batch_size: int = 32,
    lr: float = 2e-3,
    lam: float = 1e-3,
    radius: float = 0.1,
    swa_snapshots: int = 300,
    input_noise: float = 0.0,
    seed: int = 0,
) -> BayesianSurrogate:
    """Post-train ``classifier`` (kept frozen) into a :class:`BayesianSurrogate` (module docstring, part 1).

    ``train``: a :class:`~engine.data.WindowSet` or an ``(x, y)`` pair (x (N, 3, T, V, M) metres, y (N,) labels).
    ``epochs``: epochs of each phase (plain, then dual-Bayesian with the moments collected). ``input_noise``: σ in
    metres of the data-space smoothing (0: none, as the released code). Returns the surrogate in eval mode; the
    classifier itself is not modified."""
    x, y = (train.x, train.y) if hasattr(train, "x") else train
    y = torch.as_tensor(np.asarray(y), dtype=torch.long)
    keep = y >= 0
    if not bool(keep.any()):
        raise AttackError("post-training a Bayesian surrogate needs labelled windows; the training set has none")
    x = torch.as_tensor(np.asarray(x, dtype=np.float32))[keep]
    y = y[keep]
    for name, value, low in (("n_models", n_models, 1), ("epochs", epochs, 1), ("batch_size", batch_size, 1),
                             ("swa_snapshots", swa_snapshots, 1)):
        if int(value) < low:
            raise AttackError(f"post-training: {name} must be at least {low}, got {value}")
    if radius <= 0 or lr <= 0 or lam < 0 or input_noise < 0:
        raise AttackError("post-training: radius and lr must be positive, lam and input_noise non-negative")
    device = next(classifier.parameters()).device
    gen = torch.Generator().manual_seed(int(seed))
    with eval_mode(classifier, freeze=True):
        feats = _relu_logits(classifier, x, 128, 0.0, gen, device)
        k = feats.shape[1]
        means, sqmeans, history = [], [], []
        n = len(y)
        steps_per_epoch = -(-n // batch_size)
        interval = max(1, (epochs * steps_per_epoch) // int(swa_snapshots))
        for m in range(n_models):
            head = _init_head(k, gen)
            opt = torch.optim.Adam(list(head.values()), lr=lr)

            def loss_of(p, r, labels):
                return F.cross_entropy(head_logits(r, p), labels)

            # phase 1: the plain post-training (the code's ``bayesianTrain``)
            for _ in range(epochs):
                r_all = _relu_logits(classifier, x, 128, input_noise, gen, device) if input_noise else feats
                for idx in torch.randperm(n, generator=gen).split(batch_size):
                    grads = torch.autograd.grad(loss_of(head, r_all[idx], y[idx]), list(head.values()))
                    for p, g in zip(head.values(), grads, strict=True):
                        p.grad = g
                    opt.step()
            # phase 2: dual-Bayesian smoothing with the SWAG moments (the code's ``Dual_Bayesian``)
            mean = {kk: v.detach().clone() for kk, v in head.items()}
            sqmean = {kk: v.detach().clone() ** 2 for kk, v in head.items()}
            collected, step = 0, 0
            for _ in range(epochs):
                r_all = _relu_logits(classifier, x, 128, input_noise, gen, device) if input_noise else feats
                for idx in torch.randperm(n, generator=gen).split(batch_size):
                    r, labels = r_all[idx], y[idx]
                    g = torch.autograd.grad(loss_of(head, r, labels), list(head.values()))
                    norm = torch.sqrt(sum((gi ** 2).sum() for gi in g)) + 1e-20
                    moved = {kk: (v + radius * gi / norm).detach().requires_grad_(True)
                             for (kk, v), gi in zip(head.items(), g, strict=True)}
                    g_add = torch.autograd.grad(loss_of(moved, r, labels), list(moved.values()))
                    for p, gi, ga in zip(head.values(), g, g_add, strict=True):
                        p.grad = gi + (lam / radius) * (ga - gi)
                    opt.step()
                    if step % interval == 0:
                        with torch.no_grad():
                            c = collected
                            for kk, v in head.items():
                                mean[kk] = mean[kk] * (c / (c + 1)) + v.detach() / (c + 1)
                                sqmean[kk] = sqmean[kk] * (c / (c + 1)) + v.detach() ** 2 / (c + 1)
                        collected += 1
                    step += 1
            with torch.no_grad():
                acc = float((head_logits(feats, mean).argmax(1) == y).float().mean())
            history.append({"head": m, "snapshots": collected, "train_accuracy_mean_weights": acc})
            means.append(mean)
            sqmeans.append(sqmean)
    info = {"n_models": n_models, "epochs": epochs, "batch_size": batch_size, "lr": lr, "lam": lam, "radius": radius,
            "swa_snapshots": swa_snapshots, "input_noise": input_noise, "seed": seed, "heads": history}
    surrogate = BayesianSurrogate(classifier, means, sqmeans, info).to(device)
    return surrogate.eval()


# -- motion dynamics ----------------------------------------------------------------------------------------------
def motion_dynamics(x: torch.Tensor, bandwidth: float = 0.2, ridge: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """Time-varying AR(2) coefficients ``(a₁, a₂)``, each shaped like ``x`` (N, C, T, V, M), of every coordinate's
    trajectory: kernel-weighted least squares of ``x_t`` on ``(x_{t−1}, x_{t−2})`` around each t (Gaussian kernel
    of ``bandwidth`` × T frames), with a ridge (relative to the local signal energy) towards the random walk
    ``(1, 0)``. Frames 0 and 1 take frame 2's coefficients."""
    t = x.shape[2]
    if t < 4:
        return torch.ones_like(x), torch.zeros_like(x)
    xs = x.double()
    cur, p1, p2 = xs[:, :, 2:], xs[:, :, 1:-1], xs[:, :, :-2]  # (N, C, T-2, V, M)
    times = torch.arange(2, t, dtype=torch.float64, device=x.device)
    h = max(bandwidth * t, 1.0)
    w = torch.exp(-0.5 * ((times[:, None] - times[None, :]) / h) ** 2)  # (T-2 centre, T-2 sample)

    def wsum(a):  # kernel-weighted sums over the sample frames, one per centre frame
        return torch.einsum("us,nksvm->nkuvm", w, a)

    s11, s22, s12 = wsum(p1 * p1), wsum(p2 * p2), wsum(p1 * p2)
    b1, b2 = wsum(p1 * cur), wsum(p2 * cur)
    lam = ridge * (s11 + s22) / 2 + 1e-12
    # minimise Σ w (x_t − a·p)² + lam ‖a − (1, 0)‖²: (S + lam I) a = b + lam (1, 0)
    a11, a22 = s11 + lam, s22 + lam
    r1, r2 = b1 + lam, b2
    det = a11 * a22 - s12 * s12
    a1 = (r1 * a22 - s12 * r2) / det
    a2 = (a11 * r2 - s12 * r1) / det
    pad = [a1[:, :, :1]] * 2, [a2[:, :, :1]] * 2
    a1 = torch.cat([*pad[0], a1], dim=2).to(x.dtype)
    a2 = torch.cat([*pad[1], a2], dim=2).to(x.dtype)
    return a1, a2


def dynamics_gradient(g: torch.Tensor, a1: torch.Tensor, a2: torch.Tensor) -> torch.Tensor:
    """The motion-dynamics term ``a₁(t+1)·g_{t+1} + (a₁(t+2)a₁(t+1) + a₂(t+2))·g_{t+2}`` (zero past the end)."""
    out = torch.zeros_like(g)
    out[:, :, :-1] += a1[:, :, 1:] * g[:, :, 1:]
    out[:, :, :-2] += (a1[:, :, 2:] * a1[:, :, 1:-1] + a2[:, :, 2:]) * g[:, :, 2:]
    return out


def _mean_abs_normalise(g: torch.Tensor) -> torch.Tensor:
    return g / g.abs().flatten(1).mean(1).clamp_min(1e-20).view(-1, 1, 1, 1, 1)


# -- the attack ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TASARParams(StrategyParams):
    """TASAR's attack hyper-parameters (module docstring: defaults and sources)."""

    eps: float = param(0.01, "per-joint L∞ budget: every coordinate within ±eps", unit="m", min=0.0,
                       min_exclusive=True)
    iterations: int = param(200, "number of steps", min=1)
    step_size: float | None = param(None, "step along the mean-abs-normalised direction (none: eps)", unit="m",
                                    min=0.0, min_exclusive=True)
    samples: int = param(20, "weight draws per head and step", min=1)
    weight_scale: float = param(1.5, "scale of the posterior standard deviation when drawing weights", min=0.0)
    temporal: bool = param(True, "add the motion-dynamics gradient")
    temporal_weight: float = param(0.2, "share of the motion-dynamics direction in each step", min=0.0, max=1.0)
    bayes_momentum: float = param(1.0, "decay of the running sum of Bayesian gradients (1: the code's sum)",
                                  min=0.0)
    ar_bandwidth: float = param(0.2, "kernel width of the AR(2) fit, as a share of the window", min=0.0,
                                min_exclusive=True)
    early_stop: bool = param(False, "stop each sample at its first success on the surrogate")
    seed: int = param(0, "seed of the weight draws")

    PRESETS: ClassVar[dict[str, dict]] = {
        # the released code's settings in metres (module docstring): -cp 0.01 and step 0.01 × σ = 0.279 m
        "published": {"eps": 0.0028, "step_size": 0.0028, "iterations": 200, "samples": 20, "weight_scale": 1.5,
                      "temporal": True, "temporal_weight": 0.2, "bayes_momentum": 1.0},
    }


@register_attack("tasar")
class TASAR(Attack):
    """TASAR on a :class:`BayesianSurrogate` (from :func:`post_train_bayesian`); parameters :class:`TASARParams`.

    On a plain classifier there are no weights to draw: the Bayesian gradient is the classifier's own and the
    attack reduces to its motion-dynamics and momentum parts (a warning says so)."""

    threat_model = "transfer (white-box on a post-trained Bayesian surrogate)"
    Params = TASARParams

    def __init__(self, model, params=None, **kwargs) -> None:
        super().__init__(model, params, **kwargs)
        self.step = float(self.hp.step_size) if self.hp.step_size is not None else self.eps
        self.bayesian = isinstance(model, BayesianSurrogate)
        if not self.bayesian:
            log.warning("TASAR on a plain classifier: no weight posterior to sample; post-train it with "
                        "engine.attacks.tasar.post_train_bayesian for the full attack")

    @property
    def params(self) -> dict:
        extra = {"effective_step_size": self.step, "bayesian_surrogate": self.bayesian}
        if self.bayesian:
            extra["n_heads"] = self.model.n_heads
            extra["post_training"] = self.model.info
        return {**super().params, **extra}

    def _gradients(self, x_adv: torch.Tensor, y, target, gen) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits of the deterministic surrogate, gradient of its Lc, average gradient over the weight draws)."""
        d = x_adv.detach().requires_grad_(True)
        if not self.bayesian:
            logits = self.model(d)
            lc = strategy_class_loss(logits, y, self.strategy, self.top_n, target)
            (g,) = torch.autograd.grad(lc.sum(), d)
            return logits.detach(), g, g
        model: BayesianSurrogate = self.model
        r = model.features(d)
        logits = model.mean_logits(r)
        lc_mean = strategy_class_loss(logits, y, self.strategy, self.top_n, target).sum()
        lc_draws = 0.0
        for i in range(model.n_heads):
            drawn = model.sample_heads(i, self.samples, self.weight_scale, gen)
            out = head_logits(r, drawn)  # (S, N, K)
            s = out.shape[0]
            flat = out.reshape(s * out.shape[1], -1)
            yy = y.repeat(s)
            tt = None if target is None else target.repeat(s)
            lc_draws = lc_draws + strategy_class_loss(flat, yy, self.strategy, self.top_n, tt).sum()
        lc_draws = lc_draws / (model.n_heads * self.samples)
        (g_mean,) = torch.autograd.grad(lc_mean, d, retain_graph=True)
        (g_bayes,) = torch.autograd.grad(lc_draws, d)
        return logits.detach(), g_mean, g_bayes

    def run(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> AttackResult:
        check_strategy(self.strategy, self.top_n, getattr(self.model, "num_classes", None), target)
        present = present_performers(x)
        gen = torch.Generator(device=x.device).manual_seed(int(self.seed))
        a1, a2 = motion_dynamics(x, self.ar_bandwidth) if self.temporal else (None, None)
        delta = torch.zeros_like(x)
        bayes_sum = torch.zeros_like(x)
        dyn_sum = torch.zeros_like(x)
        state = IterativeState(x, history_keys=("Lc",))
        for it, final in state.steps(self.iterations, self.check_every):
            if final:
                with torch.no_grad():
                    logits = self.model(x + delta)
            else:
                logits, g_mean, g_bayes = self._gradients(x + delta, y, target, gen)
            with torch.no_grad():
                lc = strategy_class_loss(logits, y, self.strategy, self.top_n, target)
                success = strategy_success(logits, y, self.strategy, self.top_n, target)
                state.observe(it, delta, logits.argmax(1), success, stop=self.early_stop, Lc=lc)
            if final:
                break
            with torch.no_grad():
                bayes_sum = self.bayes_momentum * bayes_sum + g_bayes
                direction = _mean_abs_normalise(bayes_sum)
                if self.temporal:
                    dyn_sum = dyn_sum + g_mean + dynamics_gradient(g_mean, a1, a2)
                    w = self.temporal_weight
                    direction = (1 - w) * direction + w * _mean_abs_normalise(dyn_sum)
                new = (delta - self.step * direction * present).clamp(-self.eps, self.eps)
                delta = torch.where(state.done.view(-1, 1, 1, 1, 1), delta, new)
            self._tick(it + 1, self.iterations, lambda: {"active": (~state.done).sum()})
        return state.result(x, delta, self.iterations, self.params, host=not self.keep_on_device)


__all__ = ["TASAR", "BayesianSurrogate", "TASARParams", "dynamics_gradient", "motion_dynamics",
           "post_train_bayesian"]
