"""The progress and cancel callbacks every long-running engine function takes (one definition).

``progress(done, total, info)`` reports ``done`` of ``total`` units (iterations, queries, batches, windows …)
with a dict of plain values, except that per-iteration numbers of attacks may be 0-dim tensors on the model's
device (reading one waits for the device, so the engine leaves that to callbacks that show it); ``cancel()`` is
polled once per unit and a True answer makes the work raise :class:`~engine.errors.CancelledError`.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressFn = Callable[[int, int, dict], None]
CancelFn = Callable[[], bool]
