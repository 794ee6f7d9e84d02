"""Cost of one SMART iteration relative to one forward+backward pass of the same model on the same batch.

    python bench/attack_cost.py                      # ST-GCN and CTR-GCN, batch 1, 32, 256, small width, CPU
    python bench/attack_cost.py --width paper --device cuda --batches 1 32 256
    python bench/attack_cost.py --quick --json OUT.json   # ST-GCN only, fewer timed iterations (bench/run.py)

One SMART iteration needs one forward and one backward pass through the classifier (gradient with respect to
the input only); everything else (perceptual loss and its gradient on the clip, normalisation, bookkeeping)
is overhead. The physical floor of the ratio is about 1.0; the target is under 1.3.

Method: the per-iteration time is the difference between a SMART run of ``--iters + 2`` and one of 2
iterations, divided by ``--iters`` (so set-up and the final evaluation cancel), with every sample kept
active (strategy ABN with N = classes − 1: the true class would have to drop to the last place, which does not
happen in a few steps; the script checks it). The reference is the median time of ``autograd.grad`` of the
logits' sum with respect to the input, in eval mode with frozen parameters, as the attack runs it. Each figure
is the median of ``--repeats`` runs, the reference timed right before and after each SMART pair and the ratio
taken per repeat (robust to a machine whose load changes). Random weights: the cost does not depend on training.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _harness  # noqa: E402  (bench/ is the script's folder)
import torch  # noqa: E402

from engine import skeletons  # noqa: E402
from engine.attacks import build  # noqa: E402
from engine.models import Classifier, build_model  # noqa: E402
from engine.models.base import preset_kwargs  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def forward_backward_time(model, x: torch.Tensor, repeats: int) -> float:
    for p in model.parameters():
        p.requires_grad_(False)
    times = []
    for _ in range(repeats + 1):
        d = torch.zeros_like(x, requires_grad=True)
        _sync(x.device)
        t0 = time.perf_counter()
        (g,) = torch.autograd.grad(model(x + d).sum(), d)
        _sync(x.device)
        times.append(time.perf_counter() - t0)
    for p in model.parameters():
        p.requires_grad_(True)
    return statistics.median(times[1:])  # the first call warms up


def measure(model, x, y, iters: int, repeats: int) -> tuple[float, float, float, bool]:
    """Median forward+backward time, SMART iteration time and their ratio; whether every sample stayed active.

    Each repeat times the reference and the SMART pair back to back and the ratio is taken per repeat, so a
    machine whose load changes during the benchmark still gives comparable figures.
    """
    k = model.num_classes

    def run(n_iter: int) -> tuple[float, bool]:
        attack = build("smart", model, strategy="abn", top_n=k - 1, iterations=n_iter, refine_steps=0)
        _sync(x.device)
        t0 = time.perf_counter()
        r = attack(x, y)
        _sync(x.device)
        return time.perf_counter() - t0, bool((r.queries == n_iter + 1).all())

    run(1)  # warm-up
    fbs, its, ratios, all_active = [], [], [], True
    for _ in range(repeats):
        fb = forward_backward_time(model, x, 3)
        short, a1 = run(2)
        long, a2 = run(2 + iters)
        fb = (fb + forward_backward_time(model, x, 3)) / 2
        it = (long - short) / iters
        fbs.append(fb)
        its.append(it)
        ratios.append(it / fb)
        all_active &= a1 and a2
    return statistics.median(fbs), statistics.median(its), statistics.median(ratios), all_active


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", nargs="+", default=["stgcn", "ctrgcn"])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 32, 256])
    ap.add_argument("--width", default="small", choices=["small", "paper"])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--bodies", type=int, default=1)
    ap.add_argument("--classes", type=int, default=60)
    ap.add_argument("--skeleton", default="ntu25")
    ap.add_argument("--iters", type=int, default=10, help="iterations timed per run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    _harness.add_arguments(ap, quick="ST-GCN only, 4 timed iterations, 2 repeats")
    args = ap.parse_args(argv)
    if args.quick:
        args.archs, args.iters, args.repeats = args.archs[:1], 4, 2
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sk = skeletons.get(args.skeleton)
    print(f"device {device} ({torch.get_num_threads()} CPU threads), {args.width} width, T={args.frames}, "
          f"V={sk.num_joints}, M={args.bodies}, {args.classes} classes, torch {torch.__version__}")
    print("| model | batch | forward+backward (ms) | SMART iteration (ms) | ratio | all samples active |")
    print("|---|---|---|---|---|---|")
    rows = []
    for arch in args.archs:
        torch.manual_seed(0)
        kwargs = preset_kwargs(arch, args.width)
        net = build_model(arch, sk, args.classes, **kwargs)
        model = Classifier(net, [f"c{i}" for i in range(args.classes)], preprocessing={"fps": 30.0}).to(device).eval()
        for b in args.batches:
            g = torch.Generator().manual_seed(b)
            x = (0.3 * torch.randn(b, 3, args.frames, sk.num_joints, args.bodies, generator=g)).to(device)
            with torch.no_grad():
                y = model(x).argmax(1)
            fb, it, ratio, active = measure(model, x, y, args.iters, args.repeats)
            print(f"| {arch} | {b} | {1000 * fb:.1f} | {1000 * it:.1f} | {ratio:.2f} | {'yes' if active else 'NO'} |",
                  flush=True)
            rows.append({"arch": arch, "batch": b, "forward_backward_ms": 1000 * fb, "iteration_ms": 1000 * it,
                         "ratio": ratio, "all_active": active})
    first = args.archs[0]
    summary = {"smart_iteration_over_forward_backward": {str(r["batch"]): round(r["ratio"], 3)
                                                         for r in rows if r["arch"] == first},
               "smart_iteration_model": f"{first} ({args.width})"}
    _harness.write_json(args.json, __file__, args, summary, rows, device=device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
