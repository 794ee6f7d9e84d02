"""Checks that refuse a checkpoint that would give silently wrong results (issue 17).

:func:`check_weights` refuses NaN/Inf weights and buffers and a zero, negative or non-finite normalisation
standard deviation; :func:`engine.models.checkpoint.load_classifier` runs it on every checkpoint it reads, so the
app, the commands and the studies are all protected. :func:`check_outputs` refuses a classifier whose
predictions on a neutral input are not finite. :func:`check_checkpoint` is both, from a path: the commands call
it on every checkpoint they are given before any work starts, and the app runs :func:`check_outputs` after
loading.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

from engine.errors import CheckpointError, SkelvizError

__all__ = ["check_checkpoint", "check_outputs", "check_weights", "looks_like_torch_file"]

log = logging.getLogger(__name__)

_PICKLE_MAGIC = b"\x80"


def looks_like_torch_file(path: Path) -> bool:
    """Whether ``path`` starts as ``torch.save`` writes (a zip archive, or a legacy pickle)."""
    with open(path, "rb") as fh:
        head = fh.read(2)
    return zipfile.is_zipfile(path) or head.startswith(_PICKLE_MAGIC)


def _window(clf) -> int:
    prep = getattr(clf, "preprocessing", None)
    value = getattr(prep, "window", None)
    if value is None and isinstance(prep, dict):
        value = prep.get("window")
    try:
        return max(2, min(int(value), 1000)) if value else 60
    except (TypeError, ValueError):
        return 60


def check_weights(clf, where: str) -> None:
    """Raise :class:`CheckpointError` (naming ``where``) if a floating-point weight or buffer of ``clf`` holds
    NaN or Inf, or its input normalisation ``std`` is zero, negative or not finite."""
    import torch

    std = getattr(clf, "std", None)
    if isinstance(std, torch.Tensor) and std.is_floating_point():
        if not torch.isfinite(std).all():
            raise CheckpointError(f"{where}: the input normalisation's standard deviation holds NaN or Inf; "
                                  "the checkpoint is damaged")
        if (std <= 0).any():
            raise CheckpointError(f"{where}: the input normalisation has a zero or negative standard deviation; "
                                  "the checkpoint is damaged")
    for kind, items in (("weight", clf.named_parameters()), ("buffer", clf.named_buffers())):
        for name, tensor in items:
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                raise CheckpointError(f"{where}: {kind} {name} holds NaN or Inf; the checkpoint is damaged")


def check_outputs(clf, where: str) -> None:
    """Raise :class:`CheckpointError` (naming ``where``) unless ``clf`` runs on a neutral input (zeros, one
    window, on the model's device) and gives finite outputs. ``clf``'s train/eval mode is kept."""
    import torch

    from engine.devices import model_device

    x = torch.zeros(1, 3, _window(clf), clf.skeleton.num_joints, 1, device=model_device(clf))
    was_training = clf.training
    clf.eval()
    try:
        with torch.no_grad():
            out = clf(x)
    except SkelvizError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever an untrusted architecture raises is the file's fault
        raise CheckpointError(f"{where}: the model cannot run ({type(exc).__name__}: {str(exc)[:200]})") from None
    finally:
        clf.train(was_training)
    if not torch.isfinite(out).all():
        raise CheckpointError(f"{where}: the model's outputs are not finite (NaN or Inf); the checkpoint is damaged")


def check_checkpoint(path: str | Path):
    """The classifier in ``path``, after checking it gives finite predictions; :class:`CheckpointError` else."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; give the checkpoint file (.pt)")
    from engine.checkpoints import load_classifier

    clf = load_classifier(path)  # refuses unreadable files, damaged weights and normalisation (check_weights)
    check_outputs(clf, str(path))
    return clf
