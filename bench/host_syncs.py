"""Host synchronisations per step of every attack and per minibatch of every defence.

    .venv/bin/python bench/host_syncs.py [--quick] [--json OUT] [--device cpu|cuda]

On a GPU every ``.item()``, ``.tolist()``, ``.cpu()``, ``.numpy()`` or ``bool(tensor)`` on a device tensor waits
for the device and copies to the host: inside an attack's step loop it stalls the pipeline. This script counts
those calls (by wrapping the ``torch.Tensor`` methods) while each registered attack runs a short and a longer
budget on a small ST-GCN, and while each defence trains one and two epochs; the difference divided by the extra
steps (minibatches) is the number of host syncs **per step**, independent of set-up and reporting. The goal is
0 per step (a few per run or per epoch, e.g. the progress line, are fine). It runs on the CPU too, where the same
calls would be syncs on a GPU; ``--device cuda`` runs it on the GPU (and there the torch profiler's
``cudaMemcpy``/``cudaStreamSynchronize`` counts agree with these).

Summary key: ``host_syncs_per_step_max`` (the largest over the attacks and defences) and one
``host_syncs_per_step_<method>`` per method.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

import _harness
import torch

from engine.attacks import ATTACKS, build
from engine.defenses import DEFENCES
from engine.defenses import build as build_defence
from engine.models import Classifier, build_model
from engine.params import specs
from engine.skeletons import HDM05_25

WRAPPED = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__")
SKIP_ATTACKS = {"ens", "svre"}  # need several surrogates: measured through "dim", which shares their step code


class SyncCounter:
    """Counts calls of the wrapped ``torch.Tensor`` methods while active (nested calls count once)."""

    def __init__(self) -> None:
        self.count = 0
        self._depth = 0

    @contextlib.contextmanager
    def active(self):
        saved = {name: getattr(torch.Tensor, name) for name in WRAPPED}

        def wrap(fn):
            def inner(t, *a, **k):
                if self._depth == 0:
                    self.count += 1
                self._depth += 1
                try:
                    return fn(t, *a, **k)
                finally:
                    self._depth -= 1
            return inner

        for name, fn in saved.items():
            setattr(torch.Tensor, name, wrap(fn))
        try:
            yield self
        finally:
            for name, fn in saved.items():
                setattr(torch.Tensor, name, fn)


def _model(device: str, k: int = 6) -> Classifier:
    torch.manual_seed(0)
    kw = {"base_channels": 8, "num_blocks": 3}
    net = build_model("stgcn", HDM05_25, k, **kw)
    return Classifier(net, [f"c{i}" for i in range(k)], preprocessing={"window": 30}, arch="stgcn",
                      arch_kwargs=kw).to(device).eval()


def _data(n: int, device: str):
    g = torch.Generator().manual_seed(1)
    x = 0.2 * torch.randn(n, 3, 30, HDM05_25.num_joints, 1, generator=g)
    x = x + torch.tensor([0.0, 1.0, 0.0]).view(1, 3, 1, 1, 1)
    y = torch.arange(n) % 6
    return x.to(device), y.to(device)


def _count(fn) -> int:
    counter = SyncCounter()
    with counter.active():
        fn()
    return counter.count


def attack_syncs(name: str, clf, x, y, short: int, long: int) -> tuple[float, str]:
    cls = ATTACKS[name]
    names = {s.name for s in specs(cls.Params)}
    budget_key = "iterations" if "iterations" in names else "queries"
    scale = 1 if budget_key == "iterations" else 50  # queries: counted per 50 queries (a BASAR/Square step's worth)
    fixed = {k: v for k, v in {"early_stop": False, "refine_steps": 1, "disc_pretrain_steps": 2,
                               "eot_samples": 2, "samples": 2}.items() if k in names}

    def run(budget):
        attack = build(name, clf, **fixed, **{budget_key: budget * scale})
        attack(x, y)

    run(short)  # warm-up (lazy initialisations)
    extra = _count(lambda: run(long)) - _count(lambda: run(short))
    unit = "iteration" if scale == 1 else f"{scale} queries"
    return extra / (long - short), unit


def defence_syncs(name: str, clf, x, y, batch_size: int) -> float:
    cls = DEFENCES[name]
    names = {s.name for s in specs(cls.Params)}
    fixed = {k: v for k, v in {"batch_size": batch_size, "sgld_steps": 1, "attack_iterations": 1,
                               "attack_steps": 1, "num_noise": 2}.items() if k in names}

    def run(epochs):
        if "epochs" in names:
            d = build_defence(name, clf, epochs=epochs, **fixed)
        else:  # BEAT: burn-in + samples
            d = build_defence(name, clf, burn_in=epochs - 1, num_samples=1, **fixed)
        d.train(x, y)

    run(1)
    per_epoch = _count(lambda: run(3)) - _count(lambda: run(2))
    batches = -(-len(x) // batch_size)
    return per_epoch / batches


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    _harness.add_arguments(parser, quick="4 windows, budgets 2 and 4 steps")
    args = parser.parse_args()
    torch.set_num_threads(1)
    clf = _model(args.device)
    x, y = _data(4 if args.quick else 8, args.device)
    short, long = (2, 4) if args.quick else (3, 8)
    summary, results = {}, {}
    print("| method | kind | host syncs per step | step |\n|---|---|---|---|")
    for name in sorted(ATTACKS):
        if name in SKIP_ATTACKS:
            continue
        per, unit = attack_syncs(name, clf, x, y, short, long)
        summary[f"host_syncs_per_step_{name}"] = round(per, 3)
        results[name] = {"kind": "attack", "per_step": per, "step": unit}
        print(f"| {name} | attack | {per:.2f} | {unit} |", flush=True)
    xd, yd = _data(16, args.device)
    for name in sorted(DEFENCES):
        per = defence_syncs(name, clf, xd, yd, batch_size=8)
        summary[f"host_syncs_per_step_{name}"] = round(per, 3)
        results[name] = {"kind": "defence", "per_step": per, "step": "minibatch"}
        print(f"| {name} | defence | {per:.2f} | minibatch |", flush=True)
    summary["host_syncs_per_step_max"] = max(summary.values())
    print(f"\nhost_syncs_per_step_max = {summary['host_syncs_per_step_max']:.2f} (goal: 0)")
    _harness.write_json(args.json, __file__, args, summary, results, device=args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
