"""Transfer matrix on cmu8: TASAR against the transfer baselines, surrogate × victim, seven architectures.

    .venv/bin/python bench/transfer.py [--quick] [--arch stgcn mlp ...] [--windows 24] [--eps 0.01]
                                        [--iterations 50] [--json OUT] [--out FILE.md]

Victims (and surrogates): each architecture's ``small`` preset trained with :func:`engine.train.train_classifier`
on the cmu8 benchmark train windows (30 fps, 60-frame windows, stride 20, the field's augmentation), seeded, as in
``bench/smart_table.py``. Trained checkpoints are cached in ``bench/.cache/transfer/`` (git-ignored by a
``.gitignore`` the script writes there) keyed by architecture, epochs and seed; ``--no-cache`` retrains.

Attacked clips: the first ``--windows`` held-out windows that *every* model classifies correctly, so each cell of
the matrix counts the same clips (:mod:`engine.attacks.transfer` still judges each victim by its own prediction
on the replayed clip and counts only clips the surrogate attack fooled and the victim got right when clean).

Methods, all at one per-joint L∞ budget ``--eps`` (metres, every coordinate of every joint within ±eps),
``--iterations`` steps, no early stopping (transfer attacks run every step, as the papers do):

* ``mifgsm``  MI-FGSM on one surrogate (Dong et al. 2018), step eps/10, μ = 1;
* ``dim``     MI-FGSM with motion input diversity (Xie et al. 2019, adapted: temporal crop-resample and scaling);
* ``tasar``   TASAR (Diao et al. 2025): the surrogate post-trained into a Bayesian surrogate
              (:func:`engine.attacks.tasar.post_train_bayesian`), weight samples and the motion-dynamics gradient;
              the paper's number of weight samples is cut to ``--samples`` per head (default 20, quick 4);
* ``ens``     MI-FGSM on the logit average of an ensemble of surrogates (Dong et al. 2018);
* ``svre``    SVRE on the same ensemble (Xiong et al. 2022).

Single-surrogate methods give one row per surrogate; the ensemble methods one row for the ensemble ``--ensemble``
(default stgcn ctrgcn msg3d, the ensemble of the TASAR code's README); their own members' columns are white-box.
Summary: per method, the mean transfer rate over the off-diagonal cells (victims other than the surrogate, and for
ensembles victims outside the ensemble). Ratios are measured side by side in the same run on the same clips.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import _harness
import numpy as np
import torch

from engine.attacks import build
from engine.attacks.transfer import markdown_matrix, transfer_attack
from engine.benchmark import load_cmu8_benchmark
from engine.checkpoints import load_classifier, save_classifier
from engine.models import MODELS, preset_kwargs
from engine.train import evaluate, train_classifier

CACHE = Path(__file__).resolve().parent / ".cache" / "transfer"
log = logging.getLogger("bench.transfer")


def _cache_dir() -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    ignore = CACHE.parent / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n", encoding="utf-8")
    return CACHE


def trained_models(archs, train, epochs: int, seed: int, use_cache: bool = True) -> dict:
    """``{arch: classifier}``: each ``small`` preset trained on ``train`` (cached by arch, epochs and seed)."""
    models = {}
    for arch in archs:
        path = _cache_dir() / f"{arch}_e{epochs}_s{seed}.pt"
        if use_cache and path.is_file():
            models[arch] = load_classifier(path, map_location="cpu").eval()
            continue
        t0 = time.perf_counter()
        clf = train_classifier(arch, train, None, arch_kwargs=preset_kwargs(arch, "small"), epochs=epochs,
                               seed=seed, device="cpu", augment=True, preprocessing={"stride": 20}).classifier
        save_classifier(clf, path)
        log.info("trained %s in %.0f s", arch, time.perf_counter() - t0)
        models[arch] = clf.eval()
    return models


def common_correct(models: dict, test, limit: int) -> np.ndarray:
    """Indices of the first ``limit`` test windows every model classifies correctly."""
    ok = np.ones(len(test), dtype=bool)
    x = torch.as_tensor(test.x)
    with torch.no_grad():
        for clf in models.values():
            ok &= clf(x).argmax(1).numpy() == test.y
    return np.flatnonzero(ok)[:limit]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="*", default=sorted(MODELS))
    parser.add_argument("--methods", nargs="*", default=["mifgsm", "dim", "tasar", "ens", "svre"])
    parser.add_argument("--ensemble", nargs="*", default=["stgcn", "ctrgcn", "msg3d"])
    parser.add_argument("--windows", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--eps", type=float, default=0.01, help="per-joint L∞ budget (m)")
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--samples", type=int, default=20, help="TASAR weight samples per head and step")
    parser.add_argument("--post-epochs", type=int, default=5, help="TASAR post-training epochs per phase")
    parser.add_argument("--seed", type=int, default=0)
    _harness.add_arguments(parser, quick="three architectures, 8 windows, 10 iterations, 4 samples, 6 epochs")
    parser.add_argument("--train-only", action="store_true", help="train and cache the models, then stop")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--out", help="write the Markdown report here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    torch.set_num_threads(1)
    if args.quick:
        args.arch = [a for a in ("stgcn", "mlp", "sgn") if a in MODELS]
        args.ensemble = ["stgcn", "mlp"]
        args.windows, args.iterations, args.samples, args.epochs = 8, 10, 4, 6
        args.post_epochs = 2

    train, test = load_cmu8_benchmark(fps=30, window=60, stride=20, seed=args.seed)
    t0 = time.perf_counter()
    models = trained_models(args.arch, train, args.epochs, args.seed, use_cache=not args.no_cache)
    accuracy = {a: evaluate(m, test)["accuracy"] for a, m in models.items()}
    log.info("models ready in %.0f s: %s", time.perf_counter() - t0,
             ", ".join(f"{a} {v:.0%}" for a, v in accuracy.items()))
    if args.train_only:
        return 0
    return run_matrix(args, models, accuracy, train, test)


def run_matrix(args, models: dict, accuracy: dict, train, test) -> int:
    from engine.attacks.tasar import post_train_bayesian

    idx = common_correct(models, test, args.windows)
    if len(idx) == 0:
        log.error("no held-out window is classified correctly by every model")
        return 1
    x, y = torch.as_tensor(test.x[idx]), torch.as_tensor(test.y[idx])
    eps, iters = args.eps, args.iterations
    common = {"eps": eps, "iterations": iters, "early_stop": False}
    rows: dict[str, dict[str, dict[str, float]]] = {m: {} for m in args.methods}
    seconds: dict[str, float] = {m: 0.0 for m in args.methods}
    extras: dict[str, float] = {}
    for method in args.methods:
        if method in ("ens", "svre"):
            members = [a for a in args.ensemble if a in models]
            surrogates = [models[a] for a in members]
            t1 = time.perf_counter()
            attack = build(method, surrogates[0], surrogates=surrogates[1:], **common)
            result = transfer_attack(attack, models, x, y)
            seconds[method] += time.perf_counter() - t1
            name = "+".join(members)
            row = {v: o.success_rate for v, o in result.victims.items()}
            row = {"surrogate": float(result.surrogate_success.float().mean()), **row}
            rows[method][name] = row
            log.info("%s %s: %s", method, name, row)
            continue
        for arch, surrogate in models.items():
            t1 = time.perf_counter()
            if method == "tasar":
                bayes = post_train_bayesian(surrogate, train, epochs=args.post_epochs, seed=args.seed)
                extras[f"tasar_post_train_accuracy_{arch}"] = evaluate(bayes, test, device="cpu")["accuracy"]
                attack = build("tasar", bayes, eps=eps, iterations=iters, samples=args.samples)
            else:
                attack = build(method, surrogate, **common)
            result = transfer_attack(attack, models, x, y)
            seconds[method] += time.perf_counter() - t1
            row = {"surrogate": float(result.surrogate_success.float().mean())}
            row.update({v: o.success_rate for v, o in result.victims.items()})
            rows[method][arch] = row
            log.info("%s %s: %s (%.0f s)", method, arch, {k: round(v, 2) for k, v in row.items()},
                     time.perf_counter() - t1)
    report = _report(args, rows, seconds, accuracy, extras, len(idx))
    print(report["markdown"])
    if args.out:
        Path(args.out).write_text(report["markdown"], encoding="utf-8")
    figures = report["figures"]
    summary = {k: v for k, v in figures.items() if k.endswith("_mean_transfer")}
    if "tasar_mean_transfer" in summary and summary.get("mifgsm_mean_transfer"):
        summary["tasar_transfer_over_mifgsm"] = summary["tasar_mean_transfer"] / summary["mifgsm_mean_transfer"]
    _harness.write_json(args.json, __file__, args, summary, figures, device="cpu")
    return 0


def _off_diagonal_mean(method_rows: dict, ensemble_members: set[str] | None = None) -> float | None:
    cells = []
    for name, row in method_rows.items():
        own = ensemble_members if ensemble_members is not None else {name}
        cells += [v for victim, v in row.items() if victim != "surrogate" and victim not in own]
    return float(np.mean(cells)) if cells else None


def _report(args, rows, seconds, accuracy, extras, n) -> dict:
    lines = [
        "# Transfer attacks on cmu8: TASAR vs the baselines\n",
        f"{n} held-out windows classified correctly by every model; per-joint L∞ budget {args.eps * 100:g} cm; "
        f"{args.iterations} iterations, no early stopping; seed {args.seed}. Cells: transfer success rate "
        "(victim's own prediction on the replayed clip, among clips the surrogate attack fooled and the victim "
        "got right clean); column `surrogate`: white-box rate on the attacked model (for TASAR the "
        "post-trained Bayesian surrogate).\n",
        "Clean held-out accuracy: " + ", ".join(f"{a} {v:.0%}" for a, v in accuracy.items()) + "\n",
    ]
    figures: dict[str, float | int | None] = {"n_windows": n, "eps_m": args.eps, "iterations": args.iterations}
    summary = ["| method | mean off-diagonal transfer | time (s) | time ÷ MI-FGSM |", "|---|---|---|---|"]
    members = set(args.ensemble)
    base_t = seconds.get("mifgsm") or None
    for method, method_rows in rows.items():
        if not method_rows:
            continue
        lines.append(f"## {method}\n")
        lines.append(markdown_matrix(method_rows, title=f"{method}: surrogate \\ victim"))
        mean = _off_diagonal_mean(method_rows, members if method in ("ens", "svre") else None)
        figures[f"{method}_mean_transfer"] = mean
        for name, row in method_rows.items():
            for victim, v in row.items():
                figures[f"{method}_{name}_to_{victim}"] = v
        ratio = f"{seconds[method] / base_t:.1f}" if base_t else "–"
        summary.append(f"| {method} | {'–' if mean is None else f'{mean:.1%}'} | {seconds[method]:.0f} | {ratio} |")
    figures.update(extras)
    figures.update({f"clean_accuracy_{a}": v for a, v in accuracy.items()})
    lines += ["## Summary\n", "\n".join(summary) + "\n"]
    if extras:
        lines.append("TASAR post-trained surrogates' clean accuracy: "
                     + ", ".join(f"{k.rsplit('_', 1)[1]} {v:.0%}" for k, v in extras.items()) + "\n")
    return {"markdown": "\n".join(lines), "figures": figures}


if __name__ == "__main__":
    sys.exit(main())
