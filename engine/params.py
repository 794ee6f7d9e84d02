"""Typed hyper-parameters: one frozen dataclass per attack and defence, the single source of every form.

An attack or defence declares its hyper-parameters once, as a frozen dataclass whose fields carry their
choices (``Literal``), unit, range and a one-line help in field metadata (:func:`param`). Everything else
derives from it: the constructor (:func:`make_params` validates overrides and names the bad parameter and its
allowed values), the app's forms and the CLI's ``--param`` options (:func:`specs`), study protocols, presets
and provenance (:func:`to_dict`, which is ``dataclasses.asdict``).

A derived method extends its parent's dataclass (EOT-SMART's fields are SMART's plus its own), so the two
cannot drift. Named presets (``"published"``: the authors' code settings) live on the dataclass as
``PRESETS = {"published": {...}}``; each preset's table in the method's docstring says where its values
come from.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from engine.errors import ParameterError


def param(default: Any, help: str, *, unit: str = "", min: float | None = None, max: float | None = None,
          min_exclusive: bool = False) -> Any:
    """A dataclass field with its form metadata: ``help`` (one line), ``unit`` and an inclusive range
    (``min_exclusive``: the lower bound itself is not allowed). Tuples are stored as given (immutable)."""
    meta = {"help": help, "unit": unit, "min": min, "max": max, "min_exclusive": min_exclusive}
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class ParamSpec:
    """One hyper-parameter as a form or option shows it."""

    name: str
    default: Any
    kind: type  # bool, int, float, str, or list (a sequence of numbers)
    choices: tuple = ()
    doc: str = ""
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    optional: bool = False  # None is allowed (e.g. "no budget", "derived from another parameter")

    @property
    def label(self) -> str:
        return f"{self.name} ({self.unit})" if self.unit else self.name


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unwrap_optional(tp) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _kind(tp) -> tuple[type, tuple]:
    """(kind, choices) of an annotation."""
    if typing.get_origin(tp) is Literal:
        choices = typing.get_args(tp)
        return type(choices[0]), tuple(choices)
    if typing.get_origin(tp) in (tuple, list) or tp in (tuple, list):
        return list, ()
    if tp in (bool, int, float, str):
        return tp, ()
    raise TypeError(f"unsupported parameter annotation {tp!r}")


def specs(params_cls) -> list[ParamSpec]:
    """The :class:`ParamSpec` of every field of a parameter dataclass, in declaration order."""
    hints = _hints(params_cls)
    out = []
    for f in dataclasses.fields(params_cls):
        tp, optional = _unwrap_optional(hints[f.name])
        kind, choices = _kind(tp)
        m = f.metadata
        out.append(ParamSpec(f.name, f.default, kind, choices, m.get("help", ""), m.get("unit", ""),
                             m.get("min"), m.get("max"), optional))
    return out


def _allowed(spec: ParamSpec, f: dataclasses.Field) -> str:
    if spec.choices:
        text = "one of " + ", ".join(repr(c) for c in spec.choices)
    elif spec.kind is list:
        text = "a list of numbers"
    else:
        text = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}[spec.kind]
        lo, hi = spec.minimum, spec.maximum
        if lo is not None and hi is not None:
            text += f" in {'(' if f.metadata.get('min_exclusive') else '['}{lo}, {hi}]"
        elif lo is not None:
            text += f" {'>' if f.metadata.get('min_exclusive') else '>='} {lo}"
        elif hi is not None:
            text += f" <= {hi}"
    if spec.unit:
        text += f" ({spec.unit})"
    if spec.optional:
        text += ", or none"
    return text


def _coerce(value: Any, spec: ParamSpec, f: dataclasses.Field, where: str) -> Any:
    def bad() -> ParameterError:
        return ParameterError(f"{where}: parameter {spec.name!r} must be {_allowed(spec, f)}, got {value!r}")

    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null") and spec.optional):
        if spec.optional:
            return None
        raise bad()
    kind = spec.kind
    if kind is bool:
        if isinstance(value, bool):
            out = value
        elif isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
            out = value.strip().lower() in ("true", "yes", "1", "on")
        elif isinstance(value, (int,)) and value in (0, 1):
            out = bool(value)
        else:
            raise bad()
    elif kind in (int, float):  # numbers: finite, never a bool; whole for int fields
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise bad() from None
        if isinstance(value, bool) or not math.isfinite(number) or (kind is int and number != int(number)):
            raise bad()
        out = kind(number)
    elif kind is str:
        if not isinstance(value, str):
            raise bad()
        out = value
    else:  # list of numbers
        if isinstance(value, str):
            parts = [p for p in value.replace("(", "").replace(")", "").replace("[", "").replace("]", "").split(",")
                     if p.strip()]
            value = parts
        try:
            out = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            raise bad() from None
        if not all(math.isfinite(v) for v in out):
            raise bad()
        return out
    if spec.choices and out not in spec.choices:
        raise bad()
    if kind in (int, float):
        lo, hi = spec.minimum, spec.maximum
        if lo is not None and (out < lo or (f.metadata.get("min_exclusive") and out == lo)):
            raise bad()
        if hi is not None and out > hi:
            raise bad()
    return out


def presets(params_cls) -> dict[str, dict[str, Any]]:
    """Named presets of a parameter dataclass (``"default"`` is always there)."""
    return {"default": {}, **dict(getattr(params_cls, "PRESETS", {}) or {})}


def make_params(params_cls, overrides: Mapping[str, Any] | None = None, *, preset: str | None = None,
                where: str = "parameters"):
    """An instance of ``params_cls`` from a preset and overrides, every value checked and coerced.

    An unknown name, a value of the wrong type, outside its range or not among its choices is a
    :class:`ParameterError` naming the parameter and what is allowed.
    """
    overrides = dict(overrides or {})
    known = {f.name: f for f in dataclasses.fields(params_cls)}
    available = presets(params_cls)
    if preset is not None and preset not in available:
        raise ParameterError(f"{where}: no preset {preset!r}; choose one of {', '.join(available)}")
    values = {**available.get(preset or "default", {}), **overrides}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ParameterError(
            f"{where}: unknown parameter(s) {', '.join(repr(u) for u in unknown)}; "
            f"the parameters are {', '.join(known)}"
        )
    spec_of = {s.name: s for s in specs(params_cls)}
    checked = {k: _coerce(v, spec_of[k], known[k], where) for k, v in values.items()}
    params = params_cls(**checked)
    check = getattr(params, "validate", None)
    if callable(check):
        check(where)
    return params


def to_dict(params) -> dict[str, Any]:
    """Provenance: ``dataclasses.asdict(params)`` as plain values (tuples become lists)."""
    from engine.plain import to_plain

    return to_plain(dataclasses.asdict(params))
