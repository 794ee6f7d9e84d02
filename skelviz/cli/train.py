"""``skelviz train``: fit a classifier on a dataset file and write a checkpoint (no Qt)."""

from __future__ import annotations

import argparse
import ast
import sys

HELP = "train a classifier (ST-GCN, CTR-GCN, ...) on a dataset, split by clip, and write a checkpoint"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Written out (not imported from engine.models.MODELS, which would load torch for every --help);
    # tests/engine/test_transformer_models.py checks that it names every registered architecture.
    parser.add_argument("--model", required=True,
                        help="architecture: agcn2s, ctrgcn, hrnn, mlp, msg3d, sgn, skateformer, stgcn, sttformer")
    parser.add_argument("--data", required=True, help="dataset file (.h5 project/positions format, .npz, folder ...)")
    parser.add_argument("--out", required=True, help="checkpoint to write (.pt)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (cosine schedule)")
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the initialisation and the batches")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--fps", type=float, default=30.0, help="resample clips to this frame rate")
    parser.add_argument("--window", type=int, default=60, help="frames per training window")
    parser.add_argument("--stride", type=int, default=20, help="frames between window starts")
    parser.add_argument("--test-fraction", type=float, default=0.25, help="share of each class's clips held out")
    parser.add_argument("--centre", default="frame", choices=["frame", "first", "none"],
                        help="root centring inside the model: the root joint of every frame (default), of the first "
                             "frame only (keeps the trajectory), or none")
    parser.add_argument("--face", action="store_true",
                        help="inside the model, turn each window to face +z at its first frame")
    parser.add_argument("--width", default="small", choices=["small", "paper"],
                        help="architecture size preset (small trains on a CPU in minutes; paper is the published size)")
    parser.add_argument("--arch-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="override one constructor argument, e.g. --arch-arg base_channels=32 (repeatable)")
    parser.add_argument("--augment", action="store_true",
                        help="random rotation about the vertical (±180°), scale (±10%%), horizontal shift (±1 m) "
                             "and 2 mm jitter while training")
    parser.add_argument("--augment-tilt", type=float, default=0.0, metavar="DEG",
                        help="with --augment, also lean the whole body by up to ±DEG degrees about both horizontal "
                             "axes (CTR-GCN's random rotation uses 17)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def parse_arch_args(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"error: --arch-arg expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key.strip()] = value  # a bare word: keep it as a string
    return out


def _epoch_line(info: dict) -> str | None:
    """Train's epoch summary, kept on its own line (also with --quiet)."""
    if not info.get("epoch_end"):
        return None
    line = f"epoch {info['epoch']}: loss {info['loss']:.3f}  train acc {info['train_accuracy']:.3f}"
    if "val_accuracy" in info:
        line += f"  held-out acc {info['val_accuracy']:.3f}"
    return line


def run(args: argparse.Namespace) -> int:
    from engine.models.base import preset_kwargs
    from engine.models.checkpoint import save_classifier
    from engine.train import Augmentation, evaluate, held_out_windows, train_classifier
    from skelviz.cli._progress import CliProgress

    if args.augment_tilt and not args.augment:
        raise SystemExit("error: --augment-tilt only acts with --augment; add --augment")
    if not 0 <= args.augment_tilt <= 90:
        raise SystemExit(f"error: --augment-tilt must be between 0 and 90 degrees, got {args.augment_tilt}")
    arch_kwargs = preset_kwargs(args.model, args.width)
    arch_kwargs.update(parse_arch_args(args.arch_arg))
    train, test = held_out_windows(args.data, fps=args.fps, window=args.window, stride=args.stride, seed=args.seed,
                                   test_fraction=args.test_fraction)
    print(f"{args.data}: {len(train)} training and {len(test)} held-out windows, {train.num_classes} classes, "
          f"skeleton {train.skeleton.name}", file=sys.stderr)
    result = train_classifier(
        args.model, train, test, arch_kwargs=arch_kwargs, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, seed=args.seed, device=args.device,
        augment=Augmentation(tilt_deg=args.augment_tilt) if args.augment else False,
        preprocessing={"stride": args.stride, "centre": args.centre, "face": args.face},
        meta={"data": str(args.data), "split_seed": args.seed, "test_fraction": args.test_fraction,
              "width": args.width},
        progress=CliProgress("train", unit="batch", quiet=args.quiet, line=_epoch_line,
                             postfix=lambda info: f"epoch {info['epoch']} loss {info['loss']:.3f}"),
    )
    clf = result.classifier
    report = evaluate(clf, test) if len(test) else {"accuracy": float("nan"), "n": 0}
    clf.meta["held_out_accuracy"] = report["accuracy"]
    path = save_classifier(clf, args.out)
    params = sum(p.numel() for p in clf.net.parameters())
    print(f"{args.model}: held-out accuracy {report['accuracy']:.3f} on {report['n']} windows; "
          f"{params:,} parameters; trained in {result.seconds:.0f} s; wrote {path} "
          f"({path.stat().st_size / 1e6:.2f} MB)")
    return 0
