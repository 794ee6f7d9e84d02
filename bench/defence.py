"""Training wall time of BEAT vs TRADES vs SMART-AT (and MART) on the same base model and data, and the robustness
table of every model (clean accuracy, robust accuracy under SMART-AB and EOT-SMART).

Run: ``.venv/bin/python bench/defence.py [--arch mlp|stgcn] [--epochs 10] [--attack-windows 97] [--threads 2]``.
The MLP base is the SMART/BEAT code's ``ThreeLayerMLP`` width (512, the ``paper`` preset); BEAT runs both of its
named presets (``runner-up``, skelviz's recipe and the default; ``published``, the authors' code settings).
Models take world-coordinate motion and centre it themselves (:mod:`engine.preprocessing`), so no attack can win
through the root channel.
Needs the shared cmu8 data. Everything is seeded; figures are wall-clock times on this machine, reported as
ratios to BEAT measured in the same run (the machine may be shared: compare ratios, not seconds).
"""

from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="mlp", help="base architecture (mlp is fast on a CPU; stgcn is slower)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of every defence (BEAT: burn-in + samples)")
    parser.add_argument("--base-epochs", type=int, default=30)
    parser.add_argument("--attack-windows", type=int, default=97, help="test windows evaluated per model (97: all)")
    parser.add_argument("--iterations", type=int, default=40, help="SMART / EOT-SMART iterations")
    parser.add_argument("--lr", type=float, default=0.005, help="SMART step, metres per frame")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from engine.benchmark import load_cmu8_benchmark
    from engine.defenses import build
    from engine.defenses.common import clean_accuracy
    from engine.defenses.robustness import evaluate_robustness
    from engine.models.base import preset_kwargs
    from engine.train import train_classifier

    train, test = load_cmu8_benchmark()
    kwargs = preset_kwargs("mlp", "paper") if args.arch == "mlp" else preset_kwargs(args.arch, "small")
    t0 = time.perf_counter()
    base = train_classifier(args.arch, train, arch_kwargs=kwargs, epochs=args.base_epochs, seed=0,
                            device=args.device, preprocessing={"stride": 20}).classifier
    base_seconds = time.perf_counter() - t0
    print(f"base {args.arch}: {len(train)} train / {len(test)} test windows, trained {args.base_epochs} epochs "
          f"in {base_seconds:.1f} s; {torch.get_num_threads()} thread(s), device {args.device}")

    n = args.epochs
    beat = {"burn_in": max(0, n - 5), "num_samples": min(5, n)}
    recipes = {  # row name: (defence, preset, its parameters, what it trains)
        "beat (runner-up)": ("beat", "runner-up", beat, "appended 2-layer head only"),
        "beat (published)": ("beat", "published", beat, "appended 2-layer head only"),
        "trades": ("trades", None, {"epochs": n}, "all weights"),
        "smart-at": ("smart-at", None, {"epochs": n}, "all weights"),
        "mart": ("mart", None, {"epochs": n}, "all weights"),
    }
    models = {"base": base}
    seconds = {}
    for name, (method, preset, params, _) in recipes.items():
        defence = build(method, base, preset=preset, seed=0, device=args.device, **params)
        models[name] = defence.fit(train)
        seconds[name] = defence.seconds
        print(f"  {name:17s} {n} epochs: {defence.seconds:7.1f} s", flush=True)

    print("\nTraining wall time (same base model, data and number of epochs)")
    print("| defence | trains | seconds | × BEAT |")
    print("|---|---|---|---|")
    for name, s in seconds.items():
        print(f"| {name} | {recipes[name][3]} | {s:.1f} | {s / seconds['beat (runner-up)']:.2f} |")

    x, y = torch.from_numpy(test.x), torch.from_numpy(test.y)
    # The same test windows for every model (RobustBench's definition: a window the model gets wrong when clean
    # counts as broken), a seeded sample of them when --attack-windows is smaller than the test set.
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[: args.attack_windows].sort().values
    attack = {"iterations": args.iterations, "lr": args.lr, "record_history": False}
    attacks = [("smart", attack), ("eot-smart", {**attack, "eot_samples": 8}),
               ("ifgsm", {"eps": 0.01, "iterations": args.iterations})]
    print(f"\nRobustness: SMART-AB and EOT-SMART ({args.iterations} iterations, step {args.lr} m/frame, no budget) "
          f"and I-FGSM (±1 cm per coordinate, {args.iterations} iterations) on {len(idx)} of the {len(x)} test "
          "windows, the same for every model (robust accuracy = correct when clean and still correct after the "
          "attack); clean accuracy on all test windows", flush=True)
    print("| model | clean acc. | robust acc. SMART | robust acc. EOT-SMART | robust acc. I-FGSM 1 cm | passes / prediction | train s |")
    print("|---|---|---|---|---|---|---|")
    for name, m in models.items():
        t = time.perf_counter()
        r = evaluate_robustness(m, x[idx], y[idx], attacks)
        a = r["attacks"]
        print(f"| {name} | {clean_accuracy(m, x, y):.1%} | {a['smart']['robust_accuracy']:.1%} | "
              f"{a['eot-smart']['robust_accuracy']:.1%} | {a['ifgsm']['robust_accuracy']:.1%} | "
              f"{m.forward_passes_per_prediction} | {seconds.get(name, base_seconds):.1f} |  "
              f"(evaluated in {time.perf_counter() - t:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
