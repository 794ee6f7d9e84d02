"""BASAR: decision-based black-box attack on skeletal action recognition, with manifold projection.

Papers: Diao, Shao, Yang, Zhou, Wang, "BASAR: Black-box Attack on Skeletal Action Recognition", CVPR 2021, and
the extended "Understanding the Vulnerability of Skeleton-based Human Activity Recognition via Black-box
Attack" (2022). Threat model: **decision-based black box** — the attack sees only predicted labels, through a
:class:`~engine.attacks.oracle.LabelOracle` that counts every query per attacked sample; it never reads logits or
gradients.

Algorithm (per sample; all samples of a batch run together, each with its own state):

1. **Start point.** Untargeted: a clip of another class that the model classifies correctly (from ``starts``,
   else from the other clips of the batch), or, when there is none, the attacked clip plus growing noise
   until it is misclassified. A start clip is first moved onto the attacked clip's root trajectory (its root
   joint's position in every frame replaced by the attacked clip's, the rest following): the published code
   works on root-centred data, where every clip shares that trajectory, and on world-coordinate motion a start
   recorded elsewhere in the room would otherwise begin metres away (the oracle still checks that the moved
   clip keeps its class). Targeted: a clip the model classifies as the target class. A binary search on
   the path from the start point to the clean clip ``x`` then takes the adversarial point closest to ``x``.
2. **Random exploration** (``trials`` candidates per iteration). Gaussian noise, coupled across joints by
   ``W = I + coupling · A`` (``A`` the skeleton's row-normalised adjacency: neighbouring joints move together,
   which generalises the published code's tying of some joints' noise), is scaled per channel (x, y, z) to
   ``δ`` times the mean per-channel distance ``‖x_c − x′_c‖``, made orthogonal per channel to the direction
   ``x_c − x′_c``, and the candidate is put back on the sphere of the current distance around ``x`` (as in
   the Boundary Attack that BASAR builds on). The adversarial candidate closest to ``x`` is kept. Adaptive
   step: ``δ ← 0.9 δ`` when at most 20% of the trials stay adversarial, ``δ ← δ / 0.9`` (at most
   ``delta_max``) when at least 80% do.
3. **Aimed probing** after a successful exploration: ``x̃ = x′ + β (x − x′)``; on success β doubles (at most
   ``beta_max``), on failure it halves and the probe is retried (at most ``max_probes`` times).
4. **Manifold projection** (:class:`engine.attacks.manifold.ManifoldProjector`) every ``projection_interval``
   iterations and at the end: bone lengths exactly the clean clip's, joint angles inside their limits, and
   ``‖x̃ − x′‖² + w ‖ẍ̃ − ẍ‖²`` minimised (``w = accel_weight``). At the end the projection is retried with
   ``w`` divided by 10, 100 and 1000 (the published code's schedule). Where no projection stays adversarial, a
   binary search in joint-angle space from the current clip towards the (first) projection keeps as much of
   the projection as stays adversarial.

**On the manifold at every step** (skelviz's choice; ``on_manifold=True``, the default). The published code
explores and probes in the ambient coordinate space and projects only every 250 iterations and at the end.
Here every candidate is on the manifold: exploration candidates and start points go through the cheap
projection (:meth:`~engine.attacks.manifold.ManifoldProjector.nearest`: the clean bone lengths, joint angles clamped
into the limits, bone by bone down the tree), and the probing and binary-search paths are straight lines in
the manifold's parameters (root position, root frame, joint angles), so every point on them is on the
manifold too. The result is therefore adversarial *and* on the manifold whatever the last projection does.
Why: with projection only at intervals, the off-manifold iterate owes much of its adversarial power to
bone-length and high-frequency changes that the projection removes; on held-out cmu8 windows (small ST-GCN,
3000 queries) the final projection then lost adversariality and the fallback ended at 0.5–0.9× the start
distance. Walking on the manifold, 20 of 20 such windows end at a median 0.059× (0.23 m), as close as the
off-manifold attack (0.055×, 0.25 m; ``bench/basar.py``), at about twice its CPU time. Joint-angle limits are
widened per clip by the clean clip's own range of angles (:func:`engine.attacks.manifold.widen_limits`): the clean
motion is natural by definition, and limits estimated from other performers can leave parts of it outside.

A sample stops when its query budget would be exceeded, or when its distance to ``x`` has improved by less
than ``tol`` (relative) over the last ``patience`` iterations. ``on_manifold=False`` skips every projection
(the "off-manifold" variant, for comparison; straight lines in coordinate space); constraint violations are
still measured.

Defaults and their sources: ``trials=5``, ``delta=0.1``, ``delta_max=0.4``, the 0.9 step factors and the
20%/80% thresholds, ``beta=0.95`` with doubling/halving and ``accel_weight=1`` are those of the BASAR authors'
code. ``projection_interval=100`` (the code: 250), ``queries=3000``, ``max_probes=10``, ``search_steps=10``,
``coupling=0.5``, ``patience=100`` and ``tol=1e-3`` are skelviz's choices for CPU-sized runs (the paper
reports results at much larger budgets). The acceleration target follows the paper's text (the clean
motion's acceleration); distances are L2 over all coordinates, in metres.

Result (:class:`~engine.attacks.base.AttackResult`): ``queries`` per sample (equal to the oracle's count),
``iterations`` the iterations each sample ran, ``success`` whether the final clip is adversarial (and, on the
manifold, satisfies its constraints), ``predictions`` the labels the oracle gave the final clips; ``extras``
hold ``distance`` (final L2 to the clean clip, m), ``start_distance``, ``bone_length_error`` (m),
``angle_violation`` (rad, beyond the limits widened by the clean clip's own range), ``accel_deviation`` (RMS
acceleration change, m/s²), ``projection_seconds`` (all the time spent on the manifold: cheap projections of
candidates, paths in joint-angle space, full projections) and ``joint_limits`` (the limits used, as a dict).
``history["distance"]`` and ``history["queries"]`` hold each sample's distance and queries used after every
iteration.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from engine import metrics
from engine.attacks.base import Attack, AttackParams, AttackResult, register_attack
from engine.attacks.common import model_fps, present_performers
from engine.attacks.manifold import (
    JointLimits,
    ManifoldProjector,
    estimate_joint_angle_limits,
    find_joint_limits,
    limits_path_beside,
    load_limits_beside,
)
from engine.attacks.oracle import LabelOracle
from engine.errors import AttackError, ParameterError
from engine.params import param
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


class _Walk:
    """Where BASAR's iterates live: on the manifold of the clean clips or, off it, anywhere.

    A clip is handled through its *coordinates*: on the manifold its parameters (root position, root 6-vector,
    joint angles; every candidate first goes through the cheap projection), off it its positions. Paths (aimed
    probes, binary searches) are straight lines in coordinates, so on the manifold every point of them is too.
    """

    def __init__(self, attack: BASAR, x: torch.Tensor, limits: JointLimits | None) -> None:
        self.x = x
        self.on_manifold = limits is not None
        self.projector = None
        self.seconds = 0.0  # time spent on the manifold's computations (cheap and full projections, paths)
        self.clean_coords = [x]
        if limits is not None:
            self.projector = ManifoldProjector(limits, x.device, accel_weight=attack.accel_weight,
                                               steps=attack.projection_steps, dtype=torch.float32)
            self.ref = self.projector.reference(x)
            self.clean_coords = list(self.projector.params(x, x, self.ref)[0])

    def _timed(self, fn, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0

    def onto(self, clips: torch.Tensor, owners: torch.Tensor) -> torch.Tensor:
        """``clips`` of samples ``owners`` put on their manifolds (clean bone lengths, angles clamped)."""
        if self.projector is None:
            return clips
        return self._timed(self.projector.nearest, clips, self.x[owners], self.ref[owners])

    def project(self, clips: torch.Tensor, owners: torch.Tensor, accel_weight: float) -> torch.Tensor:
        """The full projection (with the dynamics term) of ``clips`` of samples ``owners``."""
        return self._timed(self.projector.project, clips, self.x[owners], accel_weight=accel_weight,
                           ref=self.ref[owners])

    def coords(self, clips: torch.Tensor, owners: torch.Tensor) -> list[torch.Tensor]:
        if self.projector is None:
            return [clips]
        return list(self._timed(self.projector.params, clips, self.x[owners], self.ref[owners])[0])

    def clean(self, owners: torch.Tensor) -> list[torch.Tensor]:
        return [c[owners] for c in self.clean_coords]

    def point(self, coords: list[torch.Tensor], owners: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """The clips at ``coords`` (of samples ``owners``)."""
        if self.projector is None:
            return coords[0]
        return self._timed(self.projector.positions, coords, self.ref.lengths[owners], dtype)

    def path(self, ca: list[torch.Tensor], cb: list[torch.Tensor], owners: torch.Tensor, dtype: torch.dtype):
        """``make(s, t)`` for :meth:`BASAR._bisect`: the points at fractions ``t`` from ``ca[s]`` to ``cb[s]``."""
        return lambda s, t: self.point([_blend(a[s], b[s], t.to(a.dtype)) for a, b in zip(ca, cb)], owners[s], dtype)


@dataclass(frozen=True)
class BASARParams(AttackParams):
    """BASAR's hyper-parameters (module docstring: defaults and their sources)."""

    strategy: Literal["ab", "sa"] | None = param(None, "ab: untargeted; sa: a specified target class; none: "
                                                  "sa when a target is given, else ab")
    queries: int = param(3000, "query budget per attacked clip (the start-point search included)", min=1)
    projection_interval: int = param(100, "project onto the manifold every this many iterations (0: only at "
                                          "the end)", min=0)
    accel_weight: float = param(1.0, "weight of acceleration matching in the projection", min=0.0)
    on_manifold: bool = param(True, "project onto the natural-motion manifold (off: the comparison run)")
    trials: int = param(5, "exploration trials per iteration", min=1)
    delta: float = param(0.1, "initial exploration step (relative to the distance to the clean clip)",
                         min=0.0, min_exclusive=True)
    delta_max: float = param(0.4, "largest exploration step", min=0.0, min_exclusive=True)
    beta: float = param(0.95, "initial share of the way kept when probing toward the clean clip", min=0.0,
                        min_exclusive=True)
    beta_max: float = param(0.9, "largest probing share", min=0.0, max=1.0, min_exclusive=True)
    max_probes: int = param(10, "aimed probes per iteration", min=1)
    coupling: float = param(0.5, "weight of neighbouring joints in the exploration noise (0: independent)",
                            min=0.0)
    search_steps: int = param(10, "binary-search halvings (start blend, projection repair)", min=1)
    patience: int = param(100, "stop after this many iterations without progress (0: never)", min=0)
    tol: float = param(1e-3, "relative progress that counts for patience", min=0.0)
    projection_steps: int = param(100, "Adam steps per projection", min=1)
    seed: int = param(0, "seed of the attack's random generator")
    oracle_batch_size: int = param(256, "clips per oracle call", min=1)

    def validate(self, where: str) -> None:
        if not self.delta <= self.delta_max:
            raise ParameterError(f"{where}: need delta <= delta_max, got delta={self.delta}, "
                                 f"delta_max={self.delta_max}")
        if self.beta_max >= 1:
            raise ParameterError(f"{where}: need beta_max < 1, got {self.beta_max}")


@register_attack("basar")
class BASAR(Attack):
    """Decision-based black-box attack with manifold projection (see the module docstring); hyper-parameters
    :class:`BASARParams`.

    Inputs that are not hyper-parameters: ``joint_limits`` (a :class:`JointLimits`, a ``.json``/``.npz`` file,
    or a model/dataset file with limits saved beside it; default: those stored with the model
    (``model.meta["joint_limits"]``), else estimated from the clean clips being attacked and ``starts``),
    ``starts``/``start_labels`` (a pool of clips ``(P, 3, T, V, M)`` and their labels to start from) and
    ``skeleton`` (default: ``model.skeleton``, else ``joint_limits.skeleton``).
    """

    threat_model = "black-box (decision-based)"
    progress_unit = "queries"
    Params = BASARParams
    resources = ("skeleton", "joint_limits", "starts", "start_labels")

    def __init__(self, model: nn.Module, params=None, *, skeleton: Skeleton | None = None,
                 joint_limits: JointLimits | str | Path | None = None, starts: torch.Tensor | None = None,
                 start_labels: torch.Tensor | None = None, **kwargs) -> None:
        super().__init__(model, params, **kwargs)
        if (starts is None) != (start_labels is None):
            raise AttackError("pass starts and start_labels together")
        if isinstance(joint_limits, (str, Path)):
            joint_limits = _load_limits(joint_limits)
        self.skeleton = skeleton or getattr(model, "skeleton", None) or (joint_limits.skeleton if joint_limits else None)
        if joint_limits is not None and self.skeleton is not None and joint_limits.skeleton.parents != self.skeleton.parents:
            raise AttackError(
                f"the joint limits are for skeleton {joint_limits.skeleton.name!r}, the clips use {self.skeleton.name!r}"
            )
        self.joint_limits = joint_limits
        self.delta0 = self.hp.delta
        self.beta0 = float(min(self.hp.beta, self.hp.beta_max))
        self.starts = None if starts is None else torch.as_tensor(starts, dtype=torch.float32)
        self.start_labels = None if start_labels is None else torch.as_tensor(start_labels, dtype=torch.long).reshape(-1)
        if self.starts is not None and self.starts.shape[0] != self.start_labels.shape[0]:
            raise AttackError(f"{self.starts.shape[0]} start clips but {self.start_labels.shape[0]} start labels")
        self.oracle = LabelOracle(model, batch_size=self.oracle_batch_size)

    # -- pieces ---------------------------------------------------------------------------------------------
    def _coupling_matrix(self, V: int, device) -> torch.Tensor:
        eye = torch.eye(V, device=device)
        if self.skeleton is None or self.coupling == 0:
            return eye
        a = torch.as_tensor(self.skeleton.adjacency(), device=device)
        a = a / a.sum(1, keepdim=True).clamp_min(1)
        return eye + self.coupling * a

    def _explore(self, adv, x, delta, mask, W, eta) -> torch.Tensor:
        """``trials`` candidates per sample ``(n, k, 3, T, V, M)`` on the sphere of ``x`` through ``adv``, from
        standard normal noise ``eta`` ``(n, k, 3, T, V, M)``."""
        n, k = adv.shape[0], self.trials
        diff = (x - adv)[:, None]  # (n, 1, C, T, V, M)
        dist_c = diff.flatten(3).norm(dim=3).clamp_min(1e-12)  # (n, 1, C)
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
            labels[s] = torch.where(hit, pred, labels[s])
        return lo, labels

    def _has_budget(self, idx: torch.Tensor, need: int) -> torch.Tensor:
        left = self.queries - self._reserve - self.oracle.device_counts[idx]
        return left >= need

    # -- the attack -----------------------------------------------------------------------------------------
    def run(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> AttackResult:
        if self.strategy == "sa" and target is None:
            raise AttackError("the SA strategy (targeted BASAR) needs a target class (target=...)")
        if self.strategy == "ab" and target is not None:
            raise AttackError("strategy 'ab' takes no target; use strategy='sa' (or leave it out) for targeted BASAR")
        N, dev = x.shape[0], x.device
        # One random stream per sample (sample i of a batch: seed + i), so that a sample's walk does not depend on
        # which other samples share its batch: attacked alone with seed + i it takes the same steps.
        gens = [torch.Generator(device=dev).manual_seed(self.seed + i) for i in range(N)]
        self.oracle.reset(N, dev)
        counts = self.oracle.device_counts
        limits = self._limits(x) if self.on_manifold or self.skeleton is not None else None
        walk = _Walk(self, x, limits if self.on_manifold else None)
        # Queries kept back for the final projection: four projections and a binary search.
        self._reserve = (4 + self.search_steps) if self.on_manifold else 0
        if self.queries <= self._reserve + self.trials:
            raise AttackError(f"a budget of {self.queries} queries is too small; give at least {self._reserve + self.trials + 1}")
        mask = present_performers(x)
        W = self._coupling_matrix(x.shape[3], dev)

        self._tick(0, self.queries, {"iteration": 0})
        everyone = torch.arange(N, device=dev)
        # A clip the model already gets wrong (or already puts in the target class) needs no attack.
        clean_pred = self.oracle(x, everyone)
        already = self._is_adv(clean_pred, everyone, y, target)
        adv, labels, found = self._start(walk, x, y, target, gens, clean_pred, already, mask)
        start_distance = _flat_norm(adv - x)
        delta = torch.full((N,), self.delta0, device=dev)
        beta = torch.full((N,), self.beta0, device=dev)
        active = found & ~already
        iterations = torch.zeros(N, dtype=torch.long, device=dev)
        dist_history: list[torch.Tensor] = []  # kept on the device; read back once, at the end
        query_history: list[torch.Tensor] = []
        recent = [start_distance]  # the last `patience` iterations' distances, for the convergence test
        it = 0
        k = self.trials
        shape = x.shape[1:]
        while True:
            active &= self._has_budget(everyone, k)
            # The loop's one read-back per iteration: which samples go on, and the most queries used (progress).
            state = torch.cat([active.long(), counts.max().reshape(1)]).tolist()
            live, top = [i for i in range(N) if state[i]], state[N]
            if not live:
                break
            it += 1
            self._tick(top, self.queries, {"iteration": it, "active": len(live)})
            idx = torch.as_tensor(live, device=dev)
            iterations = torch.where(active, it, iterations)
            owners = idx.repeat_interleave(k)
            # Exploration: candidates on the sphere through the current clip (then onto the manifold); every
            # active sample's trials go to the model in one call.
            eta = torch.stack([torch.randn((k, *shape), generator=gens[i], device=dev) for i in live])
            cand = walk.onto(self._explore(adv[idx], x[idx], delta[idx], mask[idx], W, eta).flatten(0, 1), owners)
            pred = self.oracle(cand, owners)
            ok = self._is_adv(pred, owners, y, target).reshape(-1, k)
            frac = ok.float().mean(1)
            d = delta[idx]
            d = torch.where(frac <= 0.2, d * 0.9, d)
            delta[idx] = torch.where(frac >= 0.8, (d / 0.9).clamp_max(self.delta_max), d)
            moved = ok.any(1)
            # The adversarial candidate closest to x (on the sphere they are all equally close; the projection
            # onto the manifold moves each a little).
            cand_dist = torch.where(ok, _flat_norm(cand - x[owners]).reshape(-1, k), torch.full_like(frac[:, None], float("inf")))
            rows = torch.arange(len(idx), device=dev) * k + cand_dist.argmin(1)
            adv[idx] = torch.where(moved.reshape(-1, 1, 1, 1, 1), cand[rows], adv[idx])
            labels[idx] = torch.where(moved, pred[rows], labels[idx])
            # Aimed probing towards the clean clip. A sample stops probing at its first hit, so the clips still
            # probing have not moved: their coordinates are computed once. Each round's probes of every sample
            # still probing go to the model in one call.
            probing = idx[moved & self._has_budget(idx, 1)]
            coords = walk.coords(adv[probing], probing)
            for _ in range(self.max_probes):
                if len(probing) == 0:
                    break
                trial = walk.path(coords, walk.clean(probing), probing, x.dtype)(
                    torch.arange(len(probing), device=dev), beta[probing]
                )
                p = self.oracle(trial, probing)
                hit = self._is_adv(p, probing, y, target)
                adv[probing] = torch.where(hit.reshape(-1, 1, 1, 1, 1), trial, adv[probing])
                labels[probing] = torch.where(hit, p, labels[probing])
                beta[probing] = torch.where(hit, (beta[probing] * 2).clamp_max(self.beta_max), beta[probing] / 2)
                # Who probes again: missed, β still above its floor, a query left. One index list for all of them
                # (a boolean mask per tensor would make the device wait once per tensor).
                rows = (~hit & (beta[probing] >= _BETA_MIN) & self._has_budget(probing, 1)).nonzero().flatten()
                probing, coords = probing[rows], [c[rows] for c in coords]
            # Periodic projection onto the manifold with the dynamics term.
            if walk.on_manifold and self.projection_interval and it % self.projection_interval == 0:
                self._project(walk, adv, labels, x, y, target, idx, final=False)
            dist = _flat_norm(adv - x)
            dist_history.append(dist)
            query_history.append(counts.clone())
            recent.append(dist)
            if self.patience and len(recent) > self.patience:
                old = recent.pop(0)
                stalled = dist > old * (1 - self.tol)
                active &= ~stalled
        if walk.on_manifold:
            self._reserve = 0  # the reserve was kept for this
            self._project(walk, adv, labels, x, y, target, (found & ~already).nonzero().flatten(), final=True)
            # The final projection's queries count too: the progress ends at what was really used.
            self._tick(int(counts.max()), self.queries, {"iteration": it, "active": 0})
        history = {
            "distance": torch.stack(dist_history).cpu().tolist() if dist_history else [],
            "queries": torch.stack(query_history).cpu().tolist() if query_history else [],
        }
        return self._result(adv, x, found, labels, iterations.cpu(), start_distance, history, limits, walk.seconds)

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

    def _on_trajectory(self, clips: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``clips`` translated frame by frame so that their main performer's root follows ``like``'s (absent
        performers stay zero)."""
        r = self.skeleton.root
        shift = like[:, :, :, r : r + 1, :1] - clips[:, :, :, r : r + 1, :1]
        return torch.where(present_performers(clips) > 0, clips + shift, clips)

    def _start(self, walk, x, y, target, gens, clean_pred, already, mask):
        """Adversarial start points (on the manifold, for on-manifold BASAR) moved towards ``x`` by a binary
        search (module docstring, step 1)."""
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
        orders = [torch.randperm(len(pool), generator=g, device=dev).tolist() for g in gens]
        plabels, ys = pool_labels.tolist(), y.tolist()
        ts = None if target is None else target.tolist()
        wanted = [[j for j in orders[i] if (plabels[j] == ts[i] if ts is not None else plabels[j] != ys[i])]
                  for i in range(N)]
        for r in range(min(10, max((len(w) for w in wanted), default=0))):  # at most 10 candidates per sample
            done = found.tolist()
            idx = torch.as_tensor([i for i in range(N) if not done[i] and r < len(wanted[i])], dtype=torch.long)
            idx = idx.to(dev)
            idx = idx[self._has_budget(idx, self.trials + self.search_steps + 1)] if len(idx) else idx
            if len(idx) == 0:
                break
            j = torch.as_tensor([wanted[int(i)][r] for i in idx], device=dev)
            cand = walk.onto(self._on_trajectory(pool[j], x[idx]), idx)
            pred = self.oracle(cand, idx)
            good = (pred == pool_labels[j]) & self._is_adv(pred, idx, y, target)
            start[idx[good]] = cand[good]
            labels[idx[good]] = pred[good]
            found[idx[good]] = True
        if target is None:  # noise around the clip, growing until misclassified
            scale = x.flatten(1).std(dim=1).clamp_min(1e-3)
            factors = (0.1, 0.3, 1.0, 3.0)
            # Drawn for every sample whether used or not, so that each sample's stream does not depend on the others.
            noises = torch.stack([torch.randn((len(factors), *x.shape[1:]), generator=g, device=dev) for g in gens])
            for f, factor in enumerate(factors):
                idx = (~found).nonzero().flatten()
                if len(idx) == 0:
                    break
                idx = idx[self._has_budget(idx, self.trials + self.search_steps + 1)]
                noise = noises[idx, f] * mask[idx]
                noisy = walk.onto(x[idx] + factor * scale[idx].reshape(-1, 1, 1, 1, 1) * noise, idx)
                pred = self.oracle(noisy, idx)
                good = self._is_adv(pred, idx, y, target)
                start[idx[good]] = noisy[good]
                labels[idx[good]] = pred[good]
                found[idx[good]] = True
        if not found.all():
            missing = (~found).nonzero().flatten().tolist()
            what = "a clip classified as its target class" if target is not None else "an adversarial start"
            log.warning("BASAR found no start point (%s) for samples %s; they are reported as failures", what, missing)
        idx = (found & ~already).nonzero().flatten()
        if len(idx):
            path = walk.path(walk.coords(start[idx], idx), walk.clean(idx), idx, x.dtype)
            lo, got = self._bisect(idx, path, y, target)
            start[idx] = path(torch.arange(len(idx), device=dev), lo)
            labels[idx] = torch.where(got >= 0, got, labels[idx])
        return start, labels, found

    def _project(self, walk, adv, labels, x, y, target, idx, *, final: bool) -> None:
        """Projection with the dynamics term (module docstring, step 4), in place on ``adv`` and ``labels``.

        Tries ``w`` (and, at the end, ``w/10``, ``w/100``, ``w/1000``: the published code's schedule); where no
        projection stays adversarial, a binary search in joint-angle space from the current clip (0) towards
        the first projection (1) keeps as much of it as stays adversarial. Every candidate is on the manifold.
        """
        idx = idx[self._has_budget(idx, 1)]
        if len(idx) == 0:
            return
        w = self.accel_weight
        todo, first = idx, None
        for attempt in range(4 if final and w > 0 else 1):
            keep = self._has_budget(todo, 1)
            todo, first = todo[keep], None if first is None else first[keep]
            if len(todo) == 0:
                return
            proj = walk.project(adv[todo], todo, w / 10**attempt)
            pred = self.oracle(proj, todo)
            ok = self._is_adv(pred, todo, y, target)
            adv[todo[ok]] = proj[ok]
            labels[todo[ok]] = pred[ok]
            todo, first = todo[~ok], (proj if first is None else first)[~ok]
            if len(todo) == 0:
                return
        path = walk.path(walk.coords(adv[todo], todo), walk.coords(first, todo), todo, adv.dtype)
        lo, got = self._bisect(todo, path, y, target)
        moved = lo > 0
        adv[todo[moved]] = path(torch.arange(len(todo), device=adv.device)[moved], lo[moved])
        labels[todo[moved]] = got[moved]

    def _result(self, final, x, found, labels, iterations, start_distance, history, limits, proj_s):
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
        success = found
        if self.on_manifold:
            # An on-manifold success also needs the constraints (they hold by construction; this checks it).
            success = success & (extras["bone_length_error"].to(success.device) < 1e-4) & (
                extras["angle_violation"].to(success.device) < 1e-3
            )
        queries = self.oracle.counts.clone()
        return AttackResult(
            adversarial=final.detach().cpu(),
            success=success.cpu(),
            iterations=iterations,
            predictions=labels.cpu(),
            queries=queries,
            history=history,
            params=self.params,
            extras=extras,
        )

    def __repr__(self) -> str:
        return f"BASAR(queries={self.queries}, on_manifold={self.on_manifold}, interval={self.projection_interval})"

