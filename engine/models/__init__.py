"""Victim classifiers. Importing this package registers every built-in architecture in ``MODELS``."""

from engine.models.base import MODELS, Classifier, SkeletonNet, build_model, register_model

__all__ = ["MODELS", "Classifier", "SkeletonNet", "build_model", "register_model"]
