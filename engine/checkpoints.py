"""Loading and saving any classifier checkpoint, plain or defended: the entry point front ends use.

:mod:`engine.models.checkpoint` reads and writes the format; a defended checkpoint's model is rebuilt by the
defence that wrote it (registered in :data:`engine.models.checkpoint.DEFENDED_MODELS` when
:mod:`engine.defenses` is imported). This module sits above both, so the models package never imports the
defences.
"""

from __future__ import annotations

from pathlib import Path

import torch

import engine.defenses  # noqa: F401  (registers the defended models: BEAT, smoothing)
from engine.models.base import Classifier
from engine.models.checkpoint import check_compatible, save_classifier
from engine.models.checkpoint import load_classifier as _load

__all__ = ["check_compatible", "load_classifier", "save_classifier"]


def load_classifier(path: str | Path, map_location: str | torch.device | None = None) -> Classifier:
    """Read a checkpoint (plain or defended); the classifier comes back in eval mode. Every problem with the
    file is a :class:`~engine.errors.CheckpointError` naming it."""
    return _load(path, map_location)
