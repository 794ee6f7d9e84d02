"""Online studies in a real headless Chromium: two participants at once, a reload, a server killed with SIGKILL.

Uses Debian's chromium and chromium-driver through Selenium (no browser is downloaded); skipped with a reason
where they are not installed (./dev.sh installs them).
"""

from __future__ import annotations

import time

import h5py
import numpy as np
import pytest

from tests.studies.web_support import PROTOCOL, Server, chromium, needs_chromium, quit_chromium

pytestmark = [needs_chromium, pytest.mark.slow]

TIMEOUT = 30.0


def _page(driver) -> tuple[str, str, str]:
    """(state, trial index, ready) as the page publishes them on <body>."""
    from selenium.common.exceptions import WebDriverException

    try:  # read in the page: an element handle would go stale when the page navigates or reloads
        state = driver.execute_script("const d = document.body && document.body.dataset;"
                                      "return d ? [d.state || '', d.trial || '', d.ready || ''] : ['', '', ''];")
    except WebDriverException:
        return ("", "", "")
    return tuple(state)


def _wait(driver, predicate, what: str):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        page = _page(driver)
        if predicate(page):
            return page
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; the page is at {_page(driver)}: {driver.current_url}")


def _actionable(page) -> bool:
    state, _, ready = page
    return state in ("start", "consent", "instructions", "practice_done", "break", "end") or (
        state == "trial" and ready == "1")


def step(driver, answers: list[int]) -> str:
    """Do what the participant would do on the page now; returns the state acted on."""
    page = _wait(driver, _actionable, "a page that takes an action")
    state, trial, _ = page
    if state == "end":
        return state
    if state == "trial":
        key = "F" if len(answers) % 2 == 0 else "J"
        driver.find_element("tag name", "body").send_keys(key)
        answers.append(int(trial))
    else:
        action = {"start": "begin", "consent": "consent"}.get(state, "advance")
        driver.find_element("css selector", f"button[data-action={action}]").click()
    _wait(driver, lambda p: p[:2] != page[:2] or (p[0] == "trial" and p[2] != "1" and state != "trial"),
          f"the page to leave {page}")
    return state


def step_until_answered(driver, answers: list[int], n: int) -> None:
    while len(answers) < n:
        assert step(driver, answers) != "end"


@needs_chromium
def test_two_participants_reload_and_server_sigkill_lose_nothing(tmp_path, stimulus_file):
    protocol = tmp_path / "web.toml"
    protocol.write_text(PROTOCOL)
    out = tmp_path / "sessions"
    server = Server(protocol, stimulus_file, out).start()
    a = b = None
    try:
        a, b = chromium(), chromium()
        a.get(server.url + "/")
        b.get(server.url + "/")
        answers = {"a": [], "b": []}
        # both at once: alternate single steps until each has answered two trials (practice + one scored)
        while len(answers["a"]) < 2 or len(answers["b"]) < 2:
            for name, driver in (("a", a), ("b", b)):
                if len(answers[name]) < 2:
                    step(driver, answers[name])
        # participant a reloads the page in the middle of a trial: the same trial comes back, nothing is lost
        _wait(a, lambda p: p[0] == "trial" and p[2] == "1", "a's trial")
        before = _page(a)[1]
        a.refresh()
        assert _wait(a, lambda p: p[0] == "trial" and p[2] == "1", "a's trial after reload")[1] == before
        step_until_answered(a, answers["a"], 3)
        _wait(a, lambda p: _actionable(p), "a idle")
        _wait(b, lambda p: _actionable(p), "b idle")

        server.kill()  # SIGKILL: no handler runs
        paths = sorted(out.glob("*.h5"))
        assert len(paths) == 2
        for path in paths:  # every answered trial is already on disk, readable with plain h5py
            with h5py.File(path, "r") as f:
                assert f["responses"].shape[0] >= 2 and (f["responses"]["complete"][()] == 1).all()
        server.start()

        for name, driver in (("a", a), ("b", b)):
            while step(driver, answers[name]) != "end":
                pass
            assert driver.find_element("id", "completion-code").text == "CODE42"
    finally:
        for d in (a, b):
            if d is not None:
                quit_chromium(d)
        server.stop()

    files = {}
    for path in sorted(out.glob("*.h5")):
        with h5py.File(path, "r") as f:
            files[path] = {
                "status": f.attrs["status"],
                "order": int(f.attrs["order"]),
                "planned": f["planned_trials"]["trial_index"][()],
                "answered": f["responses"]["trial_index"][()],
                "presentations": f["responses"]["presentations"][()],
                "rt": f["responses"]["rt_s"][()],
                "events": [e.decode() for e in f["events"]["kind"][()]],
            }
    assert len(files) == 2
    assert sorted(v["order"] for v in files.values()) == [0, 1]  # counterbalanced across the two participants
    for v in files.values():
        assert v["status"] in (b"completed", "completed")
        assert sorted(v["answered"]) == sorted(v["planned"])  # every trial exactly once, none lost or doubled
        assert np.all(v["rt"] > 0) and np.all(v["rt"] < 30)
        assert "resumed" in v["events"]  # the restarted server picked the session up from its file
    assert sum(int(v["presentations"].max() > 1) for v in files.values()) >= 1  # a's reloaded trial was shown twice


@needs_chromium
def test_page_refuses_a_too_small_window(tmp_path, stimulus_file):
    protocol = tmp_path / "web.toml"
    protocol.write_text(PROTOCOL.replace("min_width = 400", "min_width = 3000"))
    server = Server(protocol, stimulus_file, tmp_path / "sessions").start()
    driver = None
    try:
        driver = chromium(900, 700)
        driver.get(server.url + "/")
        _wait(driver, lambda p: p[0] == "refused", "the refusal")
        text = driver.find_element("id", "text-body").text
        assert "at least 3000" in text and "enlarge" in text
        assert not list((tmp_path / "sessions").glob("*.h5"))  # nothing starts, no session file
    finally:
        if driver is not None:
            quit_chromium(driver)
        server.stop()
