"""A minimal Qt-free signal: models emit, views subscribe (napari's model → events → view)."""

from __future__ import annotations

from collections.abc import Callable


class Signal:
    """Callbacks called in connection order with the emitted arguments."""

    def __init__(self) -> None:
        self._slots: list[Callable] = []

    def connect(self, slot: Callable) -> Callable:
        if slot not in self._slots:
            self._slots.append(slot)
        return slot

    def disconnect(self, slot: Callable) -> None:
        if slot in self._slots:
            self._slots.remove(slot)

    def emit(self, *args) -> None:
        for slot in list(self._slots):
            slot(*args)
