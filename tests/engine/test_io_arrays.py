"""Preprocessed array formats (SMART/BEAT .npz, ST-GCN .npy + .pkl), folders with labels.csv, format detection."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest

from engine import skeletons
from engine.data import Clip, ClipDataset
from engine.errors import DataFormatError, MissingCompanionFileError, SkeletonMismatchError
from engine.io import detect_format, load_clip, load_dataset, save_clip, save_dataset, stgcn

CLASSES = ["basketball", "basketball_signal", "directing_traffic", "jumping", "running", "soccer", "walking",
           "washwindow"]


def _standing_height(positions, sk):
    """Bone-path length from the left toe to the top of the spine: a body-height estimate that does not
    depend on posture (hdm05_25 has no head joint, so this is toe-to-neck)."""

    def chain(j):
        out = []
        while sk.parents[j] >= 0:
            out.append(j)
            j = sk.parents[j]
        return out

    top = max(sk.leaves, key=lambda j: positions[0, j, sk.up_index])  # highest leaf: Neck1 / head
    bones = set(chain(sk.index("LeftToeBase"))) ^ set(chain(top))
    return float(sum(np.linalg.norm(positions[:, j] - positions[:, sk.parents[j]], axis=-1).mean() for j in bones))


# -- SMART .npz ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, n", [("classTest.npz", 68), ("classTrain.npz", 347)])
def test_smart_npz_denormalised_to_metres(formats_dir, name, n):
    ds = load_dataset(formats_dir / "smart_npz" / name)
    assert len(ds) == n
    assert ds.class_names == tuple(CLASSES)  # from classes.txt
    assert ds.skeleton.name == "hdm05_25"
    raw = np.load(formats_dir / "smart_npz" / name)
    np.testing.assert_array_equal(ds.labels, raw["classes"])
    for clip in ds:
        assert clip.positions.shape == (60, 25, 3) and clip.fps == 30.0
        # root-centred in every frame, and x, y, z interleaved per joint: the root is at the origin
        assert np.abs(clip.positions[:, ds.skeleton.root]).max() < 1e-5
        assert 1.3 < _standing_height(clip.positions, ds.skeleton) < 2.1
        # upright on average (y is up); some frames of some actions are not
        neck, foot = clip.positions[:, ds.skeleton.index("Neck1"), 1], clip.positions[:, ds.skeleton.index("LeftFoot"), 1]
        assert np.median(neck - foot) > 0.5
        lengths = ds.skeleton.bone_lengths(clip.positions)
        assert np.ptp(lengths, axis=0).max() < 0.1  # rigid to within the data's noise
    assert load_clip(formats_dir / "smart_npz" / name, index=3).label == ds[3].label


def test_smart_npz_needs_its_statistics(tmp_path, formats_dir):
    shutil.copy(formats_dir / "smart_npz" / "classTest.npz", tmp_path)
    with pytest.raises(MissingCompanionFileError, match="preprocess_core.npz"):
        load_dataset(tmp_path / "classTest.npz")
    ds = load_dataset(tmp_path / "classTest.npz", stats=formats_dir / "smart_npz" / "preprocess_core.npz",
                      class_names=CLASSES)
    ref = load_dataset(formats_dir / "smart_npz" / "classTest.npz")
    np.testing.assert_array_equal(ds[5].positions, ref[5].positions)
    assert ds.class_names == tuple(CLASSES)


def test_smart_npz_bad_inputs(tmp_path):
    np.savez(tmp_path / "a.npz", clips=np.zeros((2, 60, 75), np.float32))
    with pytest.raises(DataFormatError, match=r"missing array\(s\) 'classes'"):
        load_dataset(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", clips=np.zeros((2, 60, 72), np.float32), classes=np.zeros(2, int), normalised=[0])
    with pytest.raises(SkeletonMismatchError, match="72 features"):
        load_dataset(tmp_path / "b.npz")
    x = np.ones((2, 60, 75), np.float32)
    x[1, 7, 4] = np.nan
    np.savez(tmp_path / "c.npz", clips=x, classes=np.zeros(2, int), normalised=[0])
    with pytest.raises(DataFormatError, match="clip 1 contains NaN") as err:
        load_dataset(tmp_path / "c.npz")
    assert err.value.frame == 7
    np.savez(tmp_path / "d.npz", clips=np.ones((2, 60, 75), np.float32), classes=np.array([0, 3]), normalised=[0])
    with pytest.raises(DataFormatError, match="class label 3 but only 2 class names"):
        load_dataset(tmp_path / "d.npz", class_names=["a", "b"])
    good = (tmp_path / "a.npz").read_bytes()
    (tmp_path / "e.npz").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataFormatError, match="truncated or corrupt"):
        load_dataset(tmp_path / "e.npz")
    np.savez(tmp_path / "f.npz", clips=np.zeros((0, 60, 75), np.float32), classes=np.zeros(0, int), normalised=[0])
    with pytest.raises(DataFormatError, match="no frames"):
        load_dataset(tmp_path / "f.npz")


def test_smart_npz_write_round_trip(tmp_path, formats_dir):
    ref = load_dataset(formats_dir / "smart_npz" / "classTest.npz")[:6]
    # raw metres: no statistics needed to read it back
    path = save_dataset(ref, tmp_path / "raw" / "w.npz")
    back = load_dataset(path)
    assert back.class_names == ref.class_names
    np.testing.assert_allclose(back[2].positions, ref[2].positions, atol=1e-6)
    # normalised with the shipped statistics, like the originals: preprocess_core.npz is written beside
    stats = formats_dir / "smart_npz" / "preprocess_core.npz"
    path = save_dataset(ref, tmp_path / "norm" / "w.npz", stats=stats)
    assert (tmp_path / "norm" / "preprocess_core.npz").is_file()
    orig = np.load(formats_dir / "smart_npz" / "classTest.npz")["clips"][:6]
    np.testing.assert_allclose(np.load(path)["clips"], orig, atol=1e-5)
    np.testing.assert_allclose(load_dataset(path)[4].positions, ref[4].positions, atol=1e-5)
    # one clip, translated: written root-centred
    clip = ref[0].with_positions(ref[0].positions + np.float32([1, 0, 2]))
    one = load_clip(save_clip(clip, tmp_path / "one.npz"))
    np.testing.assert_allclose(one.positions, ref[0].positions, atol=1e-5)
    assert one.label == ref[0].label
    # windows of different lengths do not fit the layout
    short = Clip(ref[1].positions[:30], ref.skeleton, 30.0, label=ref[1].label)
    with pytest.raises(DataFormatError, match="one length"):
        save_dataset(ClipDataset([ref[0], short]), tmp_path / "bad.npz")


# -- ST-GCN .npy + .pkl ----------------------------------------------------------------------------------------------
def test_stgcn_npy(formats_dir):
    path = formats_dir / "stgcn_npy" / "val_data_joint.npy"
    assert detect_format(path) == "stgcn-npy"
    ds = load_dataset(path, class_names=CLASSES)
    assert len(ds) == 68 and ds.skeleton.name == "hdm05_25"
    names, labels = pickle.loads((formats_dir / "stgcn_npy" / "val_label.pkl").read_bytes())  # trusted test data
    np.testing.assert_array_equal(ds.labels, labels)
    assert [c.name for c in ds] == names
    # the same test windows as the SMART file, in metres
    smart = load_dataset(formats_dir / "smart_npz" / "classTest.npz")
    np.testing.assert_array_equal(ds.labels, smart.labels)
    np.testing.assert_allclose(ds[10].positions, smart[10].positions, atol=1e-4)
    assert ds[10].label == smart[10].label
    clip = load_clip(path, index=-1)
    assert clip.name == names[-1] and clip.num_frames == 60 and clip.num_bodies == 1
    # without class names: generic ones
    assert load_dataset(path).class_names[:2] == ("class_0", "class_1")


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_restricted_unpickler_refuses_code(tmp_path, capsys):
    evil = tmp_path / "val_label.pkl"
    evil.write_bytes(pickle.dumps((["a"], [_Evil()])))
    with pytest.raises(DataFormatError, match=r"builtins\.print.*only plain lists"):
        stgcn.read_label_pickle(evil)
    assert "must never run" not in capsys.readouterr().out
    evil.write_bytes(pickle.dumps((["a", "b"], [np.int64(0), 1])))  # numpy scalars need a class lookup too
    with pytest.raises(DataFormatError, match="numpy"):
        stgcn.read_label_pickle(evil)
    evil.write_bytes(pickle.dumps((["a"], [{1, 2}])))  # a set is built-in but not a plain list/str/number
    with pytest.raises(DataFormatError, match="set"):
        stgcn.read_label_pickle(evil)
    evil.write_bytes(pickle.dumps((["a", "b"], [0, 1]))[:-5])
    with pytest.raises(DataFormatError, match="truncated or corrupt"):
        stgcn.read_label_pickle(evil)
    evil.write_bytes(pickle.dumps((["a", "b"], [0, 1])))
    assert stgcn.read_label_pickle(evil) == (["a", "b"], [0, 1])


def _stgcn_files(tmp_path, x, names=None, labels=None, stem="val"):
    np.save(tmp_path / f"{stem}_data_joint.npy", x)
    n = len(x)
    (tmp_path / f"{stem}_label.pkl").write_bytes(
        pickle.dumps((names or [f"s{i}" for i in range(n)], labels if labels is not None else [0] * n))
    )
    return tmp_path / f"{stem}_data_joint.npy"


def test_stgcn_trims_zero_padding_and_absent_bodies(tmp_path):
    x = np.zeros((2, 3, 50, 25, 2), np.float32)
    rng = np.random.default_rng(0)
    x[0, :, :30, :, 0] = rng.normal(size=(3, 30, 25))
    x[1, :, :40] = rng.normal(size=(3, 40, 25, 2))
    path = _stgcn_files(tmp_path, x, labels=[0, 1])
    ds = load_dataset(path)
    assert ds[0].num_frames == 30 and ds[0].num_bodies == 1
    assert ds[1].num_frames == 40 and ds[1].num_bodies == 2
    np.testing.assert_array_equal(ds[1].bodies[1], x[1, :, :40, :, 1].transpose(1, 2, 0))
    assert load_dataset(path, trim=False)[0].num_frames == 50


def test_stgcn_bad_inputs(tmp_path):
    x = np.ones((2, 3, 10, 25, 1), np.float32)
    path = _stgcn_files(tmp_path, x)
    (tmp_path / "val_label.pkl").unlink()
    with pytest.raises(MissingCompanionFileError, match="label pickle"):
        load_dataset(path)
    assert len(load_dataset(path, labels=False)) == 2
    _stgcn_files(tmp_path, x, labels=[0, 1, 1])
    with pytest.raises(DataFormatError, match="2 sample names but 3 labels"):
        load_dataset(path)
    path = _stgcn_files(tmp_path, np.ones((2, 3, 10, 18, 1), np.float32))
    with pytest.raises(SkeletonMismatchError, match="18 joints"):
        load_dataset(path)
    bad = x.copy()
    bad[1, 2, 4, 3, 0] = np.inf
    path = _stgcn_files(tmp_path, bad)
    with pytest.raises(DataFormatError, match=r"sample 1 \(s1\).*NaN or Inf") as err:
        load_dataset(path)
    assert err.value.frame == 4
    empty = x.copy()
    empty[0] = 0
    path = _stgcn_files(tmp_path, empty)
    with pytest.raises(DataFormatError, match="sample 0 .*empty"):
        load_dataset(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(DataFormatError, match="val_data_joint.npy"):
        load_dataset(path)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataFormatError, match="obj.npy"):
        load_dataset(tmp_path / "obj.npy", labels=False)


# -- folders with labels.csv ------------------------------------------------------------------------------------------
def _write_clip(path, T, label=None, seed=0, sk="hdm05_25"):
    sk = skeletons.get(sk)
    x = np.random.default_rng(seed).normal(size=(T, sk.num_joints, 3)).astype(np.float32)
    return save_clip(Clip(x, sk, 30.0, label=label, name=path.stem), path)


def test_folder_with_labels_csv(tmp_path):
    for i in range(3):
        _write_clip(tmp_path / f"m{i}.h5", 10 + i, seed=i)
    (tmp_path / "labels.csv").write_text("label,file\nwave,m0.h5\nkick,m2.h5\nwave,m1.h5\n,m1.h5\n")
    ds = load_dataset(tmp_path)
    assert detect_format(tmp_path) == "folder"
    assert [c.num_frames for c in ds] == [10, 12, 11, 11]
    assert [c.label for c in ds] == ["wave", "kick", "wave", None]
    assert ds.class_counts() == {"kick": 1, "wave": 2}
    assert load_clip(tmp_path, index=1).label == "kick"


def test_folder_bad_labels_csv(tmp_path):
    _write_clip(tmp_path / "m0.h5", 10)
    (tmp_path / "labels.csv").write_text("name,label\nm0.h5,wave\n")
    with pytest.raises(DataFormatError, match="no 'file' column") as err:
        load_dataset(tmp_path)
    assert err.value.line == 1
    (tmp_path / "labels.csv").write_text("file,label\nm0.h5,wave\nmissing.bvh,run\n")
    with pytest.raises(DataFormatError, match="missing.bvh") as err:
        load_dataset(tmp_path)
    assert err.value.line == 3
    (tmp_path / "labels.csv").write_text("file,label\nm0.h5,wave\n")
    with pytest.raises(DataFormatError, match="'wave'.*not one of the class names"):
        load_dataset(tmp_path, class_names=["run"])
    _write_clip(tmp_path / "n.h5", 10, sk="ntu25")
    (tmp_path / "labels.csv").write_text("file,label\nm0.h5,wave\nn.h5,run\n")
    with pytest.raises(SkeletonMismatchError, match="n.h5"):
        load_dataset(tmp_path)


def test_folder_of_native_files(tmp_path, formats_dir):
    pytest.importorskip("engine.io.bvh")
    pytest.importorskip("engine.io.acclaim")
    shutil.copy(formats_dir / "bvh" / "131_01.bvh", tmp_path / "a.bvh")
    shutil.copy(formats_dir / "bvh" / "131_01.bvh", tmp_path / "b.bvh")
    for f in (formats_dir / "hdm05").glob("HDM_dg*.a?[fc]"):
        shutil.copy(f, tmp_path)
    (tmp_path / "labels.csv").write_text("file,label\na.bvh,walk\nb.bvh,stop\n")
    ds = load_dataset(tmp_path)  # two BVH files of one topology share one skeleton
    assert len(ds) == 2 and ds[0].skeleton == ds[1].skeleton
    assert ds[0].num_frames == 994 and ds[0].fps == 120.0
    (tmp_path / "labels.csv").write_text("file,label\nHDM_dg_06-03_03_120.amc,kick\n")
    amc = load_dataset(tmp_path)  # the ASF is found beside the AMC
    assert amc[0].num_frames == 202 and amc[0].label == "kick"
    mapped = load_dataset(tmp_path, skeleton="hdm05_25")
    assert mapped.skeleton.name == "hdm05_25"
