"""BASAR: decision-based black-box attack on skeletal action recognition, with manifold projection.

Papers: Diao, Shao, Yang, Zhou, Wang, "BASAR: Black-box Attack on Skeletal Action Recognition", CVPR 2021, and
the extended "Understanding the Vulnerability of Skeleton-based Human Activity Recognition via Black-box
Attack" (2022). Threat model: **decision-based black box** — the attack sees only predicted labels, through a
:class:`~engine.oracle.LabelOracle` that counts every query per attacked sample; it never reads logits or
gradients.

Algorithm (per sample; all samples of a batch run together, each with its own state):

1. **Start point.** Untargeted: a clip of another class that the model classifies correctly (from ``starts``,
   else from the other clips of the batch), or, when there is none, the attacked clip plus growing noise
   until it is misclassified. Targeted: a clip the model classifies as the target class. A binary search on
   the segment from the start point to the clean clip ``x`` then takes the adversarial point closest to ``x``.
2. **Random exploration** (``trials`` candidates per iteration). Gaussian noise, coupled across joints by
   ``W = I + coupling · A`` (``A`` the skeleton's row-normalised adjacency: neighbouring joints move together,
   which generalises the published code's tying of some joints' noise), is scaled per channel (x, y, z) to
   ``δ`` times the mean per-channel distance ``‖x_c − x′_c‖``, made orthogonal per channel to the direction
   ``x_c − x′_c``, and the candidate is put back on the sphere of the current distance around ``x`` (as in
   the Boundary Attack that BASAR builds on). Adaptive step: ``δ ← 0.9 δ`` when at most 20% of the trials
   stay adversarial, ``δ ← δ / 0.9`` (at most ``delta_max``) when at least 80% do.
3. **Aimed probing** after a successful exploration: ``x̃ = x′ + β (x − x′)``; on success β doubles (at most
   ``beta_max``), on failure it halves and the probe is retried (at most ``max_probes`` times).
4. **Manifold projection** (:class:`engine.manifold.ManifoldProjector`) every ``projection_interval``
   iterations and at the end: bone lengths exactly the clean clip's, joint angles inside their limits, and
   ``‖x̃ − x′‖² + w ‖ẍ̃ − ẍ‖²`` minimised (``w = accel_weight``). If the projection is no longer adversarial:
   during the attack, a binary search on the segment back to the last adversarial clip; at the end (where the
   result must stay on the manifold), the projection is retried with ``w`` divided by 10 (the published
   code's schedule), then a binary search in joint-angle space towards the last adversarial clip's own joint
   angles (clamped), which keeps every candidate on the manifold.

A sample stops when its query budget would be exceeded, or when its distance to ``x`` has improved by less
than ``tol`` (relative) over the last ``patience`` iterations. ``on_manifold=False`` skips every projection
(the "off-manifold" variant, for comparison); constraint violations are still measured.

Defaults and their sources: ``trials=5``, ``delta=0.1``, ``delta_max=0.4``, the 0.9 step factors and the
20%/80% thresholds, ``beta=0.95`` with doubling/halving, ``accel_weight=1`` and ``projection_interval=250``
are those of the BASAR authors' code. ``queries=3000``, ``max_probes=10``, ``search_steps=10``,
``coupling=0.5``, ``patience=100`` and ``tol=1e-3`` are skelviz's choices for CPU-sized runs (the paper
reports results at much larger budgets). The acceleration target follows the paper's text (the clean
motion's acceleration); distances are L2 over all coordinates, in metres.

Result (:class:`~engine.attacks.base.AttackResult`): ``queries`` per sample (equal to the oracle's count),
``iterations`` the iterations each sample ran, ``success`` whether the final clip is adversarial (and, on the
manifold, satisfies its constraints), ``predictions`` the labels the oracle gave the final clips; ``extras``
hold ``distance`` (final L2 to the clean clip, m), ``start_distance``, ``bone_length_error`` (m),
``angle_violation`` (rad), ``accel_deviation`` (RMS acceleration change, m/s²), ``projection_seconds`` and
``joint_limits`` (the limits used, as a dict). ``history["distance"]`` and ``history["queries"]`` hold each
sample's distance and queries used after every iteration.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from torch import nn

from engine import metrics
from engine.attacks.base import Attack, AttackResult, register_attack
from engine.attacks.common import model_fps, present_performers
from engine.errors import AttackError
from engine.manifold import (
    JointLimits,
    ManifoldProjector,
    estimate_joint_angle_limits,
    find_joint_limits,
    limits_path_beside,
    load_limits_beside,
)
from engine.oracle import LabelOracle
from engine.skeletons import Skeleton

log = logging.getLogger(__name__)

__all__ = ["BASAR"]

_BETA_MIN = 1e-3


def _load_limits(path: str | Path) -> JointLimits:
    """Joint limits from a ``.json``/``.npz`` file, or the sidecar beside a model or dataset file."""
    path = Path(path)
    if path.suffix in (".json", ".npz"):
        return JointLimits.load(path)
    found = load_limits_beside(path)
    if found is None:
        raise AttackError(f"no joint limits beside {path} (expected {limits_path_beside(path)})")
    return found


def _flat_norm(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).norm(dim=1)


def _blend(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``a + t (b − a)`` with one ``t`` per sample."""
    return a + t.reshape(-1, *([1] * (a.ndim - 1))) * (b - a)


@register_attack("basar")
class BASAR(Attack):
    """Decision-based black-box attack with manifold projection (see the module docstring).

    Args:
        model: any classifier taking ``(N, 3, T, V, M)`` clips in metres; only its labels are used.
        skeleton: the clips' skeleton (default: ``model.skeleton``, else ``joint_limits.skeleton``).
        joint_limits: the joint-angle limits of the manifold (a :class:`JointLimits`, a ``.json``/``.npz``
            file, or a model/dataset file with limits saved beside it); default: those stored with the model
            (``model.meta["joint_limits"]``), else estimated from the clean clips being attacked (and
            ``starts``) with the default margin.
        strategy: ``"ab"`` (untargeted) or ``"sa"`` (targeted); ``None`` (default) infers it from ``target``.
        queries: query budget per attacked sample (the start-point search included).
        projection_interval: project every this many iterations (0: only at the end).
        accel_weight: ``w`` of the projection's acceleration term.
        on_manifold: ``False`` skips all projections (off-manifold BASAR).
        trials, delta, delta_max, beta, beta_max, max_probes: exploration and probing (module docstring).
        coupling: weight of neighbouring joints in the exploration noise (0: independent joints).
        starts, start_labels: a pool of clips ``(P, 3, T, V, M)`` and their labels to start from.
        search_steps: binary-search halvings (start blend, projection repair).
        patience, tol: convergence stop (``patience=0`` disables it).
        projection_steps: Adam steps per projection.
        seed: seeds the attack's own random generator.
    """

    threat_model = "black-box (decision-based)"

    def __init__(
        self,
        model: nn.Module,
        *,
        skeleton: Skeleton | None = None,
        joint_limits: JointLimits | str | Path | None = None,
        strategy: str | None = None,
        queries: int = 3000,
        projection_interval: int = 100,
        accel_weight: float = 1.0,
        on_manifold: bool = True,
        trials: int = 5,
        delta: float = 0.1,
        delta_max: float = 0.4,
        beta: float = 0.95,
        beta_max: float = 0.9,
        max_probes: int = 10,
        coupling: float = 0.5,
        starts: torch.Tensor | None = None,
        start_labels: torch.Tensor | None = None,
        search_steps: int = 10,
        patience: int = 100,
        tol: float = 1e-3,
        projection_steps: int = 100,
        seed: int = 0,
        oracle_batch_size: int = 256,
        progress=None,
        cancel=None,
    ) -> None:
        super().__init__(model, progress=progress, cancel=cancel)
        if queries < 1:
            raise AttackError(f"the query budget must be positive, got {queries}")
        if trials < 1:
            raise AttackError(f"trials must be at least 1, got {trials}")
        if not 0 < delta <= delta_max:
            raise AttackError(f"need 0 < delta <= delta_max, got delta={delta}, delta_max={delta_max}")
        if not 0 < beta_max < 1 or not 0 < beta:
            raise AttackError(f"need beta > 0 and 0 < beta_max < 1, got beta={beta}, beta_max={beta_max}")
        if projection_interval < 0 or accel_weight < 0:
            raise AttackError("projection_interval and accel_weight must be >= 0")
        if (starts is None) != (start_labels is None):
            raise AttackError("pass starts and start_labels together")
        if strategy not in (None, "ab", "sa"):
            raise AttackError(f"BASAR runs 'ab' (untargeted) or 'sa' (targeted), not {strategy!r}")
        self.strategy = strategy
        if isinstance(joint_limits, (str, Path)):
            joint_limits = _load_limits(joint_limits)
        self.skeleton = skeleton or getattr(model, "skeleton", None) or (joint_limits.skeleton if joint_limits else None)
        if joint_limits is not None and self.skeleton is not None and joint_limits.skeleton.parents != self.skeleton.parents:
            raise AttackError(
                f"the joint limits are for skeleton {joint_limits.skeleton.name!r}, the clips use {self.skeleton.name!r}"
            )
        self.joint_limits = joint_limits
        self.queries = int(queries)
        self.projection_interval = int(projection_interval)
        self.accel_weight = float(accel_weight)
        self.on_manifold = bool(on_manifold)
        self.trials = int(trials)
        self.delta0, self.delta_max = float(delta), float(delta_max)
        self.beta0, self.beta_max = float(min(beta, beta_max)), float(beta_max)
        self.max_probes = int(max_probes)
        self.coupling = float(coupling)
        self.starts = None if starts is None else torch.as_tensor(starts, dtype=torch.float32)
        self.start_labels = None if start_labels is None else torch.as_tensor(start_labels, dtype=torch.long).reshape(-1)
        if self.starts is not None and self.starts.shape[0] != self.start_labels.shape[0]:
            raise AttackError(f"{self.starts.shape[0]} start clips but {self.start_labels.shape[0]} start labels")
        self.search_steps = int(search_steps)
        self.patience, self.tol = int(patience), float(tol)
        self.projection_steps = int(projection_steps)
        self.seed = int(seed)
        self.oracle = LabelOracle(model, batch_size=oracle_batch_size)

    def params(self) -> dict:
        return {
            "strategy": self.strategy,
            "queries": self.queries,
            "projection_interval": self.projection_interval,
            "accel_weight": self.accel_weight,
            "on_manifold": self.on_manifold,
            "trials": self.trials,
            "delta": self.delta0,
            "delta_max": self.delta_max,
            "beta": self.beta0,
            "beta_max": self.beta_max,
            "max_probes": self.max_probes,
            "coupling": self.coupling,
            "search_steps": self.search_steps,
            "patience": self.patience,
            "tol": self.tol,
            "projection_steps": self.projection_steps,
            "seed": self.seed,
        }

    # -- pieces ---------------------------------------------------------------------------------------------
    def _coupling_matrix(self, V: int, device) -> torch.Tensor:
        eye = torch.eye(V, device=device)
        if self.skeleton is None or self.coupling == 0:
            return eye
        a = torch.as_tensor(self.skeleton.adjacency(), device=device)
        a = a / a.sum(1, keepdim=True).clamp_min(1)
        return eye + self.coupling * a

    def _explore(self, adv, x, delta, mask, W, gen) -> torch.Tensor:
        """``trials`` candidates per sample ``(n, k, 3, T, V, M)`` on the sphere of ``x`` through ``adv``."""
        n, k = adv.shape[0], self.trials
        diff = (x - adv)[:, None]  # (n, 1, C, T, V, M)
        dist_c = diff.flatten(3).norm(dim=3).clamp_min(1e-12)  # (n, 1, C)
        eta = torch.randn((n, k, *adv.shape[1:]), generator=gen, device=adv.device)
        eta = torch.einsum("nkctvm,wv->nkctwm", eta, W) * mask[:, None]
        shape = (n, k, adv.shape[1], 1, 1, 1)
        eta = eta / eta.flatten(3).norm(dim=3).clamp_min(1e-12).reshape(shape)
        eta = eta * (delta[:, None, None] * dist_c.mean(2, keepdim=True)).reshape(n, 1, 1, 1, 1, 1)
        unit = diff / dist_c.reshape(n, 1, -1, 1, 1, 1)
        eta = eta - (eta * unit).flatten(3).sum(3).reshape(shape) * unit
        # Back onto the sphere, channel by channel: ‖x_c − cand_c‖ = ‖x_c − adv_c‖.
        off = -diff + eta  # cand − x
        scale = dist_c.reshape(n, 1, -1, 1, 1, 1) / off.flatten(3).norm(dim=3).clamp_min(1e-12).reshape(shape)
        return x[:, None] + off * scale

    def _is_adv(self, pred, idx, y, target) -> torch.Tensor:
        return pred == target[idx] if target is not None else pred != y[idx]

    def _bisect(self, idx, make, y, target):
        """Binary search on a path per sample whose start (fraction 0) is adversarial and end (1) is not.

        ``make(s, t)`` gives the clips of samples ``idx[s]`` at fractions ``t``. Returns the fractions of the
        adversarial ends after ``search_steps`` halvings, and the labels seen there (-1: none queried).
        """
        n = len(idx)
        lo = torch.zeros(n, device=idx.device)
        hi = torch.ones(n, device=idx.device)
        labels = torch.full((n,), -1, dtype=torch.long, device=idx.device)
        for _ in range(self.search_steps):
            s = self._has_budget(idx, 1).nonzero().flatten()
            if len(s) == 0:
                break
            mid = (lo[s] + hi[s]) / 2
            pred = self.oracle(make(s, mid), idx[s])
            hit = self._is_adv(pred, idx[s], y, target)
            lo[s] = torch.where(hit, mid, lo[s])
            hi[s] = torch.where(hit, hi[s], mid)
            labels[s[hit]] = pred[hit]
        return lo, labels

    def _line_search(self, inside, outside, idx, y, target):
        """The adversarial point closest to ``outside`` on the segment from ``inside`` (adversarial), and its label."""
        lo, labels = self._bisect(idx, lambda s, t: _blend(inside[s], outside[s], t), y, target)
        return _blend(inside, outside, lo), labels

    def _has_budget(self, idx: torch.Tensor, need: int) -> torch.Tensor:
        left = self.queries - self._reserve - self.oracle.counts[idx.cpu()]
        return (left >= need).to(idx.device)

    # -- the attack -----------------------------------------------------------------------------------------
    def run(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> AttackResult:
        if self.strategy == "sa" and target is None:
            raise AttackError("the SA strategy (targeted BASAR) needs a target class (target=...)")
        if self.strategy == "ab" and target is not None:
            raise AttackError("strategy 'ab' takes no target; use strategy='sa' (or leave it out) for targeted BASAR")
        N, dev = x.shape[0], x.device
        gen = torch.Generator(device=dev).manual_seed(self.seed)
        self.oracle.reset(N)
        limits = self._limits(x) if self.on_manifold or self.skeleton is not None else None
        projector = (
            ManifoldProjector(limits, dev, accel_weight=self.accel_weight, steps=self.projection_steps)
            if self.on_manifold
            else None
        )
        # Queries kept back for the final projection: four projections, four anchors and a binary search.
        self._reserve = (8 + self.search_steps) if self.on_manifold else 0
        if self.queries <= self._reserve + self.trials:
            raise AttackError(f"a budget of {self.queries} queries is too small; give at least {self._reserve + self.trials + 1}")
        mask = present_performers(x)
        W = self._coupling_matrix(x.shape[3], dev)

        self._tick(0, self.queries, {"iteration": 0})
        everyone = torch.arange(N, device=dev)
        # A clip the model already gets wrong (or already puts in the target class) needs no attack.
        clean_pred = self.oracle(x, everyone)
        already = self._is_adv(clean_pred, everyone, y, target)
        adv, labels, found, raw_start = self._start(x, y, target, gen, clean_pred, already, mask)
        starts = (adv.clone(), raw_start)
        anchors = torch.zeros_like(x)  # last adversarial mid-run projection (zeros: none yet)
        start_distance = _flat_norm(adv - x)
        delta = torch.full((N,), self.delta0, device=dev)
        beta = torch.full((N,), self.beta0, device=dev)
        active = found & ~already
        iterations = torch.zeros(N, dtype=torch.long)
        history: dict[str, list] = {"distance": [], "queries": []}
        recent = [start_distance]  # the last `patience` iterations' distances, for the convergence test
        projection_seconds = 0.0
        it = 0
        while True:
            active &= self._has_budget(torch.arange(N, device=dev), self.trials)
            if not active.any():
                break
            it += 1
            self._tick(int(self.oracle.counts.max()), self.queries, {"iteration": it, "active": int(active.sum())})
            idx = active.nonzero().flatten()
            iterations[idx.cpu()] = it
            # Exploration.
            cand = self._explore(adv[idx], x[idx], delta[idx], mask[idx], W, gen)
            k = self.trials
            pred = self.oracle(cand.flatten(0, 1), idx.repeat_interleave(k)).reshape(-1, k)
            ok = self._is_adv(pred.flatten(), idx.repeat_interleave(k), y, target).reshape(-1, k)
            frac = ok.float().mean(1)
            delta[idx] = torch.where(frac <= 0.2, delta[idx] * 0.9, delta[idx])
            delta[idx] = torch.where(frac >= 0.8, (delta[idx] / 0.9).clamp_max(self.delta_max), delta[idx])
            moved = ok.any(1)
            first = ok.float().argmax(1)
            pick = torch.arange(len(idx), device=dev)
            adv[idx[moved]] = cand[pick[moved], first[moved]]
            labels[idx[moved]] = pred[pick[moved], first[moved]]
            # Aimed probing towards the clean clip.
            probing = idx[moved]
            for _ in range(self.max_probes):
                probing = probing[self._has_budget(probing, 1)]
                if len(probing) == 0:
                    break
                trial = _blend(adv[probing], x[probing], beta[probing])
                p = self.oracle(trial, probing)
                hit = self._is_adv(p, probing, y, target)
                adv[probing[hit]] = trial[hit]
                labels[probing[hit]] = p[hit]
                beta[probing] = torch.where(hit, (beta[probing] * 2).clamp_max(self.beta_max), beta[probing] / 2)
                probing = probing[~hit & (beta[probing] >= _BETA_MIN)]
            # Periodic projection onto the manifold.
            if projector is not None and self.projection_interval and it % self.projection_interval == 0:
                t0 = time.perf_counter()
                self._project_midway(projector, adv, labels, x, y, target, idx, anchors)
                projection_seconds += time.perf_counter() - t0
            dist = _flat_norm(adv - x)
            history["distance"].append(dist.tolist())
            history["queries"].append(self.oracle.counts.tolist())
            recent.append(dist)
            if self.patience and len(recent) > self.patience:
                old = recent.pop(0)
                stalled = dist > old * (1 - self.tol)
                active &= ~stalled
        final = adv.clone()
        success = found.clone()
        if projector is not None:
            t0 = time.perf_counter()
            final, labels, success = self._project_final(
                projector, adv, labels, x, y, target, found & ~already, anchors, starts
            )
            success |= already
            projection_seconds += time.perf_counter() - t0
        return self._result(final, adv, x, success, labels, iterations, start_distance, history, limits,
                            projection_seconds)

    def _limits(self, x: torch.Tensor) -> JointLimits:
        if self.joint_limits is not None:
            return self.joint_limits
        stored = find_joint_limits(model=self.model)
        if stored is not None:
            return stored
        if self.skeleton is None:
            raise AttackError("BASAR's manifold projection needs a skeleton: pass skeleton= or joint_limits=")
        data = [x.cpu()] + ([self.starts] if self.starts is not None else [])
        log.info("no joint limits given or stored with the model: estimating them from the clips being attacked")
        return estimate_joint_angle_limits(data, self.skeleton, source="the attacked clips")

    def _start(self, x, y, target, gen, clean_pred, already, mask):
        """Adversarial start points blended towards ``x`` (module docstring, step 1)."""
        N, dev = x.shape[0], x.device
        if self.starts is not None:
            if self.starts.shape[1:] != x.shape[1:]:
                raise AttackError(
                    f"start clips have shape {tuple(self.starts.shape[1:])}, the attacked clips {tuple(x.shape[1:])}"
                )
            pool, pool_labels = self.starts.to(dev), self.start_labels.to(dev)
        else:
            pool, pool_labels = x, y
        start = x.clone()
        labels = clean_pred.clone()
        found = already.clone()
        # Candidate lists in a seeded random order: other classes (untargeted) or the target class.
        order = torch.randperm(len(pool), generator=gen, device=dev).tolist()
        plabels, ys = pool_labels.tolist(), y.tolist()
        ts = None if target is None else target.tolist()
        wanted = [[j for j in order if (plabels[j] == ts[i] if ts is not None else plabels[j] != ys[i])] for i in range(N)]
        for r in range(max((len(w) for w in wanted), default=0)):
            idx = torch.as_tensor([i for i in range(N) if not found[i] and r < len(wanted[i])], dtype=torch.long)
            idx = idx.to(dev)
            idx = idx[self._has_budget(idx, self.trials + self.search_steps + 1)] if len(idx) else idx
            if len(idx) == 0 or r >= 10:  # at most 10 candidates per sample
                break
            j = torch.as_tensor([wanted[int(i)][r] for i in idx], device=dev)
            pred = self.oracle(pool[j], idx)
            good = (pred == pool_labels[j]) & self._is_adv(pred, idx, y, target)
            start[idx[good]] = pool[j[good]]
            labels[idx[good]] = pred[good]
            found[idx[good]] = True
        if target is None:  # noise around the clip, growing until misclassified
            scale = x.flatten(1).std(dim=1).clamp_min(1e-3)
            for factor in (0.1, 0.3, 1.0, 3.0):
                idx = (~found).nonzero().flatten()
                if len(idx) == 0:
                    break
                idx = idx[self._has_budget(idx, self.trials + self.search_steps + 1)]
                noise = torch.randn(x[idx].shape, generator=gen, device=dev) * mask[idx]
                noisy = x[idx] + factor * scale[idx].reshape(-1, 1, 1, 1, 1) * noise
                pred = self.oracle(noisy, idx)
                good = self._is_adv(pred, idx, y, target)
                start[idx[good]] = noisy[good]
                labels[idx[good]] = pred[good]
                found[idx[good]] = True
        if not found.all():
            missing = (~found).nonzero().flatten().tolist()
            what = "a clip classified as its target class" if target is not None else "an adversarial start"
            log.warning("BASAR found no start point (%s) for samples %s; they are reported as failures", what, missing)
        raw = start.clone()
        idx = (found & ~already).nonzero().flatten()
        if len(idx):
            blended, got = self._line_search(start[idx], x[idx], idx, y, target)
            start[idx] = blended
            labels[idx] = torch.where(got >= 0, got, labels[idx])
        return start, labels, found, raw

    def _project_midway(self, projector, adv, labels, x, y, target, idx, anchors) -> None:
        idx = idx[self._has_budget(idx, 1)]
        if len(idx) == 0:
            return
        proj = projector.project(adv[idx], x[idx])
        pred = self.oracle(proj, idx)
        ok = self._is_adv(pred, idx, y, target)
        adv[idx[ok]] = proj[ok]
        labels[idx[ok]] = pred[ok]
        anchors[idx[ok]] = proj[ok]  # on the manifold and adversarial: a fallback for the final projection
        back = idx[~ok]
        if len(back):
            # Bisect from the projection (not adversarial) back towards the last adversarial clip.
            repaired, got = self._line_search(adv[back], proj[~ok], back, y, target)
            adv[back] = repaired
            labels[back] = torch.where(got >= 0, got, labels[back])

    def _project_final(self, projector, adv, labels, x, y, target, found, anchors, starts):
        """Final projection: the result lies on the manifold; success only if it is still adversarial.

        1. project with ``w``, then ``w/10``, ``w/100``, ``w/1000`` (the published code's schedule);
        2. for samples still not adversarial, the first adversarial *anchor* on the manifold — the cheap
           projection of the last adversarial clip, the last adversarial mid-run projection, the cheap
           projection of the start point (blended, then raw) — and a binary search in joint-angle space
           between it and the projection (every point of that segment is on the manifold).
        """
        N, dev = x.shape[0], x.device
        final = adv.clone()
        success = torch.zeros(N, dtype=torch.bool, device=dev)
        labels = labels.clone()
        todo = found.nonzero().flatten()
        self._reserve = 0  # the reserve was kept for this
        w = self.accel_weight
        for attempt in range(4):
            todo = todo[self._has_budget(todo, 1)]
            if len(todo) == 0:
                break
            # Retries start from the previous projection too, and take half the steps.
            proj = projector.project(
                adv[todo], x[todo], accel_weight=w / 10**attempt,
                init=None if attempt == 0 else final[todo],
                steps=None if attempt == 0 else max(1, self.projection_steps // 2),
            )
            pred = self.oracle(proj, todo)
            ok = self._is_adv(pred, todo, y, target)
            final[todo] = proj
            labels[todo] = pred
            success[todo[ok]] = True
            todo = todo[~ok]
            if w == 0:
                break
        # Anchors: on-manifold adversarial clips to search from.
        anchor = torch.zeros_like(x)
        has = torch.zeros(N, dtype=torch.bool, device=dev)
        candidates = [  # (make the anchors of samples i, which samples have one)
            (lambda i: projector.nearest(adv[i], x[i]), None),
            (lambda i: anchors[i], anchors.flatten(1).abs().amax(1) > 0),
            (lambda i: projector.nearest(starts[0][i], x[i]), None),
            (lambda i: projector.nearest(starts[1][i], x[i]), None),
        ]
        for make, available in candidates:
            todo_a = todo[~has[todo]]
            if available is not None:
                todo_a = todo_a[available[todo_a]]
            todo_a = todo_a[self._has_budget(todo_a, 1)]
            if len(todo_a) == 0:
                continue
            cand = make(todo_a)
            pred = self.oracle(cand, todo_a)
            ok = self._is_adv(pred, todo_a, y, target)
            anchor[todo_a[ok]] = cand[ok]
            labels[todo_a[ok]] = pred[ok]
            has[todo_a[ok]] = True
        todo = todo[has[todo]]
        if len(todo) == 0:
            return final, labels, success
        a_params, lengths = projector.params(anchor[todo], x[todo])
        p_params, _ = projector.params(final[todo], x[todo])

        def along(s, t):  # joint-angle space path from the anchor (0) to the projection (1)
            return projector.positions([_blend(a[s], p[s], t.to(a.dtype)) for a, p in zip(a_params, p_params)], lengths[s])

        lo, got = self._bisect(todo, along, y, target)
        labels[todo[got >= 0]] = got[got >= 0]
        params = [_blend(a, p, lo.to(a.dtype)) for a, p in zip(a_params, p_params)]
        final[todo] = projector.positions(params, lengths)
        success[todo] = True
        return final, labels, success

    def _result(self, final, adv, x, success, labels, iterations, start_distance, history, limits, proj_s):
        extras: dict = {
            "distance": _flat_norm(final - x).cpu(),
            "start_distance": start_distance.cpu(),
            "projection_seconds": proj_s,
        }
        if x.shape[2] > 2:
            dacc = metrics.acceleration_deviation(x, final, model_fps(self.model, None))  # (N, M, T-2, V)
            extras["accel_deviation"] = dacc.square().flatten(1).mean(1).sqrt().cpu()
        if limits is not None:
            bone_dev, _ = metrics.bone_length_deviation(x, final, limits.skeleton)
            extras["bone_length_error"] = bone_dev.flatten(1).amax(1).float().cpu()
            angles = metrics.joint_angle_violations(final, limits, clean=x)
            extras["angle_violation"] = angles["max"].flatten(1).amax(1).float().cpu()
            extras["joint_limits"] = limits.to_dict()
        if self.on_manifold:
            # An on-manifold success also needs the constraints (they hold by construction; this checks it).
            success = success & (extras["bone_length_error"].to(success.device) < 1e-4) & (
                extras["angle_violation"].to(success.device) < 1e-3
            )
            if not success.all():
                extras["off_manifold_adversarial"] = adv.cpu()
        queries = self.oracle.counts.clone()
        return AttackResult(
            adversarial=final.detach().cpu(),
            success=success.cpu(),
            iterations=iterations,
            predictions=labels.cpu(),
            queries=queries,
            history=history,
            params=self.params(),
            extras=extras,
        )

    def __repr__(self) -> str:
        return f"BASAR(queries={self.queries}, on_manifold={self.on_manifold}, interval={self.projection_interval})"

