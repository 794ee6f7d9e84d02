"""Robustness evaluation in the manner of RobustBench (Croce et al., NeurIPS 2021 datasets track): clean
accuracy, robust accuracy under each attack, the attacks' parameters and the model's cost, for any classifier
(plain or defended) on labelled windows.

Robust accuracy of an attack = the fraction of the evaluated windows that the model classifies correctly
**and** still classifies correctly after the attack. Only correctly classified windows are attacked (a
misclassified window counts as broken). Whether an attack broke a window is decided by the model's own
prediction on the returned clip, never by the attack's report (an EOT or transfer attack steers by another
model).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import torch

from engine.devices import model_device
from engine.progress import ProgressFn

log = logging.getLogger(__name__)


@torch.no_grad()
def predict_labels(model, x: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    was = model.training
    model.eval()
    dev = model_device(model)
    try:
        out = [model(x[lo:lo + batch_size].to(dev)).argmax(1).cpu() for lo in range(0, len(x), batch_size)]
    finally:
        model.train(was)
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def build_attack(name: str, model, params: dict[str, Any] | None = None):
    """Attack ``name`` on ``model`` through :func:`engine.attacks.build` (an unknown or ill-typed parameter is
    a :class:`~engine.errors.ParameterError`)."""
    import engine.defenses  # noqa: F401  (registers eot-smart)
    from engine.attacks.base import build

    return build(name, model, **dict(params or {}))


def evaluate_robustness(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    attacks: Sequence[tuple[str, dict[str, Any]]],
    *,
    batch_size: int = 32,
    budget: float | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Clean and robust accuracy of ``model`` on windows ``x`` (N, 3, T, V, M) metres with labels ``y``.

    ``attacks``: ``(registry name, parameters)`` pairs. ``budget`` (metres, optional): an attacked window only
    counts as broken when its mean joint displacement (the L2 distance of every joint in every frame from the
    clean clip, averaged) is at most ``budget``; unbounded attacks such as BASAR, which always end on a wrong
    class and then shrink the perturbation, need one to give a robust accuracy above 0. Returns ``{"n",
    "clean_accuracy", "attacks": {name: {"robust_accuracy", "attack_success_rate" (over the attacked windows),
    "attacked", "params", "seconds", "mean_queries", "mean_joint_displacement_m" (over the broken windows)}}}``.
    """
    from engine import distributed

    ctx = distributed.current()  # under torchrun: batches are shared out over the ranks (engine.distributed)
    x = torch.as_tensor(x, dtype=torch.float32)
    y = torch.as_tensor(y, dtype=torch.long)
    n = len(x)
    pred = predict_labels(model, x)
    correct = pred == y
    out: dict[str, Any] = {"n": n, "clean_accuracy": float(correct.float().mean()) if n else float("nan"),
                           "attacks": {}}
    idx = torch.nonzero(correct).squeeze(1)
    total = len(attacks) * max(1, -(-len(idx) // batch_size))
    done = 0
    for number, (name, params) in enumerate(attacks):
        attack = build_attack(name, model, params)
        still = correct.clone()
        queries: list[float] = []
        used: dict[str, Any] = {}
        shifts: list[float] = []
        t0 = time.perf_counter()
        starts = list(range(0, len(idx), batch_size))

        def attack_batch(lo: int, number=number, attack=attack) -> dict[str, Any]:
            b = idx[lo:lo + batch_size]
            # seeded by attack and batch, so a batch's result does not depend on which rank runs it
            torch.manual_seed(1_000_003 * number + lo)
            res = attack(x[b], y[b])
            after = predict_labels(model, res.adversarial)
            shift = (res.adversarial - x[b]).norm(dim=1).flatten(1).mean(dim=1)  # mean joint displacement (m)
            fooled = after != y[b]
            if budget is not None:
                fooled &= shift <= budget
            return {"fooled": fooled, "shifts": shift[fooled].tolist(), "params": dict(res.params or {}),
                    "queries": res.queries.float().tolist() if res.queries is not None else []}

        def count(_lo: int, _result: dict, name=name) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, total, {"attack": name})

        batches = distributed.map_sharded(attack_batch, starts, what=f"{name} batches", on_result=count)
        batches = ctx.broadcast(batches)  # every rank returns the same evaluation
        for lo, r in zip(starts, batches):
            b = idx[lo:lo + batch_size]
            still[b] = ~r["fooled"]
            shifts += r["shifts"]
            queries += r["queries"]
            used = r["params"] or used
        seconds = time.perf_counter() - t0
        attacked = len(idx)
        broken = int((~still[idx]).sum()) if attacked else 0
        out["attacks"][name] = {
            "robust_accuracy": float(still.float().mean()) if n else float("nan"),
            "attack_success_rate": broken / attacked if attacked else float("nan"),
            "attacked": attacked,
            "params": used or attack.params,
            "seconds": round(seconds, 3),
            "mean_queries": sum(queries) / len(queries) if queries else None,
            "mean_joint_displacement_m": sum(shifts) / len(shifts) if shifts else None,
            "budget_m": budget,
        }
        log.info("%s: robust accuracy %.3f (%d/%d attacked windows broken)", name,
                 out["attacks"][name]["robust_accuracy"], broken, attacked)
    return out
