"""The session state machine, headless: consent → instructions → practice → trials/breaks → end."""

from __future__ import annotations

import pytest

from studies.protocol import load_protocol
from studies.session import State, StudySession
from studies.stimuli import open_stimuli
from studies.storage import read_session


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture
def session(tmp_path, stimulus_file):
    protocol = load_protocol("indistinguishability")  # 2 practice, 2 blocks
    clock = Clock()
    s = StudySession.start(protocol, open_stimuli(stimulus_file, protocol), tmp_path, participant="P-TEST01",
                           clock=clock)
    s.clock_obj = clock
    yield s
    s.close()


def _show(s):
    s.presentation_started()
    s.stimulus_onset()


def test_full_path_through_the_states(session):
    seen = []
    session.on_change = lambda s: seen.append(s.state)
    assert session.state is State.CONSENT
    assert not session.respond("same")  # nothing on screen
    session.accept_consent()
    session.advance()
    assert session.state is State.TRIAL and session.current.phase == "practice"
    n_practice = session.protocol.practice
    for _ in range(n_practice):
        _show(session)
        assert session.respond("same")
    assert session.state is State.PRACTICE_DONE
    assert session.progress() == (0, len(session.plan) - n_practice)
    session.advance()
    blocks_seen = set()
    while session.state is not State.END:
        if session.state is State.BREAK:
            blocks_seen.add(session.block)
            session.advance()
            continue
        _show(session)
        session.clock_obj.t += 0.75
        assert session.respond("different")
    assert blocks_seen == {1}
    assert State.BREAK in seen and State.END in seen
    data = read_session(session.file.path)
    assert data.attrs["status"] == "completed"
    assert len(data.responses) == len(data.plan)
    main = [r for r in data.responses if r["phase"] == "main"]
    assert all(r["rt_s"] == pytest.approx(0.75) for r in main)
    catch = [r for r in main if r["is_catch"]]
    assert catch and all(r["correct"] == 1 for r in catch)
    assert all(r["correct"] == -1 for r in main if not r["is_catch"])
    kinds = [e["kind"] for e in data.events]
    assert kinds[:2] == ["created", "consent_given"] and "break_start" in kinds and kinds[-1] == "completed"


def test_response_time_starts_at_the_first_frame_swap(session):
    session.accept_consent()
    session.advance()
    session.presentation_started()
    session.clock_obj.t = 5.0
    assert not session.respond("same")  # before the stimulus is on screen
    session.stimulus_onset()
    session.clock_obj.t = 5.4
    session.stimulus_onset()  # later swaps do not move the onset
    session.clock_obj.t = 6.0
    session.respond("same")
    assert read_session(session.file.path).responses[0]["rt_s"] == pytest.approx(1.0)


def test_replays_are_limited_and_counted(session):
    session.accept_consent()
    session.advance()
    _show(session)
    assert session.replay()  # the preset allows one
    assert not session.replay()
    session.respond("same")
    assert read_session(session.file.path).responses[0]["replays"] == 1


def test_focus_loss_is_counted_and_logged(session):
    session.accept_consent()
    session.advance()
    _show(session)
    session.focus_lost()
    session.focus_gained()
    session.respond("same")
    data = read_session(session.file.path)
    assert data.responses[0]["focus_losses"] == 1
    assert [e["kind"] for e in data.events][-2:] == ["focus_lost", "focus_gained"]


def test_pause_restarts_the_trial_and_escape_loses_nothing(session):
    session.accept_consent()
    session.advance()
    _show(session)
    session.respond("same")
    _show(session)
    session.pause()
    assert not session.respond("same")  # ignored while paused
    session.unpause()
    assert session.onset is None  # the trial is shown again
    _show(session)
    session.respond("different")
    assert read_session(session.file.path).responses[1]["presentations"] == 2

    before = session.state
    session.request_abort()  # Escape: pause + confirmation
    assert session.paused and session.confirming_abort
    session.cancel_abort()
    assert not session.paused and not session.confirming_abort and session.state is before
    session.request_abort()
    session.confirm_abort()
    assert session.state is State.ABORTED
    data = read_session(session.file.path)
    assert data.attrs["status"] == "aborted" and len(data.responses) == 2


def test_declining_consent_records_no_trial(session):
    session.decline_consent()
    data = read_session(session.file.path)
    assert session.state is State.ABORTED and data.responses == [] and data.attrs["status"] == "aborted"
