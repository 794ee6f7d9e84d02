"""The model's Signal: weak references to subscribers' methods, and one failing slot does not stop the rest."""

from __future__ import annotations

import gc
import logging
import weakref

from skelviz.model.events import Signal


class _View:
    def __init__(self, seen: list) -> None:
        self.seen = seen

    def _on_changed(self, value) -> None:
        self.seen.append(value)


def test_a_deleted_subscriber_is_neither_kept_alive_nor_called() -> None:
    signal, seen = Signal(), []
    view = _View(seen)
    signal.connect(view._on_changed)
    signal.emit(1)
    alive = weakref.ref(view)
    del view
    gc.collect()
    assert alive() is None, "the signal kept a deleted view alive"
    signal.emit(2)
    assert seen == [1]
    assert len(signal) == 0


def test_lambdas_and_builtin_methods_stay_connected() -> None:
    signal, seen = Signal(), []
    signal.connect(lambda v: seen.append(("lambda", v)))
    signal.connect(seen.append)
    gc.collect()
    signal.emit(3)
    assert seen == [("lambda", 3), 3]


def test_one_failing_slot_does_not_stop_the_next(caplog) -> None:
    signal, seen = Signal(), []

    def broken(value) -> None:
        raise RuntimeError(f"broken panel got {value}")

    signal.connect(broken)
    signal.connect(seen.append)
    with caplog.at_level(logging.ERROR, logger="skelviz.model.events"):
        signal.emit(4)
    assert seen == [4]
    assert "broken panel got 4" in caplog.text


def test_connect_twice_and_disconnect_a_bound_method() -> None:
    signal, seen = Signal(), []
    view = _View(seen)
    signal.connect(view._on_changed)
    signal.connect(view._on_changed)
    signal.emit(5)
    signal.disconnect(view._on_changed)
    signal.emit(6)
    assert seen == [5]
