"""``skelviz study``: analyse from the command line; bad files are refused before a window opens."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from skelviz.cli import main
from studies.protocol import load_protocol
from studies.stimuli import open_stimuli
from tests.studies.conftest import make_stimulus_file
from tests.studies.test_analysis import run_session


def test_analyze_writes_the_report(tmp_path, capsys):
    protocol = load_protocol("indistinguishability")
    stim = open_stimuli(make_stimulus_file(tmp_path / "s.h5"), protocol)
    rng = np.random.default_rng(0)
    paths = [
        run_session(protocol, stim, tmp_path, pid,
                    lambda t: "different" if t.is_catch else ("same" if rng.random() < 0.7 else "different"))
        for pid in ("P-A", "P-B")
    ]
    rc = main(["study", "analyze", *map(str, paths), "--out", str(tmp_path / "report")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "attacked:" in out and "identical:" in out and "d' =" in out
    for name in ("report.md", "conditions.csv", "participants.csv", "trials.csv", "conditions.png"):
        assert (tmp_path / "report" / name).is_file()


def test_run_refuses_a_bad_stimulus_file(tmp_path, capsys):
    bad = tmp_path / "s.h5"
    bad.write_text("garbage")
    rc = main(["study", "run", "naturalness", "--stimuli", str(bad), "--out", str(tmp_path / "sessions")])
    assert rc == 2
    assert "not an HDF5 file" in capsys.readouterr().err
    assert not (tmp_path / "sessions").exists()


def test_run_refuses_a_mismatched_stimulus_file(tmp_path, capsys):
    only_clean = make_stimulus_file(tmp_path / "s.h5", ("clean",))
    rc = main(["study", "run", "naturalness", "--stimuli", str(only_clean)])
    assert rc == 2
    assert "lacks the stimulus method(s) ['jitter', 'smart']" in capsys.readouterr().err


def test_prepare_without_a_prepare_table(tmp_path, capsys):
    proto = tmp_path / "p.toml"
    proto.write_text(load_protocol("naturalness").text.split("[prepare]")[0])
    model = Path(__file__).resolve().parents[2] / "assets" / "models" / "demo_stgcn.pt"  # checked before the protocol
    rc = main(["study", "prepare", str(proto), "--model", str(model), "--data", "d.h5", "--out", str(tmp_path / "o.h5")])
    assert rc == 2 and "no [prepare] table" in capsys.readouterr().err
