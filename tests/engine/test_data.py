"""ClipDataset, resampling, windows, normalisation, splits and the cmu8 benchmark."""

from __future__ import annotations

import numpy as np
import pytest

from engine import skeletons
from engine.benchmark import cmu8_benchmark_split, load_cmu8_benchmark
from engine.data import (
    Clip,
    ClipDataset,
    WindowSet,
    face_forward,
    facing_rotation,
    map_clip,
    normalisation_stats,
    preprocess_clip,
    resample,
    root_centre,
    split_by_clip_with_time_fallback,
    split_clip_in_time,
    windows,
)
from engine.errors import DataFormatError, SkeletonMismatchError

SK = skeletons.get("hdm05_25")


def _rest_pose(sk=SK) -> np.ndarray:
    """A standing pose facing +z (left is +x): offsets by joint name, placed by walking the tree."""
    pos = np.zeros((sk.num_joints, 3))
    for j in sk.topological_order:
        p = sk.parents[j]
        if p < 0:
            pos[j] = [0, 1.0, 0]
            continue
        name = sk.joint_names[j].lower()
        side = 1.0 if name.startswith(("l", "left")) and not name.startswith("leg") else -1.0
        if "hipjoint" in name:
            off = [0.1 * side, -0.05, 0]
        elif any(k in name for k in ("upleg", "leg", "foot")):
            off = [0, -0.42, 0.02]
        elif "toe" in name:
            off = [0, -0.05, 0.12]
        elif "spine" in name or "neck" in name:
            off = [0, 0.15, 0]
        elif name.endswith("arm") and "fore" not in name:
            off = [0.18 * side, -0.02, 0]
        else:  # forearm, hand, fingers, thumb
            off = [0.22 * side, 0, 0.01]
        pos[j] = pos[p] + off
    return pos.astype(np.float32)


def _yaw(x: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    r = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=np.float64)
    return (x @ r.T).astype(np.float32)


def _spinning_clip(T=20, fps=10.0, step=0.7, label="spin", name="spin") -> Clip:
    pose = _rest_pose()
    frames = np.stack([_yaw(pose, step * t) + np.float32([0.1 * t, 0, 0]) for t in range(T)])
    return Clip(frames, SK, fps, label=label, name=name)


def _clip(T, label, name="", fps=30.0, seed=0, bodies=1):
    x = np.random.default_rng(seed).normal(size=(bodies, T, SK.num_joints, 3)).astype(np.float32)
    return Clip.from_bodies(x, SK, fps, label=label, name=name)


# -- ClipDataset ----------------------------------------------------------------------------------------------------
def test_dataset_labels_and_selection():
    clips = [_clip(5, lab, f"c{i}", seed=i) for i, lab in enumerate(["b", "a", "b", "c", None])]
    ds = ClipDataset(clips)
    assert ds.class_names == ("a", "b", "c")
    np.testing.assert_array_equal(ds.labels, [1, 0, 1, 2, -1])
    assert len(ds) == 5 and ds[2] is clips[2] and list(ds) == clips
    assert [c.name for c in ds.by_label("b")] == ["c0", "c2"]
    assert [c.name for c in ds.by_label(2)] == ["c3"]
    sub = ds.subset([3, 0])
    assert [c.name for c in sub] == ["c3", "c0"] and sub.class_names == ds.class_names
    assert [c.name for c in ds[1:3]] == ["c1", "c2"]
    assert [c.name for c in ds[ds.labels == 1]] == ["c0", "c2"]  # boolean masks select too
    assert ds.class_counts() == {"a": 1, "b": 2, "c": 1}
    with pytest.raises(DataFormatError, match="no class named 'z'"):
        ds.by_label("z")


def test_dataset_refuses_mixed_skeletons_and_unknown_labels():
    other = Clip(np.zeros((4, 25, 3), np.float32), skeletons.get("ntu25"), 30.0, name="kinect")
    with pytest.raises(SkeletonMismatchError, match="kinect.*ntu25"):
        ClipDataset([_clip(4, "a"), other])
    with pytest.raises(DataFormatError, match=r"label 'a'.*not one of the class names \['b'\]"):
        ClipDataset([_clip(4, "a", "x")], class_names=["b"])


def test_split_is_by_clip_stratified_and_seeded():
    clips = [_clip(5, lab, f"{lab}{i}", seed=i) for i, lab in enumerate(["a"] * 8 + ["b"] * 4 + ["c"])]
    ds = ClipDataset(clips)
    train, test = ds.split(0.25, seed=3)
    assert {c.name for c in train}.isdisjoint({c.name for c in test})
    assert len(train) + len(test) == len(ds)
    assert test.class_counts() == {"a": 2, "b": 1, "c": 0}  # the single "c" clip stays in train
    again = ds.split(0.25, seed=3)
    assert [c.name for c in again[1]] == [c.name for c in test]
    others = {tuple(c.name for c in ds.split(0.25, seed=s)[1]) for s in range(10)}
    assert len(others) > 1


# -- resampling and normalisation -----------------------------------------------------------------------------------
def test_resample_subsamples_exactly_and_keeps_duration():
    clip = _clip(121, "a", fps=120.0)
    down = resample(clip, 30)
    assert down.fps == 30.0 and down.num_frames == 31
    np.testing.assert_array_equal(down.positions, clip.positions[::4])
    assert resample(clip, 120.0) is clip


def test_resample_interpolation_keeps_bone_lengths():
    clip = _spinning_clip()
    rest = SK.bone_lengths(clip.positions[0])
    up = resample(clip, 25.0)
    assert up.num_frames == int((clip.num_frames - 1) * 2.5) + 1
    np.testing.assert_allclose(SK.bone_lengths(up.positions), np.broadcast_to(rest, (up.num_frames, len(rest))),
                               atol=1e-5)
    plain = resample(clip, 25.0, preserve_bones=False)
    assert SK.bone_lengths(plain.positions).min(0).min() < rest.min() - 1e-3  # the naive version shrinks bones
    # the root still moves linearly
    np.testing.assert_allclose(up.positions[:, SK.root, 0], np.arange(up.num_frames) * 0.1 / 2.5, atol=1e-5)


def test_root_centre_and_face_forward():
    clip = _spinning_clip(T=4)
    centred = root_centre(clip.positions, SK)
    assert np.abs(centred[:, SK.root]).max() == 0
    first_only = root_centre(clip.positions, SK, per_frame=False)
    assert np.abs(first_only[0, SK.root]).max() == 0 and np.abs(first_only[3, SK.root, 0] - 0.3) < 1e-6
    for angle in (0.3, -2.0, 3.0):
        turned = _yaw(clip.positions, angle) + np.float32([2, 0, -1])
        faced = face_forward(turned, SK)
        left, right = SK.index("LeftUpLeg"), SK.index("RightUpLeg")
        assert faced[0, left, 0] - faced[0, right, 0] > 0.15  # left hip at +x: facing +z
        assert abs(faced[0, left, 2] - faced[0, right, 2]) < 1e-4
        np.testing.assert_allclose(SK.bone_lengths(faced), SK.bone_lengths(turned), atol=1e-5)
        np.testing.assert_allclose(faced[..., 1], turned[..., 1], atol=1e-6)  # heights unchanged
        np.testing.assert_allclose(faced[0, SK.root], turned[0, SK.root], atol=1e-5)  # pivot at the root
    rots = facing_rotation(np.stack([_yaw(clip.positions, 0.5), clip.positions]), SK)
    assert rots.shape == (2, 3, 3)
    np.testing.assert_allclose(rots[1], np.eye(3), atol=1e-6)


def test_face_forward_needs_left_right_joints():
    chain = skeletons.Skeleton("chain3", ("a", "b", "c"), (-1, 0, 1))
    with pytest.raises(SkeletonMismatchError, match="left/right"):
        face_forward(np.zeros((2, 3, 3), np.float32), chain)


# -- windows -------------------------------------------------------------------------------------------------------------
def test_windows_stride_padding_and_skipping():
    clip = _clip(100, "a")
    w = windows(clip, 60, 20)
    assert w.shape == (3, 60, 25, 3)
    np.testing.assert_array_equal(w[2], clip.positions[40:100])
    assert windows(clip, 30).shape[0] == 3  # stride None: no overlap, tail dropped
    short = _clip(40, "a")
    padded = windows(short, 60, 20)
    assert padded.shape == (1, 60, 25, 3)
    np.testing.assert_array_equal(padded[0, 39:], np.broadcast_to(short.positions[-1], (21, 25, 3)))
    assert windows(short, 60, 20, short="skip").shape == (0, 60, 25, 3)
    with pytest.raises(DataFormatError, match="shorter than the 60-frame window"):
        windows(short, 60, short="error")


def test_preprocess_clip_layout_and_bodies():
    clip = _clip(130, "a", fps=60.0, bodies=2)
    bodies = clip.bodies.copy()
    bodies[1, 50:] = 0  # the second performer leaves
    clip = clip.with_bodies(bodies)
    x = preprocess_clip(clip, fps=30, window=20, stride=10)
    assert x.shape == (5, 3, 20, 25, 2) and x.dtype == np.float32
    # world coordinates: frames are chosen, nothing spatial happens (centring is the classifier's own)
    np.testing.assert_allclose(x[0, ..., 0].transpose(1, 2, 0), bodies[0, 0:40:2], atol=1e-6)
    assert (x[3, ..., 1] == 0).all()  # frames 30..49 at 30 fps = 60..99 at 60 fps: performer 2 absent, still zero
    np.testing.assert_allclose(x[0, ..., 1].transpose(1, 2, 0), bodies[1, 0:40:2], atol=1e-6)
    one = preprocess_clip(clip, fps=30, window=20, stride=10, num_bodies=1)
    assert one.shape == (5, 3, 20, 25, 1)
    np.testing.assert_allclose(one[1, :, :, :, 0].transpose(1, 2, 0), clip.positions[20:60:2], atol=1e-6)


def test_to_windows_and_window_set():
    ds = ClipDataset([_clip(90, "a", "p", seed=1), _clip(30, "b", "q", seed=2), _clip(10, "a", "r", seed=3)])
    ws = ds.to_windows(fps=30, window=30, stride=15)
    assert isinstance(ws, WindowSet)
    assert ws.x.shape == (7, 3, 30, 25, 1)
    np.testing.assert_array_equal(ws.clip_index, [0, 0, 0, 0, 0, 1, 2])
    np.testing.assert_array_equal(ws.y, [0, 0, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(ws.start, [0, 15, 30, 45, 60, 0, 0])
    np.testing.assert_array_equal(ws.padded, [0, 0, 0, 0, 0, 0, 1])
    assert ws.class_names == ("a", "b") and ws.skeleton == SK and ws.fps == 30.0 and len(ws) == 7
    assert ws.class_counts() == {"a": 6, "b": 1}
    sub = ws.subset([5, 6])
    assert len(sub) == 2 and list(sub.y) == [1, 0]
    clip = ws.clip(1)
    assert clip.label == "a" and clip.num_frames == 30 and clip.name == "p@15"
    np.testing.assert_allclose(clip.positions, ds[0].positions[15:45], atol=1e-6)  # world coordinates


def test_normalisation_stats():
    rng = np.random.default_rng(0)
    x = rng.normal(loc=2.0, scale=3.0, size=(50, 3, 20, 25, 2)).astype(np.float32)
    x[:, :, :, :, 1] = 0  # an absent second performer does not count
    mean, std = normalisation_stats(x)
    assert mean.shape == (1, 3, 1, 25, 1) and std.shape == (1, 1, 1, 1, 1)
    assert np.abs(mean - 2.0).max() < 0.5 and abs(std.item() - 3.0) < 0.1
    mean_j, std_j = normalisation_stats(x, per_joint=True)
    assert std_j.shape == (1, 3, 1, 25, 1) and np.allclose(mean_j, mean)
    z = (x[..., :1] - mean) / std
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05
    with pytest.raises(ValueError, match=r"\(N, 3, T, V, M\)"):
        normalisation_stats(np.zeros((3, 20, 25)))


# -- splits ------------------------------------------------------------------------------------------------------------
def test_time_split_leaves_a_gap():
    clip = _clip(400, "a", "long", fps=100.0)
    head, tail = split_clip_in_time(clip, 0.25, gap_s=1.0)
    assert tail.num_frames == 100 and head.num_frames == 200  # 100 frames (1 s) dropped between
    np.testing.assert_array_equal(tail.positions, clip.positions[300:])
    assert tail.provenance.details["frames"] == [300, 400] and head.provenance.details["time_split"] == "train"
    too_short = _clip(50, "a", fps=100.0)
    assert split_clip_in_time(too_short, 0.25, 1.0) == (too_short, None)


def test_split_by_clip_with_time_fallback():
    clips = [_clip(400, "many", f"m{i}", fps=100.0, seed=i) for i in range(4)]
    clips += [_clip(400, "few", f"f{i}", fps=100.0, seed=10 + i) for i in range(2)]
    ds = ClipDataset(clips)
    train, test = split_by_clip_with_time_fallback(ds, 0.25, seed=0, min_clips=3, gap_s=1.0)
    many_test = [c.name for c in test.by_label("many")]
    assert len(many_test) == 1 and many_test[0] not in [c.name for c in train]
    assert [c.name for c in test.by_label("few")] == ["f0[300:400]", "f1[300:400]"]
    assert [c.name for c in train.by_label("few")] == ["f0[0:200]", "f1[0:200]"]
    again = split_by_clip_with_time_fallback(ds, 0.25, seed=0)
    assert [c.name for c in again[1]] == [c.name for c in test]


def test_map_clip():
    cmu = skeletons.get("cmu31")
    x = np.random.default_rng(0).normal(size=(3, 31, 3)).astype(np.float32)
    mapped = map_clip(Clip(x, cmu, 120.0, label="w"), "hdm05_25")
    assert mapped.skeleton == SK and mapped.label == "w"
    np.testing.assert_array_equal(mapped.positions[:, SK.index("Neck1")], x[:, cmu.index("Neck1")])


# -- the cmu8 benchmark ------------------------------------------------------------------------------------------------
def test_cmu8_benchmark_split(cmu8_path):
    train, test = cmu8_benchmark_split(cmu8_path)
    # every class is on both sides
    assert all(n > 0 for n in train.class_counts().values())
    assert all(n > 0 for n in test.class_counts().values())
    # classes with clips in both of the file's splits keep them
    for c in train.by_label("walking"):
        assert c.provenance.details["split"] == "train"
    assert [c.name for c in test.by_label("walking")] == ["test:walking_1"]
    # basketball_signal (5 train clips) is re-split by clip; directing_traffic and washwindow in time
    sig_train = {c.name for c in train.by_label("basketball_signal")}
    sig_test = {c.name for c in test.by_label("basketball_signal")}
    assert len(sig_test) == 1 and not sig_train & sig_test and len(sig_train) == 4
    for cls in ("directing_traffic", "washwindow"):
        for c in test.by_label(cls):
            assert c.provenance.details["time_split"] == "test"
        heads = {c.name.split("[")[0]: c.provenance.details["frames"] for c in train.by_label(cls)}
        for c in test.by_label(cls):
            lo = c.provenance.details["frames"][0]
            assert lo - heads[c.name.split("[")[0]][1] == 120  # one second at 120 fps dropped


def test_cmu8_benchmark_windows(cmu8_path):
    train, test = load_cmu8_benchmark(cmu8_path, fps=30, window=60, stride=20, seed=0)
    assert train.x.shape[1:] == (3, 60, 28, 1) and test.x.shape[1:] == (3, 60, 28, 1)
    assert train.skeleton.name == "cmu8_28" and train.fps == 30.0
    assert train.class_names == test.class_names and len(train.class_names) == 8
    assert min(train.class_counts().values()) > 0 and min(test.class_counts().values()) > 0
    assert len(train) > 2 * len(test)
    assert np.isfinite(train.x).all() and np.abs(train.x[:, 1, :, 0]).max() > 0.5  # world coordinates: hips high
    assert train.padded.sum() == 5 and test.padded.sum() == 1  # the short running clips
    train2, test2 = load_cmu8_benchmark(cmu8_path)
    np.testing.assert_array_equal(train.x, train2.x)
    np.testing.assert_array_equal(test.y, test2.y)
    other = load_cmu8_benchmark(cmu8_path, seed=1)[1]
    assert other.class_counts()["basketball_signal"] > 0
