"""Training and evaluation of the victim classifiers on :class:`~engine.data.WindowSet` s.

:func:`train_classifier` fits an architecture from the registry on windows in metres (world coordinates) and
returns a :class:`~engine.models.base.Classifier` carrying the skeleton, class names, its
:class:`~engine.preprocessing.Preprocessing` (root centring and facing run inside the model) and the input
normalisation of the training windows after that preprocessing, ready for
:func:`engine.models.checkpoint.save_classifier`. :func:`evaluate` gives accuracy and the confusion matrix.

Optimiser: AdamW with a cosine learning-rate schedule and cross-entropy. Optional augmentation, the field's
usual one for motion capture in world coordinates (done in metres on the raw windows, before the model's own
preprocessing): a random rotation about the vertical axis through the performer's root at the first frame
(±180° by default: a mocap clip's heading is arbitrary), a random scale about that point (±10 %), a random
horizontal translation (±1 m) and 2 mm of per-joint jitter; optionally (``tilt_deg``) a random lean about both
horizontal axes, as CTR-GCN's feeders do (``random_rot``, 0.3 rad ≈ 17° about every axis). Deterministic for a
given seed on the CPU.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from engine.data import WindowSet, normalisation_stats
from engine.errors import CancelledError, SkelvizError
from engine.models.base import Classifier, build_model
from engine.preprocessing import Preprocessing
from engine.progress import ProgressFn

log = logging.getLogger(__name__)



def held_out_windows(
    path: str | Path,
    *,
    fps: float = 30.0,
    window: int = 60,
    stride: int = 20,
    seed: int = 0,
    test_fraction: float = 0.25,
    num_bodies: int | None = None,
    reader: dict[str, Any] | None = None,
) -> tuple[WindowSet, WindowSet]:
    """``(train, test)`` windows of a dataset file (world coordinates), split by clip (never by window).

    ``reader``: keywords for the file's reader (e.g. ``{"stats": "preprocess_core.npz"}`` for a SMART ``.npz``).

    A positions HDF5 file with ``train/`` and ``test/`` groups (the shared cmu8 file) gets the project's
    benchmark split (:func:`engine.data.cmu8_benchmark_split`: the file's split where a class has clips on both
    sides, a clip-level re-split otherwise, and a time split with a gap for classes with too few clips). Any
    other dataset gets :func:`engine.data.split_by_clip_with_time_fallback` with ``test_fraction``.
    """
    from engine.benchmark import cmu8_benchmark_split
    from engine.data import split_by_clip_with_time_fallback
    from engine.io import detect_format, load_dataset

    if detect_format(path) == "positions-h5":
        train_ds, test_ds = cmu8_benchmark_split(path, seed=seed, test_fraction=test_fraction)
    else:
        train_ds, test_ds = split_by_clip_with_time_fallback(load_dataset(path, **(reader or {})), test_fraction, seed)
    kw = {"fps": fps, "window": window, "stride": stride, "num_bodies": num_bodies}
    return train_ds.to_windows(**kw), test_ds.to_windows(**kw)


def classifier_split(classifier: Classifier, path: str | Path, reader: dict[str, Any] | None = None
                     ) -> tuple[WindowSet, WindowSet]:
    """``(train, test)`` windows of ``path`` cut as ``classifier`` takes them, split as it was trained (the
    split seed and test fraction recorded in its checkpoint), so evaluation and defences re-create its held-out
    windows."""
    pre = classifier.preprocessing
    return held_out_windows(path, fps=pre.fps, window=pre.window, stride=pre.stride, num_bodies=pre.num_bodies,
                            seed=int(classifier.meta.get("split_seed", 0)),
                            test_fraction=float(classifier.meta.get("test_fraction", 0.25)), reader=reader)


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


@dataclass(frozen=True)
class Augmentation:
    """Random transforms of world-coordinate training windows (see the module docstring)."""

    yaw_deg: float = 180.0
    scale: float = 0.1
    shift_m: float = 1.0
    jitter_m: float = 0.002
    tilt_deg: float = 0.0  # CTR-GCN's feeders (random_rot) use 0.3 rad ≈ 17° about every axis; 0: upright only


def _axis_rotation(angle: torch.Tensor, axis: int, a: int, b: int) -> torch.Tensor:
    """(n, 3, 3) rotations by ``angle`` about coordinate ``axis``, turning coordinate ``a`` towards ``b``."""
    c, s = torch.cos(angle), torch.sin(angle)
    rot = torch.zeros(len(angle), 3, 3)
    rot[:, axis, axis] = 1.0
    rot[:, a, a], rot[:, a, b], rot[:, b, a], rot[:, b, b] = c, -s, s, c
    return rot


def _augment(x: torch.Tensor, skeleton, generator: torch.Generator, aug: Augmentation) -> torch.Tensor:
    n = x.shape[0]
    up, root = skeleton.up_index, skeleton.root
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(aug.yaw_deg)
    scale = 1.0 + (torch.rand(n, generator=generator) * 2 - 1) * aug.scale
    shift = (torch.rand(n, 3, generator=generator) * 2 - 1) * aug.shift_m
    shift[:, up] = 0.0  # on the floor: heights keep their meaning
    a, b = [i for i in range(3) if i != up]  # the two horizontal axes
    rot = _axis_rotation(angle, up, a, b)
    if aug.tilt_deg:  # lean the whole body: rotations about both horizontal axes, after the yaw
        tilt = (torch.rand(n, 2, generator=generator) * 2 - 1) * math.radians(aug.tilt_deg)
        rot = _axis_rotation(tilt[:, 0], a, b, up) @ _axis_rotation(tilt[:, 1], b, up, a) @ rot
    rot = (rot * scale[:, None, None]).to(x.device)
    present = (x != 0).any(dim=1, keepdim=True).any(dim=3, keepdim=True)  # keep zero-padded bodies at zero
    pivot = x[:, :, :1, root : root + 1, :1]
    y = torch.einsum("nij,njtvm->nitvm", rot, x - pivot) + pivot + shift.to(x.device)[:, :, None, None, None]
    y = y + aug.jitter_m * torch.randn(y.shape, generator=generator).to(x.device)
    return torch.where(present, y, torch.zeros_like(y))


@torch.no_grad()
def input_statistics(windows: WindowSet, preprocessing: Preprocessing, batch: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """The input normalisation of ``windows`` as a model with ``preprocessing`` sees them (after facing and
    centring): :func:`engine.data.normalisation_stats` of the spatially preprocessed windows."""
    x = torch.from_numpy(windows.x)
    parts = [preprocessing.apply(x[lo:lo + batch], windows.skeleton) for lo in range(0, len(x), batch)]
    per_joint = preprocessing.normalisation == "per_joint"
    return normalisation_stats(torch.cat(parts).numpy(), per_joint=per_joint)


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
    augment: bool | Augmentation = False,
    preprocessing: Preprocessing | dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
    progress: ProgressFn | None = None,
    cancel: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train architecture ``arch`` on ``train`` (validated on ``val`` after every epoch).

    ``progress(done_batches, total_batches, info)`` is called after every batch; ``info`` holds ``epoch``,
    ``loss`` and, after an epoch's last batch, ``epoch_end=True`` with ``train_accuracy`` and
    ``val_accuracy`` (when ``val`` is given). ``cancel()`` is checked every batch
    (:class:`~engine.errors.CancelledError`). ``preprocessing`` becomes the classifier's (fps and window are
    taken from the windows; pass stride, centre, face as wanted). ``augment``: True for the default
    :class:`Augmentation`, or one with other ranges.
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
    given = preprocessing.to_dict() if isinstance(preprocessing, Preprocessing) else dict(preprocessing or {})
    given.update(fps=float(train.fps), window=int(train.window), num_bodies=int(train.num_bodies))
    prep = Preprocessing.from_dict(given, "preprocessing")
    aug = (Augmentation() if augment is True else augment) or None
    mean, std = input_statistics(train, prep)
    clf = Classifier(net, list(train.class_names), mean=torch.from_numpy(mean), std=torch.from_numpy(std),
                     preprocessing=prep, arch=arch, arch_kwargs=arch_kwargs, meta=dict(meta or {})).to(dev)
    params = [p for p in clf.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    steps_per_epoch = len(_batches(len(train), batch_size, None))
    total = epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    x_all = torch.from_numpy(train.x)
    y_all = torch.from_numpy(train.y)
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
            if aug is not None:
                xb = _augment(xb, train.skeleton, gen, aug)
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
            "augment": asdict(aug) if aug is not None else False, "train_windows": len(train), "train_seconds": round(seconds, 2),
            "device": str(dev), "torch": torch.__version__,
        }
    )
    if history and "val_accuracy" in history[-1]:
        clf.meta["val_accuracy"] = history[-1]["val_accuracy"]
        clf.meta["val_windows"] = len(val)
    return TrainResult(clf.cpu(), history, seconds)
