"""Adversarial attacks on skeleton classifiers; see :mod:`engine.attacks.base` for the call protocol.

Importing this package registers every built-in attack in :data:`engine.attacks.base.ATTACKS`.
"""

from engine.attacks.base import ATTACKS, Attack, AttackResult, get_attack, register_attack

__all__ = ["ATTACKS", "Attack", "AttackResult", "get_attack", "register_attack"]

# Built-in attacks register themselves on import. Each module is listed once here.
for _module in ():  # filled in as attack modules land: ("smart", "ifgsm", ...)
    pass
