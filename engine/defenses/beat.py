"""BEAT: post-train Bayesian energy-based adversarial training, after Wang, Diao, Tan and Guo, "Defending
Black-box Skeleton-based Human Activity Classifiers", AAAI 2023.

Threat model defended: any attack on the classifier's decisions (white-box SMART, decision-based BASAR,
transfer). The pre-trained classifier ``g`` stays **frozen** (it may be a black box that exposes its features
``φ(x)`` and logits ``g(x)``); a small two-layer MLP ``f`` is appended and only ``f`` trains::

    h_θ(x) = f_θ(φ(x)) + g(x)                         (the defended logits of one posterior sample θ)

Energy. The joint clean–adversarial density of the paper is

    p_θ(x, x̃, y) ∝ exp{ h_θ(x)[y] + h_θ(x̃)[y] − λ·d(x, x̃) }

with the classifier in the energy being the full defended model ``h_θ`` (as in the paper: the appended model
is what is trained, so the energy is written with it). It factorises into ``p(y|x)·p(x)·p(x̃|x, y)``; the
training loss of one minibatch is the negative log of those three factors:

* ``CE(h_θ(x), y)`` (the classifier term, weight ``clf_weight``);
* ``CE(h_θ(x̃), y) + λ·d(x, x̃)`` with ``x̃ ~ p_θ(x̃ | x, y) ∝ exp{h_θ(x̃)[y] − λ·d(x, x̃)}`` drawn by SGLD
  started at ``x`` plus uniform noise (weight ``adv_weight``; ``d`` does not depend on θ, it shapes the
  sampler; which class the sampler's energy uses: see ``adversary_class`` below);
* ``−(mean logsumexp h_θ(x) − mean logsumexp h_θ(x⁻))`` the contrastive-divergence estimate of
  ``−log p(x)`` (JEM), with negatives ``x⁻`` drawn by SGLD on ``logsumexp h_θ`` (weight ``x_weight``).

Skeleton distance ``d`` (per sample; the functions of :mod:`engine.losses`)::

    d(x, x̃) = Σ_n β_n Σ ‖Δⁿx − Δⁿx̃‖² / T  +  w_bl · Σ (ℓ(x̃) − ℓ(x))² / T

``Δⁿ`` the n-th frame difference (position n=0, velocity n=1, acceleration n=2; per frame, dt = 1, as the
published code does, so the three terms are in metres and comparable), summed over joints and performers and
averaged over frames; ``ℓ`` the bone lengths. Defaults ``β = (1, 1, 1)``, ``w_bl = 1`` (``betas``,
``bone_weight``). Summing over joints makes ``λ·∇d`` a spring on every joint's displacement (see the SGLD
step below).

Which class the adversary's energy uses (``adversary_class``). Read literally, ``p(x̃ | x, y)`` conditions on
the true class, and so does the published code (its SGLD ascends ``−CE(h(x̃), y) − β·d(x, x̃)`` from ``x``
plus uniform noise of ±0.05 normalised units, about ±1.4 cm): the drift raises ``h(x̃)[y]``, so the samples
settle where the model is already confident of ``y``. With a frozen ``g`` that carries no training signal: on
the cmu8 benchmark the adversarial cross entropy of such samples was ~1e-4 and robust accuracy under SMART did
not change (``adversary_class="same"`` is that literal version; ``bench/defence.py`` trains both). The default
``"other"`` draws ``x̃`` from the same energy for the most likely wrong class ``c`` at ``x``
(``exp{h(x̃)[c] − λ·d(x, x̃)}``: motions near ``x`` that the model takes for ``c``, i.e. adversaries) and trains
``f`` to classify them as ``y``. **This departs from both the paper and the published code**; it is skelviz's
choice, made because the literal energy leaves a post-trained head with nothing to learn.

SGLD for ``x̃`` (``sgld_steps`` steps)::

    x̃ ← x̃ + η·( ∇h(x̃)[c] / rms(∇h(x̃)[c]) − λ·∇_x̃ d(x, x̃) ) + σ·ξ,     ξ ~ N(0, I),  x̃₀ = x + U(±init_noise)

with ``η = sgld_lr`` (metres), ``σ = sgld_noise`` (metres). The classifier's gradient is divided by its
root-mean-square coordinate (per sample; a diagonal preconditioner, as SMART normalises its gradients), so
``η`` is a length whatever the scale of the logits of the architecture. ``λ`` (1/m) weighs the skeleton
distance, but its pull is weak: ``d`` averages over the T frames, so the gradient of its position term is
``2δ/T`` (not ``2δ``; an earlier version of this docstring said ``2δ`` and a 1 cm equilibrium), and one SGLD
step pulls each coordinate back by only ``2ηλ/T`` of its offset: 0.0033 at the defaults (T = 60), 60× less
than that docstring claimed. What actually bounds the adversaries is the short chain: ``sgld_steps`` steps
of at most ``η`` per coordinate along the normalised gradient (10 × 2 mm = 2 cm RMS), plus the noise
(``σ·√steps`` ≈ 6 mm) and the uniform start (±``init_noise`` = ±1 cm).
The ``p(x)`` negatives use the same step on ``logsumexp h``.

Posterior over ``f``: SG-HMC (Chen, Fox and Guestrin, ICML 2014) on the loss above (scaled by the number of
training windows, Gaussian prior of std ``prior_std`` on θ), one chain started at ``f = 0``; after ``burn_in``
epochs one sample is kept at the end of every ``thin`` epochs until ``num_samples`` are kept
(``epochs = burn_in + num_samples·thin``).

Prediction: Bayesian model averaging over the N kept samples, ``p(y|x) ≈ 1/N Σ_i softmax(h_θi(x))``; the
defended model's ``forward`` returns ``log p(y|x)`` (so argmax and softmax behave as for any classifier).

Defaults (the ``"runner-up"`` preset: ours unless said; the paper's HDM05 runs: 5 posterior samples, 20
epochs):

================= ======= ====================================================================================
``num_samples``   5       paper / code (``--bayesianModelNum 5``)
``hidden``        128     width of f's hidden layer (ReLU between the two layers); f's last layer starts at 0
                          so that ``h = g`` before training
``burn_in``       5       epochs before the first posterior sample; ``thin`` 1
``lr``            0.01    SG-HMC learning rate (per-window mean loss); ``friction`` 0.1; ``temperature`` 1
``prior_std``     1.0     std of the Gaussian prior on f's weights
``lam``           50      λ of the energy (1/m, see the SGLD step above)
``sgld_steps``    10      ``sgld_lr`` 0.002 m, ``sgld_noise`` 0.002 m, ``init_noise`` 0.01 m
``x_weight``      0       ``adv_weight`` 1.0, ``clf_weight`` 1.0; the ``p(x)`` term is implemented but off by
                          default: it doubles the cost of an epoch and its effect was not measured separately
``adversary_class`` other the energy of the most likely wrong class (see above); ``"same"`` for the literal one
================= ======= ====================================================================================

Measured (``bench/defence.py``, cmu8 benchmark, 97 held-out windows, world-coordinate input centred inside the
model, so no attack can move the root channel; the figures before that fix measured the artefact): on the
SMART/BEAT code's MLP (512 units) the ``runner-up`` recipe keeps clean accuracy (84.5% → 85.6%) and raises
robust accuracy under SMART-AB from 46.4% to 60.8% (EOT-SMART 45.4% → 70.1%, I-FGSM ±1 cm 63.9% → 70.1%); the
``published`` preset keeps 82.5% clean and does not raise it against SMART (46.4%; EOT-SMART 52.6%). Both are
behind TRADES (77.3%) and MART (75.3%), which fine-tune every weight, and BEAT trains 4× slower than TRADES
there (54.6 s vs 13.3 s). On a small ST-GCN (``bench/results/defence_stgcn.md``, 40 windows) BEAT barely resists:
base 92.8% clean, 2.5% robust under SMART; BEAT 90.7%, 2.5% (EOT-SMART 15%), published 12.5%; MART 37.5% at
83.5% clean. A head on frozen features cannot undo a perturbation that already moved the features. Its SGLD
settings do not close the gap either (``bench/beat_sweep.py``, ``bench/results/beat_sweep.md``: on the MLP the best
of eight settings averages 61.9% under SMART over three seeds against TRADES's 77.3%, and the default's own spread
over seeds, 49.5–62.9%, is as wide as the differences between settings; a later run on another host: best
59.8%, default range 9.3 points). The same script's control trains **only this head** with TRADES (its own PGD
inner maximisation) on the same frozen base: within 2 points of the base's clean accuracy it too reaches 59.8%
(β 0.5), and more weight on robustness only lowers clean accuracy (β 2: 67.0% clean, 45.4% robust). So ~60% under
SMART is the ceiling of a head on these frozen features, whatever trains it; BEAT sits at it.

Presets (``build("beat", clf, preset=...)``, ``skelviz defend --preset``, the Defence panel):

``runner-up`` (the defaults above)
    skelviz's recipe: adversaries of the most likely wrong class, no ``p(x)`` term, head on the features.
``published`` (the authors' code, as the project's issue 14 reads it; not re-checked against the code here)

    =================== =============== ===========================================================
    parameter           published       source
    =================== =============== ===========================================================
    ``adversary_class`` ``"same"``      paper's energy and code: adversaries for the true class
    ``x_weight``        1.0             code: the ``p(x)`` term is on
    ``head_input``      ``"logits"``    code: ``logits = relu(g(x)) + f(relu(g(x)))``
    ``betas``           (0, 1, 1, 1)    code: distance over derivative orders 1–3 (velocity,
                                        acceleration, jerk), no position term
    =================== =============== ===========================================================

Differences from the published code (``EBMATrainer.py``, ``BayesianClassifier.py``), where the runner-up recipe
follows the paper: the code appends ``f`` to ``g``'s *logits* (``f(relu(g(x))) + relu(g(x))``), we use the features
``φ(x)`` as the paper writes; the code trains N separate appended models, each with its own SG-AdaHMC
optimiser, we run one SG-HMC chain and thin it; the code's BMA **sums the logits** of the N models and
takes the argmax, we average the softmax probabilities (the Bayesian predictive); the code's SGLD for ``x̃``
uses ``−CE`` (a normalised log-probability) in place of the logit ``h(x̃)[y]`` of the paper's energy and
draws ``p(x)`` negatives from a replay buffer of uniform noise, we use the paper's logit and short-run chains
started at the perturbed clean clips (contrastive divergence), which suits a frozen ``g``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from engine import distributed
from engine.defenses.common import Defence, DefenceParams, clean_accuracy, minibatches, num_batches, register_defence
from engine.errors import CheckpointError, DefenceError, ParameterError
from engine.losses import bone_lengths, dynamics_loss
from engine.models.base import Classifier
from engine.models.checkpoint import register_defended_model
from engine.params import param

log = logging.getLogger(__name__)


class PosteriorHead(nn.Module):
    """``f``: Linear(D, hidden) → ReLU → Linear(hidden, K); the last layer is zero-initialised (``f = 0``)."""

    def __init__(self, feature_dim: int, num_classes: int, hidden: int = 128) -> None:
        super().__init__()
        self.fc1 = nn.Linear(feature_dim, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(features)))


def appended_head_model(base: Classifier, probe: torch.Tensor, hidden: int = 128,
                        head_input: str = "features") -> BEATClassifier:
    """``base`` (frozen, used as is, not copied) with one freshly initialised appended head ``f`` (so ``h = g``
    until ``f`` trains); ``probe``, a couple of windows on ``base``'s device, sizes the features when the network
    does not state ``feature_dim``. What BEAT's chain starts from; ``bench/beat_sweep.py`` also trains it with
    TRADES, as the control for how robust any head on frozen features gets."""
    feature_dim = getattr(base.net, "feature_dim", None)
    if feature_dim is None:
        with torch.no_grad():
            feature_dim = int(base.features(probe).shape[1])
    if head_input == "logits":  # the published code's head reads relu(g(x))
        feature_dim = base.num_classes
    head = PosteriorHead(int(feature_dim), base.num_classes, hidden).to(probe.device)
    return BEATClassifier(base, [head], head_input).eval()


@register_defended_model("beat")
class BEATClassifier(Classifier):
    """A frozen classifier ``g`` plus N posterior samples of the appended head ``f``; predicts by BMA.

    Behaves as a :class:`~engine.models.base.Classifier` (same skeleton, classes, normalisation and
    preprocessing as ``g``): ``forward(x)`` takes clips in metres and returns ``log(1/N Σ softmax(h_i(x)))``.
    ``g``'s parameters never require gradients and its network always stays in eval mode (batch-norm
    statistics frozen). The backbone runs once per prediction; ``forward_passes_per_prediction`` reports N
    (the number of models averaged), as the paper counts the cost of BMA.
    """

    def __init__(self, base: Classifier, heads: Sequence[PosteriorHead], head_input: str = "features") -> None:
        super().__init__(
            base.net, list(base.class_names), mean=base.mean, std=base.std, preprocessing=base.preprocessing,
            arch=base.arch, arch_kwargs=base.arch_kwargs, meta=dict(base.meta),
        )
        if not heads:
            raise DefenceError("BEAT needs at least one posterior sample of the appended head")
        if head_input not in ("features", "logits"):
            raise DefenceError(f"head_input must be 'features' or 'logits', got {head_input!r}")
        self.head_input = head_input
        self.heads = nn.ModuleList(heads)
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.net.eval()

    def train(self, mode: bool = True) -> BEATClassifier:
        super().train(mode)
        self.net.eval()  # g is frozen: its batch-norm statistics and dropout never change
        return self

    @property
    def num_samples(self) -> int:
        return len(self.heads)

    @property
    def forward_passes_per_prediction(self) -> int:
        return self.num_samples

    def base_outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(φ(x), g(x))`` of clips in metres."""
        phi = self.net.features(self.network_input(x))
        return phi, self.net.fc(phi)

    def head_and_base(self, phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(input of f, the base logits added to f's output)`` from the features: ``(φ, g(φ))`` for
        ``head_input="features"`` (the paper), ``(relu(g), relu(g))`` for ``"logits"`` (the published code)."""
        g = self.net.fc(phi)
        if self.head_input == "logits":
            g = F.relu(g)
            return g, g
        return phi, g

    @torch.no_grad()
    def head_inputs(self, x: torch.Tensor, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        """``(f's input, base logits)`` of clips ``x`` in metres, in no-grad chunks of ``batch_size``: what BEAT
        training caches once for the clean windows (``g`` is frozen and in eval mode, so they never change)."""
        parts = [self.head_and_base(self.net.features(self.network_input(chunk))) for chunk in x.split(batch_size)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def logits_with(self, head: nn.Module, phi: torch.Tensor) -> torch.Tensor:
        """``h = f(input) + base`` of one head on features ``phi``."""
        inp, base = self.head_and_base(phi)
        return head(inp) + base

    def stacked_heads(self, heads: Sequence[int] | None = None) -> tuple[torch.Tensor, ...]:
        """The chosen posterior samples' weights stacked along a leading sample axis:
        ``(W1 (S, H, D), b1 (S, 1, H), W2 (S, K, H), b2 (S, 1, K))``. Stacked on each call (a few small copies),
        so loading, moving or editing a head never leaves a stale stack behind."""
        chosen = list(self.heads) if heads is None else [self.heads[i] for i in heads]
        w1 = torch.stack([h.fc1.weight for h in chosen])
        b1 = torch.stack([h.fc1.bias for h in chosen]).unsqueeze(1)
        w2 = torch.stack([h.fc2.weight for h in chosen])
        b2 = torch.stack([h.fc2.bias for h in chosen]).unsqueeze(1)
        return w1, b1, w2, b2

    def sample_logits_from_features(self, phi: torch.Tensor, heads: Sequence[int] | None = None) -> torch.Tensor:
        """``h_i = f_i(·) + g`` for the chosen posterior samples: (S, N, K), all samples in one batched pass
        (two batched matrix products on the stacked weights, not a loop over the heads)."""
        inp, base = self.head_and_base(phi)
        w1, b1, w2, b2 = self.stacked_heads(heads)
        hidden = F.relu(torch.baddbmm(b1, inp.unsqueeze(0).expand(len(w1), -1, -1), w1.transpose(1, 2)))
        return torch.baddbmm(b2, hidden, w2.transpose(1, 2)) + base

    def head(self, features: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(self.sample_logits_from_features(features), dim=-1)
        return torch.logsumexp(logp, dim=0) - math.log(self.num_samples)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.net.features(self.network_input(x)))

    def stochastic_logits(self, x: torch.Tensor, draws: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Logits of ``draws`` posterior samples (the model's randomness, for EOT): (draws, N, K).

        With ``draws >= N`` every kept sample is used once (the exact expectation over the sample set);
        otherwise ``draws`` distinct samples are picked at random.
        """
        if draws >= self.num_samples:
            heads = list(range(self.num_samples))
        else:
            heads = torch.randperm(self.num_samples, generator=generator)[:draws].tolist()
        return self.sample_logits_from_features(self.net.features(self.network_input(x)), heads)

    # -- checkpoint -------------------------------------------------------------------------------------------
    def defence_state(self) -> dict[str, Any]:
        first = self.heads[0]
        return {
            "method": "beat",
            "head_input": self.head_input,
            "feature_dim": int(first.fc1.in_features),
            "hidden": int(first.fc1.out_features),
            "heads": [{k: v.detach().cpu().clone() for k, v in h.state_dict().items()} for h in self.heads],
        }

    @classmethod
    def from_state(cls, base: Classifier, state: dict, where: str = "checkpoint") -> BEATClassifier:
        try:
            dim, hidden, states = int(state["feature_dim"]), int(state["hidden"]), list(state["heads"])
            head_input = str(state.get("head_input", "features"))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{where}: the BEAT section lacks a field ({exc}); the file is damaged") from None
        heads = []
        for i, sd in enumerate(states):
            head = PosteriorHead(dim, base.num_classes, hidden)
            try:
                head.load_state_dict(sd)
            except (RuntimeError, TypeError, AttributeError) as exc:
                raise CheckpointError(f"{where}: BEAT posterior sample {i} does not fit its head: {exc}") from None
            heads.append(head)
        return cls(base, heads, head_input).eval()


def _rms_normalise(g: torch.Tensor) -> torch.Tensor:
    """Each sample's gradient divided by its root-mean-square coordinate (zero stays zero)."""
    rms = g.flatten(1).square().mean(1).sqrt().clamp_min(1e-12)
    return g / rms.view(-1, *([1] * (g.ndim - 1)))


def skeleton_distance(
    x: torch.Tensor,
    x_tilde: torch.Tensor,
    skeleton,
    betas: Sequence[float] = (1.0, 1.0, 1.0),
    bone_weight: float = 1.0,
    clean_lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """BEAT's ``d(x, x̃)`` per sample (N,): frame-difference terms and bone lengths, summed over joints,
    averaged over frames (see the module docstring)."""
    t = x.shape[2]
    per_frame_entries = x.shape[3] * x.shape[4]  # dynamics_loss averages over (T, V, M): undo V·M of it
    dyn = dynamics_loss(x, x_tilde, betas, 1.0, reduction="none") * per_frame_entries
    ref = bone_lengths(x, skeleton) if clean_lengths is None else clean_lengths
    bl = (bone_lengths(x_tilde, skeleton) - ref).square().flatten(1).sum(dim=1) / t
    return dyn + bone_weight * bl


@dataclass(frozen=True)
class BEATParams(DefenceParams):
    """BEAT's hyper-parameters (module docstring: defaults, presets and their sources)."""

    num_samples: int = param(5, "posterior samples of f kept for Bayesian model averaging", min=1)
    hidden: int = param(128, "width of f's hidden layer", min=1)
    burn_in: int = param(5, "SG-HMC epochs before the first kept sample", min=0)
    thin: int = param(1, "epochs between kept samples", min=1)
    batch_size: int = param(32, "windows per minibatch", min=2)
    lr: float = param(0.01, "SG-HMC learning rate (per-window mean loss)", min=0.0, min_exclusive=True)
    friction: float = param(0.1, "SG-HMC friction (1 − momentum)", min=0.0, max=1.0, min_exclusive=True)
    temperature: float = param(1.0, "posterior temperature", min=0.0)
    prior_std: float = param(1.0, "std of the Gaussian prior on f's weights", min=0.0, min_exclusive=True)
    lam: float = param(50.0, "λ, weight of the skeleton distance in the energy", min=0.0)
    betas: tuple[float, ...] = param((1.0, 1.0, 1.0), "weights of the 0th, 1st, 2nd … frame differences in d")
    bone_weight: float = param(1.0, "weight of the bone-length term of d", min=0.0)
    sgld_steps: int = param(1, "SGLD steps per minibatch (per visit of a window's chain when persistent)", min=0)
    sgld_lr: float = param(0.002, "SGLD step", unit="m", min=0.0)
    sgld_noise: float = param(0.002, "SGLD noise std", unit="m", min=0.0)
    init_noise: float = param(0.01, "uniform perturbation of the clean clip that starts each chain", unit="m",
                              min=0.0)
    persistent: bool = param(True, "keep every training window's chains in a replay buffer and advance them "
                                   "across epochs (PCD) instead of restarting them at every minibatch")
    reinit_freq: float = param(0.05, "chance that a persistent chain restarts from its clean clip at a visit",
                               min=0.0, max=1.0)
    clf_weight: float = param(1.0, "weight of −log p(y|x)", min=0.0)
    adv_weight: float = param(1.0, "weight of −log p(x̃|x, y)", min=0.0)
    x_weight: float = param(0.0, "weight of −log p(x) (contrastive divergence)", min=0.0)
    adversary_class: Literal["other", "same"] = param("other", "class in the adversary's energy: the most likely "
                                                     "wrong one (ours) or the true one (paper and code)")
    head_input: Literal["features", "logits"] = param("features", "what f reads: the features φ(x) (paper) or "
                                                      "relu(g(x)) with logits relu(g) + f(relu(g)) (code)")

    PRESETS: ClassVar[dict[str, dict]] = {
        # today's recipe, the defaults (kept by name so protocols and scripts can ask for it explicitly)
        "runner-up": {},
        # the authors' code settings (module docstring, "Presets")
        "published": {"adversary_class": "same", "x_weight": 1.0, "head_input": "logits",
                      "betas": (0.0, 1.0, 1.0, 1.0), "persistent": False, "sgld_steps": 10},
    }

    def validate(self, where: str) -> None:
        if not self.betas or min(self.betas) < 0 or sum(self.betas) <= 0:
            raise ParameterError(f"{where}: betas must be non-negative with a positive sum, got {list(self.betas)}")


@register_defence("beat")
class BEAT(Defence):
    """BEAT post-train Bayesian energy-based adversarial training (see the module docstring); parameters
    :class:`BEATParams` (presets ``"runner-up"``, the defaults, and ``"published"``)."""

    Params = BEATParams

    @property
    def epochs(self) -> int:
        return self.burn_in + self.num_samples * self.thin

    @property
    def params(self) -> dict[str, Any]:
        return {**super().params, "epochs": self.epochs}

    # -- samplers ---------------------------------------------------------------------------------------------
    def _restart(self, x: torch.Tensor, present: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """A chain's start: the clean clip plus uniform noise of ±``init_noise`` on the present performers."""
        u = torch.rand(x.shape, generator=gen, device=x.device) * 2 - 1
        return (x + u * self.init_noise * present).detach()

    def sgld_step(self, model: BEATClassifier, head: PosteriorHead, x_adv: torch.Tensor, x_neg: torch.Tensor | None,
                  x: torch.Tensor, y: torch.Tensor, lengths: torch.Tensor, present: torch.Tensor,
                  gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """One SGLD step of the adversary chains ``x_adv`` and (when given) the ``p(x)`` chains ``x_neg`` of the
        minibatch ``x`` (``x_adv`` may be empty when only the ``p(x)`` term is on): both stacked into **one** forward and one backward pass of ``g`` (their energies are
        per-sample, ``g`` is in eval mode, so the summed energy's gradient is every row's own).

        Adversaries: ``x̃ ~ exp{h(x̃)[c] − λ d(x, x̃)}``, ``c = y`` (``adversary_class="same"``) or the most likely
        wrong class at the chain's current state (``"other"``); negatives: ``exp{logsumexp h(x⁻)}``.
        Returns ``(next x_adv, next x_neg, (f's input, base logits) at the states the step started from)``;
        the last two are detached and are what the head trains on (they cost no extra forward pass).
        """
        na = len(x_adv)
        leaf_a = x_adv.detach().requires_grad_(True)
        leaves = [leaf_a]
        if x_neg is not None:
            leaves.append(x_neg.detach().requires_grad_(True))
        stacked = torch.cat(leaves) if len(leaves) > 1 else leaf_a
        inp, base = model.head_and_base(model.net.features(model.network_input(stacked)))
        h = head(inp) + base
        h_adv = h[:na]
        if self.adversary_class == "other":
            target = h_adv.detach().scatter(1, y[:na, None], float("-inf")).argmax(1)
        else:
            target = y[:na]
        energy = h_adv.gather(1, target[:, None]).sum()
        if x_neg is not None:
            energy = energy + torch.logsumexp(h[na:], dim=1).sum()
        grads = torch.autograd.grad(energy, leaves)
        dist = skeleton_distance(x[:na], leaf_a, model.skeleton, self.betas, self.bone_weight, lengths[:na])
        g_d, = torch.autograd.grad(dist.sum(), leaf_a) if na else (torch.zeros_like(leaf_a),)
        with torch.no_grad():
            pa = present[:na]
            drift = _rms_normalise(grads[0] * pa) - self.lam * g_d
            noise = torch.randn(x_adv.shape, generator=gen, device=x_adv.device)
            next_adv = x_adv + (self.sgld_lr * drift + self.sgld_noise * noise) * pa
            next_neg = None
            if x_neg is not None:
                noise = torch.randn(x_neg.shape, generator=gen, device=x_neg.device)
                next_neg = x_neg + (self.sgld_lr * _rms_normalise(grads[1] * present) + self.sgld_noise * noise) * present
        return next_adv.detach(), next_neg, inp.detach(), base.detach()

    def advance_chains(self, model: BEATClassifier, head: PosteriorHead, x_adv: torch.Tensor,
                       x_neg: torch.Tensor | None, x: torch.Tensor, y: torch.Tensor, lengths: torch.Tensor,
                       present: torch.Tensor, gen: torch.Generator):
        """``sgld_steps`` SGLD steps of the chains; returns ``(x_adv, x_neg, f's input, base logits)`` where the
        last two belong to the samples the head trains on (stacked: adversaries first, then negatives).

        Persistent chains: the samples are the chains' states before their last step (already evaluated by
        that step's forward pass; the step itself is kept for the chain's next visit). Restarted chains (the
        published code): the states after the last step, evaluated by one more forward pass.
        """
        inp = base = None
        for _ in range(self.sgld_steps):
            x_adv, x_neg, inp, base = self.sgld_step(model, head, x_adv, x_neg, x, y, lengths, present, gen)
        if inp is None or not self.persistent:
            stacked = x_adv if x_neg is None else torch.cat([x_adv, x_neg])
            with torch.no_grad():
                inp, base = model.head_and_base(model.net.features(model.network_input(stacked)))
        return x_adv, x_neg, inp, base

    # -- training ---------------------------------------------------------------------------------------------
    def train(self, x: torch.Tensor, y: torch.Tensor) -> BEATClassifier:
        dev = self.device
        torch.manual_seed(self.seed)
        base = self.base_copy().eval()
        model = appended_head_model(base, x[:2].to(dev), self.hidden, self.head_input).to(dev)
        head = model.heads[0]
        gen = torch.Generator().manual_seed(self.seed)
        # Under torchrun (engine.distributed) the chain is data-parallel: every rank draws the same minibatches
        # and SG-HMC noise from `gen`, computes the gradient on its part of each minibatch, and the parts are
        # averaged (one all-reduce), so every rank holds the same chain; SGLD draws come from the rank's own
        # generator. In a single process `sgld_gen` is `gen` and nothing changes.
        # Noise is drawn on the training device (no host round trip per step): device generators seeded once
        # from the CPU ones (the same seeds on every rank for the shared one). The SGLD seed comes from the
        # rank's own generator, which in a single process is `gen` itself: it is drawn from a fork of it, so that
        # `gen` (minibatch order) is consumed identically with and without torchrun.
        param_gen = torch.Generator(device=dev).manual_seed(int(torch.randint(2**62, (1,), generator=gen)))
        sgld_cpu = distributed.rank_generator(torch.Generator().set_state(gen.get_state()), self.seed)
        sgld_gen = torch.Generator(device=dev).manual_seed(int(torch.randint(2**62, (1,), generator=sgld_cpu)))
        n = len(x)
        # g is frozen and in eval mode: the clean windows' features, f's input, base logits and bone lengths are
        # constants, computed once here instead of at every minibatch and every SGLD step.
        x_all, y_all = x.to(dev), y.to(dev)
        present_all = (x_all != 0).any(dim=1, keepdim=True).any(dim=2, keepdim=True).any(dim=3, keepdim=True).float()
        inp_clean, base_clean = model.head_inputs(x_all)
        with torch.no_grad():
            lengths_all = bone_lengths(x_all, model.skeleton)
        adv_buffer = neg_buffer = None
        # Replay buffers: one chain per training window, kept on the device. Under torchrun each rank keeps its
        # own buffer and advances only the windows of its part of a minibatch, so a window that falls to the
        # other rank in a later epoch continues from that rank's (older) state: still a valid chain, but not
        # the single-process one; the restarted chains of the published preset are identical on any rank count.
        if self.persistent:
            if self.adv_weight:
                adv_buffer = self._restart(x_all, present_all, sgld_gen)
            if self.x_weight:
                neg_buffer = self._restart(x_all, present_all, sgld_gen)
        params = list(head.parameters())
        momentum = [torch.zeros_like(p) for p in params]
        # SG-HMC in the "SGD with momentum" form: v ← (1−α)v − η∇Ũ + N(0, 2αηT), θ ← θ + v, with
        # Ũ = n·loss + |θ|²/(2σ²) and η = lr / n, so that lr is the step on the per-window mean loss.
        eta = self.lr / n
        noise_std = math.sqrt(2.0 * self.friction * eta * self.temperature)
        samples: list[PosteriorHead] = []
        steps_per_epoch = num_batches(n, self.batch_size)
        total = self.epochs * steps_per_epoch
        done = 0
        last: dict[str, float] = {}
        zero = torch.zeros((), device=dev)
        for epoch in range(1, self.epochs + 1):
            sums = torch.zeros(4, device=dev)  # loss, clf, adv, px: summed on the device, read once per epoch
            parts = [distributed.local_minibatch(b) for b in minibatches(n, self.batch_size, gen)]
            dev_idx = torch.cat([p[0] for p in parts]).to(dev).split([len(p[0]) for p in parts])
            for (idx_cpu, weight), idx in zip(parts, dev_idx):
                xb, yb, present = x_all[idx], y_all[idx], present_all[idx]
                inp_b, base_b = inp_clean[idx], base_clean[idx]
                x_adv = x_neg = None
                if self.adv_weight or self.x_weight:
                    if self.persistent:
                        x_adv = adv_buffer[idx] if adv_buffer is not None else None
                        x_neg = neg_buffer[idx] if neg_buffer is not None else None
                        if self.reinit_freq > 0:
                            fresh = (torch.rand(len(idx), generator=sgld_gen, device=dev) < self.reinit_freq)
                            fresh = fresh.view(-1, 1, 1, 1, 1)
                            if x_adv is not None:
                                x_adv = torch.where(fresh, self._restart(xb, present, sgld_gen), x_adv)
                            if x_neg is not None:
                                x_neg = torch.where(fresh, self._restart(xb, present, sgld_gen), x_neg)
                    else:
                        x_adv = self._restart(xb, present, sgld_gen) if self.adv_weight else None
                        x_neg = self._restart(xb, present, sgld_gen) if self.x_weight else None
                    if x_adv is None:  # p(x) term only: the sampler needs an adversary chain to stack with
                        x_adv = xb[:0]
                    head.eval()
                    x_adv, x_neg, inp_s, base_s = self.advance_chains(
                        model, head, x_adv, x_neg, xb, yb, lengths_all[idx], present, sgld_gen)
                    head.train()
                    if adv_buffer is not None:
                        adv_buffer[idx] = x_adv
                    if neg_buffer is not None:
                        neg_buffer[idx] = x_neg
                    inp_all, base_all = torch.cat([inp_b, inp_s]), torch.cat([base_b, base_s])
                else:
                    inp_all, base_all = inp_b, base_b
                # the head's forward on clean, adversarial and negative samples in one pass
                logits_all = head(inp_all) + base_all
                nb = len(idx)
                logits = logits_all[:nb]
                loss_clf = F.cross_entropy(logits, yb)
                loss = self.clf_weight * loss_clf
                loss_adv = loss_px = zero
                na = len(x_adv) if x_adv is not None and self.adv_weight else 0
                if self.adv_weight:
                    loss_adv = F.cross_entropy(logits_all[nb:nb + na], yb)
                    loss = loss + self.adv_weight * loss_adv
                if self.x_weight:
                    logits_neg = logits_all[nb + na:]
                    loss_px = -(torch.logsumexp(logits, 1).mean() - torch.logsumexp(logits_neg, 1).mean())
                    loss = loss + self.x_weight * loss_px
                grads = distributed.average_gradients(torch.autograd.grad(loss, params), weight)
                with torch.no_grad():
                    for p, v, gr in zip(params, momentum, grads):
                        u_grad = n * gr + p / (self.prior_std ** 2)
                        v.mul_(1.0 - self.friction).add_(-eta * u_grad)
                        if noise_std > 0:
                            v.add_(torch.randn(p.shape, generator=param_gen, device=dev) * noise_std)
                        p.add_(v)
                    sums += torch.stack([loss, loss_clf, loss_adv, loss_px]).detach() * len(idx_cpu)
                done += 1
                # no host sync inside the loop: the progress carries the last finished epoch's mean losses
                self.tick(done, total, {"epoch": epoch, **last})
            means = (sums / n).tolist()
            last = dict(zip(("loss", "clf", "adv", "px"), means))
            record = {"epoch": epoch, **last}
            if epoch > self.burn_in and (epoch - self.burn_in) % self.thin == 0 and len(samples) < self.num_samples:
                kept = PosteriorHead(head.fc1.in_features, base.num_classes, self.hidden)
                kept.load_state_dict({k: v.detach().cpu().clone() for k, v in head.state_dict().items()})
                samples.append(kept.to(dev))
                record["sample"] = len(samples)
            self.history.append(record)
            log.debug("BEAT epoch %d: %s", epoch, record)
        self.chains = {"adversaries": adv_buffer, "negatives": neg_buffer}  # the replay buffers (None: restarted)
        defended = BEATClassifier(base, samples, self.head_input).eval()
        defended.meta["beat_train_accuracy"] = clean_accuracy(defended, x, y)
        return defended
