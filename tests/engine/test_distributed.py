"""engine.distributed: sharding, rank/device detection, and real multi-process runs under torchrun (gloo, CPU).

The multi-process tests start ``python -m torch.distributed.run --standalone --nproc-per-node 2`` as a user
would, so they exercise the real rendezvous, the gloo collectives and the error path end to end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.distributed import (
    DistContext,
    DistributedError,
    RankInfo,
    all_reduce_sum,
    average_gradients,
    current,
    describe_positions,
    dist_context,
    gather_to_rank0,
    is_main,
    local_minibatch,
    local_part,
    map_sharded,
    rank_generator,
    rank_info,
    resolve_device,
    sample_generator,
    shard,
    shard_indices,
    sync_gradients,
)

REPO = Path(__file__).resolve().parents[2]
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "GROUP_RANK")


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_ENV}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    env.update(extra)
    return env


def torchrun(args: list[str], nproc: int = 2, cwd: Path | None = None, timeout: float = 240):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *args]
    return subprocess.run(cmd, cwd=cwd or REPO, env=_clean_env(), capture_output=True, text=True, timeout=timeout)


def skelviz_alone_then_under_torchrun(args: Callable[[Path], list[str]], single: Path, multi: Path):
    """Run ``python -m skelviz *args(single)`` in one process, then ``*args(multi)`` under torchrun on two ranks;
    both must succeed. Returns the torchrun process (its output tells what the ranks reported)."""
    proc = subprocess.run(
        [sys.executable, "-m", "skelviz", *args(single)],
        cwd=REPO,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = torchrun(["-m", "skelviz", *args(multi)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


# -- pure sharding ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["contiguous", "strided"])
@pytest.mark.parametrize("n", [0, 1, 5, 7, 16])
@pytest.mark.parametrize("world", [1, 2, 3, 8])
def test_shards_are_disjoint_cover_everything_and_balanced(n, world, mode):
    shards = [shard_indices(n, r, world, mode) for r in range(world)]
    flat = [i for s in shards for i in s]
    assert sorted(flat) == list(range(n))
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1
    for s in shards:
        assert s == sorted(s)
    if mode == "contiguous":
        assert flat == list(range(n))  # concatenating rank 0, 1, ... restores the global order
        for s in shards:
            assert s == list(range(s[0], s[0] + len(s))) if s else True


def test_shard_layouts_are_the_documented_ones():
    assert shard_indices(7, 0, 3) == [0, 1, 2]
    assert shard_indices(7, 1, 3) == [3, 4]
    assert shard_indices(7, 2, 3) == [5, 6]
    assert shard_indices(7, 1, 3, "strided") == [1, 4]


@pytest.mark.parametrize(
    "args",
    [
        (5, 2, 2, "contiguous"),
        (5, -1, 2, "contiguous"),
        (5, 0, 0, "contiguous"),
        (5, 0, 2, "diagonal"),
        (-1, 0, 1, "strided"),
    ],
)
def test_bad_shard_requests_raise_clear_errors(args):
    with pytest.raises(DistributedError):
        shard_indices(*args)


def test_describe_positions():
    assert describe_positions([]) == "no items"
    assert describe_positions([3]) == "item 3"
    assert describe_positions([4, 5, 6, 7]) == "items 4-7"
    assert describe_positions([1, 3, 5]) == "items 1, 3, 5 (3 of them)"
    assert describe_positions([2], "batches") == "batch 2"
    assert describe_positions([2, 3], "batches") == "batches 2-3"
    assert describe_positions([], "clips") == "no clips"


# -- environment and device -------------------------------------------------------------------------------
def test_rank_info_reads_torchrun_variables(monkeypatch):
    for k in TORCHRUN_ENV:
        monkeypatch.delenv(k, raising=False)
    assert rank_info() == RankInfo(0, 1, 0)
    monkeypatch.setenv("WORLD_SIZE", "8")
    monkeypatch.setenv("RANK", "5")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert rank_info() == RankInfo(5, 8, 1)
    monkeypatch.setenv("RANK", "8")
    with pytest.raises(DistributedError, match="WORLD_SIZE=8"):
        rank_info()
    monkeypatch.setenv("RANK", "two")
    with pytest.raises(DistributedError, match="not an integer"):
        rank_info()


def test_device_resolution_per_rank():
    info = RankInfo(rank=3, world_size=4, local_rank=1)
    assert resolve_device("cpu", info) == torch.device("cpu")
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        assert resolve_device("auto", info) == torch.device("cuda", 1 % n)
        assert resolve_device("cuda", info) == torch.device("cuda", 1 % n)
        assert resolve_device("cuda:0", info) == torch.device("cuda", 0)
    else:
        assert resolve_device("auto", info) == torch.device("cpu")
        assert resolve_device(None, info) == torch.device("cpu")
        with pytest.raises(DistributedError, match="CUDA is not available"):
            resolve_device("cuda", info)
    with pytest.raises(DistributedError, match="unknown device"):
        resolve_device("tpu-ish", info)


def test_sample_generator_depends_on_seed_and_index_only():
    a = torch.rand(4, generator=sample_generator(7, 12))
    b = torch.rand(4, generator=sample_generator(7, 12))
    c = torch.rand(4, generator=sample_generator(7, 13))
    d = torch.rand(4, generator=sample_generator(8, 12))
    assert torch.equal(a, b)
    assert not torch.equal(a, c) and not torch.equal(a, d)


# -- single process: everything is a no-op ----------------------------------------------------------------
def test_single_process_context_is_transparent(monkeypatch):
    for k in TORCHRUN_ENV:
        monkeypatch.delenv(k, raising=False)
    assert current().world_size == 1 and is_main()
    with dist_context("cpu") as ctx:
        assert current() is ctx
        assert not ctx.distributed and ctx.is_main
        assert ctx.shard(list("abcde")) == list("abcde")
        assert shard(range(3)) == [0, 1, 2]
        assert gather_to_rank0({"x": 1}) == [{"x": 1}]
        assert ctx.all_gather(5) == [5] and ctx.broadcast("b") == "b"
        ctx.barrier()
        seen = []
        assert map_sharded(lambda b: b * 10, [3, 1, 2], on_result=lambda b, r: seen.append((b, r))) == [30, 10, 20]
        assert seen == [(3, 30), (1, 10), (2, 20)]
        batch = torch.arange(6)
        assert local_part(batch) is batch
        g = [torch.ones(2)]
        assert average_gradients(g, 6)[0] is g[0] and all_reduce_sum([2, 3]) == [2.0, 3.0]
        part, weight = local_minibatch(batch)
        assert part is batch and weight == 6
        shared = torch.Generator().manual_seed(0)
        assert rank_generator(shared, 0) is shared  # single process: the code's own stream, unchanged
        w = torch.nn.Parameter(torch.ones(2))
        w.grad = torch.full((2,), 3.0)
        sync_gradients([w], 2)
        assert torch.equal(w.grad, torch.full((2,), 3.0))
        with pytest.raises(KeyError):  # not wrapped: single-process behaviour is unchanged
            with ctx.guard("items 0-4"):
                raise KeyError("boom")
    assert not isinstance(current(), type(None)) and current() is not ctx


def test_context_without_backend_is_not_distributed():
    ctx = DistContext(info=RankInfo(1, 2, 1))
    assert not ctx.distributed and not ctx.is_main
    assert ctx.shard(range(5)) == [3, 4]  # the shard still follows the rank


# -- two real processes under torchrun (gloo) --------------------------------------------------------------
WORKER = textwrap.dedent(
    """
    import json, sys
    import torch
    from engine.distributed import dist_context, shard, gather_to_rank0, describe_positions, map_sharded
    from engine.distributed import local_part, average_gradients, all_reduce_sum, local_minibatch, rank_generator

    fail_rank = int(sys.argv[1])
    out = sys.argv[2]
    with dist_context("auto") as ctx:
        assert ctx.distributed and ctx.backend == "gloo" and ctx.device == torch.device("cpu")
        # phase 1: every rank succeeds; results are gathered in rank order
        mine = ctx.shard_positions(7)
        with ctx.guard(describe_positions(mine)):
            squares = {i: i * i for i in shard(range(7))}
        parts = gather_to_rank0((ctx.rank, squares, torch.full((2,), float(ctx.rank))))
        seed = ctx.broadcast(1234 if ctx.is_main else None)
        seen = []
        mapped = map_sharded(lambda b: (b, ctx.rank), [10, 11, 12, 13, 14], what="batches",
                             on_result=lambda b, r: seen.append(b))
        assert (mapped is None) != ctx.is_main
        everywhere = ctx.all_gather(ctx.local_rank)
        # data-parallel gradient of a mean loss over a global minibatch of 5 samples (parts of 3 and 2)
        w = torch.tensor([0.5, -1.0], requires_grad=True)
        data = torch.arange(10, dtype=torch.float32).reshape(5, 2)
        part = local_part(data)
        loss = ((part @ w) ** 2).mean() if len(part) else (w * 0).sum()
        g, = torch.autograd.grad(loss, [w])
        g_avg, = average_gradients([g], len(part))
        full, = torch.autograd.grad(((data @ w) ** 2).mean(), [w])
        assert torch.allclose(g_avg, full, rtol=1e-6), (g_avg, full)
        every = ctx.all_gather(g_avg)
        assert torch.equal(every[0], every[1])  # bitwise identical replicas
        assert all_reduce_sum([1.0, len(part)]) == [2.0, 5.0]
        one, weight = local_minibatch(torch.tensor([7]))  # fewer samples than ranks: rank 1 joins with weight 0
        assert one.tolist() == [7] and weight == (1 if ctx.rank == 0 else 0)
        draws = ctx.all_gather(torch.rand(3, generator=rank_generator(torch.Generator(), 5)))
        assert not torch.equal(draws[0], draws[1])  # per-rank noise streams differ
        if ctx.is_main:
            merged = {}
            for _, sq, _ in parts:
                merged.update(sq)
            json.dump({"ranks": [p[0] for p in parts], "merged": merged, "tensors": [p[2].tolist() for p in parts],
                       "seed": seed, "mapped": mapped, "seen": seen, "local": everywhere, "world": ctx.world_size}, open(out, "w"))
        # phase 2: one rank fails inside its share of the work; every rank must stop with the same report
        def work(b):
            if b == 5 and ctx.rank == fail_rank:
                raise FloatingPointError("NaN loss in batch 5")
            return b
        map_sharded(work, range(7), what="batches")
        open(out + f".after{ctx.rank}", "w").write("should not be reached")
    """
)


@pytest.mark.slow
def test_two_ranks_gather_in_order_and_a_failing_rank_is_reported_with_its_shard(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out = tmp_path / "out.json"
    proc = torchrun([str(script), "1", str(out)], timeout=180)
    text = proc.stdout + proc.stderr
    assert out.exists(), text[-3000:]
    got = json.loads(out.read_text())
    assert got["world"] == 2 and got["ranks"] == [0, 1] and got["local"] == [0, 1]
    assert got["merged"] == {str(i): i * i for i in range(7)}
    assert got["tensors"] == [[0.0, 0.0], [1.0, 1.0]]
    assert got["seed"] == 1234
    assert got["mapped"] == [[10, 0], [11, 0], [12, 0], [13, 1], [14, 1]]  # global order, contiguous shards
    assert got["seen"] == [10, 11, 12, 13, 14]  # on_result on rank 0: once per item, every rank's items
    # the failure: non-zero exit, neither rank went on, rank 0's error names rank 1 and its shard
    assert proc.returncode != 0
    assert not list(tmp_path.glob("out.json.after*"))
    assert "DistributedError" in text
    assert "rank 1 (batches 4-6) failed: FloatingPointError: NaN loss in batch 5" in text


# -- the real command: `skelviz attack` under torchrun equals a single process ------------------------------
def _attack_args(out: Path) -> list[str]:
    from engine.assets import ASSETS_DIR, DEMO_CHECKPOINTS, DEMO_DATASET

    model = ASSETS_DIR / DEMO_CHECKPOINTS["stgcn"]
    if not model.is_file():
        pytest.skip(f"demo checkpoint {model} is absent")
    # 5 windows in batches of 2: three batches, so the two ranks get unequal shares (batches 0-1 and 2)
    return [
        "attack",
        "--model",
        str(model),
        "--data",
        str(ASSETS_DIR / DEMO_DATASET),
        "--method",
        "smart",
        "--iters",
        "40",  # honest victims (world input, centred inside) need a few dozen steps, not a root nudge
        "--limit",
        "5",
        "--batch-size",
        "2",
        "--seed",
        "3",
        "--device",
        "cpu",
        "--quiet",
        "--out",
        str(out),
    ]


def _read_attack_dir(out: Path) -> tuple[dict, dict, dict]:
    import h5py

    results = json.loads((out / "results.json").read_text())
    results.pop("seconds")
    with h5py.File(out / "adversarial.h5", "r") as f:
        arrays = {k: f[k][()] for k in f if isinstance(f[k], h5py.Dataset)}
        arrays.update({f"metrics/{k}": f["metrics"][k][()] for k in f["metrics"]})
        attrs = dict(f.attrs)
    return results, arrays, attrs


@pytest.mark.slow
def test_attack_under_torchrun_writes_the_files_of_a_single_process_run(tmp_path):
    single, multi = tmp_path / "single", tmp_path / "multi"
    proc = skelviz_alone_then_under_torchrun(_attack_args, single, multi)
    assert "2 ranks (gloo)" in proc.stderr
    assert proc.stdout.count('"success_rate"') == 1  # only rank 0 reports

    r1, a1, attrs1 = _read_attack_dir(single)
    r2, a2, attrs2 = _read_attack_dir(multi)
    assert r1["n"] == 5 and 0 < r1["success_rate"]  # a real attack: some windows broken, with real deviations
    assert r2 == r1  # every number of results.json (all but the wall time)
    assert sorted(a2) == sorted(a1)
    for key in a1:
        assert a2[key].dtype == a1[key].dtype and a2[key].shape == a1[key].shape, key
        np.testing.assert_allclose(a2[key], a1[key], rtol=1e-6, atol=1e-7, err_msg=key)
    assert attrs2.keys() == attrs1.keys()
    p1, p2 = json.loads(attrs1["params"]), json.loads(attrs2["params"])
    assert p1 == p2
    # and rank 0 alone wrote the batch parts of both ranks
    assert sorted(p.name for p in (multi / "parts").iterdir()) == [f"batch_{b:05d}.npz" for b in range(3)]


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in ("seconds", "evaluation_seconds")}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


@pytest.mark.slow
def test_robustness_under_torchrun_writes_the_reports_of_a_single_process_run(tmp_path):
    from engine.assets import ASSETS_DIR, DEMO_CHECKPOINTS, DEMO_DATASET

    model = ASSETS_DIR / DEMO_CHECKPOINTS["stgcn"]
    if not model.is_file():
        pytest.skip(f"demo checkpoint {model} is absent")

    def args(out: Path) -> list[str]:
        return [
            "robustness",
            "--models",
            str(model),
            "--attacks",
            "smart",
            "ifgsm",
            "--data",
            str(ASSETS_DIR / DEMO_DATASET),
            "--limit",
            "7",
            "--iterations",
            "4",
            "--batch-size",
            "2",
            "--device",
            "cpu",
            "--quiet",
            "--out",
            str(out),
        ]

    single, multi = tmp_path / "single", tmp_path / "multi"
    proc = skelviz_alone_then_under_torchrun(args, single, multi)
    assert proc.stdout.count("wrote 1 model report") == 1  # only rank 0 reports
    assert sorted(p.name for p in multi.iterdir()) == sorted(p.name for p in single.iterdir())
    one = _without_timings(json.loads((single / "demo_stgcn.json").read_text()))
    two = _without_timings(json.loads((multi / "demo_stgcn.json").read_text()))
    assert one["attacks"]["smart"]["attacked"] >= 5  # several batches of two, shared unevenly over the ranks
    assert two == one
    assert (multi / "leaderboard.md").read_text() == (single / "leaderboard.md").read_text()


@pytest.fixture(scope="module")
def small_mlp_checkpoint(tmp_path_factory) -> Path:
    """A small MLP trained for two epochs on the demo dataset's training split (seconds on a CPU)."""
    from engine.assets import ASSETS_DIR, DEMO_DATASET
    from engine.models.checkpoint import save_classifier
    from engine.train import held_out_windows, train_classifier

    train, _ = held_out_windows(ASSETS_DIR / DEMO_DATASET, stride=20)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        clf = train_classifier(
            "mlp", train, arch_kwargs={"hidden": 32}, epochs=2, seed=0, device="cpu", preprocessing={"stride": 20}
        ).classifier
    finally:
        torch.set_num_threads(before)
    return save_classifier(clf, tmp_path_factory.mktemp("mlp") / "mlp.pt")


@pytest.mark.slow
def test_beat_under_torchrun_is_data_parallel_sgd_on_the_same_chain(tmp_path, small_mlp_checkpoint):
    """With the sampler's noise switched off, BEAT's SG-HMC chain is deterministic: two ranks that each take
    the gradient of their half of every minibatch and average them must end on the weights one process finds
    on the whole minibatches (to float rounding)."""
    from engine.assets import ASSETS_DIR, DEMO_DATASET

    def args(out: Path) -> list[str]:
        # batches of 16 of the 79 training windows: the last one (15) splits 8 + 7 over the ranks
        quiet = ["sgld_noise=0.0", "init_noise=0.0", "temperature=0.0", "sgld_steps=1", "x_weight=0.0", "batch_size=16"]
        return [
            "defend",
            "--method",
            "beat",
            "--model",
            str(small_mlp_checkpoint),
            "--data",
            str(ASSETS_DIR / DEMO_DATASET),
            "--epochs",
            "0",
            "--samples",
            "1",
            *[a for q in quiet for a in ("--param", q)],
            "--device",
            "cpu",
            "--quiet",
            "--out",
            str(out),
        ]

    single, multi = tmp_path / "single.pt", tmp_path / "multi.pt"
    proc = skelviz_alone_then_under_torchrun(args, single, multi)
    assert proc.stdout.count("2 ranks, data-parallel") == 1  # rank 0 alone writes and reports

    from engine.checkpoints import load_classifier

    one, two = load_classifier(single), load_classifier(multi)
    assert two.meta["defence"]["method"] == "beat" and two.forward_passes_per_prediction == 1
    heads_one = torch.load(single, weights_only=True)["defence"]["heads"]
    heads_two = torch.load(multi, weights_only=True)["defence"]["heads"]
    assert len(heads_one) == len(heads_two) == 1
    moved = 0.0
    for key, value in heads_one[0].items():
        torch.testing.assert_close(heads_two[0][key], value, rtol=1e-4, atol=1e-6, msg=key)
        moved = max(moved, float(value.abs().max()))
    assert moved > 1e-3  # the head did train (f starts at zero in its last layer)
    x = torch.randn(2, 3, 60, 25, 1) * 0.1  # demo windows: 60 frames, hdm05_25
    torch.testing.assert_close(two(x), one(x), rtol=1e-4, atol=1e-5)
