"""Analysis numbers equal scipy's on a constructed data set; exclusion, merging and the report files."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from scipy import stats

from engine.errors import StudyError
from studies.analysis import (
    analyse,
    binomial_test_half,
    dprime_2afc,
    dprime_yes_no,
    load_sessions,
    wilson_interval,
    write_report,
)
from studies.protocol import load_protocol
from studies.session import State, StudySession
from studies.stimuli import open_stimuli
from tests.studies.conftest import make_stimulus_file


def run_session(protocol, stim, out, pid, policy):
    """Answer every trial with ``policy(trial) -> response``; returns the session file path."""
    s = StudySession.start(protocol, stim, out, participant=pid)
    s.accept_consent()
    t = 0.0
    while s.state is not State.END:
        if s.state is State.TRIAL:
            s.presentation_started()
            s.stimulus_onset(t)
            s.respond(policy(s.current), t + 0.5)
            t += 1
        else:
            s.advance()
    return s.file.path


@pytest.mark.parametrize(("k", "n"), [(0, 1), (1, 1), (3, 10), (5, 10), (17, 40), (0, 25), (25, 25), (61, 100)])
def test_statistics_equal_scipy(k, n):
    res = stats.binomtest(k, n, 0.5, alternative="two-sided")
    ci = res.proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert binomial_test_half(k, n) == pytest.approx(res.pvalue, rel=1e-12, abs=1e-15)


@pytest.fixture(scope="module")
def indist_sessions(tmp_path_factory):
    """Three participants on the same/different preset with scripted answers; P-BAD fails the catch trials."""
    tmp = tmp_path_factory.mktemp("indist")
    protocol = load_protocol("indistinguishability")
    stim = open_stimuli(make_stimulus_file(tmp / "s.h5", n_clips=9), protocol)
    rng = np.random.default_rng(1)

    def careful(trial):  # sees some attacks, always right on catch trials
        if trial.is_catch:
            return "different"
        if trial.condition == "identical":
            return "same" if rng.random() < 0.85 else "different"
        return "same" if rng.random() < 0.6 else "different"

    def sloppy(trial):
        return "same"  # also on catch trials → excluded

    paths = [
        run_session(protocol, stim, tmp, "P-ONE", careful),
        run_session(protocol, stim, tmp, "P-TWO", careful),
        run_session(protocol, stim, tmp, "P-BAD", sloppy),
    ]
    return protocol, paths


def test_conditions_and_dprime_equal_scipy(indist_sessions):
    protocol, paths = indist_sessions
    sessions = load_sessions(paths)
    result = analyse(sessions)
    assert result.excluded == ["P-BAD"] and result.catch_accuracy["P-BAD"] == 0.0
    assert result.included == ["P-ONE", "P-TWO"]

    # recount from the raw rows, independently of the module
    rows = [r for s in sessions for r in s.responses
            if r["phase"] == "main" and not r["is_catch"] and r["participant_id"] != "P-BAD"]
    for cell in result.conditions:
        mine = [r for r in rows if r["condition"] == cell.condition]
        k = sum(r["response"] == "same" for r in mine)
        assert (cell.n, cell.k) == (len(mine), k) and cell.n == 18
        ref = stats.binomtest(k, len(mine), 0.5)
        ci = ref.proportion_ci(method="wilson")
        assert cell.proportion == pytest.approx(ref.statistic)
        assert (cell.ci_low, cell.ci_high) == pytest.approx((ci.low, ci.high))
        assert cell.p_value == pytest.approx(ref.pvalue)

    sig = [r for r in rows if r["condition"] == "attacked"]
    noi = [r for r in rows if r["condition"] == "identical"]
    h = (sum(r["response"] == "different" for r in sig) + 0.5) / (len(sig) + 1)
    f = (sum(r["response"] == "different" for r in noi) + 0.5) / (len(noi) + 1)
    attacked = next(c for c in result.conditions if c.condition == "attacked")
    assert attacked.dprime == pytest.approx(stats.norm.ppf(h) - stats.norm.ppf(f), rel=1e-9)
    assert math.isnan(next(c for c in result.conditions if c.condition == "identical").dprime)
    assert {c.participant for c in result.participants} == {"P-ONE", "P-TWO"}


def test_exclusion_threshold_is_configurable(indist_sessions):
    _, paths = indist_sessions
    assert analyse(load_sessions(paths), catch_threshold=0.0).excluded == []


def test_2afc_dprime_and_measure(tmp_path):
    protocol = load_protocol("naturalness")
    stim = open_stimuli(make_stimulus_file(tmp_path / "s.h5", n_clips=9), protocol)

    def prefers_clean(trial):
        clean_side = "left" if trial.methods[0] == "clean" else "right"
        return clean_side if trial.index % 3 else ("right" if clean_side == "left" else "left")

    path = run_session(protocol, stim, tmp_path, "P-A", prefers_clean)
    result = analyse(load_sessions([path]))
    cell = result.conditions[0]
    rows = [r for r in load_sessions([path])[0].responses if r["phase"] == "main" and not r["is_catch"]]
    k = sum(r["chosen_method"] == "clean" for r in rows)
    assert (cell.k, cell.n) == (k, len(rows))
    assert cell.dprime == pytest.approx(math.sqrt(2) * stats.norm.ppf((k + 0.5) / (len(rows) + 1)))
    assert dprime_2afc(0, 0) != dprime_2afc(0, 0)  # nan without trials
    assert dprime_yes_no(5, 10, 5, 10) == pytest.approx(0.0)


def test_report_files(indist_sessions, tmp_path):
    _, paths = indist_sessions
    files = write_report(analyse(load_sessions(paths)), tmp_path / "report")
    md = files["report"].read_text()
    assert "Excluded: P-BAD (0.00)" in md and "| attacked | 18 |" in md
    with files["conditions"].open() as f:
        assert [r["condition"] for r in csv.DictReader(f)] == ["attacked", "identical"]
    with files["trials"].open() as f:
        assert len(list(csv.DictReader(f))) == 3 * 22
    for key in ("plot_conditions", "plot_participants"):
        assert files[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sessions_of_different_protocols_are_not_merged(indist_sessions, tmp_path):
    _, paths = indist_sessions
    protocol = load_protocol("naturalness")
    stim = open_stimuli(make_stimulus_file(tmp_path / "s.h5"), protocol)
    other = run_session(protocol, stim, tmp_path, "P-X", lambda t: "left")
    with pytest.raises(StudyError, match="different protocols"):
        load_sessions([paths[0], other])


def test_bad_session_file_is_skipped_and_the_rest_analysed(tmp_path, caplog):
    protocol = load_protocol("naturalness")
    stim = open_stimuli(make_stimulus_file(tmp_path / "s.h5", n_clips=9), protocol)
    good = run_session(protocol, stim, tmp_path, "P-A", lambda t: "left")
    not_hdf5 = tmp_path / "notes.h5"
    not_hdf5.write_text("not a session")
    stimuli_not_session = tmp_path / "s.h5"  # an HDF5 file that is not a session
    with caplog.at_level("WARNING"):
        sessions = load_sessions([not_hdf5, good, stimuli_not_session])
    assert [s.path for s in sessions] == [good]
    assert "notes.h5" in caplog.text and "s.h5" in caplog.text
    with pytest.raises(StudyError, match="none of the session files"):
        load_sessions([not_hdf5])
