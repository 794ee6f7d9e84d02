"""Engine work off the UI thread.

:meth:`WorkerPool.start` runs ``fn(*args, progress=..., cancel=..., **kwargs)`` on a ``QThreadPool`` thread and
returns a :class:`Task` whose signals arrive on the UI thread (the work begins on the next event-loop turn,
so connect the signals right after ``start``). Progress is batched: the worker collects every
``progress(done, total, info)`` call and emits at most one :attr:`Task.progress` per ``throttle`` seconds with
the list of infos since the last one, so a fast attack cannot flood the event loop. :meth:`Task.cancel` sets a
flag that the engine checks every iteration; the task reports :attr:`Task.cancelled` when the engine stops.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
import threading
import time
from collections.abc import Callable

from PySide6 import QtCore

from engine.errors import CancelledError

log = logging.getLogger(__name__)


class Task(QtCore.QObject):
    progress = QtCore.Signal(int, int, object)  # done, total, [info, ...] since the last emission
    succeeded = QtCore.Signal(object)  # the function's return value
    failed = QtCore.Signal(object)  # the exception
    cancelled = QtCore.Signal()
    finished = QtCore.Signal()  # after succeeded/failed/cancelled, always

    def __init__(self, fn: Callable, args: tuple, kwargs: dict, throttle: float, name: str = "") -> None:
        super().__init__()
        self.name = name or getattr(fn, "__name__", "task")
        self._fn, self._args, self._kwargs = fn, args, kwargs
        self._throttle = throttle
        self._cancel = threading.Event()
        self._pending: list[dict] = []
        self._last_emit = 0.0
        self._last_counts = (0, 0)
        self.done = False
        self.result = None
        self.error: BaseException | None = None
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            params = {}
        self._takes_progress = "progress" in params
        self._takes_cancel = "cancel" in params

    # -- UI side ------------------------------------------------------------------------------------------
    def cancel(self) -> None:
        self._cancel.set()

    @property
    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    # -- worker side --------------------------------------------------------------------------------------
    def _on_progress(self, done: int, total: int, info: dict | None = None) -> None:
        entry = dict(info or {})
        entry.setdefault("_done", int(done))
        self._pending.append(entry)
        self._last_counts = (int(done), int(total))
        now = time.monotonic()
        if now - self._last_emit >= self._throttle or done >= total:
            self._flush()
            self._last_emit = now

    def _flush(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            self._emit(self.progress, self._last_counts[0], self._last_counts[1], batch)

    def _emit(self, signal, *args) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:  # the UI side was destroyed while this worker ran (application shutdown)
            log.debug("task %s finished after its receiver was deleted", self.name)

    def run(self) -> None:
        kwargs = dict(self._kwargs)
        if self._takes_progress:
            kwargs["progress"] = self._on_progress
        if self._takes_cancel:
            kwargs["cancel"] = self._cancel.is_set
        try:
            if self._cancel.is_set():
                raise CancelledError(f"{self.name} cancelled before it started")
            self.result = self._fn(*self._args, **kwargs)
        except CancelledError:
            self._pending.clear()
            self.done = True
            self._emit(self.cancelled)
        except Exception as exc:  # reported to the UI, which shows it; the app stays usable
            log.debug("task %s failed", self.name, exc_info=True)
            self.error = exc
            self._flush()
            self.done = True
            self._emit(self.failed, exc)
        else:
            self._flush()
            self.done = True
            self._emit(self.succeeded, self.result)
        finally:
            self._emit(self.finished)


WORKER_NICENESS = 10


def _lower_this_thread_priority() -> None:
    """Give the calling worker thread a lower CPU priority than the UI thread (Linux: per-thread niceness),
    so that on a busy machine the scheduler lets the UI run first and the work uses what is left."""
    if not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, tid) < WORKER_NICENESS:
            os.setpriority(os.PRIO_PROCESS, tid, WORKER_NICENESS)
    except OSError:  # not permitted: keep the default priority
        pass


class _Runnable(QtCore.QRunnable):
    def __init__(self, task: Task) -> None:
        super().__init__()
        self.task = task
        self.setAutoDelete(True)

    def run(self) -> None:
        _lower_this_thread_priority()
        self.task.run()


class WorkerPool(QtCore.QObject):
    """Starts tasks and keeps them alive until they finish."""

    def __init__(self, parent: QtCore.QObject | None = None, max_threads: int = 2) -> None:
        super().__init__(parent)
        self._pool = QtCore.QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        self._tasks: set[Task] = set()

    def start(self, fn: Callable, *args, throttle: float = 0.05, name: str = "", **kwargs) -> Task:
        task = Task(fn, args, kwargs, throttle, name)
        self._tasks.add(task)
        task.finished.connect(lambda t=task: self._tasks.discard(t))
        # Start on the next event-loop turn, so the caller connects the task's signals first: a signal
        # emitted from the worker before anything is connected would be lost.
        QtCore.QTimer.singleShot(0, self, lambda: self._pool.start(_Runnable(task)))
        return task

    @property
    def active(self) -> list[Task]:
        return [t for t in self._tasks if not t.done]

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def wait(self, msecs: int = 5000) -> bool:
        """Block until every started task has ended (used on close and in tests); True when none is left."""
        return self._pool.waitForDone(msecs)
