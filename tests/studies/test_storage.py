"""Session files: written before the first trial, one flushed row per response, crash-safe, resumable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from engine.errors import StudyError
from studies.protocol import load_protocol
from studies.session import State, StudySession
from studies.stimuli import open_stimuli
from studies.storage import SCHEMA_VERSION, read_session
from tests.studies.conftest import make_stimulus_file

DRIVER = Path(__file__).with_name("session_driver.py")
REPO = Path(__file__).resolve().parents[2]


def _answer(session: StudySession, n: int, response: str | None = None) -> list[int]:
    done = []
    t = 100.0
    while len(done) < n and session.state not in (State.END, State.ABORTED):
        if session.state is State.TRIAL:
            idx = session.current.index
            session.presentation_started()
            session.stimulus_onset(t)
            assert session.respond(response or session.protocol.responses[idx % 2], t + 0.25)
            done.append(idx)
            t += 1.0
        else:
            session.advance()
    return done


def test_everything_before_the_first_trial_is_on_disk(tmp_path, stimulus_file):
    protocol = load_protocol("naturalness")
    session = StudySession.start(protocol, open_stimuli(stimulus_file, protocol), tmp_path)
    # read from another handle while the session is still open and no trial was answered
    data = read_session(session.file.path)
    assert data.attrs["schema_version"] == SCHEMA_VERSION
    assert data.attrs["participant_id"].startswith("P-")
    assert data.attrs["protocol_sha256"] == protocol.sha256
    assert data.protocol.text == protocol.text
    assert [t.index for t in data.plan] == list(range(len(session.plan)))
    assert set(data.stimulus_hashes) == {s for t in data.plan for s in t.stimuli}
    assert data.attrs["status"] == "running" and data.responses == []
    assert isinstance(data.attrs["seed"], int) and data.attrs["app_version"]
    session.close()


def test_each_response_is_readable_before_the_next_trial(tmp_path, stimulus_file):
    protocol = load_protocol("deceitfulness")
    session = StudySession.start(protocol, open_stimuli(stimulus_file, protocol), tmp_path)
    session.accept_consent()
    for k in range(1, 4):
        _answer(session, 1)
        rows = read_session(session.file.path).responses
        assert len(rows) == k
        assert rows[-1]["rt_s"] == pytest.approx(0.25)
        assert rows[-1]["participant_id"] == session.participant_id
    session.close()


def test_sigkilled_session_keeps_exactly_the_completed_trials_and_resumes(tmp_path):
    stimuli = make_stimulus_file(tmp_path / "stim.h5")
    k = 5
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-u", str(DRIVER), "indistinguishability", str(stimuli), "--out", str(tmp_path / "out"),
         "--delay", "0.2"],
        stdout=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )
    session_path, done = None, []
    try:
        for line in proc.stdout:
            word, _, rest = line.strip().partition(" ")
            if word == "SESSION":
                session_path = Path(rest)
            elif word == "DONE":
                done.append(int(rest))
                if len(done) == k:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert session_path is not None

    killed = read_session(session_path)  # opens although the writer never closed it
    assert killed.attrs["status"] == "running"
    assert [r["trial_index"] for r in killed.responses] == done == [t.index for t in killed.plan[:k]]
    assert len(killed.plan) > k

    # resume in another process, to completion
    out = subprocess.run(
        [sys.executable, "-u", str(DRIVER), "indistinguishability", str(stimuli), "--resume", str(session_path),
         "--delay", "0"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    resumed_done = [int(line.split()[1]) for line in out.stdout.splitlines() if line.startswith("DONE")]
    assert resumed_done == [t.index for t in killed.plan[k:]]

    final = read_session(session_path)
    indices = [r["trial_index"] for r in final.responses]
    assert indices == [t.index for t in final.plan]  # every trial once, in plan order, none repeated or lost
    assert final.attrs["status"] == "completed"
    assert [e["kind"] for e in final.events].count("resumed") == 1
    # rows answered before the kill are untouched
    assert final.responses[:k] == killed.responses


def test_resume_refuses_a_different_protocol_or_stimuli(tmp_path, stimulus_file):
    protocol = load_protocol("naturalness")
    stim = open_stimuli(stimulus_file, protocol)
    session = StudySession.start(protocol, stim, tmp_path / "out")
    session.accept_consent()
    _answer(session, 2)
    session.close()
    path = session.file.path

    other = load_protocol("generic_2afc")
    with pytest.raises(StudyError, match="different protocol"):
        StudySession.resume(other, open_stimuli(make_stimulus_file(tmp_path / "o.h5", ("clean", "smart", "basar",
                                                                                       "jitter")), other), path)
    changed = open_stimuli(make_stimulus_file(tmp_path / "changed.h5", seed=7), protocol)
    with pytest.raises(StudyError, match="differs from the one this session showed"):
        StudySession.resume(protocol, changed, path)

    resumed = StudySession.resume(protocol, stim, path)
    assert resumed.state is State.INSTRUCTIONS
    _answer(resumed, 10_000)
    assert resumed.state is State.END
    with pytest.raises(StudyError, match="already complete"):
        StudySession.resume(protocol, stim, path)


def test_resume_asks_for_consent_again_if_it_was_never_given(tmp_path, stimulus_file):
    protocol = load_protocol("naturalness")
    stim = open_stimuli(stimulus_file, protocol)
    session = StudySession.start(protocol, stim, tmp_path)
    session.close()  # stopped on the consent page
    resumed = StudySession.resume(protocol, stim, session.file.path)
    assert resumed.state is State.CONSENT
    resumed.accept_consent()
    resumed.close()
    again = StudySession.resume(protocol, stim, session.file.path)
    assert again.state is State.INSTRUCTIONS
    again.close()


def test_a_torn_row_is_ignored(tmp_path, stimulus_file):
    """A kill between growing the table and writing the row leaves a fill-value row: readers skip it."""
    protocol = load_protocol("naturalness")
    session = StudySession.start(protocol, open_stimuli(stimulus_file, protocol), tmp_path)
    session.accept_consent()
    _answer(session, 2)
    session.close()
    with h5py.File(session.file.path, "r+") as f:
        f["responses"].resize((3,))
    data = read_session(session.file.path)
    assert [r["trial_index"] for r in data.responses] == [0, 1]
    resumed = StudySession.resume(protocol, open_stimuli(stimulus_file, protocol), session.file.path)
    assert resumed.current.index == 2
    resumed.close()


def test_session_file_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(StudyError, match="not an HDF5 session file"):
        read_session(bad)
    with pytest.raises(StudyError, match="does not exist"):
        read_session(tmp_path / "missing.h5")


def test_driver_resumes_a_session_killed_before_consent(tmp_path, stimulus_file):
    """The crash-test driver used to spin forever on a session left at the consent screen."""
    protocol = load_protocol("naturalness")
    session = StudySession.start(protocol, open_stimuli(stimulus_file, protocol), tmp_path)
    path = session.file.path
    del session  # left at the consent screen (the plan is on disk before consent), as a kill -9 would leave it
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-u", str(DRIVER), "naturalness", str(stimulus_file), "--resume", str(path), "--delay", "0"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "END end"
