"""``skelviz import-checkpoint``: turn weights trained with the official ST-GCN, CTR-GCN or MS-G3D code into a
skelviz checkpoint (no Qt)."""

from __future__ import annotations

import argparse
from pathlib import Path

COMMAND = "import-checkpoint"
HELP = "convert a state dict trained with the official ST-GCN, CTR-GCN or MS-G3D code into a skelviz checkpoint"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("weights", help="the official code base's saved weights (.pt/.pth state dict)")
    parser.add_argument("--arch", required=True, choices=["stgcn", "ctrgcn", "msg3d"])
    parser.add_argument("--skeleton", required=True, help="skeleton the model was trained on (e.g. ntu25, hdm05_25)")
    parser.add_argument("--classes", required=True, help="text file with one class name per line, in label order")
    parser.add_argument("--out", required=True, help="skelviz checkpoint to write (.pt)")
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate the model was trained at")
    parser.add_argument("--window", type=int, help="frames per sample (default: the code base's usual length)")
    parser.add_argument("--centre", choices=["none", "frame", "first"], default="none",
                        help="how the training data was centred on the root joint: in every frame, on the first "
                             "frame, or not at all (default: none, raw camera coordinates); the model does it itself")
    parser.add_argument("--root-centre", dest="centre", action="store_const", const="frame",
                        help="same as --centre frame")


def read_class_names(path: str | Path) -> list[str]:
    from engine.errors import CheckpointError

    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CheckpointError(f"cannot read the class list {path}: {exc.strerror}") from None
    names = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not names:
        raise CheckpointError(f"{path} lists no class names (one per line expected)")
    if len(set(names)) != len(names):
        raise CheckpointError(f"{path} lists a class name twice")
    return names


def run(args: argparse.Namespace) -> int:
    from engine.models.checkpoint import import_official, save_classifier
    from engine.skeletons import get

    prep = {"fps": args.fps, "centre": args.centre}
    if args.window:
        prep["window"] = args.window
    clf = import_official(args.arch, args.weights, get(args.skeleton), read_class_names(args.classes),
                          preprocessing=prep)
    path = save_classifier(clf, args.out)
    kwargs = ", ".join(f"{k}={v}" for k, v in clf.arch_kwargs.items() if k != "graph_parents")
    print(f"imported {args.arch} ({kwargs}) for {args.skeleton}, {clf.num_classes} classes → {path}")
    return 0
