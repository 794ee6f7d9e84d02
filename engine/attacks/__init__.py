"""Adversarial attacks on skeleton classifiers; see :mod:`engine.attacks.base` for the call protocol.

Importing this package registers every built-in attack in :data:`engine.attacks.base.ATTACKS`.
"""

# Built-in attacks register themselves on import; each module is imported explicitly, once, here.
from engine.attacks import (  # noqa: F401  (registration)
    apgd,
    basar,
    ciasa,
    eot,
    ifgsm,
    mifgsm,
    smart,
    square,
    tasar,
    transfer_baselines,
)
from engine.attacks.base import ATTACKS, Attack, AttackResult, build, get_attack, register_attack

__all__ = ["ATTACKS", "Attack", "AttackResult", "build", "get_attack", "register_attack"]
