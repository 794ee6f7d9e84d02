"""APGD (Auto-PGD) with the cross-entropy loss and with the targeted DLR loss, after Croce and Hein, "Reliable
evaluation of adversarial robustness with an ensemble of diverse parameter-free attacks", ICML 2020
(AutoAttack), on world-coordinate motion in metres.

Threat model: white-box, untargeted success (any wrong class; APGD-T steers toward target classes but a
window counts as broken as soon as the model stops predicting its true class, as in AutoAttack). The
perturbation of every joint in every frame is bounded by ``eps`` metres:

``norm="joint"`` (default) every joint's 3-D displacement ``‖δ[t, v]‖₂ ≤ eps`` in every frame (the per-joint
                 L∞-over-frames budget of :func:`engine.metrics.linf_per_joint`); steps along the gradient
                 normalised per joint and frame (the steepest ascent of this product of balls);
``norm="linf"``  every coordinate within ``±eps`` (AutoAttack's L∞ geometry); steps along ``sign(∇)``.

``hold_bones=True`` additionally re-imposes the clean clip's bone lengths after every step by projection
(each bone keeps the adversarial direction and the clean length, walked from the root, followed by the
budget projection; three alternations, the budget projection last so the budget holds exactly and the bone
lengths approximately).

Algorithm (paper §3, Algorithm 1; the schedule as in the authors' code): from a uniformly random start inside
the budget, ``z = P(x + η·dir(∇L))``, ``x ← P(x + α(z − x) + (1 − α)(x − x_prev))`` with momentum
``α = 0.75`` (1 on the first step); the step ``η`` starts at ``2·eps`` and is halved at checkpoints, restarting
from the best point so far, when fewer than ``ρ = 0.75`` of the steps since the last checkpoint raised the
loss, or when neither the step nor the best loss changed since the last checkpoint. Checkpoints after
``0.22·N`` iterations, then at intervals shrinking by ``0.03·N`` to no less than ``0.06·N`` (the code's
integer form of the paper's ``p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06)``).

Losses (maximised): ``apgd-ce`` cross-entropy ``CE(z, y)``; ``apgd-dlr-t`` the targeted DLR loss
``−(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2)`` (``π`` sorts the logits; the paper needs ≥ 4 classes,
here a 3-class model uses ``z_π4 := z_π3``), run once per target
class ``t`` among the ``n_target_classes`` highest-scoring wrong classes of the clean window, each on the
windows no earlier target broke.

Defaults and their source (AutoAttack "standard" version, code ``fra31/auto-attack``): ``iterations = 100``,
``restarts = 1`` (APGD-CE and APGD-T), ``n_target_classes = 9`` (capped at K − 1), ``rho = 0.75``,
``momentum = 0.75``, initial step ``2·eps``. For randomised defences AutoAttack's "rand" version averages
the gradient over ``eot_samples = 20`` draws (EOT); here ``eot_samples`` defaults to 1 (no EOT) and the
standard suite (:mod:`engine.defenses.standard_suite`) sets it when the model is stochastic, i.e. exposes
``stochastic_logits`` (:mod:`engine.attacks.eot`). With EOT the loss is the mean over draws of the per-draw
loss; success is always judged by the defended model's own ``forward``. ``eps`` = 0.01 m is ours (images
use 8/255 of a [0, 1] range).

The result's ``extras`` hold ``start_loss`` and ``best_loss`` per window (the loss at the random start and
the best loss found, for the suite's gradient-masking check).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from engine.attacks.base import Attack, AttackParams, AttackResult, register_attack
from engine.attacks.common import model_skeleton, present_performers
from engine.errors import AttackError
from engine.params import param


@dataclass(frozen=True)
class APGDParams(AttackParams):
    """APGD hyper-parameters (module docstring: defaults and their source)."""

    eps: float = param(0.01, "per-joint budget", unit="m", min=0.0, min_exclusive=True)
    norm: Literal["joint", "linf"] = param("joint", "joint: every joint's 3-D displacement within eps in every "
                                           "frame; linf: every coordinate within ±eps")
    iterations: int = param(100, "iterations per run (AutoAttack: 100)", min=1)
    restarts: int = param(1, "random restarts (AutoAttack standard: 1)", min=1)
    rho: float = param(0.75, "step halved when fewer than this share of steps raised the loss", min=0.0, max=1.0)
    momentum: float = param(0.75, "weight of the new step against the previous one (paper's alpha)", min=0.0,
                            max=1.0)
    eot_samples: int = param(1, "random draws of a stochastic model averaged per gradient (1: no EOT)", min=1)
    hold_bones: bool = param(False, "keep the clean bone lengths by projection after every step")
    seed: int = param(0, "seed of the random starts and EOT draws")


@dataclass(frozen=True)
class APGDTParams(APGDParams):
    """APGD-T: APGD's parameters plus the number of target classes."""

    n_target_classes: int = param(9, "target classes tried, the highest-scoring wrong ones (AutoAttack: 9)", min=1)


def checkpoints(iterations: int) -> list[int]:
    """Iterations after which the step-size conditions are checked (the authors' integer schedule)."""
    first = max(int(0.22 * iterations), 1)
    shrink = max(int(0.03 * iterations), 1)
    least = max(int(0.06 * iterations), 1)
    points, at, length = [], first, first
    while at < iterations:
        points.append(at)
        length = max(length - shrink, least)
        at += length
    return points


def dlr_targeted_loss(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Targeted DLR loss per sample (to be maximised); needs at least 3 classes (with 3, ``z_π4`` is taken to
    be ``z_π3``: the scale becomes ``z_π1 − z_π3``; the paper assumes ≥ 4)."""
    ordered = logits.sort(dim=1).values
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    z_t = logits.gather(1, target[:, None]).squeeze(1)
    fourth = ordered[:, -4] if logits.shape[1] >= 4 else ordered[:, -3]
    scale = ordered[:, -1] - 0.5 * (ordered[:, -3] + fourth) + 1e-12
    return -(z_y - z_t) / scale


def hold_bone_lengths(adv: torch.Tensor, clean: torch.Tensor, skeleton) -> torch.Tensor:
    """``adv`` (N, 3, T, V, M) with every bone scaled to its clean length, keeping its direction; the root stays."""
    out = adv.clone()
    for child in skeleton.topological_order:
        parent = skeleton.parents[child]
        if parent < 0:
            continue
        length = (clean[:, :, :, child] - clean[:, :, :, parent]).norm(dim=1, keepdim=True)
        bone = adv[:, :, :, child] - adv[:, :, :, parent]
        unit = bone / bone.norm(dim=1, keepdim=True).clamp_min(1e-9)
        out[:, :, :, child] = out[:, :, :, parent] + unit * length
    return out


class _APGDBase(Attack):
    threat_model = "white-box"
    loss_name = "ce"

    # -- budget geometry -------------------------------------------------------------------------------------
    def project(self, delta: torch.Tensor) -> torch.Tensor:
        if self.norm == "linf":
            return delta.clamp(-self.eps, self.eps)
        norm = delta.norm(dim=1, keepdim=True)
        return delta * torch.clamp(self.eps / (norm + 1e-12), max=1.0)

    def direction(self, g: torch.Tensor) -> torch.Tensor:
        if self.norm == "linf":
            return g.sign()
        return g / (g.norm(dim=1, keepdim=True) + 1e-12)

    def random_start(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self.norm == "linf":
            return (torch.rand(x.shape, generator=gen, dtype=x.dtype).to(x.device) * 2 - 1) * self.eps
        d = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
        d = d / (d.norm(dim=1, keepdim=True) + 1e-12)
        r = torch.rand(x.shape[:1] + (1,) + x.shape[2:], generator=gen, dtype=x.dtype).to(x.device)
        return d * self.eps * r ** (1 / 3)

    def feasible(self, x: torch.Tensor, adv: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """The point of the budget (and, with ``hold_bones``, near the clean bone lengths) for ``adv``."""
        delta = self.project(adv - x) * present
        if self.hold_bones:
            skeleton = model_skeleton(self.model, None)
            for _ in range(3):
                delta = self.project(hold_bone_lengths(x + delta, x, skeleton) - x) * present
        return x + delta

    # -- losses ----------------------------------------------------------------------------------------------
    @property
    def stochastic(self) -> bool:
        return self.eot_samples > 1 and callable(getattr(self.model, "stochastic_logits", None))

    def loss_of(self, logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        if self.loss_name == "ce":
            return F.cross_entropy(logits, y, reduction="none")
        return dlr_targeted_loss(logits, y, target)

    def loss_and_grad(self, adv: torch.Tensor, y, target, gen) -> tuple[torch.Tensor, torch.Tensor]:
        a = adv.detach().requires_grad_(True)
        with torch.enable_grad():
            if self.stochastic:
                draws = self.model.stochastic_logits(a, self.eot_samples, gen)  # (draws, N, K)
                loss = torch.stack([self.loss_of(d, y, target) for d in draws]).mean(0)
            else:
                loss = self.loss_of(self.model(a), y, target)
            (g,) = torch.autograd.grad(loss.sum(), a)
        return loss.detach(), g.detach()

    @torch.no_grad()
    def broken(self, adv: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pred = self.model(adv).argmax(1)
        return pred != y, pred

    # -- one APGD run ----------------------------------------------------------------------------------------
    def apgd(self, x, y, target, gen, total: int, done_before: int) -> dict[str, torch.Tensor]:
        n = len(x)
        present = present_performers(x)
        adv = self.feasible(x, x + self.random_start(x, gen) * present, present)
        loss, g = self.loss_and_grad(adv, y, target, gen)
        start_loss = loss.clone()
        fooled, pred = self.broken(adv, y)
        first = torch.where(fooled, 0, -1)
        best_adv = torch.where(fooled.view(-1, 1, 1, 1, 1), adv, x)
        best_pred = pred.clone()
        x_best, g_best, loss_best = adv.clone(), g.clone(), loss.clone()
        step = torch.full((n,), 2.0 * self.eps, device=x.device)
        shape = (-1, 1, 1, 1, 1)
        prev = adv.clone()
        prev_loss = loss.clone()
        raised = torch.zeros(n, device=x.device)
        marks = checkpoints(self.iterations)
        last_mark, best_at_mark, step_at_mark = 0, loss_best.clone(), step.clone()
        history = [loss.mean()]  # on the device; one copy to the host at the end
        for k in range(self.iterations):
            with torch.no_grad():
                z = self.feasible(x, adv + step.view(shape) * self.direction(g) * present, present)
                a = 1.0 if k == 0 else self.momentum
                new = self.feasible(x, adv + a * (z - adv) + (1 - a) * (adv - prev), present)
                prev, adv = adv, new
            loss, g = self.loss_and_grad(adv, y, target, gen)
            now_fooled, pred = self.broken(adv, y)
            newly = now_fooled & ~fooled
            first = torch.where(newly, k + 1, first)
            best_adv = torch.where(now_fooled.view(shape), adv, best_adv)
            best_pred = torch.where(now_fooled, pred, best_pred)
            fooled |= now_fooled
            raised += (loss > prev_loss).float()
            prev_loss = loss
            better = loss > loss_best
            x_best = torch.where(better.view(shape), adv, x_best)
            g_best = torch.where(better.view(shape), g, g_best)
            loss_best = torch.where(better, loss, loss_best)
            history.append(loss.mean())
            if marks and k + 1 == marks[0]:
                span = k + 1 - last_mark
                few_raises = raised < self.rho * span
                stalled = (step == step_at_mark) & (loss_best == best_at_mark)
                reduce = few_raises | stalled
                step_at_mark = step.clone()
                best_at_mark = loss_best.clone()
                step = torch.where(reduce, step / 2, step)
                adv = torch.where(reduce.view(shape), x_best, adv)
                g = torch.where(reduce.view(shape), g_best, g)
                prev = torch.where(reduce.view(shape), x_best, prev)
                raised.zero_()
                last_mark = marks.pop(0)
            self._tick(done_before + k + 1, total, lambda fooled=fooled: {"broken": fooled.sum()})
        out_adv = torch.where(fooled.view(shape), best_adv, x_best)
        pred = torch.where(fooled, best_pred, self.broken(x_best, y)[1])
        return {"adv": out_adv, "fooled": fooled, "first": first, "pred": pred, "start_loss": start_loss,
                "best_loss": loss_best, "history": torch.stack(history).tolist()}

    def targets_for(self, x, y) -> list[torch.Tensor | None]:
        return [None]

    def run(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> AttackResult:
        if target is not None:
            raise AttackError(f"{self.name} is untargeted (it picks its own target classes); call it without target=")
        n = len(x)
        gen = torch.Generator().manual_seed(int(self.seed))
        targets = self.targets_for(x, y)
        total = self.iterations * self.restarts * len(targets)
        adv = x.clone()
        fooled = torch.zeros(n, dtype=torch.bool, device=x.device)
        first = torch.full((n,), -1, dtype=torch.long, device=x.device)
        pred = torch.full((n,), -1, dtype=torch.long, device=x.device)
        start_loss = torch.full((n,), float("nan"), device=x.device)
        best_loss = torch.full((n,), float("nan"), device=x.device)
        queries = torch.zeros(n, dtype=torch.long, device=x.device)
        history: dict[str, list] = {"loss": []}
        done_iters, spent = 0, 0
        for t in targets:
            for _ in range(self.restarts):
                todo = torch.nonzero(~fooled).squeeze(1)
                if len(todo) == 0:
                    break
                r = self.apgd(x[todo], y[todo], None if t is None else t[todo], gen, total, done_iters)
                done_iters += self.iterations
                queries[todo] += (self.iterations + 1) * max(1, self.eot_samples if self.stochastic else 1)
                history["loss"].extend(r["history"])
                first_run = torch.isnan(start_loss[todo])
                start_loss[todo] = torch.where(first_run, r["start_loss"], start_loss[todo])
                best_loss[todo] = torch.where(first_run | (r["best_loss"] > best_loss[todo]), r["best_loss"],
                                              best_loss[todo])
                keep = r["fooled"] | first_run  # the first run's best point stands until a later run breaks
                adv[todo] = torch.where(keep.view(-1, 1, 1, 1, 1), r["adv"], adv[todo])
                pred[todo] = torch.where(keep, r["pred"], pred[todo])
                first[todo] = torch.where(r["fooled"], r["first"] + spent, first[todo])
                fooled[todo] = r["fooled"]
                spent += self.iterations
        success = fooled
        return AttackResult(
            adversarial=adv.detach().cpu(),
            success=success.cpu(),
            iterations=torch.where(success, first, spent).cpu(),
            predictions=pred.cpu(),
            queries=queries.cpu(),
            history=history,
            params=self.params,
            extras={"start_loss": start_loss.cpu(), "best_loss": best_loss.cpu(), "loss": self.loss_name},
        )


@register_attack("apgd-ce")
class APGDCE(_APGDBase):
    """APGD with the cross-entropy loss (see the module docstring); hyper-parameters :class:`APGDParams`."""

    Params = APGDParams
    loss_name = "ce"


@register_attack("apgd-dlr-t")
class APGDT(_APGDBase):
    """APGD with the targeted DLR loss over the top wrong classes (module docstring); :class:`APGDTParams`."""

    Params = APGDTParams
    loss_name = "dlr-targeted"

    @torch.no_grad()
    def targets_for(self, x, y) -> list[torch.Tensor]:
        logits = self.model(x)
        k = logits.shape[1]
        if k < 3:
            raise AttackError(f"the targeted DLR loss needs at least 3 classes; this model has {k}: use apgd-ce")
        order = logits.scatter(1, y[:, None], float("-inf")).argsort(dim=1, descending=True)
        return [order[:, i] for i in range(min(self.n_target_classes, k - 1))]
