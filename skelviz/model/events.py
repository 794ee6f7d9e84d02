"""A minimal Qt-free signal: models emit, views subscribe (napari's model → events → view).

Two properties the views rely on (as psygnal, napari's event library, gives them):

- A bound method is held by a weak reference, so connecting a view's ``_on_<thing>_changed`` does not keep a
  closed view alive, and a deleted view is no longer called. Plain functions, lambdas and builtin methods (a Qt
  widget's ``setChecked``) are held strongly: nothing else would keep a lambda alive.
- One failing slot does not silence the others: its exception is logged with the traceback and the remaining slots
  still run, so one broken panel cannot leave the 3D view showing a stale clip. (psygnal stops at the first
  failing slot, which is why this module is not psygnal.)
"""

from __future__ import annotations

import logging
import types
import weakref
from collections.abc import Callable

log = logging.getLogger(__name__)

__all__ = ["Signal"]


class Signal:
    """Callbacks called in connection order with the emitted arguments."""

    def __init__(self) -> None:
        # each entry is a zero-argument callable returning the slot, or None once its object is gone
        self._slots: list[Callable[[], Callable | None]] = []

    def _ref(self, slot: Callable) -> Callable[[], Callable | None]:
        if isinstance(slot, types.MethodType):
            return weakref.WeakMethod(slot, self._drop)
        return _StrongRef(slot)

    def _drop(self, ref: weakref.WeakMethod) -> None:
        # called by the garbage collector when a subscriber dies: forget its slot
        self._slots = [r for r in self._slots if r is not ref]

    def connect(self, slot: Callable) -> Callable:
        if not callable(slot):
            raise TypeError(f"Signal.connect needs a callable, got {slot!r}")
        ref = self._ref(slot)
        if ref not in self._slots:
            self._slots.append(ref)
        return slot

    def disconnect(self, slot: Callable) -> None:
        ref = self._ref(slot)
        self._slots = [r for r in self._slots if r != ref]

    def __len__(self) -> int:
        """The number of live subscribers."""
        return sum(r() is not None for r in self._slots)

    def emit(self, *args) -> None:
        for ref in list(self._slots):
            slot = ref()
            if slot is None:
                continue
            try:
                slot(*args)
            except Exception:
                log.exception("a subscriber of this signal failed: %r", slot)


class _StrongRef:
    """The strong counterpart of ``weakref.WeakMethod``: calling it returns the slot."""

    __slots__ = ("slot",)

    def __init__(self, slot: Callable) -> None:
        self.slot = slot

    def __call__(self) -> Callable:
        return self.slot

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _StrongRef) and self.slot == other.slot

    def __hash__(self) -> int:
        return hash(self.slot)
