"""engine.attacks.manifold: joint angles, their limits (estimation, storage) and the projection onto BASAR's manifold.

Real motion: the cmu8 benchmark windows (28-joint CMU skeleton, metres, 30 fps).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine import metrics
from engine.attacks.manifold import (
    JointLimits,
    ManifoldProjector,
    estimate_joint_angle_limits,
    find_joint_limits,
    joint_angles,
    limits_path_beside,
    load_limits_beside,
    save_limits_beside,
)
from engine.errors import SkeletonMismatchError
from engine.losses import bone_lengths, temporal_derivative


@pytest.fixture(scope="module")
def windows(cmu8_benchmark):
    train, test = cmu8_benchmark
    return train, test


@pytest.fixture(scope="module")
def limits(windows) -> JointLimits:
    train, _ = windows
    return estimate_joint_angle_limits(train.x, train.skeleton, source="cmu8 benchmark train")


def manifold_violations(clips: torch.Tensor, clean: torch.Tensor, limits: JointLimits) -> dict[str, torch.Tensor]:
    """Per clip: the largest bone-length change (m) and joint-angle excess over the limits (rad)."""
    bone, _ = metrics.bone_length_deviation(clean, clips, limits.skeleton)
    angle = metrics.joint_angle_violations(clips, limits, clean=clean)["max"]
    return {"bone_length_error": bone.flatten(1).amax(1), "angle_violation": angle.flatten(1).amax(1)}


def _positions(clips: torch.Tensor) -> torch.Tensor:
    return clips.permute(0, 4, 2, 3, 1)  # (N, M, T, V, 3)


def _yaw(clips: torch.Tensor, angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    R = torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=clips.dtype)
    return torch.einsum("ij,njtvm->nitvm", R, clips)


def test_limits_contain_the_data_they_came_from_and_widen_by_the_margin(windows, limits):
    train, _ = windows
    ang = joint_angles(train.x.transpose(0, 4, 2, 3, 1), limits)  # numpy in, numpy out
    assert ang.shape == (*train.x.shape[:1], 1, 60, train.skeleton.num_bones, 2)
    assert limits.violation(ang).max() == 0.0
    lo = ang.reshape(-1, train.skeleton.num_bones, 2).min(0)
    # Every free angle's lower limit is the observed minimum (or 0) minus the margin.
    free = limits.free.copy()
    expected = np.minimum(lo, 0.0) - limits.margin
    frame_b = limits.frame_bones[1]
    free[frame_b] = False  # its range is also capped so the root frame cannot flip
    np.testing.assert_allclose(limits.lower[free], expected[free], atol=1e-9)
    narrow = estimate_joint_angle_limits(train.x, train.skeleton, margin=0.0)
    assert (narrow.upper - narrow.lower <= limits.upper - limits.lower + 1e-12).all()
    assert limits.frame_bones is not None and len(set(limits.frame_bones)) == 2


def test_limits_accept_datasets_windows_and_arrays(windows, cmu8_path):
    from engine.benchmark import cmu8_benchmark_split

    _, test = windows
    a = estimate_joint_angle_limits(test, test.skeleton)
    b = estimate_joint_angle_limits(test.x.transpose(0, 4, 2, 3, 1), test.skeleton)
    np.testing.assert_allclose(a.upper, b.upper, atol=1e-12)
    _, clips = cmu8_benchmark_split(cmu8_path, seed=0)
    c = estimate_joint_angle_limits(clips, clips.skeleton)
    assert c.skeleton == clips.skeleton and c.extra["frames"] > 1000
    with pytest.raises(SkeletonMismatchError, match="needs"):
        estimate_joint_angle_limits(np.zeros((5, 7, 3)), test.skeleton)


def test_joint_angles_ignore_where_the_performer_stands_and_faces(windows, limits):
    _, test = windows
    x = torch.as_tensor(test.x[:3], dtype=torch.float64)
    moved = _yaw(x, 1.1) + torch.tensor([0.7, 0.0, -2.0], dtype=x.dtype).reshape(1, 3, 1, 1, 1)
    a = joint_angles(_positions(x), limits)
    b = joint_angles(_positions(moved), limits)
    torch.testing.assert_close(a, b, atol=1e-9, rtol=0)
    # ...but they do see a bent elbow.
    bent = _positions(x).clone()
    elbow = test.skeleton.joint_names.index("l_elbow")
    bent[..., elbow, 1] += 0.05
    assert (joint_angles(bent, limits) - a).abs().max() > 1e-2


def test_limits_save_and_load_json_npz_sidecar_and_checkpoint_meta(limits, tmp_path):
    for name in ("lim.json", "lim.npz"):
        back = JointLimits.load(limits.save(tmp_path / name))
        np.testing.assert_array_equal(back.rest, limits.rest)
        np.testing.assert_array_equal(back.lower, limits.lower)
        np.testing.assert_array_equal(back.upper, limits.upper)
        assert back.frame_bones == limits.frame_bones and back.skeleton == limits.skeleton
    model_path = tmp_path / "model.pt"
    assert load_limits_beside(model_path) is None
    written = save_limits_beside(limits, model_path)
    assert written == limits_path_beside(model_path) == tmp_path / "model.joint_limits.json"
    assert find_joint_limits(model_path).skeleton == limits.skeleton

    class Meta:
        meta = {"joint_limits": limits.to_dict()}

    np.testing.assert_array_equal(find_joint_limits(None, Meta()).upper, limits.upper)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(Exception, match="joint limits|joint-limits"):
        JointLimits.load(tmp_path / "bad.json")


def test_clean_clips_are_fixed_points_of_the_cheap_projection(windows, limits):
    """Also the held-out clips whose angles leave the limits estimated from the training windows: the clean
    motion's own range counts as inside (widen_limits). Clamping to the bare limits moved such clips by metres."""
    _, test = windows
    x = torch.as_tensor(test.x[:20])
    proj = ManifoldProjector(limits)
    inside = limits.violation(joint_angles(_positions(x), limits)).flatten(1).amax(1) == 0
    assert inside.any() and not inside.all(), "the test needs clips both inside and outside the estimated limits"
    err = (proj.nearest(x, x) - x).abs().flatten(1).amax(1)
    assert (err < 1e-5).all(), err
    own = joint_angles(_positions(x), limits)
    assert limits.violation(own, clean=own).max() == 0


def test_cheap_projection_does_not_amplify_noise(windows, limits):
    """Bone by bone down the tree, a clamped bone does not swing the bones below it: the projection of a
    noisy clip stays about as close to the clean clip as the noise is."""
    _, test = windows
    x = torch.as_tensor(test.x[:10])
    gen = torch.Generator().manual_seed(0)
    proj = ManifoldProjector(limits)
    for sigma in (0.001, 0.01):
        noise = sigma * torch.randn(x.shape, generator=gen)
        out = proj.nearest(x + noise, x)
        ratio = (out - x).flatten(1).norm(dim=1) / noise.flatten(1).norm(dim=1)
        assert (ratio < 1.25).all(), (sigma, ratio)
        v = manifold_violations(out, x, limits)
        assert (v["bone_length_error"] < 1e-5).all() and (v["angle_violation"] < 1e-6).all(), v


@pytest.mark.slow
def test_projection_restores_bone_lengths_and_limits_and_denoises(windows, limits):
    _, test = windows
    torch.manual_seed(0)
    x = torch.as_tensor(test.x[:4])
    # An on-manifold motion (the clean one with a limb swung and the root moved) plus 5 mm noise.
    params, lengths = ManifoldProjector(limits).params(x, x)
    root, rot6, ang = (p.clone() for p in params)
    ang[..., 16, 0] = torch.clamp(ang[..., 16, 0] + 0.3, max=float(limits.upper[16, 0]) - 0.01)
    root += 0.05
    on = ManifoldProjector(limits).positions((root, rot6, ang), lengths)
    noisy = on + 0.005 * torch.randn_like(on)
    # Push the right knee far outside its limits in a few frames as well.
    knee = test.skeleton.joint_names.index("r_ankle")
    noisy[:, 2, 20:30, knee] += 0.3
    proj = ManifoldProjector(limits, accel_weight=0.0).project(noisy, x)
    v = manifold_violations(proj, x, limits)
    assert (v["bone_length_error"] < 1e-5).all(), v
    assert (v["angle_violation"] == 0).all(), v
    before = manifold_violations(noisy, x, limits)
    assert (before["bone_length_error"] > 1e-3).all() and (before["angle_violation"] > 0).all()
    # Bone lengths equal the clean clip's, frame by frame.
    torch.testing.assert_close(bone_lengths(proj, test.skeleton), bone_lengths(x, test.skeleton), atol=1e-5, rtol=0)
    # The optimisation really minimises: the projection is at least as close to the input as the on-manifold
    # motion it was made from (a feasible point)...
    assert ((proj - noisy).flatten(1).norm(dim=1) <= (on - noisy).flatten(1).norm(dim=1) * 1.01).all()
    # ...and it removes noise: closer to that motion than the noisy input (away from the pushed frames). Only
    # the part of the noise orthogonal to the manifold can go (60 of 84 degrees of freedom per frame remain,
    # so about sqrt(60/84) = 0.85 of random noise stays).
    keep = torch.ones(60, dtype=torch.bool)
    keep[15:35] = False
    d_proj = (proj - on)[:, :, keep].flatten(1).norm(dim=1)
    d_noisy = (noisy - on)[:, :, keep].flatten(1).norm(dim=1)
    assert (d_proj < 0.9 * d_noisy).all(), (d_proj, d_noisy)


@pytest.mark.slow
def test_acceleration_weight_pulls_dynamics_towards_the_clean_clip(windows, limits):
    _, test = windows
    torch.manual_seed(1)
    x = torch.as_tensor(test.x[4:7])
    noisy = x + 0.01 * torch.randn_like(x)

    def accel_dev(w: float) -> torch.Tensor:
        p = ManifoldProjector(limits, accel_weight=w, steps=60).project(noisy, x)
        return (temporal_derivative(p, 2, 1.0) - temporal_derivative(x, 2, 1.0)).flatten(1).norm(dim=1)

    low, high = accel_dev(0.0), accel_dev(20.0)
    assert (high < 0.8 * low).all(), (low, high)


def test_projection_checks_shapes_and_skeleton(windows, limits):
    _, test = windows
    x = torch.as_tensor(test.x[:1])
    with pytest.raises(ValueError, match="matching"):
        ManifoldProjector(limits).project(x, x[:, :, :30])
    with pytest.raises(Exception, match="joints"):
        ManifoldProjector(limits).project(x[:, :, :, :25], x[:, :, :, :25])


def test_zero_length_bones_do_not_swing_the_bones_below_them(formats_dir):
    """hdm05_25 (the published 25-joint layout) has zero-length hip bones when mapped from real HDM05 motion.

    Noise stretches such a bone a little and gives it an arbitrary direction; the projection must not let that
    direction rotate the whole leg (it once moved joints by more than a metre for 0.1 mm of noise).
    """
    from engine import io, skeletons

    clip = io.load_clip(formats_dir / "hdm05" / "HDM_dg_06-03_03_120.amc")
    sk = skeletons.get("hdm05_25")
    pos = skeletons.map_positions(clip.positions, clip.skeleton, sk)
    lengths = np.linalg.norm(pos[:, sk.bone_children] - pos[:, sk.bone_parents], axis=-1)
    assert (lengths.max(0) < 1e-6).sum() >= 2  # the data really has zero-length bones
    limits = estimate_joint_angle_limits(pos, sk)
    clean = torch.tensor(pos, dtype=torch.float32).permute(2, 0, 1)[None, ..., None]  # (1, 3, T, V, 1)
    projector = ManifoldProjector(limits)
    torch.manual_seed(0)
    for sigma in (1e-4, 5e-3):
        noisy = clean + sigma * torch.randn_like(clean)
        for out in (projector.nearest(noisy, clean), projector.project(noisy, clean, steps=20)):
            moved = (out - noisy).norm(dim=1)
            assert moved.max() < 20 * sigma + 1e-3, (sigma, moved.max())
            assert (bone_lengths(out, sk) - bone_lengths(clean, sk)).abs().max() < 1e-5
