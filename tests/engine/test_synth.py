"""The procedural demo generator (engine.synth) and the shipped synthetic demo dataset."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from engine import kinematics, skeletons, synth
from engine.assets import ASSETS_DIR, DEMO_DATASET
from engine.data import Clip, ClipDataset

REPO = Path(__file__).resolve().parents[2]
ASSET = REPO / "assets" / DEMO_DATASET
REGENERATE = (
    f"python -m engine.synth --out assets/demo/demo_actions.h5 --per-class {synth.DEMO_PER_CLASS} "
    f"--seed {synth.DEMO_SEED}"
)
SK = skeletons.get("hdm05_25")
FEET = [SK.index(n) for n in ("LeftFoot", "LeftToeBase", "RightFoot", "RightToeBase")]
TOES = [SK.index("LeftToeBase"), SK.index("RightToeBase")]


@pytest.fixture(scope="module")
def demo() -> ClipDataset:
    return synth.generate_dataset()


@pytest.fixture(scope="module")
def held_out() -> ClipDataset:
    return synth.generate_dataset(seed=1)


def test_actions_cover_the_required_classes():
    assert len(synth.ACTIONS) >= 8
    assert {"walk", "run", "jump", "wave", "punch", "kick", "squat", "bow"} <= set(synth.ACTIONS)


def test_clip_is_a_labelled_synthetic_hdm05_clip():
    clip = synth.generate_clip("walk", 7, subject=3, take=2)
    assert isinstance(clip, Clip)
    assert clip.skeleton == SK and clip.skeleton.up_axis == "y"
    assert clip.label == "walk"
    assert clip.name == "walk_s03_t2"
    assert clip.provenance.format == "synthetic"
    assert clip.provenance.details["subject"] == 3
    assert clip.fps == 30.0 and clip.positions.dtype == np.float32
    assert 64 <= clip.num_frames <= 4 * 30  # 2–4 s, long enough for 60-frame windows


def test_the_generator_drives_engine_kinematics():
    # The clips come from the shared forward kinematics, not a private copy.
    assert synth.forward_kinematics is kinematics.forward_kinematics
    assert synth.euler_to_matrix is kinematics.euler_to_matrix


def test_same_seed_same_clip_other_seed_other_clip():
    a = synth.generate_clip("kick", 11)
    b = synth.generate_clip("kick", 11)
    c = synth.generate_clip("kick", 12)
    assert np.array_equal(a.positions, b.positions) and a.name == b.name
    assert a.positions.shape != c.positions.shape or not np.allclose(a.positions, c.positions)


def test_same_dataset_seed_same_dataset_other_seed_other_people():
    a, b = synth.generate_dataset(2, seed=4), synth.generate_dataset(2, seed=4)
    assert [c.name for c in a] == [c.name for c in b]
    assert all(np.array_equal(x.positions, y.positions) for x, y in zip(a, b))
    other = synth.generate_dataset(2, seed=5)
    assert not {c.provenance.details["subject"] for c in a} & {c.provenance.details["subject"] for c in other}


def test_fps_and_duration_are_honoured():
    clip = synth.generate_clip("run", 3, fps=60.0, duration_s=3.0)
    assert clip.fps == 60.0 and clip.num_frames == 180
    # The same take sampled twice as densely is the same motion: identical poses at common instants (the
    # root path, integrated from the feet frame by frame, differs by discretisation only).
    slow = synth.generate_clip("run", 3, fps=30.0, duration_s=3.0)
    fast = clip.positions[::2]
    pose_fast = fast - fast[:, SK.root : SK.root + 1]
    pose_slow = slow.positions - slow.positions[:, SK.root : SK.root + 1]
    assert np.abs(pose_fast - pose_slow).max() < 1e-4
    assert np.abs(fast[..., 1] - slow.positions[..., 1]).max() < 0.03
    assert np.abs(fast - slow.positions).max() < 0.25


def test_unknown_action_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown synthetic action 'dance'"):
        synth.generate_clip("dance", 0)


def test_every_class_present_with_its_count(demo):
    assert demo.class_names == synth.ACTIONS
    assert demo.class_counts() == {a: synth.DEMO_PER_CLASS for a in synth.ACTIONS}
    for clip in demo:
        assert re.fullmatch(rf"{clip.label}_s\d\d_t\d", clip.name)


def test_bone_lengths_are_constant_within_every_clip(demo):
    for clip in demo:
        lengths = SK.bone_lengths(clip.positions.astype(np.float64))
        assert np.ptp(lengths, axis=0).max() < 1e-5, clip.name
        assert lengths.min() > 0.01, clip.name  # no degenerate bone (LHipJoint/RHipJoint get an offset)


def test_a_subject_keeps_its_body_across_actions():
    bones = [SK.bone_lengths(synth.generate_clip(a, 5, subject=4).positions[0]) for a in ("walk", "bow")]
    np.testing.assert_allclose(bones[0], bones[1], atol=1e-5)
    other = SK.bone_lengths(synth.generate_clip("walk", 5, subject=9).positions[0])
    assert np.abs(other - bones[0]).max() > 1e-3


def test_subject_heights_are_human():
    subjects = [synth.make_subject(i) for i in range(1, 61)]
    statures = np.array([s.stature for s in subjects])
    assert statures.min() >= 1.5 and statures.max() <= 1.95
    assert np.ptp(statures) > 0.25  # a real spread of body sizes
    for s in subjects:
        pose = synth.rest_pose(s)
        top = pose[SK.index("Neck1"), 1]  # hdm05_25 has no head joint: Neck1 (mid-neck) is the top
        assert 1.3 <= top <= 1.8
        assert 0.85 <= top / s.stature <= 0.91
        assert pose[:, 1].min() == pytest.approx(0.02 * s.stature / 1.75, abs=0.01)  # balls of the feet


def test_standing_height_in_clips(demo):
    # Highest top joint above the lowest foot joint, over the clip: a person 1.4–2.0 m tall stands at
    # 0.85–0.9 of that at mid-neck.
    for clip in demo:
        p = clip.positions
        height = (p[:, SK.index("Neck1"), 1] - p[:, FEET, 1].min(axis=1)).max()
        assert 1.25 <= height <= 1.85, clip.name


def test_y_is_up(demo):
    for clip in demo.by_label("walk"):
        p = clip.positions
        assert (p[:, SK.index("Neck1"), 1] > p[:, SK.root, 1]).all()
        assert (p[:, SK.root, 1] > p[:, FEET, 1].max(axis=1)).all()


def test_feet_touch_the_floor_and_nothing_goes_through_it(demo):
    for clip in demo:
        y = clip.positions[..., 1]
        assert -0.005 <= y.min() <= 0.03, clip.name
    for clip in demo:
        if clip.label in ("jump", "run"):  # the only actions with flight phases
            continue
        # Some foot is always down: its ball (2 cm above the sole) or, on the heel, its ankle.
        lowest_foot = clip.positions[:, FEET, 1].min(axis=1)
        assert (lowest_foot < 0.09).all(), clip.name


def test_planted_feet_stay_put(demo):
    for label in ("wave", "punch", "squat", "bow"):
        for clip in demo.by_label(label):
            toes = clip.positions[:, TOES][..., [0, 2]]
            wander = np.linalg.norm(toes - toes.mean(axis=0), axis=-1).max()
            assert wander < 0.03, clip.name


def test_locomotion_goes_forward_at_human_speeds(demo):
    speeds = {"walk": (0.5, 2.0), "run": (1.4, 4.5)}
    for label, (lo, hi) in speeds.items():
        for clip in demo.by_label(label):
            yaw = np.deg2rad(clip.provenance.details["facing_deg"])
            facing = np.array([np.sin(yaw), np.cos(yaw)])
            travel = clip.positions[-1, SK.root, [0, 2]] - clip.positions[0, SK.root, [0, 2]]
            assert lo <= travel @ facing / clip.duration <= hi, clip.name
    for label in ("wave", "punch", "squat", "bow"):
        for clip in demo.by_label(label):
            root = clip.positions[:, SK.root, [0, 2]]
            assert np.linalg.norm(root - root.mean(axis=0), axis=-1).max() < 0.25, clip.name


def test_jumps_leave_the_floor(demo):
    for clip in demo.by_label("jump"):
        lowest_foot = clip.positions[:, FEET, 1].min(axis=1)
        assert lowest_foot.max() > 0.08, clip.name
    for clip in demo.by_label("squat"):
        hips = clip.positions[:, SK.root, 1]
        assert hips.max() - hips.min() > 0.2, clip.name


def _velocity_features(ds: ClipDataset) -> np.ndarray:
    feats = []
    for clip in ds:
        p = clip.positions.astype(np.float64)
        p = p - p[:, SK.root : SK.root + 1]
        speed = np.linalg.norm(np.diff(p, axis=0), axis=-1) * clip.fps
        feats.append(np.concatenate([speed.mean(axis=0), speed.std(axis=0)]))
    return np.asarray(feats)


def test_labels_carry_signal_a_nearest_centroid_generalises_to_new_subjects(demo, held_out):
    train, test = _velocity_features(demo), _velocity_features(held_out)
    mu, sd = train.mean(axis=0), train.std(axis=0) + 1e-9
    train, test = (train - mu) / sd, (test - mu) / sd
    centroids = np.stack([train[demo.labels == k].mean(axis=0) for k in range(demo.num_classes)])
    pred = np.argmin(((test[:, None] - centroids[None]) ** 2).sum(axis=-1), axis=1)
    accuracy = (pred == held_out.labels).mean()
    assert accuracy > 0.6, f"nearest centroid reaches only {accuracy:.2f} (chance {1 / demo.num_classes:.2f})"


def test_cli_writes_a_loadable_dataset(tmp_path):
    from engine.io import load_dataset

    out = tmp_path / "d.h5"
    assert synth.main(["--out", str(out), "--per-class", "1", "--seed", "2"]) == 0
    ds = load_dataset(out)
    ref = synth.generate_dataset(1, seed=2)
    assert ds.class_names == synth.ACTIONS
    assert [c.name for c in ds] == [c.name for c in ref]
    for got, want in zip(ds, ref):
        np.testing.assert_allclose(got.positions, want.positions, atol=1e-6)


# -- the shipped asset -------------------------------------------------------------------------------------------
def test_shipped_demo_is_where_the_app_looks():
    assert ASSET == ASSETS_DIR / DEMO_DATASET or not ASSET.exists()
    assert ASSET.is_file(), f"{ASSET} is missing; regenerate it with `{REGENERATE}`"
    assert ASSET.stat().st_size < 2 * 1024 * 1024


def test_shipped_demo_matches_the_generator(demo):
    from engine.io import load_dataset

    shipped = load_dataset(ASSET)
    stale = f"the shipped demo is stale: regenerate it with `{REGENERATE}`"
    assert shipped.class_names == demo.class_names, stale
    assert [c.name for c in shipped] == [c.name for c in demo], stale
    assert [c.label for c in shipped] == [c.label for c in demo], stale
    for got, want in zip(shipped, demo):
        assert got.fps == want.fps, stale
        assert got.positions.shape == want.positions.shape, stale
        # Not bitwise: libm differences across CPUs may move the last float32 bit.
        np.testing.assert_allclose(got.positions, want.positions, atol=1e-5, err_msg=stale)
        assert got.provenance.details.get("generator_version") == synth.GENERATOR_VERSION, stale


def test_shipped_demo_readme_says_synthetic_and_how_to_regenerate():
    text = (ASSET.parent / "README.md").read_text(encoding="utf-8")
    assert "SYNTHETIC" in text
    assert REGENERATE in text
