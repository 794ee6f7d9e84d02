"""BASAR on held-out cmu8 clips, on the manifold versus off it: throughput against the victim's bare forward, the
projection's share of the time, success and distances.

    .venv/bin/python bench/basar.py [--clips 20] [--queries 3000] [--checkpoint PATH] [--threads 1]
    .venv/bin/python bench/basar.py --quick --json OUT.json      # 8 clips, 400 queries, a 4-epoch victim

The victim is the small ST-GCN of the test suite's recipe (trained here, seeded, about two minutes on two CPU
cores; world-coordinate input centred inside the model, the field's augmentation) unless ``--checkpoint`` names
one trained on the cmu8 benchmark. The attacked clips are correctly classified held-out windows of the cmu8
benchmark (clip-level split, 30 fps, 60 frames); start points come from the training windows; joint-angle limits
are estimated from the training windows (5° margin).

**Throughput ratio** (the headline, ``basar_queries_per_second_over_forward``): queries answered per second by
the attack (all the oracle's queries, the start-point search and the final projection included, over the
attack's whole wall time) ÷ windows per second of a bare ``model(x)`` forward (no gradients) on the attacked
batch itself, i.e. at the same batch size, in the same process with the same threads: the median of 60 timings,
30 right before and 30 right after the attack, so that load on a shared machine during a few of them cannot
inflate the ratio (an earlier version took the mean of two medians of 20, and one run under heavy load got a
436 ms forward against 23 ms unloaded, which made its ratio look 15 times better than it was). 1.0 would mean the
attack costs nothing beyond its queries; the goal is ≥ 0.5. The attack runs its clips in lockstep and sends every
request of every still-active clip in a step (exploration trials, aimed probes, projection and bisection points) to
the model in one call, so its forwards run at batch sizes between 1 and ``clips × trials``; the ratio can exceed 1
when those batches are cheaper per window than the reference batch.

Threads: the default is 1. With more threads than free cores (a shared machine), OpenMP threads wait for each other
in every kernel, and the projection's many small kernels slow down far more than the model's convolutions (seen on
2 busy cores with 2 threads: a projection 60 times slower, a forward 25 times), which skews the ratio.

**Projection share**: the time spent on the manifold (cheap projections of candidates, paths in joint-angle
space, full projections with the dynamics term; ``extras["projection_seconds"]``) ÷ the attack's wall time.

Default budget: BASAR's own default, 3000 queries per clip. Per mode the table gives the ratio, the projection
share, the success rate, the median queries used by successful clips, the median queries until a clip first came
within twice its final distance, the median final L2 distance (m, all joints and frames) and its ratio to the
start point's, the median RMS acceleration deviation (m/s²), the worst bone-length error (m) and joint-angle
violation (rad, beyond the limits widened by the clean clip's own range). Absolute times are printed as context.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _harness  # noqa: E402  (bench/ is the script's folder)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from engine.attacks import build  # noqa: E402
from engine.attacks.manifold import estimate_joint_angle_limits  # noqa: E402
from engine.benchmark import load_cmu8_benchmark  # noqa: E402
from engine.checkpoints import load_classifier  # noqa: E402
from engine.train import train_classifier  # noqa: E402

RECIPE = {"arch_kwargs": {"base_channels": 16, "num_blocks": 4, "dropout": 0.0}, "epochs": 12, "batch_size": 32,
          "lr": 2e-3, "seed": 0, "augment": True}  # tests/conftest.py CMU8_STGCN_RECIPE


def queries_to_reach(result, factor: float = 2.0) -> np.ndarray:
    """Per sample: queries used when its distance first came within ``factor`` × its final distance."""
    dist = np.asarray(result.history["distance"])  # (iterations, N)
    used = np.asarray(result.history["queries"])
    final = result.extras["distance"].numpy()
    out = np.full(len(final), np.nan)
    for i in range(len(final)):
        hit = np.nonzero(dist[:, i] <= factor * final[i])[0] if len(dist) else []
        out[i] = used[hit[0], i] if len(hit) else result.queries[i].item()
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def forward_times(model, x: torch.Tensor, repeats: int = 30) -> list[float]:
    """``repeats`` timings (s) of one bare ``model(x)`` forward (no gradients), after a warm-up call."""
    times = []
    with torch.no_grad():
        for _ in range(repeats + 1):
            _sync(x.device)
            t0 = time.perf_counter()
            model(x)
            _sync(x.device)
            times.append(time.perf_counter() - t0)
    return times[1:]


def forward_seconds(model, x: torch.Tensor, repeats: int = 30) -> float:
    """Median time of one bare ``model(x)`` forward (no gradients)."""
    return statistics.median(forward_times(model, x, repeats))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=20)
    ap.add_argument("--queries", type=int, default=3000)
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--epochs", type=int, default=None, help="victim training epochs (default: the recipe's 12)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--modes", nargs="+", default=["on", "off"], choices=["on", "off"])
    _harness.add_arguments(ap, quick="8 clips, 400 queries per clip, a victim trained for 4 epochs")
    args = ap.parse_args(argv)
    if args.quick:
        args.clips, args.queries = min(args.clips, 8), min(args.queries, 400)
        args.epochs = args.epochs or 4
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    train, test = load_cmu8_benchmark(fps=30, window=60, stride=20, seed=0)
    if args.checkpoint:
        clf = load_classifier(args.checkpoint)
    else:
        t0 = time.perf_counter()
        recipe = dict(RECIPE, epochs=args.epochs or RECIPE["epochs"])
        clf = train_classifier("stgcn", train, None, device="cpu", preprocessing={"stride": 20}, **recipe).classifier
        print(f"trained the victim ({recipe['epochs']} epochs) in {time.perf_counter() - t0:.0f} s", flush=True)
    clf = clf.to(device).eval()
    x, y = torch.as_tensor(test.x).to(device), torch.as_tensor(test.y).to(device)
    with torch.no_grad():
        ok = (clf(x).argmax(1) == y).nonzero().flatten()
    print(f"victim accuracy on the {len(y)} held-out windows: {len(ok) / len(y):.3f}; "
          f"{torch.get_num_threads()} CPU threads, device {device}")
    g = torch.Generator().manual_seed(args.seed)
    sel = ok[torch.randperm(len(ok), generator=g)[: args.clips].to(ok.device)]
    xs, ys = x[sel], y[sel]
    limits = estimate_joint_angle_limits(train.x, train.skeleton, source="cmu8 benchmark train")
    starts, start_labels = torch.as_tensor(train.x).to(device), torch.as_tensor(train.y).to(device)

    rows, results = [], []
    for mode in args.modes:
        on = mode == "on"
        attack = build("basar", clf, joint_limits=limits, queries=args.queries, on_manifold=on,
                       starts=starts, start_labels=start_labels, seed=args.seed)
        # The bare forward is timed 30 times right before and 30 times right after the attack (same process,
        # threads and batch); the reference is the median of all 60, so that a burst of load on a shared machine
        # during a few timings cannot inflate (or deflate) the ratio. The spread is printed as context.
        fwd_times = forward_times(clf, xs)
        _sync(device)
        t0 = time.perf_counter()
        r = attack(xs, ys)
        _sync(device)
        wall = time.perf_counter() - t0
        fwd_times += forward_times(clf, xs)
        fwd = statistics.median(fwd_times)
        fwd_lo, fwd_hi = np.percentile(fwd_times, [10, 90])
        queries = int(r.queries.sum())
        ratio = (queries / wall) / (len(sel) / fwd)
        share = r.extras["projection_seconds"] / wall
        s = r.success.numpy()
        e = r.extras

        def med(a, s=s):
            return float(np.median(a[s])) if s.any() else float("nan")

        res = {
            "mode": "on-manifold" if on else "off-manifold", "clips": len(sel), "budget": args.queries,
            "queries_per_second_over_forward": ratio, "projection_share": share, "success": float(s.mean()),
            "median_queries": med(r.queries.numpy()), "median_queries_to_2x_final": med(queries_to_reach(r)),
            "median_l2_m": med(e["distance"].numpy()),
            "median_l2_over_start": med((e["distance"] / e["start_distance"]).numpy()),
            "median_accel_dev": med(e["accel_deviation"].numpy()),
            "max_bone_err_m": float(e["bone_length_error"].max()), "max_angle_viol_rad": float(e["angle_violation"].max()),
            "queries_total": queries, "attack_s": wall, "forward_ms": 1000 * fwd,
            "queries_per_s": queries / wall, "forward_windows_per_s": len(sel) / fwd,
            "forward_ms_p10_p90": [1000 * fwd_lo, 1000 * fwd_hi], "forward_timings": len(fwd_times),
        }
        results.append(res)
        rows.append({
            "mode": res["mode"], "queries/s ÷ forward windows/s": f"{ratio:.2f}", "projection share": f"{share:.2f}",
            "success": f"{res['success']:.2f}", "queries used": f"{res['median_queries']:.0f}",
            "queries to 2x final": f"{res['median_queries_to_2x_final']:.0f}", "L2 (m)": f"{res['median_l2_m']:.3f}",
            "L2 / start": f"{res['median_l2_over_start']:.3f}", "accel dev (m/s²)": f"{res['median_accel_dev']:.2f}",
            "max bone err (m)": f"{res['max_bone_err_m']:.1e}", "max angle viol (rad)": f"{res['max_angle_viol_rad']:.3f}",
            "context: attack s / forward ms": f"{wall:.0f} / {1000 * fwd:.1f}",
        })
        print(f"{res['mode']}: {queries} queries in {wall:.1f} s ({queries / wall:.0f}/s); bare forward of the "
              f"{len(sel)} clips {1000 * fwd:.1f} ms (median of {len(fwd_times)}; 10-90%: {1000 * fwd_lo:.1f}-"
              f"{1000 * fwd_hi:.1f} ms; {len(sel) / fwd:.0f} windows/s); ratio {ratio:.2f}, "
              f"projection share {share:.2f}", flush=True)

    keys = list(rows[0])
    print()
    print(f"BASAR on {len(sel)} held-out cmu8 windows, budget {args.queries} queries per clip, "
          f"{torch.get_num_threads()} CPU threads, device {device}")
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(row[k] for k in keys) + " |")
    head = results[0]
    summary = {"basar_queries_per_second_over_forward": round(head["queries_per_second_over_forward"], 3),
               "basar_mode": head["mode"], "basar_batch": len(sel),
               "basar_projection_share": round(head["projection_share"], 3),
               "basar_success": head["success"], "basar_median_l2_m": head["median_l2_m"],
               "basar_median_l2_over_start": head["median_l2_over_start"]}
    for res in results[1:]:
        summary[f"basar_{res['mode'].replace('-', '_')}_queries_per_second_over_forward"] = round(
            res["queries_per_second_over_forward"], 3)
    _harness.write_json(args.json, __file__, args, summary, results, device=device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
