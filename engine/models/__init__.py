"""Victim classifiers. Importing this package registers every built-in architecture in ``MODELS``."""

from engine.models import agcn2s, ctrgcn, hrnn, mlp, msg3d, sgn, skateformer, stgcn, sttformer  # noqa: F401  (each module registers its architecture)
from engine.models.base import (
    MODELS,
    Classifier,
    SkeletonNet,
    average_bodies,
    build_model,
    fold_bodies,
    preset_kwargs,
    register_model,
)

__all__ = [
    "MODELS",
    "Classifier",
    "SkeletonNet",
    "average_bodies",
    "build_model",
    "fold_bodies",
    "preset_kwargs",
    "register_model",
]
