"""Defences for skeleton classifiers: BEAT and the baselines it is measured against.

Importing this package registers every built-in defence in :data:`DEFENCES` (see
:mod:`engine.defenses.common` for the protocol: ``get_defence(name)(classifier, **params).fit(data)`` returns
the defended classifier) and the ``eot-smart`` attack (:mod:`engine.attacks.eot`).
"""

from engine.attacks import eot  # noqa: F401  (registers the eot-smart attack)
from engine.defenses import adversarial_training, beat, smoothing  # noqa: F401  (registration)
from engine.defenses.beat import BEAT, BEATClassifier
from engine.defenses.common import DEFENCES, Defence, build, get_defence, register_defence
from engine.defenses.smoothing import RandomizedSmoothing, SmoothedClassifier, certify

__all__ = [
    "BEAT",
    "BEATClassifier",
    "DEFENCES",
    "Defence",
    "build",
    "RandomizedSmoothing",
    "SmoothedClassifier",
    "certify",
    "get_defence",
    "register_defence",
]
