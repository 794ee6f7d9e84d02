"""Training wall time of BEAT vs TRADES vs SMART-AT (and MART) on the same base model and data, and the robustness
table of every model (clean accuracy, robust accuracy under SMART-AB, EOT-SMART and I-FGSM).

Run: ``.venv/bin/python bench/defence.py [--arch mlp,stgcn] [--epochs 10] [--attack-windows N] [--threads 1]
[--quick] [--json OUT]``.
The MLP base is the SMART/BEAT code's ``ThreeLayerMLP`` width (512, the ``paper`` preset), the ST-GCN the
``small`` preset; BEAT runs both of its named presets (``runner-up``, skelviz's recipe and the default;
``published``, the authors' code settings). Models take world-coordinate motion and centre it themselves
(:mod:`engine.preprocessing`), so no attack can win through the root channel. Every model is attacked with the
same attacks and settings on the same test windows.

``--quick`` (a minute or two on a laptop CPU): per architecture a briefly trained base (the MLP-512; the ST-GCN of
the test suite, 16 channels, 4 blocks), BEAT (runner-up) and TRADES only, 3 epochs each, 20 attack iterations on
24 (MLP) / 12 (ST-GCN) test windows. Its robustness figures are a smoke test; the claim is the wall-time ratio.

Headline keys (``--json``): ``beat_seconds_over_trades`` (the largest over the architectures run; ≤ 1/3 is the
goal), ``beat_seconds_over_trades_<arch>``, and per architecture and model ``<arch>_<model>_clean``,
``_robust_smart``, ``_robust_eot_smart``, ``_robust_ifgsm``, ``_train_seconds``.
Needs the shared cmu8 data. Everything is seeded; times are wall clock on this machine, reported as ratios to
TRADES measured in the same run (the machine may be shared: compare ratios, not seconds).
"""

from __future__ import annotations

import argparse
import time

import torch
from _harness import add_arguments, write_json

QUICK_STGCN = {"base_channels": 16, "num_blocks": 4, "dropout": 0.0}  # tests/conftest.py's CMU8_STGCN_RECIPE


def _key(name: str) -> str:
    return name.replace(" (", "_").replace(")", "").replace("-", "_").replace(" ", "_")


def run_arch(arch: str, args, train, test, summary: dict, results: dict) -> None:
    from engine.defenses import build
    from engine.defenses.common import clean_accuracy
    from engine.defenses.robustness import evaluate_robustness
    from engine.models.base import preset_kwargs
    from engine.train import train_classifier

    quick = args.quick
    if arch == "mlp":
        kwargs = preset_kwargs("mlp", "paper")
    else:
        kwargs = dict(QUICK_STGCN) if quick else preset_kwargs(arch, "small")
    base_epochs = args.base_epochs or (10 if quick else 30)
    t0 = time.perf_counter()
    extra = {"lr": 2e-3, "augment": True} if quick and arch == "stgcn" else {}
    base = train_classifier(arch, train, arch_kwargs=kwargs, epochs=base_epochs, seed=0, device=args.device,
                            preprocessing={"stride": 20}, **extra).classifier
    base_seconds = time.perf_counter() - t0
    print(f"\n## {arch}\nbase {arch}: {len(train)} train / {len(test)} test windows, trained {base_epochs} epochs in "
          f"{base_seconds:.1f} s; {torch.get_num_threads()} thread(s), device {args.device}")

    n = args.epochs or (3 if quick else 10)
    beat = {"burn_in": max(0, n - 5), "num_samples": min(5, n)}
    recipes = {  # row name: (defence, preset, its parameters, what it trains)
        "beat (runner-up)": ("beat", "runner-up", beat, "appended 2-layer head only"),
        "beat (published)": ("beat", "published", beat, "appended 2-layer head only"),
        "trades": ("trades", None, {"epochs": n}, "all weights"),
        "smart-at": ("smart-at", None, {"epochs": n}, "all weights"),
        "mart": ("mart", None, {"epochs": n}, "all weights"),
    }
    chosen = args.defences.split(",") if args.defences else (
        ["beat (runner-up)", "trades"] if quick else list(recipes))
    unknown = [c for c in chosen if c not in recipes]
    if unknown or "trades" not in chosen or "beat (runner-up)" not in chosen:
        raise SystemExit(f"--defences: choose among {list(recipes)} (trades and beat (runner-up) always run); "
                         f"got {chosen}")
    models = {"base": base}
    seconds = {}
    for name in chosen:
        method, preset, params, _ = recipes[name]
        defence = build(method, base, preset=preset, seed=0, device=args.device, **params)
        models[name] = defence.fit(train)
        seconds[name] = defence.seconds
        print(f"  {name:17s} {n} epochs: {defence.seconds:7.1f} s", flush=True)

    ratio = seconds["beat (runner-up)"] / seconds["trades"]
    summary[f"beat_seconds_over_trades_{arch}"] = round(ratio, 4)
    print(f"\nTraining wall time ({arch}; same base model, data, device, thread count and number of epochs, measured "
          "side by side in this run)")
    print("| defence | trains | seconds | × TRADES |")
    print("|---|---|---|---|")
    for name, s in seconds.items():
        print(f"| {name} | {recipes[name][3]} | {s:.1f} | {s / seconds['trades']:.2f} |")
    print(f"BEAT (runner-up) wall time / TRADES wall time = {ratio:.3f} (goal ≤ 0.33)")

    x, y = torch.from_numpy(test.x), torch.from_numpy(test.y)
    windows = args.attack_windows or ((24 if arch == "mlp" else 12) if quick else (97 if arch == "mlp" else 40))
    iterations = args.iterations or (20 if quick else 40)
    # The same test windows for every model (RobustBench's definition: a window the model gets wrong when clean
    # counts as broken), a seeded sample of them when there are fewer than the test set.
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:windows].sort().values
    attack = {"iterations": iterations, "lr": args.lr, "record_history": False}
    attacks = [("smart", attack), ("eot-smart", {**attack, "eot_samples": 8}),
               ("ifgsm", {"eps": 0.01, "iterations": iterations})]
    print(f"\nRobustness ({arch}): SMART-AB and EOT-SMART ({iterations} iterations, step {args.lr} m/frame, no budget; "
          f"EOT over 8 draws of the model's randomness) and I-FGSM (±1 cm per coordinate, {iterations} iterations) "
          f"on {len(idx)} of the {len(x)} test windows, identical for every model (robust accuracy = correct when "
          "clean and still correct after the attack); clean accuracy on all test windows", flush=True)
    print("| model | clean acc. | robust acc. SMART | robust acc. EOT-SMART | robust acc. I-FGSM 1 cm | passes / "
          "prediction | train s |")
    print("|---|---|---|---|---|---|---|")
    rows = {}
    for name, m in models.items():
        t = time.perf_counter()
        r = evaluate_robustness(m, x[idx], y[idx], attacks)
        a = r["attacks"]
        row = {"clean": clean_accuracy(m, x, y), "robust_smart": a["smart"]["robust_accuracy"],
               "robust_eot_smart": a["eot-smart"]["robust_accuracy"], "robust_ifgsm": a["ifgsm"]["robust_accuracy"],
               "train_seconds": seconds.get(name, base_seconds)}
        rows[name] = row
        for k, v in row.items():
            summary[f"{arch}_{_key(name)}_{k}"] = round(float(v), 4)
        print(f"| {name} | {row['clean']:.1%} | {row['robust_smart']:.1%} | {row['robust_eot_smart']:.1%} | "
              f"{row['robust_ifgsm']:.1%} | {m.forward_passes_per_prediction} | {row['train_seconds']:.1f} |  "
              f"(evaluated in {time.perf_counter() - t:.0f} s)", flush=True)
    b, tr, bs = rows["beat (runner-up)"], rows["trades"], rows["base"]
    goal = {"time": ratio <= 1 / 3, "smart": b["robust_smart"] >= tr["robust_smart"],
            "eot_smart": b["robust_eot_smart"] >= tr["robust_eot_smart"], "clean": b["clean"] >= bs["clean"] - 0.02}
    print(f"goal ({arch}): BEAT time ≤ 1/3 TRADES {goal['time']}; robust ≥ TRADES: SMART {goal['smart']}, "
          f"EOT-SMART {goal['eot_smart']}; clean within 2 points of the base {goal['clean']}")
    results[arch] = {"epochs": n, "base_epochs": base_epochs, "attack_windows": len(idx), "iterations": iterations,
                     "seconds": seconds, "rows": rows, "goal_met": goal}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="mlp,stgcn", help="base architectures, comma-separated (mlp, stgcn)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of every defence (BEAT: burn-in + samples); "
                        "default 10 (quick: 3)")
    parser.add_argument("--base-epochs", type=int, default=None, help="default 30 (quick: 10)")
    parser.add_argument("--defences", default=None, help="comma-separated rows to train (default: all; quick: "
                        "'beat (runner-up),trades')")
    parser.add_argument("--attack-windows", type=int, default=None,
                        help="test windows evaluated per model (default: MLP 97 = all, ST-GCN 40; quick 24 / 12)")
    parser.add_argument("--iterations", type=int, default=None, help="SMART / EOT-SMART / I-FGSM iterations "
                        "(default 40; quick 20)")
    parser.add_argument("--lr", type=float, default=0.005, help="SMART step, metres per frame")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    add_arguments(parser, "short base training, BEAT and TRADES only, 3 epochs, 20 attack iterations, 24/12 windows")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from engine.benchmark import load_cmu8_benchmark

    train, test = load_cmu8_benchmark()
    summary: dict = {}
    results: dict = {}
    for arch in args.arch.split(","):
        run_arch(arch.strip(), args, train, test, summary, results)
    ratios = [v for k, v in summary.items() if k.startswith("beat_seconds_over_trades_")]
    summary["beat_seconds_over_trades"] = max(ratios)
    print(f"\nbeat_seconds_over_trades = {summary['beat_seconds_over_trades']:.3f} (the largest over "
          f"{args.arch}; goal ≤ 0.33)")
    write_json(args.json, __file__, args, summary, results, device=args.device)


if __name__ == "__main__":
    main()
