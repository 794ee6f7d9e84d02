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
distance. Walking on the manifold, 20 of 20 such windows succeed, at a median 0.15× the start distance (0.72 m)
against 0.11× (0.65 m) off the manifold, at 1.2 times its CPU time (``bench/basar.py``, default budget, results in
``bench/results/basar.md``). Joint-angle limits are
widened per clip by the clean clip's own range of angles (:func:`engine.attacks.manifold.widen_limits`): the clean
motion is natural by definition, and limits estimated from other performers can leave parts of it outside.

**Batching** (skelviz's; it changes the cost, not what each clip does). The clips of a batch run in lockstep, each
its own state machine: in every step each clip that is still going makes its next request — the ``trials``
exploration candidates of a new iteration, its next aimed probe, its projection's query or its next bisection
point — and all of them go to the model in one call (so a clip waiting on a sequential probe shares the call with
the others' explorations instead of holding them up); the answers then move each clip on. A clip's walk depends
only on its own answers, random stream (seed + its index in the batch), budget and query count (the oracle charges
each query to the clip that asked), so off the manifold a clip attacked alone takes exactly the steps it takes in a
batch; on the manifold the kinematics' float32 rounding differs with the number of clips in a call (~1e-7), which
can flip an answer right on the decision boundary, so there the walks agree up to such flips. The manifold's
computations (cheap projections of all candidates of a step, paths, the projections due in a step) run batched on
the model's device; the loop reads back from the device once per step (the answers), plus once after steps where
a clip finished an iteration late enough for the convergence test.

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

import numpy as np
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
# What each clip asks for in the next step of the lockstep loop (BASAR._lockstep).
_EXPLORE, _PROBE, _PQUERY, _PBISECT, _DONE = range(5)


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
        return self._timed(self.projector.nearest, clips, self.x[owners], self.ref[owners], direct=True)

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
        iterations, history = self._lockstep(walk, adv, labels, x, y, target, gens, found & ~already,
                                             start_distance, mask, W)
        it = int(iterations.max()) if N else 0
        if walk.on_manifold:
            self._reserve = 0  # the reserve was kept for this
            self._project(walk, adv, labels, x, y, target, (found & ~already).nonzero().flatten(), final=True)
            # The final projection's queries count too: the progress ends at what was really used.
            self._tick(int(counts.max()), self.queries, {"iteration": it, "active": 0})
        return self._result(adv, x, found, labels, iterations.cpu(), start_distance, history, limits, walk.seconds)

    def _lockstep(self, walk, adv, labels, x, y, target, gens, active, start_distance, mask, W):
        """Steps 2–4 of every clip (exploration, aimed probing, periodic projection), all clips in lockstep
        (module docstring, "Batching"); ``adv`` and ``labels`` are updated in place. Returns the iterations
        each clip ran (CPU) and the history."""
        N, dev, k = x.shape[0], x.device, self.trials
        shape = x.shape[1:]
        limit = self.queries - self._reserve  # a clip may ask `need` more queries while counts + need <= limit
        counts = self.oracle.device_counts.tolist()  # a host mirror, kept by counting each step's requests
        want = (y if target is None else target).tolist()

        def adv_label(p: int, i: int) -> bool:
            return p != want[i] if target is None else p == want[i]

        delta = torch.full((N,), self.delta0, device=dev)
        # β and the bisection brackets live on the host (float32, as they would on the device: halving and
        # doubling are exact), since they decide who asks again; the device gets them with each request.
        beta = np.full(N, self.beta0, dtype=np.float32)
        beta_max = np.float32(self.beta_max)
        lo, hi = np.zeros(N, dtype=np.float32), np.ones(N, dtype=np.float32)
        got = torch.full((N,), -1, dtype=torch.long, device=dev)  # labels at the bisections' adversarial ends
        phase = [_EXPLORE if a else _DONE for a in active.tolist()]
        it_of, probes, halvings = [0] * N, [0] * N, [0] * N
        rows = self.queries // k + 2  # more than any clip's iterations
        dist_hist = torch.zeros((rows, N), dtype=start_distance.dtype, device=dev)  # row t: after own iteration t
        dist_hist[0] = start_distance
        q_hist = np.zeros((rows, N), dtype=np.int64)
        q_hist[0] = counts
        stalled = torch.zeros(N, dtype=torch.bool, device=dev)
        read_stalled = False
        coords = ends_a = ends_b = None  # per-clip buffers (N, ...): probing start; bisection ends
        proj = torch.zeros_like(x)  # projections waiting for their query

        def buffers(cs):
            return [torch.zeros((N, *c.shape[1:]), dtype=c.dtype, device=dev) for c in cs]

        def put(bufs, cs, idx):
            for b, c in zip(bufs, cs):
                b[idx] = c

        def ix(lst):
            return torch.as_tensor(lst, dtype=torch.long, device=dev)

        while True:
            st = stalled.tolist() if read_stalled else None
            read_stalled = False
            E = []
            for i in range(N):
                if phase[i] == _EXPLORE:
                    if (st is not None and st[i]) or counts[i] + k > limit:
                        phase[i] = _DONE
                    else:
                        E.append(i)
                        it_of[i] += 1
            live = [i for i in range(N) if phase[i] != _DONE]
            if not live:
                break
            self._tick(max(counts), self.queries, {"iteration": max(it_of), "active": len(live)})
            P = [i for i in live if phase[i] == _PROBE]
            Q = [i for i in live if phase[i] == _PQUERY]
            S = [i for i in live if phase[i] == _PBISECT]
            # Every request of every clip, in one call: k exploration candidates per exploring clip, one aimed probe,
            # projection or bisection point per other clip.
            parts = []
            if E:
                e = ix(E)
                owners_e = e.repeat_interleave(k)
                eta = torch.stack([torch.randn((k, *shape), generator=gens[i], device=dev) for i in E])
                cand = walk.onto(self._explore(adv[e], x[e], delta[e], mask[e], W, eta).flatten(0, 1), owners_e)
                parts.append((cand, owners_e))
            if P:
                p = ix(P)
                trial = walk.path([c[p] for c in coords], walk.clean(p), p, x.dtype)(
                    torch.arange(len(P), device=dev), torch.as_tensor(beta[P], device=dev))
                parts.append((trial, p))
            if Q:
                q = ix(Q)
                parts.append((proj[q], q))
            if S:
                s = ix(S)
                mid = (lo[S] + hi[S]) / 2
                path_s = walk.path([c[s] for c in ends_a], [c[s] for c in ends_b], s, adv.dtype)
                parts.append((path_s(torch.arange(len(S), device=dev), torch.as_tensor(mid, device=dev)), s))
            pred = self.oracle(torch.cat([c for c, _ in parts]), torch.cat([o for _, o in parts]))
            pl = pred.tolist()  # the step's read-back: who succeeded decides what each clip asks next
            walked, finished = [], []  # clips whose walk (exploration, probing) / whole iteration ended this step
            at = 0
            if E:
                pe, at = pred[: len(E) * k], len(E) * k
                ok = self._is_adv(pe, owners_e, y, target).reshape(-1, k)
                frac = ok.float().mean(1)
                d = delta[e]
                d = torch.where(frac <= 0.2, d * 0.9, d)
                delta[e] = torch.where(frac >= 0.8, (d / 0.9).clamp_max(self.delta_max), d)
                moved = ok.any(1)
                # The adversarial candidate closest to x (on the sphere they are all equally close; the projection
                # onto the manifold moves each a little).
                cand_dist = torch.where(ok, _flat_norm(cand - x[owners_e]).reshape(-1, k),
                                        torch.full_like(frac[:, None], float("inf")))
                best = torch.arange(len(E), device=dev) * k + cand_dist.argmin(1)
                adv[e] = torch.where(moved.reshape(-1, 1, 1, 1, 1), cand[best], adv[e])
                labels[e] = torch.where(moved, pe[best], labels[e])
                start_probing = []
                for j, i in enumerate(E):
                    counts[i] += k
                    if any(adv_label(pl[j * k + t], i) for t in range(k)) and counts[i] + 1 <= limit:
                        start_probing.append(i)
                        phase[i], probes[i] = _PROBE, 0
                    else:
                        walked.append(i)
                if start_probing:
                    sp = ix(start_probing)
                    cs = walk.coords(adv[sp], sp)
                    coords = coords or buffers(cs)
                    put(coords, cs, sp)
            if P:
                pp, at = pred[at : at + len(P)], at + len(P)
                hit = self._is_adv(pp, p, y, target)
                adv[p] = torch.where(hit.reshape(-1, 1, 1, 1, 1), trial, adv[p])
                labels[p] = torch.where(hit, pp, labels[p])
                for j, i in enumerate(P):
                    counts[i] += 1
                    probes[i] += 1
                    h = adv_label(pl[at - len(P) + j], i)
                    beta[i] = min(beta[i] * 2, beta_max) if h else beta[i] / 2
                    # Probe again: missed, β above its floor, a query and a probe left.
                    if h or not (beta[i] >= _BETA_MIN and counts[i] + 1 <= limit and probes[i] < self.max_probes):
                        walked.append(i)
            if Q:
                pq, at = pred[at : at + len(Q)], at + len(Q)
                ok = self._is_adv(pq, q, y, target)
                adv[q] = torch.where(ok.reshape(-1, 1, 1, 1, 1), proj[q], adv[q])
                labels[q] = torch.where(ok, pq, labels[q])
                missed = []
                for j, i in enumerate(Q):
                    counts[i] += 1
                    if adv_label(pl[at - len(Q) + j], i):
                        finished.append(i)
                    else:
                        missed.append(i)
                if missed:
                    # A binary search in joint-angle space from the current clip (0) towards the projection (1).
                    m = ix(missed)
                    ca, cb = walk.coords(adv[m], m), walk.coords(proj[m], m)
                    ends_a, ends_b = ends_a or buffers(ca), ends_b or buffers(cb)
                    put(ends_a, ca, m)
                    put(ends_b, cb, m)
                    lo[missed], hi[missed] = 0.0, 1.0
                    got[m] = -1
                    done_now = []
                    for i in missed:
                        phase[i], halvings[i] = _PBISECT, 0
                        if counts[i] + 1 > limit:
                            done_now.append(i)
                    finished += self._end_bisection(walk, adv, labels, got, lo, ends_a, ends_b, done_now)
            if S:
                ps = pred[at : at + len(S)]
                hit_s = self._is_adv(ps, s, y, target)
                got[s] = torch.where(hit_s, ps, got[s])
                done_now = []
                for j, i in enumerate(S):
                    counts[i] += 1
                    halvings[i] += 1
                    if adv_label(pl[at + j], i):
                        lo[i] = mid[j]
                    else:
                        hi[i] = mid[j]
                    if halvings[i] >= self.search_steps or counts[i] + 1 > limit:
                        done_now.append(i)
                finished += self._end_bisection(walk, adv, labels, got, lo, ends_a, ends_b, done_now)
            # Periodic projection onto the manifold with the dynamics term (its query goes with the next step's).
            due = [i for i in walked if walk.on_manifold and self.projection_interval
                   and it_of[i] % self.projection_interval == 0 and counts[i] + 1 <= limit]
            if due:
                dd = ix(due)
                proj[dd] = walk.project(adv[dd], dd, self.accel_weight)
                for i in due:
                    phase[i] = _PQUERY
            finished += [i for i in walked if phase[i] != _PQUERY]
            if finished:
                f, t = ix(finished), ix([it_of[i] for i in finished])
                dist = _flat_norm(adv[f] - x[f])
                dist_hist[t, f] = dist
                for i in finished:
                    q_hist[it_of[i], i] = counts[i]
                    phase[i] = _EXPLORE
                if self.patience and max(it_of[i] for i in finished) >= self.patience:
                    # Converged: less than `tol` (relative) progress over the last `patience` iterations.
                    old = dist_hist[(t - self.patience).clamp_min(0), f]
                    stalled[f] = (t >= self.patience) & (dist > old * (1 - self.tol))
                    read_stalled = True
        T = max(it_of, default=0)
        history = {"distance": [], "queries": []}
        if T:
            # Row t holds each clip's state after its own iteration t; a clip that stopped keeps its last state.
            src = np.minimum(np.arange(T + 1)[:, None], np.asarray(it_of)[None, :])
            history["distance"] = dist_hist.gather(0, torch.as_tensor(src, device=dev))[1:].cpu().tolist()
            history["queries"] = q_hist[src, np.arange(N)[None, :]][1:].tolist()
        return torch.as_tensor(it_of, dtype=torch.long), history

    def _end_bisection(self, walk, adv, labels, got, lo, ends_a, ends_b, done: list[int]) -> list[int]:
        """Finish the bisections of clips ``done``: each keeps the adversarial end of its bracket (if it moved)."""
        moved = [i for i in done if lo[i] > 0]
        if moved:
            m = torch.as_tensor(moved, dtype=torch.long, device=adv.device)
            path = walk.path([c[m] for c in ends_a], [c[m] for c in ends_b], m, adv.dtype)
            adv[m] = path(torch.arange(len(moved), device=adv.device), torch.as_tensor(lo[moved], device=adv.device))
            labels[m] = got[m]
        return done

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
        tries = 4 if final and w > 0 else 1
        if tries > 1:
            # All four weights' projections in one batched call (each clip and weight is its own problem, so the
            # points are those of four calls, up to float rounding); they are still queried one weight at a time,
            # and only while the earlier ones failed, so the queries are the published schedule's.
            weights = torch.tensor([w / 10**a for a in range(tries)], dtype=torch.float32, device=adv.device)
            every = walk.project(adv[idx].repeat(tries, *([1] * (adv.ndim - 1))), idx.repeat(tries),
                                 weights.repeat_interleave(len(idx))).reshape(tries, len(idx), *adv.shape[1:])
        todo, first, at = idx, None, torch.arange(len(idx), device=idx.device)
        for attempt in range(tries):
            keep = self._has_budget(todo, 1)
            todo, at, first = todo[keep], at[keep], None if first is None else first[keep]
            if len(todo) == 0:
                return
            proj = every[attempt, at] if tries > 1 else walk.project(adv[todo], todo, w)
            pred = self.oracle(proj, todo)
            ok = self._is_adv(pred, todo, y, target)
            adv[todo[ok]] = proj[ok]
            labels[todo[ok]] = pred[ok]
            todo, at, first = todo[~ok], at[~ok], (proj if first is None else first)[~ok]
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

