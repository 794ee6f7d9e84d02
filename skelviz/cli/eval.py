"""``skelviz eval``: accuracy and confusion matrix of a checkpoint on a dataset (no Qt)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from skelviz.cli.info import add_stats_argument, reader_options

HELP = "evaluate a classifier checkpoint on a dataset: accuracy, confusion matrix, optional JSON report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="classifier checkpoint (.pt)")
    parser.add_argument("--data", required=True, help="dataset file")
    parser.add_argument("--json", help="write {accuracy, confusion_matrix, class_names, n} here")
    parser.add_argument("--split", default="test", choices=["test", "all"],
                        help="test: the held-out clips of the checkpoint's own split (same seed and fraction); "
                             "all: every clip of the file")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    add_stats_argument(parser)


def run(args: argparse.Namespace) -> int:
    from engine.checkpoints import load_classifier
    from engine.io import load_dataset
    from engine.train import classifier_split, evaluate, resolve_device

    device = resolve_device(args.device)
    clf = load_classifier(args.model).to(device)
    reader = reader_options(args.data, args.stats)
    if args.split == "test":
        _, windows = classifier_split(clf, args.data, reader=reader)
    else:
        windows = clf.preprocessing.window_set(load_dataset(args.data, **reader))
    report = evaluate(clf, windows, device=device)
    report.pop("predictions")
    names = report["class_names"]
    print(f"{Path(args.model).name} on {args.data} ({args.split}): accuracy {report['accuracy']:.3f} "
          f"({report['n']} windows)")
    width = max(len(n) for n in names)
    print("confusion matrix (rows: true class, columns: predicted):")
    for name, row in zip(names, report["confusion_matrix"]):
        print(f"  {name:>{width}} " + " ".join(f"{v:4d}" for v in row))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0
