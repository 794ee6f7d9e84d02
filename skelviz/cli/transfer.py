"""``skelviz transfer``: attack a surrogate classifier, replay the adversarial clips on victims (no Qt).

Writes ``DIR/transfer.json`` (the success matrix with per-victim counts and clean accuracies, and every
parameter) and ``DIR/transfer.md`` (the matrix as a Markdown table). See :mod:`engine.attacks.transfer`
for what counts as a transfer success.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "transfer attack: craft adversarial clips on a surrogate model and replay them on victim models"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from skelviz.cli.attack import METHODS

    parser.add_argument("--surrogate", required=True, help="checkpoint the attack sees (white-box)")
    parser.add_argument("--victims", required=True, nargs="+", help="checkpoints the clips are replayed on")
    parser.add_argument("--data", required=True, help="dataset file")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--method", default="smart", choices=sorted(METHODS), help="attack run on the surrogate")
    parser.add_argument("--strategy", default="ab", choices=["ab", "abn", "sa"])
    parser.add_argument("--top-n", type=int, default=3)
    parser.add_argument("--target", default=None, help="SA target class (name or index)")
    parser.add_argument("--iters", type=int, default=None)
    parser.add_argument("--limit", type=int, default=None, help="attack only the first K correctly classified windows")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default="auto", choices=["auto", "all", "test"])
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--eps", type=float, default=None)
    parser.add_argument("--norm", default="linf", choices=["linf", "l2"])
    parser.add_argument("--random-start", action="store_true")


def _name(path: str, used: set[str]) -> str:
    stem = Path(path).stem
    name, i = stem, 2
    while name in used:
        name, i = f"{stem}_{i}", i + 1
    used.add(name)
    return name


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from engine.attacks.runner import AttackJob, build_attack, load_windows, select_windows
    from engine.attacks.transfer import check_compatible, markdown_matrix, replay
    from engine.checkpoints import load_classifier
    from engine.train import resolve_device
    from skelviz.cli.attack import METHODS, resolve_target

    device = resolve_device(args.device)
    surrogate = load_classifier(args.surrogate, map_location=device)
    used: set[str] = set()
    s_name = _name(args.surrogate, used)
    victims = {_name(p, used): load_classifier(p, map_location=device) for p in args.victims}
    for name, v in victims.items():
        check_compatible(surrogate, v, name)
    windows = load_windows(surrogate, args.data, split=args.split, seed=args.seed)
    job = AttackJob(
        method=args.method, strategy=args.strategy, top_n=args.top_n,
        target=resolve_target(surrogate, args.target), attack_kwargs=METHODS[args.method](args),
        batch_size=args.batch_size, limit=args.limit, seed=args.seed,
    )
    idx, targets, stats = select_windows(surrogate, windows, job, device)
    print(f"{args.data}: attacking {len(idx)} windows on {s_name}, replaying on {', '.join(victims)}",
          file=sys.stderr)
    advs, succ = [], []
    for lo in range(0, len(idx), job.batch_size):
        sel = idx[lo : lo + job.batch_size]
        t = torch.as_tensor(targets[lo : lo + job.batch_size]) if job.strategy == "sa" else None
        torch.manual_seed(job.seed + lo // job.batch_size)
        result = build_attack(surrogate, job)(torch.as_tensor(windows.x[sel]), torch.as_tensor(windows.y[sel]),
                                              target=t)
        advs.append(result.adversarial)
        succ.append(result.success)
        print(f"\r{min(lo + job.batch_size, len(idx))}/{len(idx)} windows", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    x = torch.as_tensor(windows.x[idx])
    y = torch.as_tensor(windows.y[idx])
    adv = torch.cat(advs) if advs else x.clone()
    success = torch.cat(succ) if succ else torch.zeros(0, dtype=torch.bool)
    t_all = torch.as_tensor(targets) if job.strategy == "sa" else None
    outcomes = {name: replay(v, x, adv, y, success, strategy=job.strategy, top_n=job.top_n, target=t_all)
                for name, v in victims.items()}
    row = {s_name: float(success.float().mean()) if len(success) else 0.0}
    row.update({name: o.success_rate for name, o in outcomes.items()})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "surrogate": s_name,
        "matrix": {s_name: row},
        "victims": {name: o.to_dict() for name, o in outcomes.items()},
        "n": int(len(idx)),
        "surrogate_success_rate": row[s_name],
        "surrogate_clean_accuracy": stats["clean_accuracy"],
        "params": {**job.to_dict(), "surrogate_path": args.surrogate, "victim_paths": list(args.victims),
                   "data": args.data, "split": args.split},
        "mean_bone_length_rel_dev": None,
    }
    if len(idx):
        from engine import metrics

        s = metrics.summary(x, adv, surrogate.skeleton, float(windows.fps))
        report["mean_bone_length_rel_dev"] = s["mean_bone_length_rel_dev"]
        report["mean_l2"] = s["mean_l2"]
    (out / "transfer.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    title = f"{args.method.upper()}-{args.strategy.upper()}: surrogate \\ victim"
    md = markdown_matrix({s_name: row}, title=title)
    (out / "transfer.md").write_text(md, encoding="utf-8")
    print(md)
    np.savez_compressed(out / "transfer_clips.npz", clean=x.numpy(), adversarial=adv.numpy(), label=y.numpy(),
                        surrogate_success=success.numpy())
    return 0
