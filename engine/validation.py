"""Checks that refuse a checkpoint that would give silently wrong results (issue 17).

:func:`check_checkpoint` loads a classifier checkpoint and refuses, with a :class:`CheckpointError` naming
the file, one that is not a checkpoint at all, one whose weights or normalisation hold NaN/Inf or a zero
standard deviation, and one whose predictions on a neutral input are not finite. The commands call it on
every checkpoint they are given before any work starts.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

from engine.errors import CheckpointError, SkelvizError

__all__ = ["check_checkpoint"]

log = logging.getLogger(__name__)

_PICKLE_MAGIC = b"\x80"


def _looks_like_torch_file(path: Path) -> bool:
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


def check_checkpoint(path: str | Path):
    """The classifier in ``path``, after checking it gives finite predictions; :class:`CheckpointError` else."""
    import torch

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; give the checkpoint file (.pt)")
    try:
        is_torch = _looks_like_torch_file(path)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({exc.strerror or exc})") from None
    if not is_torch:
        raise CheckpointError(f"{path} is not a skelviz checkpoint (not a torch.save file)",)
    from engine.models.checkpoint import load_classifier

    try:
        clf = load_classifier(path)
    except SkelvizError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to rebuild an untrusted file is the file's fault
        log.debug("loading %s failed", path, exc_info=True)
        raise CheckpointError(
            f"{path} is not a usable skelviz checkpoint ({type(exc).__name__}: {str(exc)[:200]})"
        ) from None
    for kind, items in (("weight", clf.named_parameters()), ("buffer", clf.named_buffers())):
        for name, tensor in items:
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                raise CheckpointError(f"{path}: {kind} {name} holds NaN or Inf; the checkpoint is damaged")
    std = getattr(clf, "std", None)
    if isinstance(std, torch.Tensor) and (std <= 0).any():
        raise CheckpointError(f"{path}: the input normalisation has a zero or negative standard deviation")
    x = torch.zeros(1, 3, _window(clf), clf.skeleton.num_joints, 1)
    was_training = clf.training
    clf.eval()
    try:
        with torch.no_grad():
            out = clf(x)
    except SkelvizError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"{path}: the model cannot run ({type(exc).__name__}: {str(exc)[:200]})") from None
    finally:
        clf.train(was_training)
    if not torch.isfinite(out).all():
        raise CheckpointError(f"{path}: the model's outputs are not finite (NaN or Inf); the checkpoint is damaged")
    return clf
