"""Host synchronisations per step of every attack and per minibatch of every defence.

    .venv/bin/python bench/host_syncs.py [--quick] [--json OUT] [--device cpu|cuda]

On a GPU every ``.item()``, ``.tolist()``, ``.cpu()``, ``.numpy()`` or ``bool(tensor)`` on a device tensor waits
for the device and copies to the host: inside an attack's step loop it stalls the pipeline. This script counts
those calls (by wrapping the ``torch.Tensor`` methods) while each registered attack runs a short and a longer
budget on the shipped demo ST-GCN (``assets/models/cmu_stgcn.pt``), on real demo windows it classifies
correctly, one per class; the difference divided by the extra steps is the number of host syncs **per step**,
independent of set-up and reporting. A white-box attack's step is an iteration; a query-based attack's (BASAR,
Square) is one call of the victim, which answers every window's queries of that step in one batch, so its figure
is the difference divided by the extra victim calls (BASAR's final projection bisects in some runs and not in
others, which moves its figure by a few tenths: 0.98 on the quick bench's 4 windows, 1.31 on 2). An attack whose
longer budget made no more classifier forward calls than the shorter one gets no figure and is listed as not
measured (it stopped before stepping: an earlier version ran the attacks on an untrained network that gave every
window one class, so BASAR found no start point, never stepped, and was reported with 0 syncs per step).
Each defence trains on 16 and on 32 windows (2 and 4 minibatches of 8 per
epoch): the difference divided by the extra minibatches is the number **per minibatch**; one more epoch on 16
windows, less its minibatches' share, gives the number **per epoch** (e.g. the epoch's history entry). The goal is
0 per step and per minibatch (a few per run or per epoch, e.g. the progress line, are fine), with one exception
by design: BASAR reads the labels of each victim call back (1 per step), because what each clip asks next (explore,
probe again, project, bisect) depends on which of its queries came back adversarial, as a decision-based
attacker's does; a real label-only service answers on the host anyway. It runs on the CPU
too, where the same calls would be syncs on a GPU; ``--device cuda`` runs it on the GPU and counts only calls on
tensors that are not on the CPU.

Not counted: calls from inside ``torch.optim``. Its optimisers (Adam, AdamW ... without ``capturable`` or
``fused``) keep their step counters on the host on purpose and read them with ``.item()``: no wait for the device.
Nor are reads inside the functions in ``HOST_ONLY``, which are only ever called on CPU tensors (the label oracle's
range check of owners given on the CPU).

A second count, ``hidden``, gives the operations whose result's size depends on the data, so that they wait for the
device too although no number is read: ``nonzero``, ``masked_select``, ``unique`` and indexing with a boolean mask.

Summary keys: ``host_syncs_per_step_max`` (the largest over the attacks and defences), one
``host_syncs_per_step_<method>`` per method (per minibatch for the defences), ``hidden_syncs_per_step_<method>``
and ``host_syncs_per_epoch_<defence>``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import _harness
import torch

from engine.attacks import ATTACKS, build
from engine.attacks.oracle import check_cpu_owners
from engine.defenses import DEFENCES
from engine.defenses import build as build_defence
from engine.models import Classifier, build_model
from engine.params import specs
from engine.skeletons import HDM05_25

WRAPPED = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__")
HIDDEN_METHODS = ("nonzero", "masked_select", "unique")
HIDDEN_FUNCTIONS = ("nonzero", "masked_select", "unique", "argwhere")
ROOT = Path(__file__).resolve().parents[1]
# Functions that only ever read CPU tensors (they check their argument's device before calling them): on a CPU
# run every tensor is on the CPU, so their reads would be counted although they never wait for a device.
HOST_ONLY = {check_cpu_owners.__code__}
SKIP_ATTACKS = {"ens", "svre"}  # need several surrogates: measured through "dim", which shares their step code


def _has_mask(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool and i.ndim > 0 for i in items)


class SyncCounter:
    """Counts calls of the wrapped ``torch.Tensor`` methods while active (nested calls count once); ``count``
    the reads, ``hidden`` the data-dependent shapes. ``device_only``: count only tensors that are not on the CPU."""

    def __init__(self, device_only: bool = False) -> None:
        self.count = 0
        self.hidden = 0
        self.device_only = device_only
        self._depth = 0

    def _counts(self, t) -> bool:
        if self._depth:
            return False
        if self.device_only and (not isinstance(t, torch.Tensor) or t.device.type == "cpu"):
            return False
        caller = sys._getframe(2).f_code
        return "/torch/optim/" not in caller.co_filename and caller not in HOST_ONLY

    @contextlib.contextmanager
    def active(self):
        saved = {name: getattr(torch.Tensor, name) for name in (*WRAPPED, *HIDDEN_METHODS, "__getitem__",
                                                                  "__setitem__")}
        saved_fn = {name: getattr(torch, name) for name in HIDDEN_FUNCTIONS}

        def wrap(fn, attr, when=lambda *a: True):
            def inner(t, *a, **k):
                if self._counts(t) and when(t, *a):
                    setattr(self, attr, getattr(self, attr) + 1)
                self._depth += 1
                try:
                    return fn(t, *a, **k)
                finally:
                    self._depth -= 1
            return inner

        for name in WRAPPED:
            setattr(torch.Tensor, name, wrap(saved[name], "count"))
        for name in HIDDEN_METHODS:
            setattr(torch.Tensor, name, wrap(saved[name], "hidden"))
        for name in ("__getitem__", "__setitem__"):
            setattr(torch.Tensor, name, wrap(saved[name], "hidden", lambda t, index, *rest: _has_mask(index)))
        for name in HIDDEN_FUNCTIONS:
            setattr(torch, name, wrap(saved_fn[name], "hidden"))
        try:
            yield self
        finally:
            for name, fn in saved.items():
                setattr(torch.Tensor, name, fn)
            for name, fn in saved_fn.items():
                setattr(torch, name, fn)


def _model(device: str, k: int = 6) -> Classifier:
    torch.manual_seed(0)
    kw = {"base_channels": 8, "num_blocks": 3}
    net = build_model("stgcn", HDM05_25, k, **kw)
    return Classifier(net, [f"c{i}" for i in range(k)], preprocessing={"window": 30}, arch="stgcn",
                      arch_kwargs=kw).to(device).eval()


def _victim(n: int, device: str) -> tuple[Classifier, torch.Tensor, torch.Tensor]:
    """The shipped demo ST-GCN and ``n`` real demo windows it classifies correctly, one per class: the attacks
    need a victim whose answers differ between windows (an untrained network gives every window the same class,
    and a decision-based attack then finds no start and never takes a step) and windows that are not already
    misclassified (those are done before the first step)."""
    from engine.checkpoints import load_classifier
    from engine.defenses.common import training_windows
    from engine.io import load_dataset

    clf = load_classifier(ROOT / "assets" / "models" / "cmu_stgcn.pt").to(device).eval()
    x, y = training_windows(load_dataset(ROOT / "assets" / "demo" / "cmu_actions.h5"), clf)
    with torch.no_grad():
        right = clf(x).argmax(1) == y
    pick = [int(torch.nonzero(right & (y == c))[0]) for c in range(clf.num_classes) if bool((right & (y == c)).any())]
    if len(pick) < n:
        raise SystemExit(f"the demo ST-GCN gets only {len(pick)} classes right; need {n}")
    idx = torch.as_tensor(pick[:n])
    return clf, x[idx].to(device), y[idx].to(device)


class ForwardCounter:
    """Counts forward calls of :class:`Classifier` modules (victims and surrogates) while active: the check that
    a longer budget really made an attack do more work."""

    def __init__(self) -> None:
        self.calls = 0

    @contextlib.contextmanager
    def active(self):
        def hook(module, args, output):
            if isinstance(module, Classifier):
                self.calls += 1

        handle = torch.nn.modules.module.register_module_forward_hook(hook)
        try:
            yield self
        finally:
            handle.remove()


def _data(n: int, device: str):
    g = torch.Generator().manual_seed(1)
    x = 0.2 * torch.randn(n, 3, 30, HDM05_25.num_joints, 1, generator=g)
    x = x + torch.tensor([0.0, 1.0, 0.0]).view(1, 3, 1, 1, 1)
    y = torch.arange(n) % 6
    return x.to(device), y.to(device)


def _count(fn, device: str, forwards: ForwardCounter | None = None) -> tuple[int, int]:
    counter = SyncCounter(device_only=torch.device(device).type != "cpu")
    with counter.active(), (forwards.active() if forwards is not None else contextlib.nullcontext()):
        fn()
    return counter.count, counter.hidden


def attack_syncs(name: str, clf, x, y, short: int, long: int) -> tuple[float | None, float | None, str]:
    """(syncs, hidden syncs) per step and the step's unit; ``None`` for both when the longer budget made no more
    classifier forward calls than the shorter one (the attack stopped before its steps, so no figure)."""
    cls = ATTACKS[name]
    names = {s.name for s in specs(cls.Params)}
    budget_key = "iterations" if "iterations" in names else "queries"
    scale = 1 if budget_key == "iterations" else 50  # query budgets in steps of 50
    fixed = {k: v for k, v in {"early_stop": False, "refine_steps": 1, "disc_pretrain_steps": 2,
                               "eot_samples": 2, "samples": 2}.items() if k in names}

    def run(budget):
        attack = build(name, clf, **fixed, **{budget_key: budget * scale})
        attack(x, y)

    run(short)  # warm-up (lazy initialisations)
    device = str(x.device)
    f_long, f_short = ForwardCounter(), ForwardCounter()
    (long_n, long_h) = _count(lambda: run(long), device, f_long)
    (short_n, short_h) = _count(lambda: run(short), device, f_short)
    # A query-based attack's step is one call of the victim (all windows' queries of that step in one batch).
    steps, unit = (long - short, "iteration") if scale == 1 else (f_long.calls - f_short.calls, "victim call")
    if f_long.calls <= f_short.calls:
        return None, None, unit
    return (long_n - short_n) / steps, (long_h - short_h) / steps, unit


def defence_syncs(name: str, clf, data, batch_size: int) -> tuple[float, float, float]:
    """(syncs, hidden syncs) per minibatch and syncs per epoch; ``data(n)`` gives n labelled windows."""
    cls = DEFENCES[name]
    names = {s.name for s in specs(cls.Params)}
    fixed = {k: v for k, v in {"batch_size": batch_size, "sgld_steps": 1, "attack_iterations": 1,
                               "attack_steps": 1, "num_noise": 2}.items() if k in names}

    def run(epochs, n):
        x, y = data(n)
        if "epochs" in names:
            d = build_defence(name, clf, epochs=epochs, **fixed)
        else:  # BEAT: burn-in + samples
            d = build_defence(name, clf, burn_in=epochs - 1, num_samples=1, **fixed)
        return lambda: d.train(x, y)

    small, large = 2 * batch_size, 4 * batch_size
    run(1, small)()
    device = str(data(1)[0].device)
    base_n, base_h = _count(run(2, small), device)
    more_n, more_h = _count(run(2, large), device)
    epoch_n, _ = _count(run(3, small), device)
    extra_batches = 2 * (large - small) // batch_size
    per_batch, per_batch_hidden = (more_n - base_n) / extra_batches, (more_h - base_h) / extra_batches
    per_epoch = (epoch_n - base_n) - per_batch * (small // batch_size)
    return per_batch, per_batch_hidden, per_epoch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    _harness.add_arguments(parser, quick="4 windows, budgets 2 and 4 steps")
    args = parser.parse_args()
    torch.set_num_threads(1)
    clf = _model(args.device)  # the defences train this small network on random data
    victim, x, y = _victim(4 if args.quick else 8, args.device)
    short, long = (2, 4) if args.quick else (3, 8)
    summary, results, unmeasured = {}, {}, []
    print("| method | kind | host syncs per step | hidden syncs per step | step |\n|---|---|---|---|---|")
    for name in sorted(ATTACKS):
        if name in SKIP_ATTACKS:
            continue
        per, hidden, unit = attack_syncs(name, victim, x, y, short, long)
        results[name] = {"kind": "attack", "per_step": per, "hidden_per_step": hidden, "step": unit}
        if per is None:
            unmeasured.append(name)
            print(f"| {name} | attack | – | – | {unit}: no figure, the longer budget did no more work |", flush=True)
            continue
        summary[f"host_syncs_per_step_{name}"] = round(per, 3)
        summary[f"hidden_syncs_per_step_{name}"] = round(hidden, 3)
        print(f"| {name} | attack | {per:.2f} | {hidden:.2f} | {unit} |", flush=True)
    for name in sorted(DEFENCES):
        per, hidden, per_epoch = defence_syncs(name, clf, lambda n: _data(n, args.device), batch_size=8)
        summary[f"host_syncs_per_step_{name}"] = round(per, 3)
        summary[f"hidden_syncs_per_step_{name}"] = round(hidden, 3)
        summary[f"host_syncs_per_epoch_{name}"] = round(per_epoch, 3)
        results[name] = {"kind": "defence", "per_step": per, "hidden_per_step": hidden, "per_epoch": per_epoch,
                         "step": "minibatch"}
        print(f"| {name} | defence | {per:.2f} | {hidden:.2f} | minibatch ({per_epoch:.0f} per epoch) |", flush=True)
    summary["host_syncs_per_step_max"] = max(v for k, v in summary.items() if k.startswith("host_syncs_per_step_"))
    summary["host_syncs_unmeasured"] = unmeasured
    print(f"\nhost_syncs_per_step_max = {summary['host_syncs_per_step_max']:.2f} (goal: 0)"
          + (f"; not measured: {', '.join(unmeasured)}" if unmeasured else ""))
    _harness.write_json(args.json, __file__, args, summary, results, device=args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
