"""Held-out accuracy of every architecture (small presets) on the cmu8 benchmark split.

    .venv/bin/python bench/model_accuracy.py [--epochs 20] [--arch stgcn ctrgcn ...] [--seed 0] [--device auto]
                                             [--json OUT]

Split: :func:`engine.data.load_cmu8_benchmark` (30 fps, 60-frame windows, stride 20, clip-level held-out
split; classes with too few clips split in time with a 1 s gap). Each architecture is trained with
:func:`engine.train.train_classifier` (AdamW, cosine schedule, the same recipe for all) and evaluated on the
held-out windows. Prints a Markdown table: accuracy, majority-class baseline, training time, parameters.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from engine.data import load_cmu8_benchmark
from engine.models import MODELS, preset_kwargs
from engine.train import evaluate, train_classifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="*", default=sorted(MODELS))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--path", help="cmu8_positions.h5 (default: ../shared/data/cmu8/)")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()

    train, test = load_cmu8_benchmark(args.path, fps=30, window=60, stride=20, seed=args.seed)
    majority = np.bincount(test.y).max() / len(test.y)
    print(f"cmu8 benchmark: {len(train)} train / {len(test)} held-out windows, {train.num_classes} classes, "
          f"{train.skeleton.num_joints} joints; chance {1 / train.num_classes:.3f}, majority class {majority:.3f}")
    rows = []
    for arch in args.arch:
        t0 = time.perf_counter()
        result = train_classifier(arch, train, None, arch_kwargs=preset_kwargs(arch, "small"), epochs=args.epochs,
                                  batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device)
        seconds = time.perf_counter() - t0
        acc = evaluate(result.classifier, test)["accuracy"]
        params = sum(p.numel() for p in result.classifier.net.parameters())
        rows.append({"arch": arch, "accuracy": acc, "train_seconds": seconds, "params": params,
                     "epochs": args.epochs, "device": result.classifier.meta["device"]})
        print(f"  {arch}: {acc:.3f} in {seconds:.0f} s", flush=True)
    print("\n| architecture (small preset) | held-out accuracy | train time | parameters |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['arch']} | {r['accuracy']:.3f} | {r['train_seconds']:.0f} s ({r['epochs']} epochs, {r['device']}) "
              f"| {r['params'] / 1e3:.0f} k |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
