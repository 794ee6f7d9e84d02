"""``skelviz params METHOD``: the hyper-parameters and presets of an attack or defence (no Qt).

The table comes from the method's typed parameter dataclass (:mod:`engine.params`), the same fields the app's
forms, ``--param KEY=VALUE`` and study protocols are checked against.
"""

from __future__ import annotations

import argparse

HELP = "list an attack's or defence's parameters (types, units, ranges, defaults) and named presets"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("method", help="an attack (smart, basar, ifgsm …) or defence (beat, trades …) name")
    parser.add_argument("--preset", default=None, help="show the values of this preset instead of the defaults")


def parameter_table(method: str, preset: str | None = None) -> str:
    from engine.attacks.base import ATTACKS, get_attack
    from engine.defenses.common import get_defence
    from engine.errors import ParameterError
    from engine.params import make_params, presets, specs

    get_attack("smart")  # registers the built-in attacks
    cls = get_attack(method) if method in ATTACKS else get_defence(method)
    kind = "attack" if method in ATTACKS else "defence"
    values = make_params(cls.Params, preset=preset, where=f"{kind} {method!r}")
    if preset is not None and preset not in presets(cls.Params):
        raise ParameterError(f"{method} has no preset {preset!r}")
    rows = [f"{kind} {method}: --param KEY=VALUE; presets: {', '.join(presets(cls.Params))}"
            + (f" (showing {preset})" if preset else "")]
    for s in specs(cls.Params):
        allowed = "|".join(str(c) for c in s.choices) if s.choices else s.kind.__name__
        if s.minimum is not None or s.maximum is not None:
            allowed += f" in [{'' if s.minimum is None else s.minimum}, {'' if s.maximum is None else s.maximum}]"
        if s.optional:
            allowed += " or none"
        unit = f" ({s.unit})" if s.unit else ""
        rows.append(f"  {s.name:<22} = {getattr(values, s.name)!r:<18} {allowed}{unit}: {s.doc}")
    return "\n".join(rows)


def run(args: argparse.Namespace) -> int:
    print(parameter_table(args.method, args.preset))
    return 0
