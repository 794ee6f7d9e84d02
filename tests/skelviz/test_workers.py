"""Workers: results, errors and batched progress arrive on the UI thread; cancel takes effect fast."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("pytestqt")

from engine.errors import CancelledError, DataFormatError  # noqa: E402
from skelviz.workers import WorkerPool  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture
def pool(qtbot):
    p = WorkerPool()
    yield p
    p.cancel_all()
    p.wait(5000)


def test_result_arrives_on_the_ui_thread(qtbot, pool):
    seen = {}

    def work(a, b):
        seen["thread"] = threading.current_thread()
        return a + b

    task = pool.start(work, 2, 3)
    with qtbot.waitSignal(task.succeeded, timeout=5000) as sig:
        pass
    assert sig.args == [5]
    assert seen["thread"] is not threading.main_thread()


def test_errors_are_reported_not_raised(qtbot, pool):
    def bad():
        raise DataFormatError("x.bvh", "truncated", line=3)

    task = pool.start(bad)
    with qtbot.waitSignal(task.failed, timeout=5000) as sig:
        pass
    assert isinstance(sig.args[0], DataFormatError) and "line 3" in str(sig.args[0])


def test_progress_is_batched_and_complete(qtbot, pool):
    def fast(progress=None, cancel=None):
        for i in range(2000):
            progress(i + 1, 2000, {"loss": float(i)})
        return "ok"

    batches = []
    task = pool.start(fast, throttle=0.05)
    task.progress.connect(lambda done, total, batch: batches.append((done, total, batch)))
    with qtbot.waitSignal(task.finished, timeout=30000):
        pass
    qtbot.wait(50)
    infos = [info for _d, _t, batch in batches for info in batch]
    assert [i["loss"] for i in infos] == [float(i) for i in range(2000)]  # nothing lost
    assert infos[-1]["_done"] == 2000 and batches[-1][0] == 2000
    assert len(batches) < 200  # far fewer signals than calls


def test_cancel_stops_the_work_at_its_next_check(qtbot, pool):
    iterations = []

    def slow(progress=None, cancel=None):
        for i in range(10_000):
            time.sleep(0.01)  # one "iteration"
            if cancel():
                raise CancelledError("stopped")
            iterations.append(i)
            progress(i + 1, 10_000, {})
        return "never"

    task = pool.start(slow)
    qtbot.waitUntil(lambda: len(iterations) > 3, timeout=5000)
    task.cancel()
    at_cancel = len(iterations)
    with qtbot.waitSignal(task.cancelled, timeout=5000):  # bench/ui.py measures how fast
        pass
    assert len(iterations) <= at_cancel + 1  # at most the iteration in flight finished
    assert task.result is None and task.done
