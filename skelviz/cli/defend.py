"""``skelviz defend``: harden a classifier checkpoint with BEAT or a baseline defence and write the defended
checkpoint (it loads everywhere a plain checkpoint does: the app, attacks, ``skelviz eval``)."""

from __future__ import annotations

import argparse

from skelviz.cli._progress import CliProgress

HELP = "harden a classifier with BEAT, smart-at, TRADES, MART or randomized smoothing; write the defended checkpoint"

METHODS = ("beat", "smart-at", "trades", "mart", "smoothing")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", required=True, choices=METHODS, help="defence to apply")
    parser.add_argument("--model", required=True, help="classifier checkpoint to harden (.pt)")
    parser.add_argument("--data", required=True, help="labelled dataset file to train the defence on")
    parser.add_argument("--out", required=True, help="where to write the defended checkpoint (.pt)")
    parser.add_argument("--split", default="train", choices=["train", "all"],
                        help="train: the training clips of the checkpoint's own split (default); all: every clip")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs (BEAT: burn-in epochs before the posterior samples are kept)")
    parser.add_argument("--samples", type=int, default=None, help="BEAT: posterior samples kept (default 5)")
    parser.add_argument("--sigma", type=float, default=None, help="smoothing: noise std in metres (default 0.01)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="any other hyper-parameter of the defence (repeatable), e.g. --param lam=50")
    parser.add_argument("--preset", default=None,
                        help="named parameter preset, e.g. published (the authors' code settings) or runner-up "
                             "(BEAT); --param values override it")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def parse_params(items: list[str]) -> dict:
    """``KEY=VALUE`` strings → a dict; values read as Python literals (numbers, lists), else kept as text."""
    import ast

    from engine.errors import SkelvizError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SkelvizError(f"--param expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = value.strip()
    return out


def split_windows(path: str, classifier, split: str):
    """The windows of ``path`` for ``classifier``: its train or test split (as ``skelviz eval``) or all."""
    from engine.defenses.common import windows_for
    from engine.io import load_dataset
    from engine.train import classifier_split

    if split == "all":
        return windows_for(load_dataset(path), classifier)
    train, test = classifier_split(classifier, path)
    return train if split == "train" else test


def Progress(label: str, quiet: bool = False) -> CliProgress:  # the name robustness imports
    """The progress bar of ``defend`` and ``robustness``: every number the engine reports, after the counts."""
    return CliProgress(label, unit="step", quiet=quiet)


def run(args: argparse.Namespace) -> int:
    from engine.distributed import dist_context

    # Under torchrun the defence trains data-parallel (each rank computes the gradients of its part of every
    # minibatch on its own device; engine.distributed averages them); rank 0 writes the checkpoint.
    with dist_context(args.device) as ctx:
        return _run(args, ctx)


def _run(args: argparse.Namespace, ctx) -> int:
    from engine.checkpoints import load_classifier, save_classifier
    from engine.defenses import build
    from engine.defenses.common import clean_accuracy, training_windows

    clf = load_classifier(args.model)
    params = parse_params(args.param)
    if args.epochs is not None:
        params["burn_in" if args.method == "beat" else "epochs"] = args.epochs
    if args.samples is not None:
        params["num_samples"] = args.samples
    if args.sigma is not None:
        params["sigma"] = args.sigma
    windows = split_windows(args.data, clf, args.split)
    defence = build(args.method, clf, preset=args.preset, device=ctx.device,
                    progress=Progress(args.method, args.quiet or not ctx.is_main), **{"seed": args.seed, **params})
    defended = defence.fit(windows)
    if not ctx.is_main:
        return 0
    out = save_classifier(defended, args.out)
    x, y = training_windows(windows, clf)
    where = "" if ctx.world_size == 1 else f" ({ctx.world_size} ranks, data-parallel)"
    print(f"{args.method}: trained in {defence.seconds:.1f} s on {len(x)} windows{where}; "
          f"training accuracy {clean_accuracy(clf, x, y):.3f} → {clean_accuracy(defended, x, y):.3f}; "
          f"{defended.forward_passes_per_prediction} forward pass(es) per prediction; wrote {out}")
    return 0
