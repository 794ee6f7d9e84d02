"""The participant window, driven by key presses under Xvfb (pytest-qt): stored rows, Escape, Ctrl+P."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from PySide6 import QtCore  # noqa: E402

from engine.errors import StudyError  # noqa: E402
from skelviz.participant import launch_study  # noqa: E402
from studies.session import State  # noqa: E402
from studies.storage import read_session  # noqa: E402
from tests.studies.conftest import make_stimulus_file  # noqa: E402

pytestmark = [pytest.mark.gui, pytest.mark.gl]
# Qt is configured as the app does it (shared GL contexts) by tests/skelviz/conftest.py.

PROTOCOL = """
[study]
title = "Window test"
kind = "2afc"
question = "Which motion looks more natural?"
seed = 3
consent = "consent text"
instructions = "instructions text"

[design]
practice = 1
blocks = 2
max_side_run = 2

[catch]
count = 2
method = "jitter"

[display]
replays = 1
inter_trial_ms = 10

[[conditions]]
name = "smart"
stimuli = ["clean", "smart"]
"""

Key = QtCore.Qt.Key


@pytest.fixture
def participant_window(qtbot, tmp_path):
    proto = tmp_path / "p.toml"
    proto.write_text(PROTOCOL)
    stim = make_stimulus_file(tmp_path / "s.h5", n_clips=4, frames=12)
    w = launch_study(proto, stim, participant="P-QT", fullscreen=False, out_dir=tmp_path / "sessions")
    qtbot.addWidget(w)
    qtbot.waitExposed(w)
    yield w
    if w.session.state not in (State.END, State.ABORTED):
        w.session.close()


def _answer(qtbot, w, key):
    qtbot.waitUntil(lambda: w.session.accepting_responses, timeout=5000)
    n = len(w.session.file.completed)
    qtbot.keyClick(w, key)
    assert len(w.session.file.completed) == n + 1


def test_short_session_by_keyboard(qtbot, participant_window):
    w, s = participant_window, participant_window.session
    assert s.state is State.CONSENT
    qtbot.keyClick(w, Key.Key_F)  # response keys do nothing outside trials
    assert s.state is State.CONSENT
    qtbot.keyClick(w, Key.Key_Return)
    assert s.state is State.INSTRUCTIONS
    qtbot.keyClick(w, Key.Key_Return)
    assert s.state is State.TRIAL and s.current.phase == "practice"
    _answer(qtbot, w, Key.Key_J)
    assert s.state is State.PRACTICE_DONE
    qtbot.keyClick(w, Key.Key_Return)
    pressed = []
    while s.state is not State.END:
        if s.state is State.BREAK:
            qtbot.keyClick(w, Key.Key_Return)
            continue
        if len(pressed) == 1:  # one replay on the second scored trial
            qtbot.waitUntil(lambda: s.accepting_responses, timeout=5000)
            qtbot.keyClick(w, Key.Key_Space)
            qtbot.keyClick(w, Key.Key_Space)  # no replay left: ignored
        key, answer = (Key.Key_F, "left") if len(pressed) % 2 else (Key.Key_J, "right")
        _answer(qtbot, w, key)
        pressed.append(answer)
    rows = read_session(s.file.path).responses
    assert [r["response"] for r in rows] == ["right"] + pressed
    assert [r["phase"] for r in rows] == ["practice"] + ["main"] * len(pressed)
    assert len(pressed) == 4 + 2  # 4 clips + 2 catch trials
    assert all(0 < r["rt_s"] < 10 for r in rows)
    assert [r["replays"] for r in rows[1:3]] == [0, 1]
    assert all(r["participant_id"] == "P-QT" for r in rows)
    for r in rows:
        chosen = r["method_left"] if r["response"] == "left" else r["method_right"]
        assert r["chosen_method"] == chosen
    assert read_session(s.file.path).attrs["status"] == "completed"


def test_escape_never_loses_data(qtbot, participant_window):
    w, s = participant_window, participant_window.session
    qtbot.keyClick(w, Key.Key_Return)
    qtbot.keyClick(w, Key.Key_Return)
    _answer(qtbot, w, Key.Key_F)
    qtbot.keyClick(w, Key.Key_Return)  # practice over
    _answer(qtbot, w, Key.Key_J)
    qtbot.keyClick(w, Key.Key_Escape)
    assert s.confirming_abort and s.state is State.TRIAL
    qtbot.keyClick(w, Key.Key_J)  # a response key while asking: ignored
    assert len(s.file.completed) == 2
    qtbot.keyClick(w, Key.Key_Escape)  # Escape again: continue
    assert not s.paused
    _answer(qtbot, w, Key.Key_J)  # the interrupted trial is shown again and answered
    w.close()  # closing during a session asks instead of closing
    assert s.confirming_abort and w.isVisible()
    qtbot.keyClick(w, Key.Key_Y)
    assert s.state is State.ABORTED
    data = read_session(s.file.path)
    assert data.attrs["status"] == "aborted" and len(data.responses) == 3
    assert [e["kind"] for e in data.events].count("paused") == 2


def test_experimenter_pause(qtbot, participant_window):
    w, s = participant_window, participant_window.session
    qtbot.keyClick(w, Key.Key_Return)
    qtbot.keyClick(w, Key.Key_Return)
    qtbot.waitUntil(lambda: s.accepting_responses, timeout=5000)
    qtbot.keyClick(w, Key.Key_P, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert s.paused and not s.accepting_responses
    qtbot.keyClick(w, Key.Key_F)
    assert not s.file.completed
    qtbot.keyClick(w, Key.Key_P, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert not s.paused
    _answer(qtbot, w, Key.Key_F)
    assert read_session(s.file.path).responses[0]["presentations"] == 2


def test_bad_stimulus_file_fails_before_any_window(tmp_path, qtbot):
    bad = tmp_path / "s.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(StudyError, match="stimulus file"):
        launch_study("naturalness", bad, fullscreen=False, out_dir=tmp_path / "sessions")
    assert not (tmp_path / "sessions").exists()


def test_window_follows_the_session_when_it_moves_on_by_itself(qtbot, participant_window):
    """The window renders the session's state: answers given through the session API still move the window on."""
    w, s = participant_window, participant_window.session
    s.accept_consent()
    s.advance()
    for _ in range(3):
        qtbot.waitUntil(lambda: s.accepting_responses, timeout=5000)
        shown = s.current.index
        assert s.respond("left")
        if s.state is not State.TRIAL:
            s.advance()
        qtbot.waitUntil(lambda: s.accepting_responses, timeout=5000)
        assert s.current.index == shown + 1 and w._shown_trial == shown + 1
