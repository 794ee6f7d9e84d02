"""``skelviz attack``: attack the correctly classified windows of a dataset and write DIR (no Qt).

Writes ``DIR/adversarial.h5`` (clean and adversarial clips, labels, predictions, per-sample metrics, every
parameter) and ``DIR/results.json``; an interrupted run resumes from what is in DIR
(:mod:`engine.attacks.runner`).

Each method's attack is built from :data:`METHODS`: method name → function from the parsed arguments to
the attack's constructor keywords. A new method adds one entry there (and its flags in
:func:`add_arguments`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from skelviz.cli.info import add_stats_argument, reader_options

HELP = "attack a classifier on a dataset's correctly classified windows (SMART, I-FGSM, MI-FGSM, CIASA ...)"


def _iters(args, default_key: str = "iterations") -> dict:
    return {default_key: args.iters} if args.iters is not None else {}


def _smart_kwargs(args: argparse.Namespace) -> dict:
    kw = _iters(args)
    if args.lr is not None:
        kw["lr"] = args.lr
    return kw


def _fgsm_kwargs(args: argparse.Namespace) -> dict:
    kw = _iters(args)
    if args.eps is not None:
        kw["eps"] = args.eps
    kw["norm"] = args.norm
    kw["random_start"] = args.random_start
    kw["seed"] = args.seed
    return kw


def _ciasa_kwargs(args: argparse.Namespace) -> dict:
    kw = _iters(args)
    if args.eps is not None:
        kw["eps"] = args.eps
    kw["seed"] = args.seed
    return kw


def _basar_kwargs(args: argparse.Namespace) -> dict:
    from pathlib import Path

    from engine.attacks.manifold import limits_path_beside

    kw = {"seed": args.seed, "on_manifold": not args.off_manifold}
    for key in ("queries", "projection_interval", "accel_weight"):
        if getattr(args, key) is not None:
            kw[key] = getattr(args, key)
    # Joint limits: the file given, else those saved beside the model or the data (else BASAR estimates them).
    beside = [p for p in (args.model, args.data) if limits_path_beside(p).is_file()]
    limits = args.joint_limits or (beside[0] if beside else None)
    if limits is not None:
        kw["joint_limits"] = str(Path(limits))
    return kw


#: method → (parsed arguments → attack constructor keywords). The attack class is ``get_attack(method)``.
METHODS: dict[str, Callable[[argparse.Namespace], dict]] = {
    "smart": _smart_kwargs,
    "ifgsm": _fgsm_kwargs,
    "mifgsm": _fgsm_kwargs,
    "ciasa": _ciasa_kwargs,
    "basar": _basar_kwargs,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="classifier checkpoint (.pt)")
    parser.add_argument("--data", required=True, help="dataset file (.h5, .npz, ST-GCN .npy, folder ...)")
    parser.add_argument("--method", default="smart", choices=sorted(METHODS), help="attack (default smart)")
    parser.add_argument("--strategy", default="ab", choices=["ab", "abn", "sa"],
                        help="ab: any wrong class; abn: true class out of the top N; sa: a specified target class")
    parser.add_argument("--top-n", type=int, default=3, help="N of the ABN strategy (default 3)")
    parser.add_argument("--target", default=None,
                        help="SA target class (name or index); without it each window gets a random other class")
    parser.add_argument("--iters", type=int, default=None, help="iterations (default: the attack's own default)")
    parser.add_argument("--limit", type=int, default=None, help="attack only the first K correctly classified windows")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, default=0, help="seed of random targets, starts and discriminators")
    parser.add_argument("--batch-size", type=int, default=32, help="windows attacked at once")
    parser.add_argument("--split", default="auto", choices=["auto", "all", "test"],
                        help="which clips: test = held-out split, all = every clip, auto = test when the file "
                        "has its own train/test groups (cmu8), else all")
    parser.add_argument("--lr", type=float, default=None, help="SMART step length in metres per frame")
    parser.add_argument("--eps", type=float, default=None, help="I-FGSM/MI-FGSM/CIASA per-joint budget in metres")
    parser.add_argument("--norm", default="linf", choices=["linf", "l2"], help="I-FGSM/MI-FGSM budget norm")
    parser.add_argument("--random-start", action="store_true", help="I-FGSM/MI-FGSM: start inside the budget (PGD)")
    parser.add_argument("--queries", type=int, default=None, help="BASAR query budget per window (default 3000)")
    parser.add_argument("--projection-interval", type=int, default=None,
                        help="BASAR: project onto the manifold every N iterations (default 100; 0: only at the end)")
    parser.add_argument("--accel-weight", type=float, default=None,
                        help="BASAR: weight of acceleration matching in the projection (default 1)")
    parser.add_argument("--off-manifold", action="store_true", help="BASAR: skip manifold projection (comparison)")
    parser.add_argument("--joint-limits", default=None,
                        help="BASAR: joint-limit file (.json/.npz); default: NAME.joint_limits.json beside the model "
                        "or the data, else estimated from the attacked windows")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="any hyper-parameter of the method, typed and checked by its parameter dataclass "
                             "(repeatable; overrides the flags above); `skelviz params METHOD` lists them")
    parser.add_argument("--preset", default=None,
                        help="named parameter preset, e.g. published (the authors' code settings)")
    parser.add_argument("--label", default=None, metavar="CLASS",
                        help="true class (name or index) of unlabelled data such as a BVH file; without it an "
                        "unlabelled clip is attacked away from the model's own prediction")
    add_stats_argument(parser)
    parser.add_argument("--out", required=True, help="output folder (resumed when it holds the same run)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _progress(quiet: bool):
    """The windows attacked so far, with the last batch's success rate."""
    from skelviz.cli._progress import CliProgress

    return CliProgress("attack", unit="window", quiet=quiet,
                       postfix=lambda info: f"batch success {info['success_rate']:.2f}" if "success_rate" in info else "")


def resolve_target(classifier, target: str | None) -> int | None:
    from engine.errors import AttackError

    if target is None:
        return None
    names = [n.lower() for n in classifier.class_names]
    if target.lower() in names:
        return names.index(target.lower())
    try:
        index = int(target)
    except ValueError:
        raise AttackError(f"unknown target class {target!r}; the classes are {classifier.class_names}") from None
    if not 0 <= index < len(names):
        raise AttackError(f"target index {index} out of range: the model has {len(names)} classes")
    return index


def run(args: argparse.Namespace) -> int:
    from engine.distributed import dist_context
    from engine.errors import AttackError

    if args.strategy != "sa" and args.target is not None:
        raise AttackError("--target goes with --strategy sa")
    # Under torchrun every rank attacks its share of the batches on its own device (cuda:LOCAL_RANK for
    # --device auto/cuda); rank 0 writes DIR (engine.distributed). A single process is unaffected.
    with dist_context(args.device) as ctx:
        return _run(args, ctx)


def _run(args: argparse.Namespace, ctx) -> int:
    from engine.attacks.runner import AttackJob, load_windows, run_attack_job
    from engine.checkpoints import load_classifier
    from skelviz.cli.defend import parse_params

    overrides = parse_params(args.param)

    device = ctx.device
    classifier = load_classifier(args.model, map_location=device)
    windows = load_windows(classifier, args.data, split=args.split, seed=args.seed,
                           reader=reader_options(args.data, args.stats))
    if args.label is not None:
        apply_label(classifier, windows, args.label)
    job = AttackJob(
        method=args.method,
        strategy=args.strategy,
        top_n=args.top_n,
        target=resolve_target(classifier, args.target),
        attack_kwargs={**METHODS[args.method](args), **overrides},
        preset=args.preset,
        batch_size=args.batch_size,
        limit=args.limit,
        seed=args.seed,
        extra={"model": str(args.model), "data": str(args.data), "split": args.split, "label": args.label},
    )
    where = f"{device}" if ctx.world_size == 1 else f"{ctx.world_size} ranks ({ctx.backend}), this one on {device}"
    if ctx.is_main:
        print(f"{args.data}: {len(windows)} windows; attacking with {args.method.upper()}-{args.strategy.upper()} "
              f"on {where}", file=sys.stderr)
    results = run_attack_job(classifier, windows, args.out, job, device=device,
                             progress=_progress(args.quiet or not ctx.is_main))
    if ctx.is_main:
        shown = {k: v for k, v in results.items() if k not in ("params", "attack_params")}
        print(json.dumps(shown, indent=2))
        if results.get("n_unlabelled"):
            print(f"{results['n_unlabelled']} window(s) had no label: each is attacked away from the model's own "
                  "prediction (anything but the predicted class); give --label CLASS to set their true class",
                  file=sys.stderr)
        if results.get("n", 0) == 0:
            print(f"error: nothing was attacked: {skipped_reason(results, job)}", file=sys.stderr)
            return 1
    return 0


def apply_label(classifier, windows, label: str) -> None:
    """Give every window the true class ``label`` (name or index); refuse data whose own labels differ."""
    from engine.errors import AttackError

    index = resolve_target(classifier, label)
    own = set(windows.y[windows.y >= 0].tolist()) - {index}
    if own:
        names = sorted(classifier.class_names[i] for i in own)
        raise AttackError(f"--label {label}: the data already labels its clips ({', '.join(names)}); "
                          "--label is for unlabelled data such as a BVH file")
    windows.y = windows.y.copy()
    windows.y[:] = index


def skipped_reason(results: dict, job) -> str:
    """Why a run attacked no window, in words a user can act on."""
    n, correct = results.get("n_windows", 0), results.get("n_correct", 0)
    if n == 0:
        return "the data gave no window (is it shorter than the classifier's window?)"
    if correct == 0:
        return (f"the classifier misclassifies all {n} window(s) (clean accuracy "
                f"{results.get('clean_accuracy') or 0:.2f}), and only correctly classified windows are attacked; "
                "check --label or use another model")
    if job.limit == 0:
        return "--limit 0"
    if job.strategy == "sa" and job.target is not None:
        return f"every correctly classified window is of the target class {job.target} itself; choose another --target"
    return f"none of the {correct} correctly classified window(s) was selected"
