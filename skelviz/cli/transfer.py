"""``skelviz transfer``: attack surrogate classifiers, replay the adversarial clips on victims (no Qt).

One or more ``--surrogate`` checkpoints (``--surrogates`` is the same option). Single-surrogate methods (SMART,
I-FGSM, MI-FGSM, CIASA, BASAR, ``dim`` input diversity, ``tasar``) give one row of the success matrix per
surrogate; the ensemble methods (``ens``: MI-FGSM on the surrogates' averaged logits, ``svre``) attack all
surrogates together and give one row named ``a+b+c``. ``tasar`` first post-trains each surrogate into a Bayesian
surrogate (:func:`engine.attacks.tasar.post_train_bayesian`) on the training windows of ``--train-data`` (default
``--data``, split as the surrogate was trained). Every row attacks the same clips: the windows every surrogate
classifies correctly (``--limit``: the first K of them).

Writes ``DIR/transfer.json`` (the matrix surrogate × victim with per-row, per-victim counts and clean accuracies,
and every parameter), ``DIR/transfer.md`` (the matrix as a Markdown table) and ``DIR/transfer_clips.npz`` (clean
and adversarial clips; ``adversarial`` is the first row's, ``adversarial_<row>`` every row's). See
:mod:`engine.attacks.transfer` for what counts as a transfer success: each victim's own prediction on the
replayed clip.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "transfer attack: craft adversarial clips on surrogate models and replay them on victim models"

#: transfer methods beyond ``skelviz attack``'s: name → whether it attacks all surrogates as one ensemble
TRANSFER_METHODS = {"dim": False, "tasar": False, "ens": True, "svre": True}


def _methods() -> list[str]:
    from skelviz.cli.attack import METHODS

    return sorted(set(METHODS) | set(TRANSFER_METHODS))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--surrogate", "--surrogates", dest="surrogate", required=True, nargs="+",
                        help="checkpoint(s) the attack sees (white-box); several give one row each, or one "
                        "ensemble for --method ens/svre")
    parser.add_argument("--victims", required=True, nargs="+", help="checkpoints the clips are replayed on")
    parser.add_argument("--data", required=True, help="dataset file")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--method", default="smart", choices=_methods(),
                        help="attack run on the surrogate(s): tasar, dim, ens, svre, mifgsm, smart ...")
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
    parser.add_argument("--eps", type=float, default=None, help="per-joint budget in metres")
    parser.add_argument("--norm", default="linf", choices=["linf", "l2"])
    parser.add_argument("--random-start", action="store_true")
    parser.add_argument("--samples", type=int, default=None, help="TASAR: weight draws per head and step (20)")
    parser.add_argument("--post-epochs", type=int, default=5, help="TASAR: post-training epochs per phase (5)")
    parser.add_argument("--train-data", default=None, help="TASAR: dataset of the post-training (default --data)")


def _name(path: str, used: set[str]) -> str:
    stem = Path(path).stem
    name, i = stem, 2
    while name in used:
        name, i = f"{stem}_{i}", i + 1
    used.add(name)
    return name


def _transfer_kwargs(args: argparse.Namespace) -> dict:
    kw = {}
    if args.iters is not None:
        kw["iterations"] = args.iters
    if args.eps is not None:
        kw["eps"] = args.eps
    kw["seed"] = args.seed
    if args.method == "tasar" and args.samples is not None:
        kw["samples"] = args.samples
    return kw


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from engine.attacks.runner import AttackJob, build_attack, load_windows, select_windows
    from engine.attacks.transfer import check_compatible, markdown_matrix, replay
    from engine.checkpoints import load_classifier
    from engine.errors import ParameterError
    from engine.train import resolve_device
    from skelviz.cli.attack import METHODS, resolve_target

    if args.post_epochs < 1:
        raise ParameterError(f"--post-epochs must be at least 1, got {args.post_epochs}")
    device = resolve_device(args.device)
    used: set[str] = set()
    surrogates = {_name(p, used): load_classifier(p, map_location=device) for p in args.surrogate}
    victims = {_name(p, used): load_classifier(p, map_location=device) for p in args.victims}
    first_name, first = next(iter(surrogates.items()))
    for name, model in [*surrogates.items(), *victims.items()]:
        if model is not first:
            check_compatible(first, model, name)
    ensemble = TRANSFER_METHODS.get(args.method, False)
    kwargs = _transfer_kwargs(args) if args.method in TRANSFER_METHODS else METHODS[args.method](args)
    windows = load_windows(first, args.data, split=args.split, seed=args.seed)
    job = AttackJob(
        method=args.method, strategy=args.strategy, top_n=args.top_n, target=resolve_target(first, args.target),
        attack_kwargs=kwargs, batch_size=args.batch_size, limit=None, seed=args.seed,
    )
    idx, targets, stats = select_windows(first, windows, job, device)
    keep = np.ones(len(idx), dtype=bool)
    for model in list(surrogates.values())[1:]:  # the same clips for every row: correct on every surrogate
        keep &= _correct(model, windows.x[idx], windows.y[idx], device)
    idx, targets = idx[keep], targets[keep]
    if args.limit is not None:
        idx, targets = idx[: args.limit], targets[: args.limit]

    rows_models: dict[str, object] = {}
    if ensemble:
        rows_models["+".join(surrogates)] = list(surrogates.values())
    else:
        rows_models.update({name: [m] for name, m in surrogates.items()})
    post_info: dict[str, dict] = {}
    if args.method == "tasar":
        from engine.attacks.tasar import post_train_bayesian
        from engine.train import classifier_split

        for name, (model,) in rows_models.items():
            train = classifier_split(model, args.train_data or args.data)[0]
            print(f"{name}: post-training a Bayesian surrogate on {len(train)} windows", file=sys.stderr)
            bayes = post_train_bayesian(model, train, epochs=args.post_epochs, seed=args.seed)
            rows_models[name] = [bayes]
            post_info[name] = bayes.info

    x = torch.as_tensor(windows.x[idx])
    y = torch.as_tensor(windows.y[idx])
    t_all = torch.as_tensor(targets) if job.strategy == "sa" else None
    print(f"{args.data}: attacking {len(idx)} windows on {', '.join(rows_models)}, replaying on "
          f"{', '.join(victims)}", file=sys.stderr)
    matrix, details, clips = {}, {}, {}
    for row, models in rows_models.items():
        advs, succ = [], []
        for lo in range(0, len(idx), job.batch_size):
            sel = slice(lo, lo + job.batch_size)
            t = t_all[sel] if t_all is not None else None
            torch.manual_seed(job.seed + lo // job.batch_size)
            attack = _build(models, job, build_attack)
            result = attack(x[sel], y[sel], target=t)
            advs.append(result.adversarial)
            succ.append(result.success)
            print(f"\r{row}: {min(lo + job.batch_size, len(idx))}/{len(idx)} windows", end="", file=sys.stderr,
                  flush=True)
        print(file=sys.stderr)
        adv = torch.cat(advs) if advs else x.clone()
        success = torch.cat(succ) if succ else torch.zeros(0, dtype=torch.bool)
        outcomes = {name: replay(v, x, adv, y, success, strategy=job.strategy, top_n=job.top_n, target=t_all)
                    for name, v in victims.items()}
        rate = float(success.float().mean()) if len(success) else 0.0
        matrix[row] = {row: rate, **{name: o.success_rate for name, o in outcomes.items()}}
        details[row] = {"surrogate_success_rate": rate, "victims": {n: o.to_dict() for n, o in outcomes.items()}}
        clips[row] = adv
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    first_row = next(iter(matrix))
    report = {
        "surrogate": first_row,
        "method": args.method,
        "matrix": matrix,
        "rows": details,
        "victims": details[first_row]["victims"],
        "n": int(len(idx)),
        "surrogate_success_rate": details[first_row]["surrogate_success_rate"],
        "surrogate_clean_accuracy": stats["clean_accuracy"],
        "params": {**job.to_dict(), "limit": args.limit, "surrogate_paths": list(args.surrogate),
                   "victim_paths": list(args.victims), "data": args.data, "split": args.split,
                   "post_training": post_info or None},
        "mean_bone_length_rel_dev": None,
    }
    if len(idx):
        from engine import metrics

        s = metrics.summary(x, clips[first_row], first.skeleton, float(windows.fps))
        report["mean_bone_length_rel_dev"] = s["mean_bone_length_rel_dev"]
        report["mean_l2"] = s["mean_l2"]
        report["max_abs_displacement"] = {r: float((a - x).abs().max()) for r, a in clips.items()}
    (out / "transfer.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    title = f"{args.method.upper()}-{args.strategy.upper()}: surrogate \\ victim"
    md = markdown_matrix(matrix, title=title)
    (out / "transfer.md").write_text(md, encoding="utf-8")
    print(md)
    arrays = {"clean": x.numpy(), "adversarial": clips[first_row].numpy(), "label": y.numpy()}
    for i, adv in enumerate(clips.values()):
        arrays[f"adversarial_{i}"] = adv.numpy()
    arrays["rows"] = np.array(list(clips), dtype=np.str_)
    np.savez_compressed(out / "transfer_clips.npz", **arrays)
    return 0


def _correct(model, x, y, device):
    import numpy as np

    from engine.attacks.runner import predict_windows

    logits = predict_windows(model, x, device)
    return logits.argmax(1) == np.asarray(y) if len(logits) else np.zeros(0, dtype=bool)


def _build(models: list, job, build_attack):
    """The attack of one row: on ``models[0]``, with the other models as extra surrogates (ensembles)."""
    if len(models) == 1:
        return build_attack(models[0], job)
    from engine.attacks import build

    kwargs = dict(job.attack_kwargs)
    kwargs.update(strategy=job.strategy, top_n=job.top_n)
    return build(job.method, models[0], surrogates=models[1:], **kwargs)
