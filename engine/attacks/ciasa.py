"""CIASA: Liu, Akhtar and Mian, "Adversarial Attack on Skeleton-based Human Action Recognition", IEEE TNNLS 2020
(Constrained Iterative Attack via Spatial Alignment... "CIASA").

Threat model: white-box. An iterative sign-gradient attack (I-FGSM style, per-joint L∞ budget ``eps`` in metres)
whose iterates are kept natural by

* **bone-length constraint** — every bone keeps its clean length in every frame;
* **joint-angle constraint** — every joint angle stays inside per-joint limits estimated from real motion.
  Both are enforced after every step by projection: :meth:`engine.attacks.manifold.ManifoldProjector.nearest`
  (clean bone lengths, angles clamped to the limits; the single joint-angle implementation of skelviz).
  The constraints take precedence over the L∞ budget, which holds before the projection;
* **temporal smoothness** — a penalty on the change of the joints' acceleration, ``‖D²x̂ − D²x‖²``
  (:func:`engine.losses.dynamics_loss`, real frame interval);
* **adversarial (GAN) regulariser** — a small discriminator ``D`` (a two-layer temporal convolution over the
  joints, per performer) learns to tell clean motions from perturbed ones, and the attack adds the
  non-saturating generator loss ``−log σ(D(x̂))`` so that its motions look clean to ``D``.
  Setup (ours; the paper trains its discriminator jointly with the attack on the training data):
  ``D`` is first trained for ``disc_pretrain_steps`` Adam steps on real = clean motions (``disc_data`` when
  given, e.g. a training set as (N, 3, T, V, M); otherwise the clean clips being attacked) against
  fake = those motions with uniform per-frame jitter of the attack's size (what an unconstrained attack
  produces); then, as in a GAN, it takes one step per attack iteration on the clean batch against the
  current adversarial iterates. ``D`` is rebuilt for every call from ``seed``, so results are reproducible.
* optional **spatial localisation**: ``joints`` restricts the gradient steps to some joints (names or indices);
  the projection may still move other joints of their chains to keep bone lengths.

The three loss gradients are normalised per frame before being mixed (``Lc`` weight 1, ``smooth_weight``,
``gan_weight``; their units differ, as in SMART), and the step is ``−step_size·sign(mix)``.

Defaults (ours; the paper's values are for its normalised NTU/Kinetics coordinates): ``eps = 0.02`` m,
``iterations = 50``, ``step_size = eps / 10``, ``smooth_weight = 0.3``, ``gan_weight = 0.3``,
``disc_pretrain_steps = 100``, angle-limit margin 5° (:data:`engine.attacks.manifold.DEFAULT_MARGIN`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.attacks.base import Attack, AttackResult, StrategyParams, register_attack
from engine.attacks.common import (
    IterativeState,
    check_strategy,
    model_fps,
    model_skeleton,
    per_frame_normalise,
    present_performers,
    strategy_class_loss,
    strategy_success,
)
from engine.errors import AttackError
from engine.losses import dynamics_loss
from engine.params import param
from engine.skeletons import Skeleton


class MotionDiscriminator(nn.Module):
    """Real-vs-perturbed motion critic: temporal convolutions over (3·V) channels per performer → one logit."""

    def __init__(self, num_joints: int, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(3 * num_joints, hidden, kernel_size=3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv1d(hidden, hidden, kernel_size=3, padding=1),
            nn.LeakyReLU(0.2),
        )
        self.out = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v, m = x.shape
        h = x.permute(0, 4, 1, 3, 2).reshape(n * m, c * v, t)
        # second differences expose jitter; positions alone would mostly encode the pose
        h = torch.cat([h[..., :1], h], dim=-1).diff(dim=-1)
        h = self.net(h).mean(dim=-1)
        return self.out(h).view(n, m).mean(dim=1)


@dataclass(frozen=True)
class CIASAParams(StrategyParams):
    """CIASA's hyper-parameters (module docstring: defaults and sources)."""

    eps: float = param(0.02, "per-joint L∞ budget", unit="m", min=0.0, min_exclusive=True)
    iterations: int = param(50, "number of sign steps", min=1)
    step_size: float | None = param(None, "step length (none: eps / 10)", unit="m", min=0.0, min_exclusive=True)
    smooth_weight: float = param(0.3, "weight of the temporal-smoothness term", min=0.0)
    gan_weight: float = param(0.3, "weight of the discriminator (GAN) term", min=0.0)
    disc_pretrain_steps: int = param(100, "discriminator training steps before the attack", min=0)
    disc_lr: float = param(1e-3, "discriminator learning rate", min=0.0, min_exclusive=True)
    seed: int = param(0, "discriminator initialisation and noise")


@register_attack("ciasa")
class CIASA(Attack):
    """CIASA constrained attack (see the module docstring); hyper-parameters :class:`CIASAParams`.

    Inputs that are not hyper-parameters: ``limits`` (an ``engine.attacks.manifold.JointLimits``; default: estimated
    from ``disc_data`` or the attacked clips), ``disc_data`` (clean motions (N', 3, T, V, M) to train the
    discriminator on; default: the attacked clips), ``joints`` (names or indices of the joints allowed to move;
    default all), ``skeleton`` (only for a bare network that does not carry one).
    """

    threat_model = "white-box"
    Params = CIASAParams
    resources = ("skeleton", "limits", "disc_data", "joints")

    def __init__(self, model, params=None, *, skeleton: Skeleton | None = None, limits=None,
                 disc_data: torch.Tensor | None = None, joints: Sequence[int | str] | None = None, **kwargs) -> None:
        super().__init__(model, params, **kwargs)
        self.skeleton = model_skeleton(model, skeleton)
        self.step_size = float(self.hp.step_size) if self.hp.step_size is not None else self.eps / 10
        self.limits = limits
        self.disc_data = disc_data
        self.joints = None if joints is None else [self.skeleton.index(j) if isinstance(j, str) else int(j)
                                                    for j in joints]
        self.fps = model_fps(model, None)
        self.discriminator: MotionDiscriminator | None = None

    @property
    def params(self) -> dict:
        return {**super().params, "effective_step_size": self.step_size, "joints": self.joints}

    # -- setup -----------------------------------------------------------------------------------------------
    def _projector(self, x: torch.Tensor):
        from engine.attacks.manifold import ManifoldProjector, estimate_joint_angle_limits

        limits = self.limits
        if limits is None:
            source = self.disc_data if self.disc_data is not None else x
            limits = estimate_joint_angle_limits(source.detach().cpu(), self.skeleton, source="ciasa setup")
        if limits.skeleton.num_joints != self.skeleton.num_joints:
            raise AttackError(f"joint limits are for {limits.skeleton.name!r}, the clips for {self.skeleton.name!r}")
        return ManifoldProjector(limits, x.device)

    def _train_discriminator(self, real: torch.Tensor, gen: torch.Generator, steps: int, opt, fake=None,
                             weight: torch.Tensor | None = None, real_weighted: bool = False) -> None:
        """``weight`` (N,) 0/1 with ``fake``: the losses are means over the samples it marks, taken without a
        boolean index (no read of the device); ``real_weighted``: ``real`` is the attacked batch itself, weighted
        the same way and used whole (not subsampled)."""
        d = self.discriminator

        def mean(v: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
            return v.mean() if w is None else (v * w).sum() / w.sum().clamp_min(1)

        w_fake = None if weight is None else weight.to(real.dtype)
        w_real = w_fake if real_weighted else None
        for _ in range(steps):
            if real.shape[0] > 64 and not real_weighted:
                pick = torch.randint(real.shape[0], (64,), generator=gen, device=real.device)
                batch = real[pick]
            else:
                batch = real
            if fake is None:
                noise = (torch.rand(batch.shape, generator=gen, device=batch.device) * 2 - 1) * self.eps
                fake_batch = batch + noise * present_performers(batch)
            else:
                fake_batch = fake
            with torch.enable_grad():
                loss = mean(F.softplus(-d(batch)), w_real) + mean(F.softplus(d(fake_batch)), w_fake)
                grads = torch.autograd.grad(loss, list(d.parameters()))
            for p, g in zip(d.parameters(), grads):
                p.grad = g
            opt.step()
            opt.zero_grad(set_to_none=True)

    def _coincident_parent(self, x: torch.Tensor) -> torch.Tensor:
        """(V,) index: each joint, or the ancestor it coincides with (clean bone under 1 mm in every clip)."""
        from engine.losses import bone_lengths

        sk = self.skeleton
        zero = (bone_lengths(x, sk).amax(dim=(0, 1, 3)) < 1e-3).tolist()
        source = list(range(sk.num_joints))
        for b, (p, c) in enumerate(sk.bones):
            if zero[b]:
                source[c] = p
        # follow chains of coincident joints up to the first real one (parents come first in topological order)
        for j in sk.topological_order:
            source[j] = source[source[j]] if source[j] != j else j
        return torch.as_tensor(source, device=x.device)

    # -- the attack ------------------------------------------------------------------------------------------
    def run(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> AttackResult:
        check_strategy(self.strategy, self.top_n, getattr(self.model, "num_classes", None), target)
        if x.shape[3] != self.skeleton.num_joints:
            raise AttackError(f"clips have {x.shape[3]} joints, skeleton {self.skeleton.name!r} has {self.skeleton.num_joints}")
        device = x.device
        projector = self._projector(x)
        gen = torch.Generator(device=device)
        gen.manual_seed(self.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.discriminator = MotionDiscriminator(self.skeleton.num_joints).to(device)
        opt = torch.optim.Adam(self.discriminator.parameters(), lr=self.disc_lr, betas=(0.5, 0.999))
        real = (self.disc_data if self.disc_data is not None else x).detach().to(device, torch.float32)
        if self.gan_weight > 0:
            self._train_discriminator(real, gen, self.disc_pretrain_steps, opt)

        present = present_performers(x)
        mask = present
        if self.joints is not None:
            jm = torch.zeros(1, 1, 1, x.shape[3], 1, device=device)
            jm[:, :, :, self.joints] = 1
            mask = mask * jm
        dt = 1.0 / self.fps
        tie = self._coincident_parent(x)
        delta = torch.zeros_like(x)
        state = IterativeState(x, history_keys=("Lc", "smooth", "gan"))

        for it, final in state.steps(self.iterations, self.check_every):
            d = delta.detach().requires_grad_(not final)
            with torch.set_grad_enabled(not final):
                x_adv = x + d
                logits = self.model(x_adv)
                lc = strategy_class_loss(logits, y, self.strategy, self.top_n, target)
                smooth = dynamics_loss(x, x_adv, [0.0, 0.0, 1.0], dt, reduction="none")
                gan = F.softplus(-self.discriminator(x_adv)) if self.gan_weight > 0 else torch.zeros_like(lc)
            with torch.no_grad():
                success = strategy_success(logits, y, self.strategy, self.top_n, target)
                state.observe(it, d, logits.argmax(1), success, Lc=lc, smooth=smooth, gan=gan)
            if final:
                break
            (g_c,) = torch.autograd.grad(lc.sum(), d, retain_graph=True)
            mix = per_frame_normalise(g_c)
            if self.smooth_weight > 0:
                (g_s,) = torch.autograd.grad(smooth.sum(), d, retain_graph=self.gan_weight > 0)
                mix = mix + self.smooth_weight * per_frame_normalise(g_s)
            if self.gan_weight > 0:
                (g_g,) = torch.autograd.grad(gan.sum(), d)
                mix = mix + self.gan_weight * per_frame_normalise(g_g)
            with torch.no_grad():
                stepped = (d.detach() - self.step_size * mix.sign() * mask).clamp(-self.eps, self.eps)
                stepped = stepped.index_select(3, tie)  # joints on zero-length bones move with their parent
                # absent performers stay all-zero; the projection may move joints outside ``joints`` to keep
                # bone lengths (the constraints come first)
                projected = (projector.nearest(x + stepped, x) - x) * present
                delta = torch.where(state.done.view(-1, 1, 1, 1, 1), d.detach(), projected)
                if self.gan_weight > 0:
                    # one discriminator step on the windows still searching, as means weighted by that mask
                    # (no read of the device; once every window is done the step changes nothing the result
                    # uses). Without ``disc_data`` the real side is those windows' clean clips, all of them.
                    self._train_discriminator(x if self.disc_data is None else real, gen, 1, opt, fake=x + delta,
                                              weight=~state.done, real_weighted=self.disc_data is None)
            self._tick(it + 1, self.iterations, lambda: {"active": (~state.done).sum()})

        return state.result(x, delta, self.iterations, self.params, host=not self.keep_on_device)
