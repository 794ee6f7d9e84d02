"""What the white-box attacks share: strategies (AB, ABN, SA), their class losses and success tests,
budgets by projection, per-frame gradient normalisation, and the model's skeleton and frame rate.

Strategies (used by SMART, I-FGSM/PGD, MI-FGSM and CIASA alike):

``"ab"`` anything but the true class; ``Lc = −CE(logits, y)``.
``"abn"`` the true class leaves the top N (at least N classes score strictly higher);
    ``Lc = z_y − z_(N)``, the margin to the N-th highest other logit.
``"sa"`` a specified target class; ``Lc = CE(logits, target)``.

``Lc`` is always to be minimised and is per sample ``(N,)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from engine.attacks.base import AttackResult
from engine.errors import AttackError
from engine.skeletons import Skeleton

STRATEGIES = ("ab", "abn", "sa")


def model_skeleton(model, skeleton: Skeleton | None) -> Skeleton:
    """The skeleton to use: the one given, else the model's (a :class:`Classifier` carries it)."""
    if skeleton is not None:
        return skeleton
    found = getattr(model, "skeleton", None)
    if found is None:
        raise AttackError("this model does not say its skeleton; pass skeleton= to the attack")
    return found


def model_fps(model, fps: float | None) -> float:
    """The frame rate clips reach the model at: the one given, else the model's preprocessing, else 30."""
    if fps is not None:
        return float(fps)
    pre = getattr(model, "preprocessing", None)
    return float(pre.fps) if pre is not None else 30.0


def strategy_success(logits: torch.Tensor, y: torch.Tensor, strategy: str, top_n: int, target) -> torch.Tensor:
    """Per-sample success of ``strategy`` given logits ``(N, K)`` (see the module docstring)."""
    if strategy == "ab":
        return logits.argmax(dim=1) != y
    if strategy == "abn":
        true_logit = logits.gather(1, y[:, None])
        return (logits > true_logit).sum(dim=1) >= top_n
    if strategy == "sa":
        return logits.argmax(dim=1) == target
    raise _unknown_strategy(strategy)


def strategy_class_loss(logits: torch.Tensor, y: torch.Tensor, strategy: str, top_n: int, target) -> torch.Tensor:
    """Per-sample class loss ``Lc`` ``(N,)`` of ``strategy``, to be minimised."""
    if strategy == "ab":
        return -F.cross_entropy(logits, y, reduction="none")
    if strategy == "sa":
        return F.cross_entropy(logits, target, reduction="none")
    if strategy == "abn":
        true_logit = logits.gather(1, y[:, None]).squeeze(1)
        others = logits.scatter(1, y[:, None], float("-inf"))
        nth = others.topk(top_n, dim=1).values[:, -1]
        return true_logit - nth
    raise _unknown_strategy(strategy)


def _unknown_strategy(strategy: str) -> AttackError:
    return AttackError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")


def check_strategy_name(strategy: str) -> None:
    """Raise :class:`AttackError` unless ``strategy`` is one of :data:`STRATEGIES` (attack constructors)."""
    if strategy not in STRATEGIES:
        raise _unknown_strategy(strategy)


def check_strategy(strategy: str, top_n: int, num_classes: int | None, target) -> None:
    """Check a strategy against the call: its target and ``top_n`` for a model of ``num_classes`` classes."""
    check_strategy_name(strategy)
    if strategy == "sa" and target is None:
        raise AttackError("the SA strategy needs a target class (target=...)")
    if strategy != "sa" and target is not None:
        raise AttackError(f"strategy {strategy!r} takes no target; use strategy='sa' for a targeted attack")
    if strategy == "abn" and num_classes is not None and not 1 <= top_n < num_classes:
        raise AttackError(f"top_n must be between 1 and {num_classes - 1} for {num_classes} classes, got {top_n}")
    if target is not None and num_classes is not None and ((target < 0) | (target >= num_classes)).any():
        raise AttackError(f"target classes must lie in 0..{num_classes - 1}")


def present_performers(x: torch.Tensor) -> torch.Tensor:
    """(N, 1, 1, 1, M) float mask: 1 for performers with any non-zero coordinate, 0 for all-zero padding."""
    return (x.abs().amax(dim=(1, 2, 3), keepdim=True) > 0).to(x.dtype)


def per_frame_normalise(g: torch.Tensor) -> torch.Tensor:
    """Scale each performer's frame of ``g`` (N, C, T, V, M) to unit L2 norm over (C, V) (zeros stay zero)."""
    norm = g.square().sum(dim=(1, 3), keepdim=True).sqrt()
    return g / (norm + 1e-18)


class Budget:
    """Optional per-joint and per-frame L2 displacement caps (metres), applied by projection."""

    def __init__(self, joint_budget=None, frame_budget=None) -> None:
        self.joint = joint_budget
        self.frame = frame_budget

    def __bool__(self) -> bool:
        return self.joint is not None or self.frame is not None

    def as_dict(self) -> dict:
        def plain(b):
            return b.tolist() if isinstance(b, torch.Tensor) else b

        return {"joint_budget": plain(self.joint), "frame_budget": plain(self.frame)}

    def project(self, delta: torch.Tensor) -> torch.Tensor:
        if self.joint is not None:
            eps = torch.as_tensor(self.joint, dtype=delta.dtype, device=delta.device)
            eps = eps.reshape(1, 1, 1, -1, 1) if eps.ndim else eps
            norm = delta.norm(dim=1, keepdim=True)
            delta = delta * torch.clamp(eps / (norm + 1e-12), max=1.0)
        if self.frame is not None:
            eps = torch.as_tensor(self.frame, dtype=delta.dtype, device=delta.device)
            eps = eps.reshape(1, 1, -1, 1, 1) if eps.ndim else eps
            norm = delta.square().sum(dim=(1, 3), keepdim=True).sqrt()
            delta = delta * torch.clamp(eps / (norm + 1e-12), max=1.0)
        return delta


#: Iterations between two reads of an iterative attack's stop condition (``done.all()``): reading it waits for the
#: device, so the loop checks it only every ``CHECK_EVERY`` iterations. In between, stopped samples are frozen:
#: their iterate, result, first success, prediction and queries no longer change, so the results are the same as
#: with a check every iteration; only up to ``CHECK_EVERY − 1`` extra (wasted) passes run once every sample stopped.
CHECK_EVERY = 10


class IterativeState:
    """Per-sample bookkeeping of an iterative attack whose samples stop on their own (SMART, I-FGSM, CIASA).

    ``first_success`` (N,): the iteration of each sample's first success, −1 before it; ``best_delta`` and
    ``best_pred``: the perturbation returned for a successful sample and its prediction; ``last_pred``: the
    prediction at each sample's last evaluated iterate; ``done``: the samples that stopped; ``queries``: the model
    evaluations of each sample; ``history``: per-iteration lists of N values (``history_keys`` and ``"pred"``).

    Everything stays on the attack's device while it runs (the history as one (N,) tensor per iteration and key):
    nothing is copied to the host before :meth:`result`.
    """

    def __init__(self, x: torch.Tensor, history_keys: tuple[str, ...] = ()) -> None:
        n, device = x.shape[0], x.device
        self.first_success = torch.full((n,), -1, dtype=torch.long, device=device)
        self.best_delta = torch.zeros_like(x)
        self.best_pred = torch.full((n,), -1, dtype=torch.long, device=device)
        self.last_pred = torch.full((n,), -1, dtype=torch.long, device=device)
        self.done = torch.zeros(n, dtype=torch.bool, device=device)
        self.queries = torch.zeros(n, dtype=torch.long, device=device)
        self._rows: dict[str, list[torch.Tensor]] = {key: [] for key in (*history_keys, "pred")}

    def steps(self, iterations: int, check_every: int = CHECK_EVERY) -> Iterator[tuple[int, bool]]:
        """``(it, final)`` for ``it`` = 0 … ``iterations`` while any sample is still active: every iteration
        evaluates the iterate, all but the ``final`` one then take a step. The stop condition is read every
        ``check_every`` iterations (stopped samples are frozen in between, so the results do not depend on it)."""
        for it in range(iterations + 1):
            final = it == iterations
            if it > 0 and it % check_every == 0 and bool(self.done.all()):
                return
            yield it, final

    def observe(
        self, it: int, delta: torch.Tensor, pred: torch.Tensor, success: torch.Tensor, *, stop: bool = True,
        **values: torch.Tensor,
    ) -> None:
        """Record iteration ``it`` (all N samples evaluated at ``x + delta``; ``success`` per the strategy).

        Counts a query for every active sample and appends ``values`` and ``pred`` to the history (NaN / −1 for
        samples that had stopped). An active sample that is adversarial now keeps ``delta`` and ``pred`` as its
        result (the latest adversarial iterate wins) and its first success is noted; with ``stop`` it stops.
        """
        done = self.done
        self.queries += (~done).long()
        adv = success & ~done
        for key, value in values.items():
            self._rows[key].append(torch.where(done, math.nan, value.detach()))
        self._rows["pred"].append(torch.where(done, -1, pred))
        self.last_pred = torch.where(done, self.last_pred, pred)
        self.first_success = torch.where(adv & (self.first_success < 0), it, self.first_success)
        self.best_delta = torch.where(adv.view(-1, 1, 1, 1, 1), delta.detach(), self.best_delta)
        self.best_pred = torch.where(adv, pred, self.best_pred)
        if stop:
            self.done = done | adv

    @property
    def history(self) -> dict[str, list]:
        """The recorded history as plain lists (one copy to the host). Iterations observed after every sample had
        stopped (between two reads of the stop condition, all NaN / −1) are left out, as if the loop had stopped
        at once."""
        if not self._rows["pred"]:
            return {key: [] for key in self._rows}
        live = (torch.stack(self._rows["pred"]) >= 0).any(dim=1)
        rows = int(live.nonzero().max()) + 1 if bool(live.any()) else 0
        return {key: torch.stack(values[:rows]).tolist() if rows else [] for key, values in self._rows.items()}

    def result(
        self, x: torch.Tensor, delta: torch.Tensor, iterations: int, params: dict, history: dict | None = None,
        *, host: bool = True,
    ) -> AttackResult:
        """The :class:`AttackResult`: a successful sample gets ``best_delta``, the others their last ``delta``;
        ``iterations`` is reported for the samples that never succeeded. ``history`` replaces the recorded one.
        ``host=False`` leaves the tensors on the device (callers that feed them straight back to the model)."""
        succeeded = self.first_success >= 0
        out = torch.where(succeeded.view(-1, 1, 1, 1, 1), self.best_delta, delta)

        def move(t: torch.Tensor) -> torch.Tensor:
            return t.cpu() if host else t

        return AttackResult(
            adversarial=move((x + out).detach()),
            success=move(succeeded),
            iterations=move(torch.where(succeeded, self.first_success, iterations)),
            predictions=move(torch.where(succeeded, self.best_pred, self.last_pred)),
            queries=move(self.queries),
            history=self.history if history is None else history,
            params=params,
        )
