"""Stimulus files: a corrupt, edited or mismatched file is refused with a clear message before anyone starts."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from engine.errors import StudyError
from studies.protocol import load_protocol
from studies.stimuli import open_stimuli, positions_hash, read_stimuli
from tests.studies.conftest import make_stimulus_file


def test_round_trip_keeps_provenance(stimulus_file):
    stim = read_stimuli(stimulus_file)
    assert stim.skeleton.name == "hdm05_25" and stim.fps == 30.0
    s = stim["test_walking_0~smart"]
    assert (s.clip, s.method, s.label, s.attack, s.params) == ("test/walking_0", "smart", "walking", "smart",
                                                                {"iterations": 3})
    assert s.sha256 == positions_hash(s.positions)
    assert stim.meta["schema_version"] == 1


def test_truncated_file(tmp_path, stimulus_file):
    data = stimulus_file.read_bytes()
    bad = tmp_path / "truncated.h5"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(StudyError, match="truncated|damaged"):
        open_stimuli(bad, load_protocol("naturalness"))


def test_not_hdf5(tmp_path):
    bad = tmp_path / "x.h5"
    bad.write_text("hello")
    with pytest.raises(StudyError, match="not an HDF5 file"):
        open_stimuli(bad, load_protocol("naturalness"))


def test_modified_stimulus_is_detected_by_its_hash(stimulus_file):
    with h5py.File(stimulus_file, "r+") as f:
        ds = f["stimuli/test_walking_0~smart"]
        ds[0, 0, 0] += 0.01
    with pytest.raises(StudyError, match="does not match its recorded hash"):
        open_stimuli(stimulus_file, load_protocol("naturalness"))


def test_nan_and_wrong_shape(stimulus_file):
    with h5py.File(stimulus_file, "r+") as f:
        ds = f["stimuli/test_walking_0~smart"]
        ds[1, 2, 0] = np.nan
    with pytest.raises(StudyError, match="NaN"):
        read_stimuli(stimulus_file)
    with h5py.File(stimulus_file, "r+") as f:
        del f["stimuli/test_walking_0~smart"]
        f["stimuli"].create_dataset("bad", data=np.zeros((5, 7, 3), np.float32))
    with pytest.raises(StudyError, match=r"'bad' has shape \(5, 7, 3\)"):
        read_stimuli(stimulus_file)


def test_missing_attribute(stimulus_file):
    with h5py.File(stimulus_file, "r+") as f:
        del f["stimuli/test_walking_0~smart"].attrs["method"]
    with pytest.raises(StudyError, match="attribute 'method' is missing"):
        read_stimuli(stimulus_file)


def test_not_a_stimulus_file(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "something-else"
    with pytest.raises(StudyError, match="not a skelviz stimulus file"):
        read_stimuli(path)


def test_protocol_and_stimuli_mismatch(tmp_path):
    only_clean = make_stimulus_file(tmp_path / "clean.h5", ("clean",))
    with pytest.raises(StudyError, match=r"lacks the stimulus method\(s\) \['jitter', 'smart'\]"):
        open_stimuli(only_clean, load_protocol("naturalness"))
    one_class = make_stimulus_file(tmp_path / "one.h5", ("clean", "smart"), classes=["walking"])
    with pytest.raises(StudyError, match="single class"):
        open_stimuli(one_class, load_protocol("deceitfulness"))
