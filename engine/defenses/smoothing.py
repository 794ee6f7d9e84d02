"""Randomized smoothing, after Cohen, Rosenfeld and Kolter, "Certified Adversarial Robustness via Randomized
Smoothing", ICML 2019, on joint coordinates in metres.

The smoothed classifier predicts the class the base classifier returns most often under isotropic Gaussian
noise ``ε ~ N(0, σ² I)`` added to every joint coordinate of every frame (absent, all-zero performers are left
at zero)::

    G(x) = argmax_c  P( g(x + ε) = c )

Prediction (:class:`SmoothedClassifier`.forward): majority vote over ``num_noise`` noise draws. The draws are
the same for every clip and every call (seeded by ``noise_seed``), so a prediction is deterministic and does
not depend on the batch a clip is in. ``forward`` returns the log of the vote frequencies (a floor of 1e-6
keeps it finite); their gradient is zero, as a majority vote's is (plain SMART finds no direction and fails:
gradient masking, not robustness); gradient attacks need EOT
(:mod:`engine.attacks.eot`), which differentiates the noisy base logits (:meth:`stochastic_logits`).
Cohen's PREDICT abstains when a binomial test cannot separate the top two classes; ``forward`` always
answers (the plurality class), :func:`certify` abstains.

Certificate (:func:`certify`, Cohen's CERTIFY): the top class ``ĉ_A`` from ``n0`` draws, then ``n`` fresh
draws count ``k`` votes for it; ``p_A`` is the one-sided ``1 − α`` Clopper–Pearson lower confidence bound on
its probability; when ``p_A > 1/2`` the prediction is certified in the L2 ball (over all coordinates of the
clip, in metres) of radius ``R = σ·Φ⁻¹(p_A)``, otherwise the certificate abstains (class −1, radius 0).
The bound and ``Φ⁻¹`` are computed here from the binomial tail and the standard library (no SciPy; the tests
check both against SciPy).

Training (:class:`RandomizedSmoothing`.fit): Cohen trains the base classifier under the same noise; here the
base classifier is fine-tuned with Gaussian-noise augmentation for ``epochs`` epochs (0: wrap it unchanged).

Defaults (ours; Cohen's images use σ ∈ {0.12, 0.25, 0.5} of a [0, 1] range): ``sigma`` 0.01 m (1 cm, about a
third of the displacement SMART needs on the shipped models), ``num_noise`` 32 votes per prediction,
``epochs`` 3, ``lr`` 1e-4; certification ``n0 = 64``, ``n = 1000``, ``α = 0.001`` (Cohen: 100, 100 000, 0.001).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from engine import distributed
from engine.defenses.common import Defence, DefenceParams, minibatches, num_batches, register_defence
from engine.devices import model_device
from engine.errors import CheckpointError, DefenceError
from engine.models.base import Classifier
from engine.models.checkpoint import register_defended_model
from engine.params import param

_FLOOR = 1e-6


def _log_factorials(n: int) -> np.ndarray:
    """``log(i!)`` for i = 0..n."""
    return np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1, dtype=np.float64)))])


def _log_binom_pmf(k: np.ndarray, n: int, p: float) -> np.ndarray:
    lf = _log_factorials(n)
    ki = k.astype(np.int64)
    return lf[n] - lf[ki] - lf[n - ki] + k * math.log(p) + (n - k) * math.log1p(-p)


def binomial_upper_tail(k: int, n: int, p: float) -> float:
    """``P(Bin(n, p) ≥ k)``, summed in log space."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    terms = _log_binom_pmf(np.arange(k, n + 1, dtype=np.float64), n, p)
    m = terms.max()
    return float(min(1.0, math.exp(m) * np.exp(terms - m).sum()))


def clopper_pearson_lower(k: int, n: int, alpha: float) -> float:
    """One-sided ``1 − alpha`` Clopper–Pearson lower bound on a binomial proportion with ``k`` successes in ``n``.

    The ``p`` with ``P(Bin(n, p) ≥ k) = alpha`` (0 when ``k = 0``), found by bisection to 1e-12; equals the
    ``alpha`` quantile of Beta(k, n − k + 1).
    """
    if not 0 <= k <= n or n < 1:
        raise DefenceError(f"need 0 ≤ k ≤ n and n ≥ 1, got k={k}, n={n}")
    if not 0.0 < alpha < 1.0:
        raise DefenceError(f"alpha must lie in (0, 1), got {alpha}")
    if k == 0:
        return 0.0
    lo, hi = 0.0, 1.0
    for _ in range(200):  # the tail grows with p: bisect on it
        mid = 0.5 * (lo + hi)
        if binomial_upper_tail(k, n, mid) < alpha:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


def certified_radius(p_lower: float, sigma: float) -> float:
    """``σ·Φ⁻¹(p_A)`` (0 when ``p_A ≤ 1/2``: no certificate)."""
    if p_lower <= 0.5:
        return 0.0
    if p_lower >= 1.0:
        return math.inf
    return float(sigma) * NormalDist().inv_cdf(p_lower)


@register_defended_model("smoothing")
class SmoothedClassifier(Classifier):
    """The base classifier under Gaussian noise, predicting by majority vote (see the module docstring)."""

    def __init__(self, base: Classifier, sigma: float = 0.01, num_noise: int = 32, noise_seed: int = 0,
                 batch_size: int = 256) -> None:
        super().__init__(
            base.net, list(base.class_names), mean=base.mean, std=base.std, preprocessing=base.preprocessing,
            arch=base.arch, arch_kwargs=base.arch_kwargs, meta=dict(base.meta),
        )
        if sigma <= 0 or num_noise < 1:
            raise DefenceError(f"smoothing needs sigma > 0 and num_noise ≥ 1, got {sigma} and {num_noise}")
        self.sigma = float(sigma)
        self.num_noise = int(num_noise)
        self.noise_seed = int(noise_seed)
        self.batch_size = int(batch_size)
        self._noise_cache: dict[tuple, torch.Tensor] = {}

    @property
    def forward_passes_per_prediction(self) -> int:
        return self.num_noise

    def base_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.network_input(x))

    def _fixed_noise(self, shape: tuple, device: torch.device) -> torch.Tensor:
        key = (shape, str(device))
        if key not in self._noise_cache:
            gen = torch.Generator().manual_seed(self.noise_seed)
            self._noise_cache = {key: (torch.randn((self.num_noise, *shape), generator=gen) * self.sigma).to(device)}
        return self._noise_cache[key]

    def _noisy_argmax(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Base predictions (S, N) for every clip of ``x`` under each of the S noise tensors."""
        present = (x != 0).any(dim=1, keepdim=True).any(dim=2, keepdim=True).any(dim=3, keepdim=True)
        preds = []
        for s in range(noise.shape[0]):
            z = x + noise[s] * present
            out = [self.base_logits(z[lo:lo + self.batch_size]).argmax(1) for lo in range(0, len(z), self.batch_size)]
            preds.append(torch.cat(out))
        return torch.stack(preds)

    def vote_counts(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Votes (N, K) of the base classifier under the fixed noise (or ``noise`` (S, C, T, V, M))."""
        with torch.no_grad():
            noise = self._fixed_noise(tuple(x.shape[1:]), x.device) if noise is None else noise
            preds = self._noisy_argmax(x, noise)
            return F.one_hot(preds, self.num_classes).sum(dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        freq = self.vote_counts(x).float() / self.num_noise
        # A majority vote is piecewise constant: its gradient is zero. Keep the output on the autograd graph
        # (with that zero gradient) so that gradient attacks run, and find nothing, instead of failing.
        anchor = (x * 0.0).flatten(1).sum(dim=1, keepdim=True)
        return freq.clamp_min(_FLOOR).log() + anchor

    def stochastic_logits(self, x: torch.Tensor, draws: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Base logits under ``draws`` fresh noise draws (differentiable; for EOT): (draws, N, K)."""
        present = (x != 0).any(dim=1, keepdim=True).any(dim=2, keepdim=True).any(dim=3, keepdim=True)
        out = []
        for _ in range(draws):
            eps = torch.randn(x.shape, generator=generator).to(x.device) * self.sigma
            out.append(self.base_logits(x + eps * present))
        return torch.stack(out)

    def certify(self, x: torch.Tensor, n0: int = 64, n: int = 1000, alpha: float = 0.001,
                seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Cohen's CERTIFY for every clip of ``x``: ``(class (−1 = abstain), radius in metres, p_A lower bound)``."""
        return certify(self, x, n0=n0, n=n, alpha=alpha, seed=seed)

    def defence_state(self) -> dict[str, Any]:
        return {"method": "smoothing", "sigma": self.sigma, "num_noise": self.num_noise, "noise_seed": self.noise_seed}

    @classmethod
    def from_state(cls, base: Classifier, state: dict, where: str = "checkpoint") -> SmoothedClassifier:
        try:
            return cls(base, float(state["sigma"]), int(state["num_noise"]), int(state.get("noise_seed", 0))).eval()
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{where}: the smoothing section is damaged ({exc})") from None


def certify(model: SmoothedClassifier, x: torch.Tensor, *, n0: int = 64, n: int = 1000, alpha: float = 0.001,
            seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cohen et al.'s CERTIFY (see the module docstring) for clips ``x`` (N, 3, T, V, M) in metres."""
    if n0 < 1 or n < 1:
        raise DefenceError(f"certification needs n0 ≥ 1 and n ≥ 1 noise draws, got {n0} and {n}")
    dev = model_device(model)
    x = x.to(dev, torch.float32)
    gen = torch.Generator().manual_seed(seed)
    was = model.training
    model.eval()
    try:
        sel_noise = torch.randn((n0, *x.shape[1:]), generator=gen) * model.sigma
        c_hat = model.vote_counts(x, sel_noise.to(dev)).argmax(dim=1)
        counts = torch.zeros(x.shape[0], model.num_classes, dtype=torch.long, device=dev)
        for lo in range(0, n, 256):
            chunk = torch.randn((min(256, n - lo), *x.shape[1:]), generator=gen) * model.sigma
            counts += model.vote_counts(x, chunk.to(dev))
    finally:
        model.train(was)
    k = counts.gather(1, c_hat[:, None]).squeeze(1).cpu()
    p_lower = torch.tensor([clopper_pearson_lower(int(ki), n, alpha) for ki in k], dtype=torch.float64)
    radius = torch.tensor([certified_radius(float(p), model.sigma) for p in p_lower], dtype=torch.float64)
    cls = torch.where(p_lower > 0.5, c_hat.cpu(), torch.full_like(c_hat.cpu(), -1))
    return cls, radius, p_lower


@dataclass(frozen=True)
class SmoothingParams(DefenceParams):
    """Randomized smoothing's parameters (module docstring: defaults and sources)."""

    sigma: float = param(0.01, "noise std per coordinate", unit="m", min=0.0, min_exclusive=True)
    num_noise: int = param(32, "noise draws (votes) per prediction", min=1)
    epochs: int = param(3, "fine-tuning epochs under Gaussian-noise augmentation (0: wrap the base unchanged)",
                        min=0)
    lr: float = param(1e-4, "AdamW learning rate of the fine-tuning", min=0.0, min_exclusive=True)
    batch_size: int = param(32, "windows per minibatch", min=2)


@register_defence("smoothing")
class RandomizedSmoothing(Defence):
    """Randomized smoothing (Cohen et al. 2019) on joint coordinates; see the module docstring; parameters
    :class:`SmoothingParams` (the caller's classifier is never changed: a copy is fine-tuned under noise)."""

    Params = SmoothingParams

    def train(self, x: torch.Tensor, y: torch.Tensor) -> SmoothedClassifier:
        base = self.base_copy()
        gen = torch.Generator().manual_seed(self.seed)
        # Under torchrun: data-parallel (engine.distributed), as in adversarial_training: same minibatches from
        # `gen`, gradients of the ranks' parts averaged, Gaussian noise from the rank's own generator.
        noise_gen = distributed.rank_generator(gen, self.seed)
        if self.epochs:
            opt = torch.optim.AdamW([p for p in base.parameters() if p.requires_grad], lr=self.lr)
            total = self.epochs * num_batches(len(x), self.batch_size)
            done = 0
            for epoch in range(1, self.epochs + 1):
                base.train()
                for idx in minibatches(len(x), self.batch_size, gen):
                    idx, weight = distributed.local_minibatch(idx)
                    xb, yb = x[idx].to(self.device), y[idx].to(self.device)
                    present = (xb != 0).any(dim=1, keepdim=True).any(dim=2, keepdim=True).any(dim=3, keepdim=True)
                    xb = xb + torch.randn(xb.shape, generator=noise_gen).to(self.device) * self.sigma * present
                    loss = F.cross_entropy(base(xb), yb)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    distributed.sync_gradients([p for p in base.parameters() if p.requires_grad], weight)
                    opt.step()
                    done += 1
                    self.tick_loss(done, total, epoch, loss)
                self.history.append({"epoch": epoch, "loss": float(loss.detach())})
        base.eval()
        return SmoothedClassifier(base, self.sigma, self.num_noise, noise_seed=self.seed).eval()
