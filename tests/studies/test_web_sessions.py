"""Online studies without a browser: the session manager (in process) and the real server over HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import h5py
import pytest

from engine.errors import StudyError
from studies.counterbalance import OrderAllocator, mirror_trial, plan_for_order
from studies.protocol import parse_protocol
from studies.stimuli import open_stimuli
from studies.storage import read_session
from studies.web.sessions import StaleRequest, UnknownSession, WebSessions
from tests.studies.web_support import PROTOCOL, Server


@pytest.fixture
def protocol():
    return parse_protocol(PROTOCOL, "web-test.toml")


@pytest.fixture
def protocol_file(tmp_path):
    path = tmp_path / "web.toml"
    path.write_text(PROTOCOL)
    return path


def _answer_all(web: WebSessions, token: str, response: str = "left") -> dict:
    """Drive a session to its end the way the page does; returns the last state."""
    state = web.state(token)
    for _ in range(100):
        if state["state"] in ("end", "aborted"):
            return state
        if state["state"] == "consent":
            state = web.act(token, "consent", {})["state"]
        elif state["state"] == "trial":
            index = state["trial"]["index"]
            assert len(web.motion(token, index)["motions"]) == 2
            web.act(token, "onset", {"trial_index": index})
            state = web.act(token, "respond", {"trial_index": index, "response": response, "rt_s": 0.25})["state"]
        else:
            state = web.act(token, "advance", {})["state"]
    raise AssertionError("the session did not end")


def test_online_session_writes_the_desktop_schema(tmp_path, stimulus_file, protocol):
    web = WebSessions(protocol, open_stimuli(stimulus_file, protocol), tmp_path / "out", fsync=False)
    token = web.create()
    end = _answer_all(web, token)
    assert end["state"] == "end" and end["completion_code"] == "CODE42"
    assert end["redirect_url"] == "https://example.org/complete?cc=CODE42"
    data = read_session(web.session_path(token))
    assert data.attrs["status"] == "completed" and data.attrs["runner"] == "web"
    assert len(data.responses) == len(data.plan) == 4
    assert all(r["rt_s"] == pytest.approx(0.25) for r in data.responses)
    assert "token_sha256" in data.attrs and token not in str(data.attrs)  # the link itself is never stored


def test_repeated_answer_is_acknowledged_once_and_wrong_trials_are_refused(tmp_path, stimulus_file, protocol):
    web = WebSessions(protocol, open_stimuli(stimulus_file, protocol), tmp_path / "out", fsync=False)
    token = web.create()
    web.act(token, "consent", {})
    state = web.act(token, "advance", {})["state"]
    index = state["trial"]["index"]
    with pytest.raises(StaleRequest):
        web.motion(token, index + 1)
    with pytest.raises(StudyError, match="rt_s"):
        web.act(token, "respond", {"trial_index": index, "response": "left", "rt_s": -1})
    first = web.act(token, "respond", {"trial_index": index, "response": "left", "rt_s": 0.4})
    again = web.act(token, "respond", {"trial_index": index, "response": "left", "rt_s": 0.4})
    assert first["accepted"] and not again["accepted"]
    with pytest.raises(UnknownSession):
        web.state("A" * 24)
    with h5py.File(web.session_path(token), "r") as f:
        assert f["responses"].shape == (1,)


def test_orders_are_counterbalanced_and_survive_a_restart(tmp_path, stimulus_file, protocol):
    stimuli = open_stimuli(stimulus_file, protocol)
    out = tmp_path / "out"
    web = WebSessions(protocol, stimuli, out, fsync=False)
    tokens = [web.create() for _ in range(3)]
    orders = [read_session(web.session_path(t)).attrs["order"] for t in tokens]
    assert orders == [0, 1, 0]
    web.close()
    # a new server process (as after kill -9) counts from the files: order 1 is now the least used
    again = WebSessions(protocol, stimuli, out, fsync=False)
    assert again.allocator.counts == [2, 1]
    assert read_session(again.session_path(again.create())).attrs["order"] == 1
    # and finds the earlier sessions by their links
    assert again.state(tokens[0])["state"] == "consent"


def test_declined_consent_gives_the_order_back(tmp_path, stimulus_file, protocol):
    web = WebSessions(protocol, open_stimuli(stimulus_file, protocol), tmp_path / "out", fsync=False)
    token = web.create()
    assert web.act(token, "decline", {})["state"]["state"] == "aborted"
    assert web.allocator.counts == [0, 0]
    assert OrderAllocator(tmp_path / "out", protocol).counts == [0, 0]


def test_mirrored_orders_swap_every_side(stimulus_file, protocol):
    cat = open_stimuli(stimulus_file, protocol).catalogue()
    even, odd = plan_for_order(protocol, cat, 0).trials, plan_for_order(protocol, cat, 1).trials
    assert [mirror_trial(t) for t in even] == odd
    assert {t.target_side for t in even} == {"left", "right"}
    catch = [t for t in odd if t.is_catch]
    assert catch and all(t.expected == ("left" if t.target_side == "right" else "right") for t in catch)
    with pytest.raises(StudyError, match="orders"):
        plan_for_order(protocol, cat, 2)


def _call(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_server_over_http_resumes_after_sigkill(tmp_path, stimulus_file, protocol_file):
    out = tmp_path / "sessions"
    server = Server(protocol_file, stimulus_file, out).start()
    try:
        status, created = _call(server.url + "/api/sessions", {})
        assert status == 201
        api = f"{server.url}/api/s/{created['token']}"
        _call(api + "/act", {"action": "consent"})
        state = _call(api + "/act", {"action": "advance"})[1]["state"]
        index = state["trial"]["index"]
        assert _call(api + "/act", {"action": "respond", "trial_index": index, "response": "right",
                                     "rt_s": 0.3})[1]["accepted"]
        assert _call(api + "/act", {"action": "nonsense"})[0] == 400
        assert _call(f"{server.url}/api/s/{'B' * 24}/state")[0] == 404
        server.kill()
        server.start()  # same folder, same port: the session continues where it was
        status, state = _call(api + "/state")
        assert status == 200 and state["state"] in ("practice_done", "trial")
        with urllib.request.urlopen(server.url + "/static/study.js", timeout=10) as r:
            assert r.status == 200 and len(r.read()) > 100_000  # the built three.js bundle ships in the package
    finally:
        server.stop()
    (path,) = out.glob("*.h5")
    with h5py.File(path, "r") as f:  # plain h5py, no skelviz code
        assert f["responses"]["response"][0] == b"right" and f.attrs["runner"] == "web"


def test_desktop_runner_uses_the_same_allocator(tmp_path, stimulus_file, protocol):
    from studies.session import StudySession

    stimuli = open_stimuli(stimulus_file, protocol)
    out = tmp_path / "out"
    desktop = [StudySession.start(protocol, stimuli, out, f"D{i}", fsync=False) for i in range(2)]
    for s in desktop:
        s.close()
    attrs = [read_session(s.file.path).attrs for s in desktop]
    assert [a["order"] for a in attrs] == [0, 1] and {a["runner"] for a in attrs} == {"desktop"}
    # an online server on the same folder continues the balance
    web = WebSessions(protocol, stimuli, out, fsync=False)
    assert web.allocator.counts == [1, 1]
    assert read_session(web.session_path(web.create())).attrs["order"] == 0


def test_analysis_treats_online_and_desktop_sessions_alike_and_flags_focus(tmp_path, stimulus_file, protocol):
    from studies.analysis import analyse, load_sessions, write_report
    from studies.session import State, StudySession

    stimuli = open_stimuli(stimulus_file, protocol)
    out = tmp_path / "out"
    desk = StudySession.start(protocol, stimuli, out, "DESK1", fsync=False)
    desk.accept_consent()
    while desk.state is not State.END:
        if desk.state is State.TRIAL:
            desk.presentation_started()
            desk.stimulus_onset()
            desk.respond("left")
        else:
            desk.advance()
    web = WebSessions(protocol, stimuli, out, fsync=False)
    token = web.create()
    web.act(token, "consent", {})
    web.act(token, "advance", {})
    state = web.act(token, "advance", {})["state"]
    while state["state"] != "trial" or state["trial"]["phase"] != "main":
        index = state["trial"]["index"] if state["state"] == "trial" else None
        if index is None:
            state = web.act(token, "advance", {})["state"]
        else:
            state = web.act(token, "respond", {"trial_index": index, "response": "left", "rt_s": 0.2})["state"]
    for _ in range(4):  # the participant switches tabs four times during one scored trial
        web.act(token, "focus", {"lost": True})
        web.act(token, "focus", {"lost": False})
    _answer_all(web, token)
    result = analyse(load_sessions(sorted(out.glob("*.h5"))))
    assert {t["runner"] for t in result.trials} == {"web", "desktop"}
    web_pid = read_session(web.session_path(token)).participant_id
    assert result.focus_losses[web_pid] == 4 and result.focus_losses["DESK1"] == 0
    report = write_report(result, tmp_path / "report")["report"].read_text()
    assert "| web |" in report and "| desktop |" in report
    assert "lost focus too often (4 > 3)" in report
