"""Held-out accuracy of every architecture (small presets) on the cmu8 benchmark split.

    .venv/bin/python bench/model_accuracy.py [--epochs 20] [--arch stgcn ctrgcn ...] [--seed 0] [--device auto]
                                             [--quick] [--json OUT]

Split: :func:`engine.data.load_cmu8_benchmark` (30 fps, 60-frame windows, stride 20, clip-level held-out
split; classes with too few clips split in time with a 1 s gap). Each architecture is trained with
:func:`engine.train.train_classifier` (AdamW, cosine schedule, the same recipe for all) and evaluated on the
held-out windows. Prints a Markdown table: accuracy, majority-class baseline, training time, parameters.

Last run (2026-11-25, seed 0, 15 epochs, batch 32, lr 1e-3, CPU, one thread per architecture, each in its own
process: ``--arch NAME --epochs 15 --device cpu``; 312 train / 97 held-out windows of 28 joints; chance 0.125,
majority class 0.392). CPU seconds, because the machine was shared and wall times meant little:

| architecture (small preset) | held-out accuracy | CPU time (15 epochs) | parameters |
|---|---|---|---|
| stgcn | 0.907 | 64 s | 140 k |
| hrnn | 0.897 | 22 s | 198 k |
| sgn | 0.887 | 47 s | 169 k |
| agcn2s (joint stream) | 0.876 | 89 s | 155 k |
| ctrgcn | 0.876 | 204 s | 144 k |
| msg3d | 0.866 | 158 s | 142 k |
| mlp | 0.856 | 3 s | 1358 k |
| skateformer | 0.835 | 66 s | 161 k |
| sttformer | 0.711 | 90 s | 241 k |

The two transformer rows were run later (2026-12-05) with the same command and recipe. With 97 held-out windows
one window is 1 %: the GCNs, SGN, HRNN, the MLP and SkateFormer are not separable on this split; STTFormer's
small preset trails them (with these 15 epochs and no augmentation); all are far above the majority-class
baseline.
"""

from __future__ import annotations

import argparse
import time

import _harness  # bench/ is the script's folder
import numpy as np

from engine.benchmark import load_cmu8_benchmark
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
    _harness.add_arguments(parser, quick="ST-GCN and the MLP only, 3 epochs")
    args = parser.parse_args()
    if args.quick:
        args.arch = [a for a in ("stgcn", "mlp") if a in args.arch] or args.arch[:1]
        args.epochs = 3

    train, test = load_cmu8_benchmark(args.path, fps=30, window=60, stride=20, seed=args.seed)
    majority = np.bincount(test.y).max() / len(test.y)
    print(f"cmu8 benchmark: {len(train)} train / {len(test)} held-out windows, {train.num_classes} classes, "
          f"{train.skeleton.num_joints} joints; chance {1 / train.num_classes:.3f}, majority class {majority:.3f}")
    rows = []
    for arch in args.arch:
        t0, c0 = time.perf_counter(), time.process_time()
        result = train_classifier(arch, train, None, arch_kwargs=preset_kwargs(arch, "small"), epochs=args.epochs,
                                  batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        acc = evaluate(result.classifier, test)["accuracy"]
        params = sum(p.numel() for p in result.classifier.net.parameters())
        rows.append({"arch": arch, "accuracy": acc, "train_seconds": seconds, "cpu_seconds": cpu, "params": params,
                     "epochs": args.epochs, "device": result.classifier.meta["device"]})
        print(f"  {arch}: {acc:.3f} in {seconds:.0f} s ({cpu:.0f} s CPU)", flush=True)
    print("\n| architecture (small preset) | held-out accuracy | train time (wall / CPU) | parameters |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['arch']} | {r['accuracy']:.3f} | {r['train_seconds']:.0f} s / {r['cpu_seconds']:.0f} s "
              f"({r['epochs']} epochs, {r['device']}) "
              f"| {r['params'] / 1e3:.0f} k |")
    summary = {"held_out_accuracy": {r["arch"]: round(r["accuracy"], 3) for r in rows},
               "majority_class_accuracy": float(majority)}
    _harness.write_json(args.json, __file__, args, summary, rows, device=args.device)


if __name__ == "__main__":
    main()
