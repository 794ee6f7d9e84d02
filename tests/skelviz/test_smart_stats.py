"""A SMART result file away from its data's statistics (the SMART code writes ``adClassTrain.npz`` into a results
folder, ``preprocess_core.npz`` stays with the data): ``--stats PATH`` for info, eval and attack; the app asks for
the file. Real files: the shared SMART-layout cmu8 clips, copied apart into a temporary folder."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from engine.assets import ASSETS_DIR, REAL_DEMO_CHECKPOINTS
from skelviz.cli import main

MODEL = ASSETS_DIR / REAL_DEMO_CHECKPOINTS["stgcn"]


@pytest.fixture
def apart(formats_dir, tmp_path):
    """``results/adClassTest.npz`` and ``data/preprocess_core.npz``: the clips without statistics beside them."""
    (tmp_path / "results").mkdir()
    (tmp_path / "data").mkdir()
    shutil.copy(formats_dir / "smart_npz" / "classTest.npz", tmp_path / "results" / "adClassTest.npz")
    shutil.copy(formats_dir / "smart_npz" / "preprocess_core.npz", tmp_path / "data" / "preprocess_core.npz")
    shutil.copy(formats_dir / "smart_npz" / "classes.txt", tmp_path / "results" / "classes.txt")
    return tmp_path / "results" / "adClassTest.npz", tmp_path / "data" / "preprocess_core.npz"


def test_info_without_stats_says_to_give_them_and_with_stats_reads_metres(apart, capsys):
    clips, stats = apart
    assert main(["info", str(clips)]) == 2
    err = capsys.readouterr().err
    assert "preprocess_core.npz" in err and "--stats" in err and "stats=" not in err
    assert main(["info", str(clips), "--stats", str(stats), "--index", "0"]) == 0
    assert "68" in capsys.readouterr().out  # 68 clips
    assert main(["info", str(ASSETS_DIR / "demo" / "cmu_actions.h5"), "--stats", str(stats)]) == 2
    assert "--stats is for SMART .npz files" in capsys.readouterr().err


def test_eval_and_attack_take_stats(apart, tmp_path, capsys):
    if not MODEL.is_file():
        pytest.skip(f"{MODEL} is absent")
    clips, stats = apart
    out = tmp_path / "eval.json"
    assert main(["eval", "--model", str(MODEL), "--data", str(clips), "--split", "all", "--stats", str(stats),
                 "--device", "cpu", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    # The npz holds the cmu8 test windows, in metres again once de-normalised: the demo ST-GCN knows these actions.
    assert report["n"] == 68 and report["accuracy"] > 0.5
    assert main(["attack", "--model", str(MODEL), "--data", str(clips), "--stats", str(stats), "--limit", "1",
                 "--iters", "2", "--device", "cpu", "--quiet", "--out", str(tmp_path / "atk")]) == 0
    assert json.loads((tmp_path / "atk" / "results.json").read_text())["n"] == 1
    capsys.readouterr()
    assert main(["eval", "--model", str(MODEL), "--data", str(clips), "--split", "all", "--device", "cpu"]) == 2
    assert "--stats" in capsys.readouterr().err


@pytest.mark.gui
def test_app_asks_for_the_statistics_of_a_smart_npz(qtbot, apart, monkeypatch):
    from PySide6 import QtWidgets

    from skelviz.model.settings import MemoryStore
    from skelviz.widgets.main_window import MainWindow

    clips, stats = apart
    asked = []

    def choose(parent, caption, folder, filters):
        asked.append(caption)
        return str(stats), filters

    monkeypatch.setattr(QtWidgets.QFileDialog, "getOpenFileName", staticmethod(choose))
    errors = []
    w = MainWindow(store=MemoryStore(), error_reporter=lambda title, text: errors.append((title, text)))
    qtbot.addWidget(w)
    w.open_paths([str(clips)])
    qtbot.waitUntil(lambda: w.loading == 0 and bool(w.session.collections), timeout=30000)
    assert not errors, errors
    assert asked and "preprocess_core.npz" in asked[0]
    clip = w.session.collections[0][0]
    assert clip.num_frames == 60 and np.ptp(clip.positions[..., 1]) > 0.5  # metres, not normalised units
