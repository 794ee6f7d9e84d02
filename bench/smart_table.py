"""SMART's table on honest victims: every architecture trained on the cmu8 benchmark, attacked on world-coordinate
motion, in the layout of the SMART paper's table (victims × strategies), plus I-FGSM and CIASA at equal budgets.

    .venv/bin/python bench/smart_table.py [--arch stgcn mlp ...] [--windows 40] [--epochs 15] [--out FILE.md]
                                          [--quick] [--json OUT]

Victims: each architecture's ``small`` preset trained with :func:`engine.train.train_classifier` on the cmu8
benchmark train windows (30 fps, 60-frame windows, stride 20), per-frame root centring inside the model and
the field's augmentation (yaw ±180°, scale ±10 %, shift ±1 m, jitter). Attacked: the first ``--windows``
correctly classified held-out windows, through :func:`engine.attacks.runner.run_attack_job` (the path of
``skelviz attack``), so every success is re-checked on the saved motion (:mod:`engine.validity`) and the
perceptual figures are means over the successes.

Columns per attack: success rate (re-checked), mean iterations to success, mean relative bone-length change and
mean acceleration deviation (m/s²) over successes, and the mean share of the perturbation on the most-perturbed
joint. SMART runs its defaults (AB, ABN with N = 3, SA with a random other class per window). I-FGSM and CIASA
get the same per-joint L∞ budget (``--eps``, 1 cm) and SMART-AB is also run capped at that budget per joint
(``joint_budget``, an L2 cap, which is tighter than L∞), so the three are compared at equal budgets.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import _harness  # bench/ is the script's folder
import numpy as np
import torch

from engine.attacks.runner import AttackJob, run_attack_job
from engine.benchmark import load_cmu8_benchmark
from engine.models import MODELS, preset_kwargs
from engine.train import evaluate, train_classifier


def _row_cells(r: dict) -> list[str]:
    if not r["n"]:
        return ["–"] * 5

    def f(v, fmt):
        return "–" if v is None else format(v, fmt)

    return [f"{r['success_rate']:.0%}", f(r["mean_iterations"], ".1f"), f(r["mean_bone_length_rel_dev"], ".2%"),
            f(r["mean_accel_dev"], ".2f"), f(r["diagnostics"]["mean_top_joint_share"], ".2f")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="*", default=sorted(MODELS))
    parser.add_argument("--windows", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--eps", type=float, default=0.01, help="per-joint budget of the bounded attacks (m)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="also write the tables here (Markdown)")
    _harness.add_arguments(parser, quick="ST-GCN and the MLP only, 5 epochs, 8 windows")
    args = parser.parse_args()
    if args.quick:
        args.arch = [a for a in ("stgcn", "mlp") if a in args.arch] or args.arch[:1]
        args.epochs, args.windows = 5, 8
    torch.set_num_threads(1)

    train, test = load_cmu8_benchmark(fps=30, window=60, stride=20, seed=args.seed)
    attacks = [
        ("SMART AB", "smart", "ab", {}),
        ("SMART ABN-3", "smart", "abn", {}),
        ("SMART SA", "smart", "sa", {}),
        (f"SMART AB ≤{args.eps * 100:g} cm", "smart", "ab", {"joint_budget": args.eps}),
        (f"I-FGSM AB ≤{args.eps * 100:g} cm", "ifgsm", "ab", {"eps": args.eps}),
        (f"CIASA AB ≤{args.eps * 100:g} cm", "ciasa", "ab", {"eps": args.eps}),
    ]
    header = ("| victim (clean acc.) | attack | success | iterations | bone length Δ | accel. Δ (m/s²) "
              "| top-joint share |\n|---|---|---|---|---|---|---|")
    lines = [f"cmu8 benchmark: {len(train)} train / {len(test)} held-out windows; {args.windows} correctly "
             f"classified held-out windows attacked per victim; seed {args.seed}", "", header]
    print("\n".join(lines), flush=True)
    work = Path(tempfile.mkdtemp(prefix="smart_table_"))
    records = []
    try:
        for arch in args.arch:
            t0 = time.perf_counter()
            clf = train_classifier(arch, train, None, arch_kwargs=preset_kwargs(arch, "small"), epochs=args.epochs,
                                   seed=args.seed, device="cpu", augment=True,
                                   preprocessing={"stride": 20}).classifier
            acc = evaluate(clf, test)["accuracy"]
            trained = time.perf_counter() - t0
            for label, method, strategy, kwargs in attacks:
                out = work / f"{arch}_{label}".replace(" ", "_").replace("≤", "le")
                job = AttackJob(method, strategy=strategy, attack_kwargs=kwargs, limit=args.windows, batch_size=40,
                                seed=args.seed)
                t1 = time.perf_counter()
                r = run_attack_job(clf, test, out, job, device="cpu")
                line = f"| {arch} ({acc:.0%}) | {label} | " + " | ".join(_row_cells(r)) + " |"
                lines.append(line)
                records.append({"arch": arch, "clean_accuracy": acc, "attack": label, "n": r["n"],
                                 "success_rate": r["success_rate"] if r["n"] else None,
                                 "mean_iterations": r.get("mean_iterations"),
                                 "mean_bone_length_rel_dev": r.get("mean_bone_length_rel_dev"),
                                 "mean_accel_dev": r.get("mean_accel_dev"),
                                 "mean_top_joint_share": r.get("diagnostics", {}).get("mean_top_joint_share")})
                print(line, f"<!-- {time.perf_counter() - t1:.0f} s, trained in {trained:.0f} s -->", flush=True)
        summary = _paper_layout(lines)
        print("\n" + summary)
        if args.out:
            Path(args.out).write_text("\n".join(lines) + "\n\n" + summary + "\n", encoding="utf-8")
        ab = [r["success_rate"] for r in records if r["attack"] == "SMART AB" and r["success_rate"] is not None]
        _harness.write_json(args.json, __file__, args,
                            {"smart_ab_success_rate_mean": sum(ab) / len(ab) if ab else None}, records, device="cpu")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _paper_layout(lines: list[str]) -> str:
    """The SMART paper's layout: victims as rows, AB / ABN / SA success as columns."""
    rows: dict[str, dict[str, str]] = {}
    for line in lines:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 7 and cells[1].startswith("SMART") and "≤" not in cells[1]:
            rows.setdefault(cells[0], {})[cells[1].split()[1]] = f"{cells[2]} ({cells[3]} it.)"
    out = ["| victim | AB | ABN (N = 3) | SA |", "|---|---|---|---|"]
    for victim, cols in rows.items():
        out.append(f"| {victim} | {cols.get('AB', '–')} | {cols.get('ABN-3', '–')} | {cols.get('SA', '–')} |")
    return "\n".join(out)


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    sys.exit(main())
