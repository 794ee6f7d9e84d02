"""``skelviz robustness``: a RobustBench-style table of classifiers (plain or defended) under attacks.

For every checkpoint: clean accuracy and robust accuracy under every attack on the held-out windows, the
attacks' parameters, the training time the checkpoint records and the forward passes one prediction costs;
written as ``DIR/<model>.json`` (one per model) and ``DIR/leaderboard.md`` (sorted by the worst-case robust
accuracy). Whether an attack broke a window is judged by the model's own prediction on the attacked clip.

With ``--suite standard`` the attacks are not chosen: the standard suite (:mod:`engine.defenses.standard_suite`,
AutoAttack's ensemble carried over to motion: APGD-CE, APGD-T, a Square-style black box, EOT on stochastic
models) runs at fixed budgets in metres; it writes ``DIR/<model>.json`` (every attack's figure, the perceptual
cost and the gradient-masking warnings), ``DIR/leaderboard.json`` / ``DIR/leaderboard.md`` (suite version,
budgets and seed recorded) and ``DIR/robust_accuracy.png``, and prints the warnings.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

HELP = "robust accuracy of classifier checkpoints under attacks: per-model JSON and a Markdown leaderboard"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", required=True, nargs="+", help="classifier checkpoints (.pt), plain or defended")
    parser.add_argument("--attacks", nargs="+", default=["smart", "eot-smart"],
                        help="attack names from the registry (e.g. smart basar eot-smart)")
    parser.add_argument("--data", required=True, help="labelled dataset file")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--split", default="test", choices=["test", "all"],
                        help="test: the held-out clips of each checkpoint's split (default); all: every clip")
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first K windows only")
    parser.add_argument("--iterations", type=int, default=None, help="iterations of the gradient attacks")
    parser.add_argument("--lr", type=float, default=None, help="step (metres per frame) of SMART / EOT-SMART")
    parser.add_argument("--eot-samples", type=int, default=None, help="EOT draws per gradient (default 8)")
    parser.add_argument("--param", action="append", default=[], metavar="ATTACK.KEY=VALUE",
                        help="any attack hyper-parameter (repeatable), e.g. --param basar.max_queries=2000")
    parser.add_argument("--budget", type=float, default=None,
                        help="metres: a window only counts as broken when the attack's mean joint displacement is "
                             "at most this (needed for unbounded attacks such as BASAR)")
    suite = parser.add_argument_group("standard suite (--suite standard; --attacks, --lr and --budget do not apply)")
    suite.add_argument("--suite", choices=["standard"], default=None,
                       help="run the standard suite: a fixed APGD-CE + APGD-T + black-box ensemble with EOT on "
                            "stochastic models and gradient-masking checks")
    suite.add_argument("--suite-preset", choices=["standard", "quick"], default="standard",
                       help="standard: AutoAttack's published settings; quick: fewer iterations and queries")
    suite.add_argument("--budgets", type=float, nargs="+", default=None, metavar="M",
                       help="per-joint budgets in metres, ascending (default 0.005 0.01 0.02)")
    suite.add_argument("--norm", choices=["joint", "linf"], default=None,
                       help="joint: every joint's 3-D displacement within the budget in every frame (default); "
                            "linf: every coordinate")
    suite.add_argument("--hold-bones", action="store_true", help="hold the clean bone lengths by projection")
    suite.add_argument("--seed", type=int, default=None, help="seed of every attack of the suite (default 0)")
    suite.add_argument("--no-plot", action="store_true", help="skip the PNG plot")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def attack_params(args: argparse.Namespace) -> dict[str, dict]:
    from engine.attacks.base import get_attack
    from engine.errors import SkelvizError
    from engine.params import specs
    from skelviz.cli.defend import parse_params

    per: dict[str, dict] = {name: {} for name in args.attacks}
    for name in args.attacks:
        takes = {s.name for s in specs(get_attack(name).Params)}
        if args.iterations is not None and "iterations" in takes:  # BASAR counts queries, not iterations
            per[name]["iterations"] = args.iterations
        if args.lr is not None and "smart" in name:
            per[name]["lr"] = args.lr
        if args.eot_samples is not None and name.startswith("eot"):
            per[name]["eot_samples"] = args.eot_samples
        if "smart" in name:
            per[name].setdefault("record_history", False)
    for key, value in parse_params(args.param).items():
        attack, dot, param = key.partition(".")
        if not dot or attack not in per:
            raise SkelvizError(f"--param {key}=…: name one of the attacks {args.attacks} as ATTACK.KEY")
        per[attack][param] = value
    return per


def suite_settings(args: argparse.Namespace):
    """:class:`~engine.defenses.standard_suite.SuiteParams` from the options (``--param suite.KEY=VALUE`` too)."""
    from engine.defenses.standard_suite import suite_params
    from engine.errors import SkelvizError
    from skelviz.cli.defend import parse_params

    over: dict = {}
    if args.budgets is not None:
        over["budgets"] = args.budgets
    if args.norm is not None:
        over["norm"] = args.norm
    if args.hold_bones:
        over["hold_bones"] = True
    if args.seed is not None:
        over["seed"] = args.seed
    if args.iterations is not None:
        over["iterations"] = args.iterations
    if args.eot_samples is not None:
        over["eot_samples"] = args.eot_samples
    for key, value in parse_params(args.param).items():
        scope, dot, name = key.partition(".")
        if scope != "suite" or not dot:
            raise SkelvizError(f"--param {key}=…: with --suite give suite parameters as suite.KEY=VALUE "
                               "(e.g. suite.square_queries=1000)")
        over[name] = value
    return suite_params(args.suite_preset, **over)


def model_entry(path: Path, model, evaluation: dict, data: str, split: str) -> dict:
    meta = dict(getattr(model, "meta", {}) or {})
    defence = meta.get("defence") or {}
    train_seconds = defence.get("train_seconds", meta.get("train_seconds"))
    return {
        "model": path.stem,
        "checkpoint": str(path),
        "architecture": getattr(model, "arch", type(model).__name__),
        "defence": defence.get("method", "none"),
        "defence_params": defence.get("params", {}),
        "dataset": {"path": data, "split": split, "n": evaluation["n"]},
        "clean_accuracy": evaluation["clean_accuracy"],
        "robust_accuracy": {k: v["robust_accuracy"] for k, v in evaluation["attacks"].items()},
        "attacks": evaluation["attacks"],
        "training_time_s": train_seconds,
        "base_training_time_s": meta.get("train_seconds"),
        "forward_passes_per_prediction": int(getattr(model, "forward_passes_per_prediction", 1)),
    }


def leaderboard(entries: list[dict], attacks: list[str]) -> str:
    def worst(e):
        values = [v for v in e["robust_accuracy"].values() if v == v]
        return min(values) if values else float("nan")

    rows = sorted(entries, key=lambda e: -worst(e) if worst(e) == worst(e) else 1.0)
    head = ["#", "model", "defence", "clean acc."] + [f"robust acc. ({a})" for a in attacks] + \
           ["worst case", "training time (s)", "passes / prediction"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, e in enumerate(rows, 1):
        t = e["training_time_s"]
        cells = [str(i), e["model"], e["defence"], f"{e['clean_accuracy']:.1%}"]
        cells += [f"{e['robust_accuracy'].get(a, float('nan')):.1%}" for a in attacks]
        cells += [f"{worst(e):.1%}", "—" if t is None else f"{float(t):.1f}", str(e["forward_passes_per_prediction"])]
        lines.append("| " + " | ".join(cells) + " |")
    n = entries[0]["dataset"]["n"] if entries else 0
    note = (f"\nRobust accuracy: windows classified correctly before and after the attack, over {n} windows; "
            "judged by each model's own prediction on the attacked clip.\n")
    return "# Robustness leaderboard\n\n" + "\n".join(lines) + "\n" + note


def run(args: argparse.Namespace) -> int:
    from engine.distributed import dist_context

    # Under torchrun every rank attacks its share of each attack's batches on its own device; rank 0 writes
    # DIR and prints (engine.distributed). A single process is unaffected.
    with dist_context(args.device) as ctx:
        return _run(args, ctx)


def _run(args: argparse.Namespace, ctx) -> int:
    import torch

    if args.suite is not None:
        return _run_suite(args, ctx)

    from engine.checkpoints import load_classifier
    from engine.defenses.common import training_windows
    from engine.defenses.robustness import evaluate_robustness
    from skelviz.cli.defend import Progress, split_windows

    out = Path(args.out)
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
    device = ctx.device
    params = attack_params(args)
    entries = []
    for path in map(Path, args.models):
        model = load_classifier(path).to(device).eval()
        x, y = training_windows(split_windows(args.data, model, args.split), model)
        if args.limit is not None:
            x, y = x[: args.limit], y[: args.limit]
        t0 = time.perf_counter()
        torch.manual_seed(0)
        evaluation = evaluate_robustness(model, x, y, [(a, params[a]) for a in args.attacks],
                                         batch_size=args.batch_size, budget=args.budget,
                                         progress=Progress(path.stem, args.quiet or not ctx.is_main))
        entry = model_entry(path, model, evaluation, args.data, args.split)
        entry["evaluation_seconds"] = round(time.perf_counter() - t0, 2)
        entries.append(entry)
        if not ctx.is_main:
            continue
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem) or "model"
        (out / f"{name}.json").write_text(json.dumps(entry, indent=2, default=str))
        robust = ", ".join(f"{a} {v:.1%}" for a, v in entry["robust_accuracy"].items())
        print(f"{path.name}: clean {entry['clean_accuracy']:.1%}; robust {robust}")
    if ctx.is_main:
        (out / "leaderboard.md").write_text(leaderboard(entries, list(args.attacks)))
        print(f"wrote {len(entries)} model report(s) and {out / 'leaderboard.md'}")
    return 0


def _run_suite(args: argparse.Namespace, ctx) -> int:
    from engine.checkpoints import load_classifier
    from engine.defenses.common import training_windows
    from engine.defenses.standard_suite import run_standard_suite, write_reports
    from skelviz.cli.defend import Progress, split_windows

    params = suite_settings(args)  # checked before any model is loaded
    out = Path(args.out)
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
    entries = []
    for path in map(Path, args.models):
        model = load_classifier(path).to(ctx.device).eval()
        x, y = training_windows(split_windows(args.data, model, args.split), model)
        if args.limit is not None:
            x, y = x[: args.limit], y[: args.limit]
        t0 = time.perf_counter()
        report = run_standard_suite(model, x, y, params, progress=Progress(path.stem, args.quiet or not ctx.is_main))
        base = model_entry(path, model, {"n": report["n"], "clean_accuracy": report["clean_accuracy"],
                                         "attacks": {}}, args.data, args.split)
        for key in ("robust_accuracy", "attacks"):
            base.pop(key)
        entry = {**base, **report, "evaluation_seconds": round(time.perf_counter() - t0, 2)}
        entries.append(entry)
        if not ctx.is_main:
            continue
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem) or "model"
        (out / f"{name}.json").write_text(json.dumps(entry, indent=2, default=str))
        robust = ", ".join(f"{b['eps'] * 100:g} cm {b['robust_accuracy']:.1%}" for b in report["budgets"])
        print(f"{path.name}: clean {report['clean_accuracy']:.1%}; robust (worst case) {robust}")
        for w in report["warnings"]:
            print(f"  warning ({w['check']}): {w['message']}")
    if ctx.is_main:
        paths = write_reports(entries, params, out, plot=not args.no_plot)
        print(f"wrote {len(entries)} model report(s), {paths['json']} and {paths['markdown']}"
              + (f" and {paths['png']}" if "png" in paths else ""))
    return 0
