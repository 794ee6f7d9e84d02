"""The project HDF5 clip/dataset format and the shared cmu8 positions layout."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from engine import skeletons
from engine.data import Clip, ClipDataset, Provenance
from engine.errors import DataFormatError, SkeletonMismatchError, UnsupportedFormatError
from engine.io import detect_format, load_clip, load_dataset, save_clip, save_dataset
from engine.io import h5 as h5io


def _clip(T=12, label="walk", name="c", seed=0, bodies=1, fps=30.0):
    rng = np.random.default_rng(seed)
    sk = skeletons.get("hdm05_25")
    x = rng.normal(size=(bodies, T, sk.num_joints, 3)).astype(np.float32)
    return Clip.from_bodies(
        x, sk, fps, label=label, name=name, provenance=Provenance("/data/orig.bvh", "bvh", {"subject": 3})
    )


@pytest.fixture
def dataset():
    clips = [
        _clip(10, "walk", "walk_1", 0),
        _clip(14, "run", "run/1", 1, bodies=2),
        _clip(9, "walk", "walk_2", 2, fps=120.0),
        _clip(11, None, "unlabelled", 3),
    ]
    return ClipDataset(clips, ["walk", "run", "jump"])


def test_dataset_round_trip_keeps_everything(tmp_path, dataset):
    path = save_dataset(dataset, tmp_path / "d.h5")
    assert detect_format(path) == "skelviz-h5"
    back = load_dataset(path)
    assert back.class_names == ("walk", "run", "jump")
    assert back.skeleton == dataset.skeleton
    assert len(back) == 4
    assert [c.name for c in back] == ["walk_1", "run/1", "walk_2", "unlabelled"]  # order and names survive
    np.testing.assert_array_equal(back.labels, [0, 1, 0, -1])
    for a, b in zip(dataset, back):
        np.testing.assert_array_equal(a.bodies, b.bodies)
        assert a.fps == b.fps and a.label == b.label
        assert b.provenance.format == "skelviz-h5"
        assert b.provenance.details["origin_source"] == "/data/orig.bvh"
        assert b.provenance.details["subject"] == 3
    assert back[1].num_bodies == 2


def test_clip_index_and_single_clip_file(tmp_path, dataset):
    path = save_dataset(dataset, tmp_path / "d.hdf5")
    assert load_clip(path, index=2).name == "walk_2"
    assert load_clip(path, index=-1).name == "unlabelled"
    with pytest.raises(DataFormatError, match="out of range"):
        load_clip(path, index=9)
    one = save_clip(dataset[0], tmp_path / "one.h5")
    clip = load_clip(one)
    np.testing.assert_array_equal(clip.positions, dataset[0].positions)
    # saving a re-loaded clip keeps the original source, not the intermediate file
    save_clip(clip, tmp_path / "two.h5")
    assert load_clip(tmp_path / "two.h5").provenance.details["origin_source"] == "/data/orig.bvh"
    with h5py.File(one) as f:
        assert f.attrs["format"] == "skelviz-clips" and int(f.attrs["schema_version"]) == 1
        assert f["clips"][list(f["clips"])[0]]["bodies"].compression == "gzip"


def test_writing_mixed_skeletons_is_refused(tmp_path):
    other = Clip(np.zeros((3, 25, 3), np.float32), skeletons.get("ntu25"), 30.0)
    with pytest.raises(SkeletonMismatchError):
        h5io.write_clips([_clip(), other], tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()


def _corrupt(path, fn):
    with h5py.File(path, "r+") as f:
        fn(f)


def _first(f):
    return f["clips"][list(f["clips"])[0]]


def test_truncated_file(tmp_path, dataset):
    path = save_dataset(dataset, tmp_path / "d.h5")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match="d.h5") as err:
        load_dataset(path)
    assert "truncated or corrupt" in str(err.value)


def test_not_hdf5_with_h5_extension(tmp_path):
    path = tmp_path / "x.h5"
    path.write_bytes(b"hello, this is not hdf5" * 10)
    with pytest.raises(DataFormatError, match="not"):
        load_dataset(path)


def test_nan_names_clip_and_frame(tmp_path, dataset):
    path = save_dataset(dataset, tmp_path / "d.h5")

    def put_nan(f):
        b = _first(f)["bodies"]
        x = b[()]
        x[0, 7, 3, 1] = np.nan
        b[...] = x

    _corrupt(path, put_nan)
    with pytest.raises(DataFormatError, match=r"walk_1.*NaN") as err:
        load_dataset(path)
    assert err.value.frame == 7


def test_wrong_joint_count(tmp_path, dataset):
    path = save_dataset(dataset, tmp_path / "d.h5")

    def shrink(f):
        g = _first(f)
        x = g["bodies"][()]
        del g["bodies"]
        g["bodies"] = x[:, :, :24]

    _corrupt(path, shrink)
    with pytest.raises(DataFormatError, match=r"walk_1.*24 joints.*25"):
        load_dataset(path)


def test_empty_clip(tmp_path, dataset):
    path = save_dataset(dataset, tmp_path / "d.h5")

    def empty(f):
        g = _first(f)
        del g["bodies"]
        g["bodies"] = np.zeros((1, 0, 25, 3), np.float32)

    _corrupt(path, empty)
    with pytest.raises(DataFormatError, match="empty"):
        load_dataset(path)


@pytest.mark.parametrize("attr", ["fps"])
def test_missing_clip_attribute(tmp_path, dataset, attr):
    path = save_dataset(dataset, tmp_path / "d.h5")
    _corrupt(path, lambda f: _first(f).attrs.__delitem__(attr))
    with pytest.raises(DataFormatError, match=rf"walk_1.*'{attr}' is missing"):
        load_dataset(path)


@pytest.mark.parametrize("attr", ["joint_names", "schema_version"])
def test_missing_root_attribute(tmp_path, dataset, attr):
    path = save_dataset(dataset, tmp_path / "d.h5")
    _corrupt(path, lambda f: f.attrs.__delitem__(attr))
    with pytest.raises(DataFormatError, match=attr):
        load_dataset(path)


def test_label_missing_from_class_names(tmp_path, dataset):
    path = save_dataset(dataset, tmp_path / "d.h5")
    _corrupt(path, lambda f: f.attrs.__setitem__("class_names", np.array(["run", "jump"], dtype=h5py.string_dtype())))
    with pytest.raises(DataFormatError, match=r"'walk'.*not one of the class names"):
        load_dataset(path)


def test_newer_schema_is_refused(tmp_path, dataset):
    path = save_dataset(dataset, tmp_path / "d.h5")
    _corrupt(path, lambda f: f.attrs.__setitem__("schema_version", 99))
    with pytest.raises(DataFormatError, match="newer"):
        load_dataset(path)


def test_unknown_hdf5_layout(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(DataFormatError, match="neither"):
        load_dataset(path)


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(DataFormatError, match="no such file"):
        load_clip(tmp_path / "nope.h5")
    odd = tmp_path / "notes.txt"
    odd.write_text("just some words\nnothing motion-like\n")
    with pytest.raises(UnsupportedFormatError, match=r"Supported:.*\.bvh"):
        load_clip(odd)
    with pytest.raises(UnsupportedFormatError, match="cannot write"):
        save_clip(_clip(), tmp_path / "x.txt")


# -- the shared cmu8 positions layout -------------------------------------------------------------------------------
def test_cmu8_layout(cmu8_path):
    ds = load_dataset(cmu8_path)
    assert len(ds) == 38
    assert ds.skeleton.name == "cmu8_28" and ds.skeleton.num_joints == 28
    assert skeletons.get("cmu8_28") == ds.skeleton
    assert ds.class_counts() == {
        "basketball": 6, "basketball_signal": 5, "directing_traffic": 2, "jumping": 6, "running": 6,
        "soccer": 6, "walking": 6, "washwindow": 1,
    }
    splits = [c.provenance.details["split"] for c in ds]
    assert splits.count("test") == 6 and splits.count("train") == 32
    for c in ds:
        assert c.fps == 120.0
        assert 150 <= c.num_frames <= 3702
        lengths = ds.skeleton.bone_lengths(c.positions)
        assert np.abs(lengths - lengths[0]).max() < 1e-4  # rigid bones
        height = np.median(c.positions[:, :, 1].max(1) - c.positions[:, :, 1].min(1))
        assert 1.0 < height < 2.1
    clip = load_clip(cmu8_path, index=0)
    assert clip.label == ds[0].label and clip.num_frames == ds[0].num_frames


def test_cmu8_round_trips_through_project_format(tmp_path, cmu8_path):
    ds = load_dataset(cmu8_path)[:4]
    back = load_dataset(save_dataset(ds, tmp_path / "c.h5"))
    assert back.skeleton == ds.skeleton
    assert back[0].provenance.details["split"] == ds[0].provenance.details["split"]
    np.testing.assert_array_equal(back[3].positions, ds[3].positions)


def test_positions_layout_units_and_up_axis(tmp_path):
    path = tmp_path / "mm_zup.h5"
    x = np.random.default_rng(0).normal(size=(5, 3, 3)).astype(np.float32)
    with h5py.File(path, "w") as f:
        f.attrs["joint_names"] = np.array(["a", "b", "c"], dtype=h5py.string_dtype())
        f.attrs["parents"] = np.array([-1, 0, 1])
        f.attrs["fps"] = 60.0
        f.attrs["units"] = "mm"
        f.attrs["up_axis"] = "z"
        f["clips/one"] = x
        f["clips/one"].attrs["label"] = "thing"
    ds = load_dataset(path, skeleton_name="tiny3")
    clip = ds[0]
    assert clip.skeleton.name == "tiny3" and clip.fps == 60.0 and clip.label == "thing"
    np.testing.assert_allclose(clip.positions[..., 1], x[..., 2] / 1000, rtol=1e-6)  # z-up → y-up
    np.testing.assert_allclose(clip.positions[..., 2], -x[..., 1] / 1000, rtol=1e-6)
