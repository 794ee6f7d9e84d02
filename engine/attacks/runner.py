"""Batch attacks over a dataset: select the correctly classified windows, attack them in batches, resume.

Used by ``skelviz attack``, by the distributed runner and by the studies' stimulus preparation::

    windows = load_windows(classifier, "data.h5")
    summary = run_attack_job(classifier, windows, "out/smart_ab", method="smart", strategy="ab")

Output folder ``DIR``:

``DIR/job.json``
    the job's parameters (written first; a resumed run must ask for the same job);
``DIR/parts/batch_NNNNN.npz``
    one file per finished batch (written to a temporary name, then renamed: a killed run leaves only whole
    batches), which is what resuming skips;
``DIR/adversarial.h5``
    assembled at the end. Root attributes: ``schema`` (``"skelviz.attack"``), ``schema_version``,
    ``params`` (JSON: method, strategy, top_n, target, attack keyword arguments, seed, batch size, model
    and data paths...), ``class_names`` (JSON), ``skeleton`` (JSON), ``fps``. Datasets, one row per attacked
    window: ``clean`` and ``adversarial`` (N, 3, T, V, M) float32 metres, ``label``, ``target`` (−1 when
    untargeted), ``clean_pred``, ``adv_pred``, ``success``, ``iterations``, ``queries``, ``window_index``
    (the window's row in the attacked :class:`~engine.data.WindowSet`), and ``metrics/<name>`` (N,) per-sample
    deviations from :func:`engine.metrics.per_sample_summary`;
``DIR/results.json``
    ``method``, ``strategy``, ``top_n``, ``target``, ``n``, ``n_success``, ``n_failed``, ``success_rate`` (the
    **re-checked** success: the saved adversarial motion predicted again through the classifier's full pipeline,
    :mod:`engine.validity`), ``mean_iterations``/``mean_queries`` (over successes; ``..._all`` over every
    sample), ``mean_l2``, ``mean_bone_length_rel_dev``, ``mean_accel_dev`` and the other metric means **over
    the successful samples only** (as the papers report them; None when nothing succeeded), ``diagnostics``
    (``success_rate_reported`` by the attack itself, ``success_rate_recentred`` after re-centring the saved
    motion on its root outside the model, ``mean_top_joint_share``/``mean_top_frame_share`` over successes,
    ``warnings``), ``clean_accuracy`` (over the labelled windows; None without labels), ``n_windows``, ``n_unlabelled``
    (attacked away from the model's own prediction), ``n_correct``,
    ``seconds``, ``params`` (the job) and ``attack_params`` (``asdict`` of the attack's typed parameters, every
    value the attack ran with; also the HDF5 root attribute ``attack_params``). The HDF5 file holds the
    per-sample ``success`` (re-checked),
    ``success_reported`` and ``success_recentred``.

Which windows: every window the classifier classifies correctly (``limit``: only the first K of them). For SA
with a fixed target class, windows of that class are left out (a target can never be the true class); SA
without a target draws one other class per window from ``seed``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine import metrics, validity
from engine.errors import AttackError, SkelvizError
from engine.plain import to_plain
from engine.progress import ProgressFn

log = logging.getLogger(__name__)

SCHEMA = "skelviz.attack"
SCHEMA_VERSION = 1


# -- data ----------------------------------------------------------------------------------------------------
def load_windows(classifier, path: str | Path, *, split: str = "auto", seed: int = 0,
                 reader: dict[str, Any] | None = None):
    """The windows of the dataset at ``path`` as ``classifier`` takes them (a :class:`~engine.data.WindowSet`).

    Clips are mapped onto the classifier's skeleton, resampled and cut as its preprocessing says (fps, window,
    stride, bodies); the windows stay in world coordinates (the classifier centres them itself). ``split``: ``"all"`` (every clip), ``"test"`` (the held-out part:
    the cmu8 benchmark split for a positions HDF5 file with train/test groups, else the project's clip-level
    split), or ``"auto"`` (``"test"`` for a file with its own train/test groups, ``"all"`` otherwise). Labels
    are matched to the classifier's classes by name. ``reader``: keywords for the file's reader (e.g.
    ``{"stats": PATH}``, a SMART ``.npz``'s ``preprocess_core.npz`` kept elsewhere).
    """
    from engine.benchmark import cmu8_benchmark_split
    from engine.data import ClipDataset, map_clip, split_by_clip_with_time_fallback
    from engine.io import detect_format, load_dataset

    path = Path(path)
    fmt = detect_format(path)
    if split not in ("auto", "all", "test"):
        raise SkelvizError(f"split must be auto, all or test, got {split!r}")
    dataset = None
    if split in ("auto", "test") and fmt == "positions-h5":
        dataset = load_dataset(path, **(reader or {}))
        has_split = any(c.provenance.details.get("split") for c in dataset)
        if has_split:
            dataset = cmu8_benchmark_split(path, seed=seed)[1]
        elif split == "test":
            dataset = split_by_clip_with_time_fallback(dataset, 0.25, seed)[1]
    if dataset is None:
        dataset = load_dataset(path, **(reader or {}))
        if split == "test":
            dataset = split_by_clip_with_time_fallback(dataset, 0.25, seed)[1]
    target = classifier.skeleton
    if not dataset.skeleton.same_topology(target):
        dataset = ClipDataset(
            [map_clip(c, target) for c in dataset], dataset.class_names, skeleton=target, name=dataset.name,
            source=dataset.source,
        )
    names = [n.lower() for n in classifier.class_names]
    unknown = [n for n in dataset.class_names if n.lower() not in names]
    if unknown:
        raise SkelvizError(
            f"{path}: classes {unknown} are not among the classifier's classes {classifier.class_names}; "
            "attack data labelled with the classes the model was trained on"
        )
    if list(dataset.class_names) != list(classifier.class_names):
        # labels onto the classifier's class order (names matched case-insensitively)
        from dataclasses import replace

        canon = {n.lower(): n for n in classifier.class_names}
        clips = [c if c.label is None else replace(c, label=canon[c.label.lower()]) for c in dataset]
        dataset = ClipDataset(clips, classifier.class_names, skeleton=dataset.skeleton, name=dataset.name,
                              source=dataset.source)
    return classifier.preprocessing.window_set(dataset)


def predict_windows(classifier, x: np.ndarray, device, batch_size: int = 256) -> np.ndarray:
    """Logits (N, K) of windows (N, 3, T, V, M) in eval mode (the model's mode is restored)."""
    was = classifier.training
    classifier.eval()
    out = []
    try:
        with torch.no_grad():
            for lo in range(0, len(x), batch_size):
                out.append(classifier(torch.as_tensor(x[lo : lo + batch_size]).to(device)).float().cpu())
    finally:
        classifier.train(was)
    return torch.cat(out).numpy() if out else np.zeros((0, classifier.num_classes), np.float32)


# -- the job -------------------------------------------------------------------------------------------------
@dataclass
class AttackJob:
    """What to attack and how. ``attack_kwargs`` go to the attack's constructor (besides strategy/top_n)."""

    method: str
    strategy: str = "ab"
    top_n: int = 3
    target: int | None = None
    attack_kwargs: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 32
    limit: int | None = None
    seed: int = 0
    preset: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # provenance only (model and data paths ...)

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "preset": self.preset,
            "strategy": self.strategy,
            "top_n": self.top_n,
            "target": self.target,
            "attack_kwargs": to_plain(self.attack_kwargs),
            "batch_size": self.batch_size,
            "limit": self.limit,
            "seed": self.seed,
            **{k: to_plain(v) for k, v in self.extra.items()},
        }


def build_attack(classifier, job: AttackJob, progress=None, cancel=None):
    """The attack object for ``job`` through :func:`engine.attacks.build` (strategy and top N passed to the
    attacks that have them; an attack without strategies runs AB only)."""
    from engine.attacks import get_attack
    from engine.attacks.base import build
    from engine.params import specs

    names = {s.name for s in specs(get_attack(job.method).Params)}
    kwargs = dict(job.attack_kwargs)
    if "strategy" in names:
        kwargs["strategy"] = job.strategy
    elif job.strategy != "ab":
        raise AttackError(f"attack {job.method!r} has no strategies; it runs AB only")
    if "top_n" in names:
        kwargs["top_n"] = job.top_n
    return build(job.method, classifier, preset=job.preset, progress=progress, cancel=cancel, **kwargs)


def select_windows(classifier, windows, job: AttackJob, device) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(indices, targets)`` of the windows to attack (targets −1 when untargeted) and selection stats.

    An unlabelled window (label −1, e.g. a BVH file) is attacked away from the model's own prediction
    ("anything but the predicted class"), as the app does (:func:`engine.api.run_attack`): the prediction becomes
    its label here, **in place** in ``windows.y``, so that the caller attacks and re-checks against it.
    ``stats``: ``n_windows`` (all), ``n_unlabelled`` (labelled by prediction), ``n_correct`` (attackable: correctly
    classified or unlabelled), ``clean_accuracy`` (over the labelled windows; None when there are none).
    """
    logits = predict_windows(classifier, windows.x, device, max(job.batch_size, 64))
    pred = logits.argmax(1) if len(logits) else np.zeros(0, np.int64)
    labelled = windows.y >= 0
    if not labelled.all():
        windows.y = np.where(labelled, windows.y, pred).astype(np.int64)
        log.info("%d unlabelled window(s): attacking the model's own prediction", int((~labelled).sum()))
    correct = pred == windows.y
    stats = {
        "n_windows": int(len(windows)),
        "n_unlabelled": int((~labelled).sum()),
        "n_correct": int(correct.sum()),
        "clean_accuracy": float(correct[labelled].mean()) if labelled.any() else None,
    }
    idx = np.flatnonzero(correct)
    targets = np.full(len(idx), -1, np.int64)
    if job.strategy == "sa":
        k = classifier.num_classes
        if job.target is not None:
            if not 0 <= job.target < k:
                raise AttackError(f"target class {job.target} is not one of the classifier's {k} classes")
            keep = windows.y[idx] != job.target
            if (~keep).any():
                log.info("SA: %d window(s) of the target class itself are left out", int((~keep).sum()))
            idx = idx[keep]
            targets = np.full(len(idx), job.target, np.int64)
        else:
            rng = np.random.default_rng(job.seed)
            offsets = rng.integers(1, k, size=len(idx))
            targets = (windows.y[idx] + offsets) % k  # uniform over the other classes
    if job.limit is not None:
        idx, targets = idx[: job.limit], targets[: job.limit]
    return idx, targets, stats


def _atomic_savez(path: Path, **arrays) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def run_attack_job(
    classifier,
    windows,
    out_dir: str | Path,
    job: AttackJob,
    *,
    device: str | torch.device | None = None,
    progress: ProgressFn | None = None,
    cancel: Callable[[], bool] | None = None,
) -> dict:
    """Attack the selected windows of ``windows`` in batches, writing and resuming ``out_dir`` (module doc).

    ``progress(done, total, info)`` is called after every batch with the number of windows attacked so far
    (resumed ones included). Returns the results dictionary also written to ``results.json``.

    Under ``torchrun`` (an active :func:`engine.distributed.dist_context`) every rank attacks its share of the
    batches (contiguous blocks of the same global batches a single process attacks, each seeded by its batch
    number, so the output files are the same), rank 0 alone writes ``DIR`` and returns the results; the other
    ranks return ``{}``.
    """
    from engine import distributed

    ctx = distributed.current()  # a single process unless run under torchrun (engine.distributed)
    out = Path(out_dir)
    parts = out / "parts"
    device = torch.device(device) if device is not None else classifier.mean.device
    classifier.to(device)
    job_dict = job.to_dict()
    job_file = out / "job.json"
    with ctx.guard("job setup"):
        if ctx.is_main:  # only rank 0 touches the output folder
            parts.mkdir(parents=True, exist_ok=True)
            if job_file.exists():
                previous = json.loads(job_file.read_text(encoding="utf-8"))
                if previous != json.loads(json.dumps(job_dict)):
                    raise SkelvizError(
                        f"{out} holds a run with different parameters ({job_file}); use another output folder or delete it"
                    )
            else:
                _atomic_write_text(job_file, json.dumps(job_dict, indent=2))

    t0 = time.perf_counter()
    idx, targets, stats = select_windows(classifier, windows, job, device)
    total = len(idx)
    n_batches = (total + job.batch_size - 1) // job.batch_size
    fps = float(windows.fps)
    # batches already on disk (resume) are skipped; rank 0 decides so that every rank skips the same ones
    pending = ctx.broadcast([b for b in range(n_batches) if not (parts / f"batch_{b:05d}.npz").exists()])
    skipped = set(range(n_batches)) - set(pending)
    done = sum(min(total, (b + 1) * job.batch_size) - b * job.batch_size for b in skipped)
    if done and progress is not None:
        progress(done, total, {"resumed": True})

    def attack_batch(b: int) -> dict[str, np.ndarray]:
        lo, hi = b * job.batch_size, min(total, (b + 1) * job.batch_size)
        sel = idx[lo:hi]
        x = torch.as_tensor(windows.x[sel])
        y = torch.as_tensor(windows.y[sel])
        t = torch.as_tensor(targets[lo:hi]) if job.strategy == "sa" else None
        torch.manual_seed(job.seed + b)  # batches are reproducible whether or not the run was resumed
        attack = build_attack(classifier, job, cancel=cancel)
        result = attack(x, y, target=t)
        adv = result.adversarial.numpy().astype(np.float32)  # what is saved, and so what is re-checked
        clean_logits = predict_windows(classifier, windows.x[sel], device)
        per = metrics.per_sample_summary(windows.x[sel], adv, windows.skeleton, fps)
        checked = validity.recheck(classifier, adv, windows.y[sel], strategy=job.strategy, top_n=job.top_n,
                                   target=targets[lo:hi] if job.strategy == "sa" else None, device=device)
        return dict(
            clean=windows.x[sel],
            adversarial=adv.astype(np.float32),
            label=windows.y[sel],
            target=targets[lo:hi],
            clean_pred=clean_logits.argmax(1),
            adv_pred=checked["pred"],
            success=checked["success"],
            success_reported=result.success.numpy(),
            success_recentred=checked["success_recentred"],
            iterations=result.iterations.numpy(),
            queries=(result.queries if result.queries is not None else result.iterations).numpy(),
            window_index=sel,
            **{f"metric_{k}": v for k, v in per.items()},
        )

    def save_batch(b: int, arrays: dict[str, np.ndarray]) -> None:
        nonlocal done
        _atomic_savez(parts / f"batch_{b:05d}.npz", **arrays)
        done += len(arrays["label"])
        if progress is not None:
            progress(done, total, {"batch": b + 1, "batches": n_batches, "success_rate": float(np.mean(arrays["success"]))})

    # each rank attacks its share of the batches; rank 0 saves every part (its own as they finish)
    distributed.map_sharded(attack_batch, pending, what="batches", on_result=save_batch)
    if not ctx.is_main:
        return {}
    attack_params = build_attack(classifier, job).params  # asdict(params) of the attack every batch ran
    results = assemble(out, job, stats, windows, seconds=time.perf_counter() - t0, total=total,
                       attack_params=attack_params)
    return results


def _read_parts(out: Path, n_batches: int) -> dict[str, np.ndarray]:
    arrays: dict[str, list[np.ndarray]] = {}
    for b in range(n_batches):
        with np.load(out / "parts" / f"batch_{b:05d}.npz", allow_pickle=False) as part:
            for k in part.files:
                arrays.setdefault(k, []).append(part[k])
    return {k: np.concatenate(v) for k, v in arrays.items()}


def assemble(out: Path, job: AttackJob, stats: dict, windows, *, seconds: float, total: int,
             attack_params: dict | None = None) -> dict:
    """Write ``adversarial.h5`` and ``results.json`` from the batch parts; return the results."""
    import h5py

    n_batches = (total + job.batch_size - 1) // job.batch_size
    data = _read_parts(out, n_batches) if n_batches else {}
    n = int(len(data.get("label", [])))
    metric_names = sorted(k[len("metric_"):] for k in data if k.startswith("metric_"))
    params = job.to_dict()
    tmp = out / "adversarial.h5.tmp"
    with h5py.File(tmp, "w") as f:
        f.attrs["schema"] = SCHEMA
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["params"] = json.dumps(params)
        f.attrs["attack_params"] = json.dumps(to_plain(attack_params or {}))
        f.attrs["class_names"] = json.dumps(list(windows.class_names))
        f.attrs["skeleton"] = json.dumps(windows.skeleton.to_dict())
        f.attrs["fps"] = float(windows.fps)
        shape = (0, *windows.x.shape[1:])
        for key in ("clean", "adversarial"):
            f.create_dataset(key, data=data.get(key, np.zeros(shape, np.float32)), compression="gzip")
        for key, dtype in (("label", np.int64), ("target", np.int64), ("clean_pred", np.int64),
                           ("adv_pred", np.int64), ("success", bool), ("success_reported", bool),
                           ("success_recentred", bool), ("iterations", np.int64),
                           ("queries", np.int64), ("window_index", np.int64)):
            f.create_dataset(key, data=np.asarray(data.get(key, np.zeros(0)), dtype=dtype))
        g = f.create_group("metrics")
        for name in metric_names:
            g.create_dataset(name, data=data[f"metric_{name}"].astype(np.float64))
    os.replace(tmp, out / "adversarial.h5")

    success = np.asarray(data.get("success", np.zeros(0, bool)), dtype=bool)
    per = {name: data[f"metric_{name}"] for name in metric_names}
    top_joint = per.get("top_joint", np.zeros(n))
    diagnostics = {
        "success_rate_reported": float(np.mean(data["success_reported"])) if n else 0.0,
        "success_rate_recentred": float(np.mean(data["success_recentred"])) if n else 0.0,
        "mean_top_joint_share": float(np.mean(per["top_joint_share"][success])) if success.any() else None,
        "mean_top_frame_share": float(np.mean(per["top_frame_share"][success])) if success.any() else None,
        "warnings": validity.warnings_for(
            success, np.asarray(data.get("success_reported", success), bool),
            np.asarray(data.get("success_recentred", success), bool), per.get("top_joint_share", np.zeros(n)),
            top_joint, windows.skeleton.joint_names),
    }
    for note in diagnostics["warnings"]:
        log.warning("%s: %s", job.method, note)

    def mean_over_successes(key: str) -> float | None:
        return float(np.mean(data[key][success])) if success.any() else None

    results = {
        "method": job.method,
        "strategy": job.strategy,
        "top_n": job.top_n if job.strategy == "abn" else None,
        "target": job.target,
        "n": n,
        "n_success": int(success.sum()),
        "n_failed": int(n - success.sum()),
        # re-checked: the saved adversarial motion predicted again through the full pipeline (engine.validity)
        "success_rate": float(np.mean(success)) if n else 0.0,
        "mean_iterations": mean_over_successes("iterations"),
        "mean_queries": mean_over_successes("queries"),
        "mean_iterations_all": float(np.mean(data["iterations"])) if n else None,
        "mean_queries_all": float(np.mean(data["queries"])) if n else None,
        # perceptual metrics over the successful samples only, as the papers report them
        **validity.success_means(per, success),
        "diagnostics": diagnostics,
        **stats,
        "seconds": round(float(seconds), 3),
        "params": params,
        "attack_params": to_plain(attack_params or {}),
    }
    _atomic_write_text(out / "results.json", json.dumps(results, indent=2))
    return results


def load_attack_results(out_dir: str | Path) -> dict[str, Any]:
    """Read ``DIR/adversarial.h5`` back: arrays by name, ``metrics`` a dict of arrays, ``params`` a dict."""
    import h5py

    path = Path(out_dir) / "adversarial.h5"
    if not path.is_file():
        raise SkelvizError(f"{path} does not exist; run `skelviz attack ... --out {out_dir}` first")
    with h5py.File(path, "r") as f:
        if f.attrs.get("schema") != SCHEMA:
            raise SkelvizError(f"{path} is not a skelviz attack file")
        out: dict[str, Any] = {k: f[k][()] for k in f if isinstance(f[k], h5py.Dataset)}
        out["metrics"] = {k: f["metrics"][k][()] for k in f["metrics"]}
        out["params"] = json.loads(f.attrs["params"])
        out["class_names"] = json.loads(f.attrs["class_names"])
        out["skeleton"] = json.loads(f.attrs["skeleton"])
        out["fps"] = float(f.attrs["fps"])
    return out
