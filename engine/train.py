"""Training and evaluation of the victim classifiers on :class:`~engine.data.WindowSet` s.

:func:`train_classifier` fits an architecture from the registry on windows in metres and returns a
:class:`~engine.models.base.Classifier` carrying the skeleton, class names, the input normalisation of the
training windows and the preprocessing they went through, ready for :func:`engine.models.checkpoint.save_classifier`.
:func:`evaluate` gives accuracy and the confusion matrix.

Optimiser: AdamW with a cosine learning-rate schedule and cross-entropy. Optional light augmentation (done in
metres, before normalisation): a random rotation about the up axis, a random global scale and a small
per-sample jitter. Deterministic for a given seed on the CPU.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from engine.data import WindowSet, normalisation_stats
from engine.errors import CancelledError, SkelvizError
from engine.models.base import Classifier, build_model

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int, dict], None]


def held_out_windows(
    path: str | Path,
    *,
    fps: float = 30.0,
    window: int = 60,
    stride: int = 20,
    seed: int = 0,
    test_fraction: float = 0.25,
    root_centre: bool = True,
) -> tuple[WindowSet, WindowSet]:
    """``(train, test)`` windows of a dataset file, split by clip (never by window).

    A positions HDF5 file with ``train/`` and ``test/`` groups (the shared cmu8 file) gets the project's
    benchmark split (:func:`engine.data.cmu8_benchmark_split`: the file's split where a class has clips on both
    sides, a clip-level re-split otherwise, and a time split with a gap for classes with too few clips). Any
    other dataset gets :func:`engine.data.split_by_clip_with_time_fallback` with ``test_fraction``.
    """
    from engine.data import cmu8_benchmark_split, split_by_clip_with_time_fallback
    from engine.io import detect_format, load_dataset

    if detect_format(path) == "positions-h5":
        train_ds, test_ds = cmu8_benchmark_split(path, seed=seed, test_fraction=test_fraction)
    else:
        train_ds, test_ds = split_by_clip_with_time_fallback(load_dataset(path), test_fraction, seed)
    kw = {"fps": fps, "window": window, "stride": stride, "root_centre": root_centre}
    return train_ds.to_windows(**kw), test_ds.to_windows(**kw)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else the CPU; ``"cuda"`` without a GPU is a clear error."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SkelvizError("CUDA was requested but no GPU is available; use --device cpu or auto")
    return device


@dataclass
class TrainResult:
    """The trained classifier (in eval mode, on the CPU), one dict per epoch and the wall time."""

    classifier: Classifier
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def _augment(x: torch.Tensor, up: int, generator: torch.Generator, max_angle: float = math.radians(20.0)) -> torch.Tensor:
    n = x.shape[0]
    angle = (torch.rand(n, generator=generator) * 2 - 1) * max_angle
    scale = 1.0 + (torch.rand(n, generator=generator) * 2 - 1) * 0.1
    c, s = torch.cos(angle), torch.sin(angle)
    rot = torch.zeros(n, 3, 3)
    a, b = [i for i in range(3) if i != up]  # the two horizontal axes
    rot[:, up, up] = 1.0
    rot[:, a, a], rot[:, a, b], rot[:, b, a], rot[:, b, b] = c, -s, s, c
    rot = rot * scale[:, None, None]
    present = (x != 0).any(dim=1, keepdim=True)  # keep zero-padded bodies at zero
    y = torch.einsum("nij,njtvm->nitvm", rot.to(x.device), x)
    y = y + 0.002 * torch.randn(y.shape, generator=generator).to(x.device)
    return torch.where(present, y, torch.zeros_like(y))


def _batches(n: int, batch_size: int, generator: torch.Generator | None) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    batches = list(order.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1:  # a one-sample batch breaks batch norm: merge it
        batches[-2:] = [torch.cat(batches[-2:])]
    return batches


@torch.no_grad()
def predict(classifier: Classifier, x: np.ndarray | torch.Tensor, batch_size: int = 256,
            device: str | torch.device | None = None) -> np.ndarray:
    """Class scores (N, K) (logits) of windows (N, 3, T, V, M) in metres, in eval mode."""
    device = torch.device(device) if device is not None else classifier.mean.device
    was = classifier.training
    classifier.eval()
    x = torch.as_tensor(np.asarray(x, dtype=np.float32)) if not torch.is_tensor(x) else x.float()
    out = []
    try:
        for lo in range(0, len(x), batch_size):
            out.append(classifier(x[lo:lo + batch_size].to(device)).cpu())
    finally:
        classifier.train(was)
    return torch.cat(out).numpy() if out else np.zeros((0, classifier.num_classes), np.float32)


def evaluate(classifier: Classifier, windows: WindowSet, batch_size: int = 256,
             device: str | torch.device | None = None) -> dict[str, Any]:
    """Accuracy and confusion matrix (rows: true class, columns: predicted) on labelled windows."""
    from engine.models.checkpoint import check_compatible

    check_compatible(classifier, skeleton=windows.skeleton, class_names=windows.class_names)
    keep = windows.y >= 0
    logits = predict(classifier, windows.x[keep], batch_size, device)
    y = windows.y[keep]
    pred = logits.argmax(1) if len(logits) else np.zeros(0, np.int64)
    k = classifier.num_classes
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (y, pred), 1)
    n = int(len(y))
    return {
        "accuracy": float((pred == y).mean()) if n else float("nan"),
        "confusion_matrix": cm.tolist(),
        "class_names": list(classifier.class_names),
        "n": n,
        "predictions": pred.tolist(),
    }


def train_classifier(
    arch: str,
    train: WindowSet,
    val: WindowSet | None = None,
    *,
    arch_kwargs: dict[str, Any] | None = None,
    epochs: int = 30,
    batch_size: int = 32,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    seed: int = 0,
    device: str | torch.device = "auto",
    augment: bool = False,
    preprocessing: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
    progress: ProgressFn | None = None,
    cancel: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train architecture ``arch`` on ``train`` (validated on ``val`` after every epoch).

    ``progress(done_batches, total_batches, info)`` is called after every batch; ``info`` holds ``epoch``,
    ``loss`` and, after an epoch's last batch, ``epoch_end=True`` with ``train_accuracy`` and
    ``val_accuracy`` (when ``val`` is given). ``cancel()`` is checked every batch
    (:class:`~engine.errors.CancelledError`). ``preprocessing`` is recorded in the classifier (fps and window
    are taken from the windows; pass stride/root_centre as used to make them).
    """
    if len(train) == 0:
        raise SkelvizError("no training windows")
    labelled = train.y >= 0
    if not labelled.all():
        train = train.subset(np.flatnonzero(labelled))
    dev = resolve_device(device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    arch_kwargs = dict(arch_kwargs or {})
    net = build_model(arch, train.skeleton, len(train.class_names), **arch_kwargs)
    mean, std = normalisation_stats(train)
    prep = {"fps": float(train.fps), "window": int(train.window), "root_centre": True}
    prep.update(preprocessing or {})
    clf = Classifier(net, list(train.class_names), mean=torch.from_numpy(mean), std=torch.from_numpy(std),
                     preprocessing=prep, arch=arch, arch_kwargs=arch_kwargs, meta=dict(meta or {})).to(dev)
    params = [p for p in clf.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    steps_per_epoch = len(_batches(len(train), batch_size, None))
    total = epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    x_all = torch.from_numpy(train.x)
    y_all = torch.from_numpy(train.y)
    up = train.skeleton.up_index
    history: list[dict[str, float]] = []
    t0 = time.perf_counter()
    done = 0
    for epoch in range(1, epochs + 1):
        clf.train()
        loss_sum, correct, seen = 0.0, 0, 0
        batches = _batches(len(train), batch_size, gen)
        for i, idx in enumerate(batches):
            if cancel is not None and cancel():
                raise CancelledError("training cancelled")
            xb = x_all[idx]
            if augment:
                xb = _augment(xb, up, gen)
            xb, yb = xb.to(dev), y_all[idx].to(dev)
            logits = clf(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            seen += len(idx)
            done += 1
            info: dict[str, Any] = {"epoch": epoch, "loss": float(loss.detach())}
            if i == len(batches) - 1:
                record = {"epoch": epoch, "loss": loss_sum / max(seen, 1), "train_accuracy": correct / max(seen, 1)}
                if val is not None and len(val):
                    record["val_accuracy"] = evaluate(clf, val, device=dev)["accuracy"]
                history.append(record)
                info.update(record, epoch_end=True)
                log.debug("epoch %d: %s", epoch, record)
            if progress is not None:
                progress(done, total, info)
    clf.eval()
    seconds = time.perf_counter() - t0
    clf.meta.update(
        {
            "epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "seed": seed,
            "augment": augment, "train_windows": len(train), "train_seconds": round(seconds, 2),
            "device": str(dev), "torch": torch.__version__,
        }
    )
    if history and "val_accuracy" in history[-1]:
        clf.meta["val_accuracy"] = history[-1]["val_accuracy"]
        clf.meta["val_windows"] = len(val)
    return TrainResult(clf.cpu(), history, seconds)
