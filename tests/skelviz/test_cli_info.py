"""`skelviz info`: a person inspecting a file from the terminal (no Qt involved)."""

from __future__ import annotations

import numpy as np

from engine import skeletons
from engine.data import Clip, ClipDataset
from engine.io import save_dataset
from skelviz.cli import main


def _dataset():
    sk = skeletons.get("hdm05_25")
    x = np.zeros((45, 25, 3), np.float32)
    clips = [Clip(x, sk, 30.0, label=lab, name=f"c{i}") for i, lab in enumerate(["wave", "kick", "wave"])]
    return ClipDataset(clips)


def test_info_on_a_dataset(tmp_path, capsys):
    path = save_dataset(_dataset(), tmp_path / "d.h5")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "format:   skelviz-h5" in out
    assert "clips:    3" in out and "hdm05_25 (25 joints" in out
    assert "frames:   135 in all, 45 per clip" in out and "fps:      30" in out
    assert "kick  1 clip\n" in out and "wave  2 clips" in out
    assert main(["info", str(path), "--index", "1"]) == 0
    out = capsys.readouterr().out
    assert "label:    kick" in out and "duration: 1.50 s" in out


def test_info_on_one_clip_and_on_errors(tmp_path, capsys):
    path = save_dataset(_dataset()[:1], tmp_path / "one.h5")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "clip:     c0" in out and "bodies:   1" in out and "frames:   45" in out and "label:    wave" in out
    assert main(["info", str(tmp_path / "missing.bvh")]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.h5"
    bad.write_bytes(path.read_bytes()[:300])
    assert main(["info", str(bad)]) == 2
    assert "truncated or corrupt" in capsys.readouterr().err


def test_info_on_shared_files(formats_dir, cmu8_path, capsys):
    assert main(["info", str(formats_dir / "smart_npz" / "classTest.npz")]) == 0
    out = capsys.readouterr().out
    assert "clips:    68" in out and "washwindow         32 clips" in out
    assert main(["info", str(cmu8_path)]) == 0
    assert "cmu8_28 (28 joints" in capsys.readouterr().out
    assert main(["info", str(formats_dir / "bvh" / "131_01.bvh")]) == 0
    out = capsys.readouterr().out
    assert "frames:   994" in out and "fps:      120" in out
