"""The standard robustness suite: a fixed attack ensemble at stated budgets, gradient-masking checks and a
comparable report, after AutoAttack (Croce and Hein, "Reliable evaluation of adversarial robustness with an
ensemble of diverse parameter-free attacks", ICML 2020) carried over to world-coordinate motion.

For each model and each budget ``eps`` (metres; default 0.5, 1 and 2 cm; ``norm="joint"``: every joint's 3-D
displacement at most ``eps`` in every frame, ``"linf"``: every coordinate within ``±eps``; optionally with bone
lengths held by projection), on the windows the model classifies correctly:

1. APGD-CE and APGD-T (targeted DLR loss) (:mod:`engine.attacks.apgd`), each on **every** correctly classified
   window, so that each keeps its own robust-accuracy figure;
2. the Square-style random search (:mod:`engine.attacks.square`, score-based black-box) on the windows neither
   white-box attack broke;
3. EOT: when the model is stochastic (exposes ``stochastic_logits``: BEAT's posterior, randomized smoothing's
   noise) both APGD runs average their gradient over ``eot_samples`` draws (AutoAttack's "rand" version: 20),
   and APGD-CE is also run without EOT for the masking check.

A window is broken at ``eps`` when any attack returns a clip inside the budget that the model's own ``forward``
misclassifies; the **robust accuracy** is the per-window worst case (correct clean and broken by none), so it is
never above any component attack's own figure. Every attack's figure is kept. Also reported: random noise at
the budget (``noise_draws`` points on its boundary) and the perceptual cost of the successful adversaries
(bone-length change and acceleration deviation, :func:`engine.metrics.summary`).

Gradient-masking checks (warnings, stored in the report), after the signs listed by Athalye, Carlini and
Wagner (ICML 2018) and Croce and Hein (2020):

``black_box_beats_white_box``  the black-box attack breaks more than ``black_box_share`` (5%) of the evaluated
                               windows that both white-box attacks left, at some budget;
``not_falling_with_budget``     robust accuracy rises by more than one window from a budget to a larger one, or
                               is above 0 and no lower at the largest budget than at the smallest;
``eot_changes_result``          (stochastic models) APGD-CE with and without EOT differ by more than
                               ``eot_gap`` (10 points) of robust accuracy at some budget;
``noise_beats_gradients``       random noise at the budget has a lower robust accuracy than the white-box attacks;
``loss_not_improved``           at some budget, on fewer than ``improved_share`` (50%) of the attacked windows did
                               APGD-CE find a loss above the one at its random start.

Presets: ``standard`` (default: AutoAttack's published settings, 100 iterations, 9 target classes, 5000 Square
queries, 20 EOT draws) and ``quick`` (25 iterations, 3 target classes, 300 queries, 4 EOT draws: for tests and
laptops; its numbers are upper bounds on the standard ones, not equal to them). Everything is seeded by
``seed``; the report records :data:`SUITE_VERSION`, the budgets, the seed and every parameter.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from engine.errors import CancelledError, ParameterError
from engine.params import make_params, param, to_dict
from engine.progress import CancelFn, ProgressFn

log = logging.getLogger(__name__)

#: bump when an attack, a default, a check, the success rule or a random stream changes: reports of different
#: versions differ. 2: Square draws every window's block in one call (a different random stream from 1's
#: window-by-window draws; same algorithm and schedule).
SUITE_VERSION = "skelviz-standard-2"
DEFAULT_BUDGETS = (0.005, 0.01, 0.02)


@dataclass(frozen=True)
class SuiteParams:
    """The standard suite's settings (module docstring: what each attack and check does, and the presets)."""

    budgets: tuple[float, ...] = param(DEFAULT_BUDGETS, "per-joint budgets, ascending", unit="m", min=0.0,
                                       min_exclusive=True)
    norm: Literal["joint", "linf"] = param("joint", "joint: every joint's 3-D displacement within eps in every "
                                           "frame; linf: every coordinate within ±eps")
    hold_bones: bool = param(False, "hold the clean bone lengths by projection in the white-box attacks")
    iterations: int = param(100, "APGD iterations per run (AutoAttack: 100)", min=1)
    restarts: int = param(1, "APGD random restarts (AutoAttack standard: 1)", min=1)
    n_target_classes: int = param(9, "APGD-T target classes (AutoAttack: 9; capped at classes − 1)", min=1)
    square_queries: int = param(5000, "black-box queries per window (AutoAttack: 5000)", min=1)
    eot_samples: int = param(20, "EOT draws per gradient on stochastic models (AutoAttack rand: 20)", min=1)
    noise_draws: int = param(10, "random points on the budget's boundary tried per window", min=1)
    seed: int = param(0, "seed of every attack")
    batch_size: int = param(64, "windows per attack call", min=1)
    black_box_share: float = param(0.05, "masking check: share of windows broken only by the black box", min=0.0)
    eot_gap: float = param(0.10, "masking check: robust-accuracy gap between APGD-CE with and without EOT",
                           min=0.0)
    improved_share: float = param(0.5, "masking check: least share of windows where APGD-CE raised its loss",
                                  min=0.0, max=1.0)

    PRESETS: ClassVar[dict[str, dict]] = {
        "standard": {},
        "quick": {"iterations": 25, "n_target_classes": 3, "square_queries": 300, "eot_samples": 4,
                  "noise_draws": 4},
    }

    def validate(self, where: str) -> None:
        if not self.budgets:
            raise ParameterError(f"{where}: give at least one budget (metres), e.g. 0.005 0.01 0.02")
        if list(self.budgets) != sorted(self.budgets):
            raise ParameterError(f"{where}: list the budgets in ascending order, got {list(self.budgets)}")


def suite_params(preset: str | None = None, **overrides: Any) -> SuiteParams:
    """Validated :class:`SuiteParams` from a preset (``standard`` or ``quick``) and overrides."""
    if "budgets" in overrides:
        overrides["budgets"] = tuple(float(b) for b in overrides["budgets"])
    return make_params(SuiteParams, overrides, preset=preset, where="standard suite")


def is_stochastic(model) -> bool:
    return callable(getattr(model, "stochastic_logits", None))


@torch.no_grad()
def _predict(model, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    from engine.defenses.robustness import predict_labels

    return predict_labels(model, x, batch_size)


def _within(x: torch.Tensor, adv: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """(N,) bool: ``adv`` lies in the budget around ``x`` (a rounding tolerance of 1e-6 m)."""
    d = adv - x
    size = d.abs().flatten(1).amax(1) if norm == "linf" else d.norm(dim=1).flatten(1).amax(1)
    return size <= eps + 1e-6


def _noise_at_budget(x: torch.Tensor, eps: float, norm: str, gen: torch.Generator) -> torch.Tensor:
    present = (x.abs().amax(dim=(1, 2, 3), keepdim=True) > 0).to(x.dtype)
    if norm == "linf":
        d = (torch.randint(0, 2, x.shape, generator=gen) * 2 - 1).to(x.dtype) * eps
    else:
        d = torch.randn(x.shape, generator=gen, dtype=x.dtype)
        d = d / d.norm(dim=1, keepdim=True).clamp_min(1e-12) * eps
    return x + d * present


class _Steps:
    """Progress over the whole suite: one step per attack call, reported in hundredths of a step (the attacks'
    own iterations move it within a step)."""

    def __init__(self, total: int, progress: ProgressFn | None, cancel: CancelFn | None) -> None:
        self.total, self.done, self.progress, self.cancel = total, 0, progress, cancel
        self.current: dict = {}

    def __call__(self, info: dict) -> None:
        if self.cancel is not None and self.cancel():
            raise CancelledError(f"standard suite cancelled after {self.done} of {self.total} attack runs")
        self.done += 1
        if self.progress is not None:
            self.progress(100 * self.done, 100 * self.total, info)

    def within(self, info: dict) -> ProgressFn | None:
        """The progress callback of the attack about to run (``info`` names it)."""
        if self.progress is None:
            return None

        def each(done: int, total: int, _info: dict) -> None:
            part = min(99, int(100 * done / total)) if total else 0
            self.progress(100 * self.done + part, 100 * self.total, info)

        return each


def run_standard_suite(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    params: SuiteParams | None = None,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> dict[str, Any]:
    """The standard suite on windows ``x`` (N, 3, T, V, M) metres with labels ``y``: a JSON-ready dict with
    ``suite_version``, ``params``, ``n``, ``clean_accuracy``, ``stochastic``, ``budgets`` (one entry per budget:
    ``eps``, ``robust_accuracy``, ``attacks`` {name: own figures}, ``perceptual``, ``loss``) and ``warnings``
    (the gradient-masking checks that fired, see the module docstring)."""
    from engine.attacks.base import build

    p = params if params is not None else suite_params()
    x = torch.as_tensor(x, dtype=torch.float32)
    y = torch.as_tensor(y, dtype=torch.long)
    n = len(x)
    if n == 0:
        raise ParameterError("the standard suite needs at least one labelled window")
    stochastic = is_stochastic(model)
    correct = _predict(model, x, p.batch_size) == y
    idx = torch.nonzero(correct).squeeze(1)
    eot = p.eot_samples if stochastic else 1
    white = [("apgd-ce", {"eot_samples": eot}),
             ("apgd-dlr-t", {"eot_samples": eot, "n_target_classes": p.n_target_classes})]
    if stochastic and eot > 1:
        white.append(("apgd-ce-no-eot", {"eot_samples": 1}))
    batches = max(1, math.ceil(len(idx) / p.batch_size))
    steps = _Steps(len(p.budgets) * (len(white) + 1) * batches + len(p.budgets), progress, cancel)
    common = {"norm": p.norm, "seed": p.seed}
    apgd_common = {**common, "iterations": p.iterations, "restarts": p.restarts, "hold_bones": p.hold_bones}
    report: dict[str, Any] = {
        "suite_version": SUITE_VERSION, "params": to_dict(p), "n": n,
        "clean_accuracy": float(correct.float().mean()), "stochastic": stochastic, "eot_samples": eot,
        "budgets": [],
    }
    skeleton = getattr(model, "skeleton", None)
    pre = getattr(model, "preprocessing", None)
    fps = float(getattr(pre, "fps", 30.0) or 30.0)

    for eps in p.budgets:
        entry: dict[str, Any] = {"eps": eps, "attacks": {}}
        broken_by: dict[str, torch.Tensor] = {}
        adversarial = x.clone()
        worst = torch.zeros(n, dtype=torch.bool)  # broken by a suite attack (not noise, not the no-EOT probe)
        start_loss = torch.full((n,), math.nan)
        best_loss = torch.full((n,), math.nan)
        for name, extra in white:
            registry = "apgd-ce" if name == "apgd-ce-no-eot" else name
            attack = build(registry, model, eps=eps, cancel=cancel, progress=steps.within({"eps": eps, "attack": name}),
                           **apgd_common, **extra)
            broken = torch.zeros(n, dtype=torch.bool)
            for lo in range(0, len(idx), p.batch_size):
                b = idx[lo:lo + p.batch_size]
                res = attack(x[b], y[b])
                ok = (_predict(model, res.adversarial, p.batch_size) != y[b]) & _within(x[b], res.adversarial,
                                                                                      eps, p.norm)
                broken[b] = ok
                if name in ("apgd-ce", "apgd-dlr-t"):
                    fresh = ok & ~worst[b]
                    adversarial[b[fresh]] = res.adversarial[fresh]
                    worst[b] |= ok
                if name == "apgd-ce":
                    start_loss[b] = res.extras["start_loss"].float()
                    best_loss[b] = res.extras["best_loss"].float()
                steps({"eps": eps, "attack": name})
            broken_by[name] = broken
            entry["attacks"][name] = {"robust_accuracy": float((correct & ~broken).float().mean()),
                                      "broken": int(broken.sum()), "params": attack.params}
        # the black box on what the white-box attacks left
        left = idx[~worst[idx]]
        square = build("square", model, eps=eps, queries=p.square_queries, cancel=cancel,
                       progress=steps.within({"eps": eps, "attack": "square"}), **common)
        broken = torch.zeros(n, dtype=torch.bool)
        for lo in range(0, len(left), p.batch_size):
            b = left[lo:lo + p.batch_size]
            res = square(x[b], y[b])
            ok = (_predict(model, res.adversarial, p.batch_size) != y[b]) & _within(x[b], res.adversarial, eps, p.norm)
            broken[b] = ok
            adversarial[b[ok]] = res.adversarial[ok]
        for _ in range(batches):  # planned steps, whether or not windows were left
            steps({"eps": eps, "attack": "square"})
        worst |= broken
        entry["attacks"]["square"] = {"attacked": int(len(left)), "broken": int(broken.sum()),
                                      "params": square.params}
        # random noise at the budget, for the masking check
        gen = torch.Generator().manual_seed(p.seed)
        noise_broken = torch.zeros(n, dtype=torch.bool)
        for _ in range(p.noise_draws):
            noisy = _noise_at_budget(x[idx], eps, p.norm, gen)
            noise_broken[idx] |= _predict(model, noisy, p.batch_size) != y[idx]
        steps({"eps": eps, "attack": "noise"})
        entry["attacks"]["noise"] = {"robust_accuracy": float((correct & ~noise_broken).float().mean()),
                                     "broken": int(noise_broken.sum()), "draws": p.noise_draws}

        white_only = broken_by["apgd-ce"] | broken_by["apgd-dlr-t"]
        entry["white_box_robust_accuracy"] = float((correct & ~white_only).float().mean())
        entry["robust_accuracy"] = float((correct & ~worst).float().mean())
        entry["broken"] = int(worst.sum())
        attacked = ~torch.isnan(start_loss)
        improved = (best_loss > start_loss + 1e-6 * start_loss.abs().clamp_min(1.0)) & attacked
        entry["loss"] = {"attacked": int(attacked.sum()), "improved": int(improved.sum()),
                         "improved_share": float(improved.sum() / attacked.sum()) if attacked.any() else None}
        entry["perceptual"] = _perceptual(x[worst], adversarial[worst], skeleton, fps)
        report["budgets"].append(entry)
        log.info("eps %.4f m: robust accuracy %.3f", eps, entry["robust_accuracy"])
    report["warnings"] = masking_checks(report)
    for w in report["warnings"]:
        log.warning("gradient masking? %s", w["message"])
    return report


def evaluate_models(
    models: dict[str, Any],
    data: Any,
    params: SuiteParams | None = None,
    *,
    limit: int | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> list[dict[str, Any]]:
    """The suite on every model of ``models`` (name → classifier) over the same labelled windows of ``data`` (a
    ClipDataset, WindowSet or ``(x, y)``, cut with the first model's preprocessing); ``limit`` keeps a seeded
    sample of that many windows (seed: ``params.seed``). Returns one report per model (see
    :func:`run_standard_suite`) with ``model`` and ``defence`` added, ready for :func:`write_reports`.
    ``progress(done, total, info)`` counts per mille of the whole run; ``info`` names the model and attack."""
    from engine.defenses.common import training_windows

    if not models:
        raise ParameterError("the standard suite needs at least one model: load a classifier first")
    p = params if params is not None else suite_params()
    first = next(iter(models.values()))
    x, y = training_windows(data, first)
    if limit is not None and limit < len(x):
        keep = torch.randperm(len(x), generator=torch.Generator().manual_seed(p.seed))[:limit].sort().values
        x, y = x[keep], y[keep]
    entries = []
    for i, (name, model) in enumerate(models.items()):
        def each(done: int, total: int, info: dict, i: int = i, name: str = name) -> None:
            if progress is not None:
                progress(int(1000 * (i + done / max(total, 1))), 1000 * len(models), {**info, "model": name})

        defence = (dict(getattr(model, "meta", {}) or {}).get("defence") or {}).get("method", "none")
        report = run_standard_suite(model, x, y, p, progress=each, cancel=cancel)
        entries.append({"model": name, "defence": defence, **report})
    return entries


def _perceptual(clean: torch.Tensor, adv: torch.Tensor, skeleton, fps: float) -> dict[str, Any]:
    """Perceptual cost of the successful adversaries (means over them); empty when none succeeded."""
    if len(clean) == 0 or skeleton is None:
        return {"n": int(len(clean))}
    from engine.metrics import summary

    s = summary(clean, adv, skeleton, fps)
    return {"n": s["n"], "mean_bone_length_rel_dev": s["mean_bone_length_rel_dev"],
            "mean_bone_length_dev_m": s["mean_bone_length_dev"], "mean_accel_dev": s["mean_accel_dev"],
            "mean_l2_m": s["mean_l2"], "max_linf_m": s["max_linf"]}


def masking_checks(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The gradient-masking checks (module docstring) on a suite report: one dict per check that fired, with
    ``check``, ``message`` (what was seen and what to do) and the figures behind it."""
    p = report["params"]
    n = report["n"]
    out: list[dict[str, Any]] = []
    budgets = report["budgets"]
    for e in budgets:
        sq = e["attacks"]["square"]
        if n and sq["broken"] / n > p["black_box_share"]:
            out.append({"check": "black_box_beats_white_box", "eps": e["eps"], "broken_only_by_black_box":
                        sq["broken"], "n": n, "message":
                        f"at eps {e['eps'] * 100:g} cm the black-box attack broke {sq['broken']} of {n} windows "
                        "the white-box attacks could not: their gradients are likely masked (quantised, "
                        "stochastic or vanishing); trust only the worst case, and attack the model with EOT or a "
                        "differentiable approximation (BPDA)"})
    ras = [e["robust_accuracy"] for e in budgets]
    one = 1.0 / n if n else 0.0
    rising = [(a["eps"], b["eps"]) for a, b in zip(budgets, budgets[1:])
              if b["robust_accuracy"] > a["robust_accuracy"] + one + 1e-9]
    flat = len(budgets) > 1 and ras[0] > 0 and ras[-1] >= ras[0]
    if rising or flat:
        what = (f"rises from eps {rising[0][0] * 100:g} cm to {rising[0][1] * 100:g} cm" if rising else
                f"does not fall from eps {budgets[0]['eps'] * 100:g} cm to {budgets[-1]['eps'] * 100:g} cm")
        out.append({"check": "not_falling_with_budget", "robust_accuracy": ras, "message":
                    f"robust accuracy {what} ({', '.join(f'{r:.1%}' for r in ras)}): a larger budget contains "
                    "the smaller one, so the attacks are not finding what exists; suspect gradient masking"})
    if report.get("stochastic"):
        for e in budgets:
            with_eot = e["attacks"]["apgd-ce"]["robust_accuracy"]
            without = e["attacks"].get("apgd-ce-no-eot", {}).get("robust_accuracy")
            if without is not None and abs(with_eot - without) > p["eot_gap"]:
                out.append({"check": "eot_changes_result", "eps": e["eps"], "with_eot": with_eot,
                            "without_eot": without, "message":
                            f"at eps {e['eps'] * 100:g} cm APGD-CE gives {with_eot:.1%} robust accuracy with EOT and "
                            f"{without:.1%} without: the model's randomness hides its gradient; only EOT figures "
                            "count"})
    for e in budgets:
        noise = e["attacks"]["noise"]["robust_accuracy"]
        if noise < e["white_box_robust_accuracy"]:
            out.append({"check": "noise_beats_gradients", "eps": e["eps"], "noise": noise,
                        "white_box": e["white_box_robust_accuracy"], "message":
                        f"at eps {e['eps'] * 100:g} cm random noise leaves {noise:.1%} robust accuracy, below the "
                        f"gradient attacks' {e['white_box_robust_accuracy']:.1%}: the gradients point nowhere "
                        "useful (masked)"})
    for e in budgets:
        share = e["loss"]["improved_share"]
        if share is not None and share < p["improved_share"]:
            out.append({"check": "loss_not_improved", "eps": e["eps"], "improved_share": share, "message":
                        f"at eps {e['eps'] * 100:g} cm APGD-CE raised its loss above the random start's on only "
                        f"{share:.0%} of the windows: the gradient carries no signal (zero, quantised or "
                        "shattered)"})
    return out


# -- reports ---------------------------------------------------------------------------------------------------
def leaderboard_json(entries: list[dict[str, Any]], params: SuiteParams | dict) -> dict[str, Any]:
    """The leaderboard as one JSON-ready dict: suite version, budgets, seed and parameters, then one entry per
    model (sorted by robust accuracy at the largest budget, best first)."""
    pd = to_dict(params) if isinstance(params, SuiteParams) else dict(params)

    def key(e):
        return -e["budgets"][-1]["robust_accuracy"]

    return {"suite_version": SUITE_VERSION, "budgets_m": list(pd["budgets"]), "norm": pd["norm"],
            "hold_bones": pd["hold_bones"], "seed": pd["seed"], "params": pd,
            "entries": sorted(entries, key=key)}


def leaderboard_markdown(board: dict[str, Any]) -> str:
    """The leaderboard as Markdown: robust accuracy per budget, the perceptual cost, warnings, provenance."""
    budgets = board["budgets_m"]
    cm = [f"{b * 100:g} cm" for b in budgets]
    head = ["#", "model", "defence", "clean acc."] + [f"robust acc. {c}" for c in cm] + \
           [f"bone-length change {cm[-1]}", f"accel. dev. {cm[-1]} (m/s²)", "masking warnings"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, e in enumerate(board["entries"], 1):
        last = e["budgets"][-1]["perceptual"]
        bone = last.get("mean_bone_length_rel_dev")
        acc = last.get("mean_accel_dev")
        warns = sorted({w["check"] for w in e["warnings"]})
        cells = [str(i), e.get("model", "?"), e.get("defence", "none"), f"{e['clean_accuracy']:.1%}"]
        cells += [f"{b['robust_accuracy']:.1%}" for b in e["budgets"]]
        cells += ["—" if bone is None else f"{bone:.2%}", "—" if acc is None else f"{acc:.2f}",
                  ", ".join(warns) if warns else "none"]
        lines.append("| " + " | ".join(cells) + " |")
    per_attack = ["", "Every attack's own robust accuracy (white box on every correct window; the black box "
                  "only on the windows both white-box attacks left, so its column counts the windows it broke):", "",
                  "| model | eps | APGD-CE | APGD-T | APGD-CE without EOT | Square (broke / attacked) | noise | "
                  "worst case |", "|---|---|---|---|---|---|---|---|"]
    for e in board["entries"]:
        for b in e["budgets"]:
            a = b["attacks"]
            no_eot = a.get("apgd-ce-no-eot", {}).get("robust_accuracy")
            per_attack.append(
                f"| {e.get('model', '?')} | {b['eps'] * 100:g} cm | {a['apgd-ce']['robust_accuracy']:.1%} | "
                f"{a['apgd-dlr-t']['robust_accuracy']:.1%} | {'—' if no_eot is None else f'{no_eot:.1%}'} | "
                f"{a['square']['broken']} / {a['square']['attacked']} | {a['noise']['robust_accuracy']:.1%} | "
                f"{b['robust_accuracy']:.1%} |")
    pd = board["params"]
    note = (f"\nSuite `{board['suite_version']}`; budgets {', '.join(cm)} ({board['norm']} norm"
            f"{', bone lengths held' if board['hold_bones'] else ''}); seed {board['seed']}; APGD "
            f"{pd['iterations']} iterations × {pd['restarts']} restart(s), APGD-T {pd['n_target_classes']} target "
            f"classes, Square {pd['square_queries']} queries, EOT {pd['eot_samples']} draws on stochastic models. "
            "Robust accuracy: the per-window worst case over the attacks, judged by each model's own prediction; "
            "bone-length change (relative) and acceleration deviation are means over the successful adversaries "
            "at the largest budget.\n")
    warn_lines = [f"- **{e.get('model', '?')}**: {w['message']}" for e in board["entries"] for w in e["warnings"]]
    warnings = ("\nGradient-masking warnings:\n\n" + "\n".join(warn_lines) + "\n") if warn_lines else \
        "\nNo gradient-masking warnings.\n"
    return ("# Standard robustness suite\n\n" + "\n".join(lines) + "\n" + note + "\n".join(per_attack) + "\n"
            + warnings)


def plot_png(entries: list[dict[str, Any]], path: str | Path) -> Path:
    """Robust accuracy vs budget, one line per model, as a PNG (matplotlib, Agg backend: no display needed)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is a dependency
        raise ParameterError("the robustness plot needs matplotlib: pip install matplotlib") from exc
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for e in entries:
        eps = [0.0] + [b["eps"] * 100 for b in e["budgets"]]
        ra = [e["clean_accuracy"] * 100] + [b["robust_accuracy"] * 100 for b in e["budgets"]]
        label = e.get("model", "model") + (" ⚠" if e.get("warnings") else "")
        ax.plot(eps, ra, marker="o", label=label)
    ax.set_xlabel("budget: per-joint displacement (cm)")
    ax.set_ylabel("robust accuracy (%)")
    ax.set_ylim(-2, 102)
    ax.set_title(f"Standard suite {SUITE_VERSION}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_reports(entries: list[dict[str, Any]], params: SuiteParams | dict, out: str | Path,
                  plot: bool = True) -> dict[str, Path]:
    """``OUT/leaderboard.json``, ``OUT/leaderboard.md`` and (``plot``) ``OUT/robust_accuracy.png``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    board = leaderboard_json(entries, params)
    paths = {"json": out / "leaderboard.json", "markdown": out / "leaderboard.md"}
    paths["json"].write_text(json.dumps(board, indent=2, default=_plain))
    paths["markdown"].write_text(leaderboard_markdown(board))
    if plot:
        paths["png"] = plot_png(board["entries"], out / "robust_accuracy.png")
    return paths


def _plain(value: Any) -> Any:
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, torch.Tensor):
        return value.tolist()
    return str(value)

