"""BASAR on held-out cmu8 clips, on the manifold versus off it.

    .venv/bin/python bench/basar.py [--clips 20] [--queries 3000] [--checkpoint PATH] [--threads 2]

The victim is the small ST-GCN of the test suite's recipe (trained here, seeded, under a minute on two CPU
cores; world-coordinate input centred inside the model, the field's augmentation) unless ``--checkpoint`` names
one trained on the cmu8 benchmark. The attacked clips are correctly
classified held-out windows of the cmu8 benchmark (clip-level split, 30 fps, 60 frames); start points come
from the training windows; joint-angle limits are estimated from the training windows (5° margin).

Default budget: BASAR's own default, 3000 queries per clip (20 clips take about 5 minutes on the manifold and 2
off it on two idle CPU cores). Per mode the table gives the success rate, the median queries used by successful
clips, the median queries until a clip first came within twice its final distance, the median final L2
distance (m, all joints and frames) and its ratio to the start point's, the median RMS acceleration deviation
(m/s²), the worst bone-length error (m) and joint-angle violation (rad, beyond the limits widened by the clean
clip's own range), and the projection time per clip (s).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from engine.attacks import build
from engine.attacks.manifold import estimate_joint_angle_limits
from engine.benchmark import load_cmu8_benchmark
from engine.checkpoints import load_classifier
from engine.train import train_classifier

RECIPE = {"arch_kwargs": {"base_channels": 16, "num_blocks": 4, "dropout": 0.0}, "epochs": 12, "batch_size": 32,
          "lr": 2e-3, "seed": 0, "augment": True}  # tests/conftest.py CMU8_STGCN_RECIPE


def queries_to_reach(result, factor: float = 2.0) -> np.ndarray:
    """Per sample: queries used when its distance first came within ``factor`` × its final distance."""
    dist = np.asarray(result.history["distance"])  # (iterations, N)
    used = np.asarray(result.history["queries"])
    final = result.extras["distance"].numpy()
    out = np.full(len(final), np.nan)
    for i in range(len(final)):
        hit = np.nonzero(dist[:, i] <= factor * final[i])[0]
        out[i] = used[hit[0], i] if len(hit) else result.queries[i].item()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=20)
    ap.add_argument("--queries", type=int, default=3000)
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    train, test = load_cmu8_benchmark(fps=30, window=60, stride=20, seed=0)
    if args.checkpoint:
        clf = load_classifier(args.checkpoint)
    else:
        t0 = time.perf_counter()
        clf = train_classifier("stgcn", train, None, device="cpu", preprocessing={"stride": 20}, **RECIPE).classifier
        print(f"trained the victim in {time.perf_counter() - t0:.0f} s", flush=True)
    clf.eval()
    x, y = torch.as_tensor(test.x), torch.as_tensor(test.y)
    with torch.no_grad():
        ok = (clf(x).argmax(1) == y).nonzero().flatten()
    print(f"victim accuracy on the {len(y)} held-out windows: {len(ok) / len(y):.3f}")
    g = torch.Generator().manual_seed(args.seed)
    sel = ok[torch.randperm(len(ok), generator=g)[: args.clips]]
    limits = estimate_joint_angle_limits(train.x, train.skeleton, source="cmu8 benchmark train")

    rows = []
    for on in (True, False):
        attack = build("basar", clf, joint_limits=limits, queries=args.queries, on_manifold=on,
                       starts=torch.as_tensor(train.x), start_labels=torch.as_tensor(train.y), seed=args.seed)
        t0 = time.perf_counter()
        r = attack(x[sel], y[sel])
        wall = time.perf_counter() - t0
        s = r.success.numpy()
        e = r.extras
        rows.append({
            "mode": "on-manifold" if on else "off-manifold",
            "success": f"{s.mean():.2f}",
            "queries used": f"{np.median(r.queries.numpy()[s]):.0f}" if s.any() else "-",
            "queries to 2x final": f"{np.nanmedian(queries_to_reach(r)[s]):.0f}" if s.any() else "-",
            "L2 (m)": f"{np.median(e['distance'].numpy()[s]):.3f}" if s.any() else "-",
            "L2 / start": f"{np.median((e['distance'] / e['start_distance']).numpy()[s]):.3f}" if s.any() else "-",
            "accel dev (m/s²)": f"{np.median(e['accel_deviation'].numpy()[s]):.2f}" if s.any() else "-",
            "max bone err (m)": f"{e['bone_length_error'].max():.1e}",
            "max angle viol (rad)": f"{e['angle_violation'].max():.3f}",
            "projection s/clip": f"{e['projection_seconds'] / len(sel):.2f}",
            "wall s": f"{wall:.0f}",
        })
        print(f"{rows[-1]['mode']}: done in {wall:.0f} s: {rows[-1]}", flush=True)  # in case a later mode is cut off

    keys = list(rows[0])
    print()
    print(f"BASAR on {len(sel)} held-out cmu8 windows, budget {args.queries} queries per clip")
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(row[k] for k in keys) + " |")


if __name__ == "__main__":
    main()
