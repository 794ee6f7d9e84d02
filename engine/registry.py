"""Name → class registries (attacks, defences, model architectures): no eval, no dotted-string imports.

A :class:`Registry` is a plain ``dict`` from names to classes (tests and front ends iterate it, and tests may
``monkeypatch.setitem`` into it) that also registers classes with a decorator and looks names up with an error
that lists what is available. Each package keeps its own ``register_*``/``get_*`` functions; ``get_*`` imports
the package first so that its built-in classes are registered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

C = TypeVar("C", bound=type)


class Registry(dict[str, C], Generic[C]):
    """Classes by name. ``kind`` names them in errors ("attack"); :meth:`register` stores the name on the class
    as ``name_attribute``; an unknown name in :meth:`lookup` raises ``error``."""

    def __init__(self, kind: str, error: type[Exception], name_attribute: str = "name") -> None:
        super().__init__()
        self.kind = kind
        self.error = error
        self.name_attribute = name_attribute

    def register(self, name: str) -> Callable[[C], C]:
        """Class decorator: register the class under ``name`` (a second class under the same name is an error)."""

        def deco(cls: C) -> C:
            if name in self and self[name] is not cls:
                raise ValueError(f"{self.kind} name {name!r} registered twice")
            setattr(cls, self.name_attribute, name)
            self[name] = cls
            return cls

        return deco

    def lookup(self, name: str) -> C:
        """The class registered as ``name``; an unknown name raises ``error`` listing the available ones."""
        try:
            return self[name]
        except KeyError:
            raise self.error(f"unknown {self.kind} {name!r}; available: {', '.join(sorted(self))}") from None
