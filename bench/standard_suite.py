"""The standard robustness suite (:mod:`engine.defenses.standard_suite`) on the cmu8 split: an undefended small
ST-GCN, its BEAT and TRADES versions and a randomized-smoothing model, all evaluated on the same test windows.

    .venv/bin/python bench/standard_suite.py                      # 40 windows, 0.5 / 1 / 2 cm, quick suite preset
    .venv/bin/python bench/standard_suite.py --quick --json OUT   # shorter defences, 12 windows, 1 and 2 cm (bench/run.py)

Writes ``leaderboard.json``, ``leaderboard.md``, ``robust_accuracy.png`` and one JSON per model to ``--out``
(default ``bench/results/standard_suite``; with ``--quick`` a temporary folder unless ``--out`` is given) and
prints the Markdown table. The claim is the table itself (accuracies), not a time; the evaluation seconds of each
model are printed as ratios to the undefended model's, measured in the same run. Needs the shared cmu8 data.
Everything is seeded.

Headline keys (``--json``, under ``summary``): ``suite_<model>_clean`` and ``suite_<model>_robust_<eps>cm``
(robust accuracy, the per-window worst case), ``suite_<model>_warnings`` (how many masking checks fired) and
``suite_<model>_seconds_over_stgcn`` (evaluation time ÷ the undefended model's, same run).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _harness  # noqa: E402  (bench/ is the script's folder)
import torch  # noqa: E402

RECIPE = {"arch_kwargs": {"base_channels": 16, "num_blocks": 4, "dropout": 0.0}, "batch_size": 32, "lr": 2e-3,
          "seed": 0, "augment": True}  # tests/conftest.py's small cmu8 ST-GCN


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _harness.add_arguments(parser, quick="the defences trained for fewer epochs, 12 windows, 1 and 2 cm only")
    parser.add_argument("--out", default=None, help="report folder (default bench/results/standard_suite)")
    parser.add_argument("--windows", type=int, default=40, help="test windows evaluated (seeded sample)")
    parser.add_argument("--preset", default="quick", choices=["quick", "standard"], help="suite preset")
    parser.add_argument("--models", nargs="+", default=["stgcn", "beat", "trades", "smoothing"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.out is None:
        args.out = tempfile.mkdtemp(prefix="standard_suite_") if args.quick else "bench/results/standard_suite"

    from engine.benchmark import load_cmu8_benchmark
    from engine.defenses import build
    from engine.defenses.common import training_windows
    from engine.defenses.standard_suite import run_standard_suite, suite_params, write_reports
    from engine.train import train_classifier

    train, test = load_cmu8_benchmark(fps=30, window=60, stride=20, seed=0)
    epochs = 12  # fewer collapse the small ST-GCN to one class (3 epochs: every test window predicted alike)
    windows = 12 if args.quick else args.windows
    budgets = (0.01, 0.02) if args.quick else (0.005, 0.01, 0.02)
    params = suite_params(args.preset, budgets=budgets, batch_size=64)
    t0 = time.perf_counter()
    base = train_classifier("stgcn", train, None, device="cpu", preprocessing={"stride": 20}, epochs=epochs,
                            **RECIPE).classifier.eval()
    print(f"base ST-GCN: {epochs} epochs in {time.perf_counter() - t0:.0f} s", flush=True)
    recipes = {  # the defences, small and fast (stated in bench/results/standard_suite.md)
        "beat": ("beat", {"burn_in": 1 if args.quick else 2, "num_samples": 3}),
        "trades": ("trades", {"epochs": 1 if args.quick else 4}),
        "smoothing": ("smoothing", {"epochs": 1, "num_noise": 8, "sigma": 0.01}),
    }
    models = {"stgcn": base}
    for name in args.models:
        if name in recipes:
            method, kw = recipes[name]
            t0 = time.perf_counter()
            models[name] = build(method, base, seed=0, device="cpu", **kw).fit(train).eval()
            print(f"{name}: trained in {time.perf_counter() - t0:.0f} s ({kw})", flush=True)
    x, y = training_windows(test, base)
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:windows].sort().values
    x, y = x[idx], y[idx]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    entries, seconds = [], {}
    for name in args.models:
        model = models[name]
        t0 = time.perf_counter()
        report = run_standard_suite(model, x, y, params)
        seconds[name] = time.perf_counter() - t0
        entry = {"model": name, "defence": "none" if name == "stgcn" else name, **report}
        entries.append(entry)
        (out / f"{name}.json").write_text(json.dumps(entry, indent=2, default=str))
        ras = ", ".join(f"{b['eps'] * 100:g} cm {b['robust_accuracy']:.1%}" for b in report["budgets"])
        print(f"{name}: clean {report['clean_accuracy']:.1%}; robust {ras}; warnings "
              f"{sorted({w['check'] for w in report['warnings']}) or 'none'}", flush=True)
    paths = write_reports(entries, params, out)
    print(paths["markdown"].read_text())
    ref = seconds.get("stgcn") or next(iter(seconds.values()))
    print("evaluation time relative to the undefended ST-GCN (same run): " +
          ", ".join(f"{k} ×{v / ref:.1f}" for k, v in seconds.items()))
    summary: dict = {}
    for e in entries:
        m = e["model"]
        summary[f"suite_{m}_clean"] = round(e["clean_accuracy"], 4)
        for b in e["budgets"]:
            summary[f"suite_{m}_robust_{b['eps'] * 100:g}cm"] = round(b["robust_accuracy"], 4)
        summary[f"suite_{m}_warnings"] = len({w["check"] for w in e["warnings"]})
        summary[f"suite_{m}_seconds_over_stgcn"] = round(seconds[m] / ref, 3)
    results = {"windows": windows, "preset": args.preset, "budgets_m": list(budgets), "epochs": epochs,
               "recipes": {k: v[1] for k, v in recipes.items() if k in args.models}, "out": str(out),
               "entries": [{"model": e["model"], "clean_accuracy": e["clean_accuracy"],
                            "robust_accuracy": {f"{b['eps']:g}": b["robust_accuracy"] for b in e["budgets"]},
                            "attacks": {f"{b['eps']:g}": {k: v.get("robust_accuracy", v.get("broken"))
                                                          for k, v in b["attacks"].items()} for b in e["budgets"]},
                            "warnings": sorted({w["check"] for w in e["warnings"]}),
                            "seconds": seconds[e["model"]]} for e in entries]}
    _harness.write_json(args.json, __file__, args, summary, results, device="cpu")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
