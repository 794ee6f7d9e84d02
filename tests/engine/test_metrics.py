"""Deviation metrics: layouts, units, guards (zero-length bones, absent performers) and the summary."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import metrics, skeletons

SK = skeletons.get("hdm05_25")
FPS = 30.0


def _walk(t: int = 30, seed: int = 0) -> np.ndarray:
    """A plausible (T, V, 3) clip: a fixed random pose above the floor with its own zero-length hip bones."""
    rng = np.random.default_rng(seed)
    pose = rng.normal(scale=0.3, size=(SK.num_joints, 3))
    for j in ("LHipJoint", "RHipJoint"):
        pose[SK.index(j)] = pose[SK.root]
    pose[:, 1] += 1.0 - pose[:, 1].min()  # lowest joint 1 m up
    for j in ("LeftFoot", "LeftToeBase", "RightFoot", "RightToeBase"):
        pose[SK.index(j), 1] = 0.0  # feet on the floor
    return np.repeat(pose[None], t, axis=0).astype(np.float32)


def _to_model(clip: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(clip).permute(2, 0, 1)[None, ..., None]  # (1, 3, T, V, 1)


def test_layouts_and_types_agree():
    clean = _walk()
    adv = clean + np.float32(0.01)
    d_np = metrics.joint_displacement(clean, adv)
    assert isinstance(d_np, np.ndarray) and d_np.shape == (30, SK.num_joints)
    d_t = metrics.joint_displacement(_to_model(clean), _to_model(adv))
    assert isinstance(d_t, torch.Tensor) and d_t.shape == (1, 1, 30, SK.num_joints)
    assert np.allclose(d_t[0, 0].numpy(), d_np)
    assert np.allclose(d_np, 0.01 * np.sqrt(3), atol=1e-6)
    assert metrics.summary(clean, adv, SK, FPS) == pytest.approx(metrics.summary(_to_model(clean), _to_model(adv), SK, FPS))
    with pytest.raises(ValueError, match="shape"):
        metrics.joint_displacement(clean, adv[:5])


def test_l2_and_linf_per_joint():
    clean = _walk()
    adv = clean.copy()
    adv[3, 5, 0] += 0.03  # one joint moves 3 cm in one frame
    l2 = metrics.l2_per_joint(clean, adv)
    linf = metrics.linf_per_joint(clean, adv)
    assert l2[5] == pytest.approx(0.03 / 30, rel=1e-5) and linf[5] == pytest.approx(0.03, rel=1e-5)
    assert np.count_nonzero(l2) == 1 and np.count_nonzero(linf) == 1


def test_bone_length_deviation_guards_zero_length_bones():
    clean = _walk()
    adv = clean.copy()
    lhip = SK.index("LHipJoint")
    adv[:, lhip, 0] += 0.02  # the zero-length Hips→LHipJoint bone becomes 2 cm long
    absolute, relative = metrics.bone_length_deviation(clean, adv, SK)
    b = list(SK.bone_children).index(lhip)
    assert absolute[:, b] == pytest.approx(0.02, rel=1e-3)
    assert np.isnan(relative[:, b]).all()
    assert np.isfinite(relative[:, b + 1]).all()  # LHipJoint→LeftUpLeg is a real bone
    s = metrics.summary(clean, adv, SK, FPS)
    assert np.isfinite(s["mean_bone_length_rel_dev"]) and np.isfinite(s["max_bone_length_rel_dev"])
    assert s["mean_bone_length_dev"] > 0


def test_relative_bone_change_of_a_stretched_bone():
    clean = _walk()
    adv = clean.copy()
    fore = SK.index("LeftForeArm")
    # move the forearm's whole subtree along the upper-arm bone: only that bone changes, by 10%
    arm = SK.index("LeftArm")
    direction = clean[0, fore] - clean[0, arm]
    length = np.linalg.norm(direction)
    subtree = [fore]
    for j in SK.topological_order:
        if SK.parents[j] in subtree:
            subtree.append(j)
    adv[:, subtree] += 0.1 * direction
    _, relative = metrics.bone_length_deviation(clean, adv, SK)
    b = list(SK.bone_children).index(fore)
    assert relative[:, b] == pytest.approx(0.1, rel=1e-4)
    assert np.nanmax(np.delete(relative, b, axis=1)) < 1e-5
    assert length > 0.01


def test_derivative_deviations_have_real_units():
    clean = _walk()
    ramp = np.arange(30, dtype=np.float32)[:, None, None] * np.float32(0.01)  # 1 cm per frame along x
    adv = clean.copy()
    adv[..., 0] += ramp[..., 0]
    vel = metrics.velocity_deviation(clean, adv, FPS)
    acc = metrics.acceleration_deviation(clean, adv, FPS)
    jerk = metrics.jerk_deviation(clean, adv, FPS)
    assert vel.shape == (29, SK.num_joints) and acc.shape == (28, SK.num_joints) and jerk.shape == (27, SK.num_joints)
    assert np.allclose(vel, 0.3, atol=1e-4)  # 0.01 m per frame at 30 fps
    assert np.allclose(acc, 0.0, atol=1e-3) and np.allclose(jerk, 0.0, atol=1e-1)
    offset = metrics.velocity_deviation(clean, clean + np.float32(0.2), FPS)
    assert np.allclose(offset, 0.0, atol=1e-5)


def test_foot_skating_measures_sliding_feet_in_contact():
    clean = _walk()
    adv = clean.copy()
    feet = metrics.foot_joints(SK)
    assert {SK.joint_names[j] for j in feet} == {"LeftFoot", "LeftToeBase", "RightFoot", "RightToeBase"}
    # slide every foot joint along z at 0.5 m/s while it stays on the floor
    slide = (np.arange(30, dtype=np.float32) * np.float32(0.5 / FPS))[:, None]
    adv[:, feet, 2] += slide
    s = metrics.foot_skating(clean, adv, SK, FPS)
    assert float(s["clean"]) == pytest.approx(0.0, abs=1e-6)
    assert float(s["adversarial"]) == pytest.approx(0.5, rel=1e-3)
    assert float(s["increase"]) == pytest.approx(0.5, rel=1e-3)
    # lifted feet are not in contact, so they cannot skate
    lifted = adv.copy()
    lifted[:, feet[:2], 1] += 0.5
    s2 = metrics.foot_skating(clean, lifted, SK, FPS)
    assert float(s2["adversarial"]) == pytest.approx(0.5, rel=1e-3)  # the other foot still slides


def test_joint_angle_violations_against_estimated_limits():
    from engine.attacks.manifold import estimate_joint_angle_limits

    rng = np.random.default_rng(0)
    clean = _walk() + rng.normal(scale=0.002, size=(30, SK.num_joints, 3)).astype(np.float32)
    for j in ("LHipJoint", "RHipJoint"):
        clean[:, SK.index(j)] = clean[:, SK.root]
    limits = estimate_joint_angle_limits(clean, SK)
    inside = metrics.joint_angle_violations(clean, limits)
    assert float(np.max(inside["max"])) == 0.0 and float(np.max(inside["fraction"])) == 0.0
    bent = clean.copy()
    hand, fore = SK.index("LeftHand"), SK.index("LeftForeArm")
    # fold the forearm back onto the upper arm: far outside anything observed
    bent[:, hand] = clean[:, fore] - (clean[:, hand] - clean[:, fore])
    out = metrics.joint_angle_violations(bent, limits, clean=clean)
    assert float(np.max(out["max"])) > 0.5
    assert 0 < float(np.max(out["fraction"])) < 1
    s = metrics.summary(clean, bent, SK, FPS, limits=limits)
    assert s["max_angle_violation"] > 0.5 and s["mean_angle_violation_fraction"] > 0


def test_summary_skips_absent_performers_and_counts_success():
    clean = torch.zeros(2, 3, 20, SK.num_joints, 2)
    clean[..., 0] = _to_model(_walk(20))[0, ..., 0]
    adv = clean.clone()
    adv[..., 0] += 0.01
    s = metrics.summary(clean, adv, SK, FPS, success=torch.tensor([True, False]))
    assert s["n"] == 2 and s["success_rate"] == 0.5
    assert s["mean_l2"] == pytest.approx(0.01 * np.sqrt(3), rel=1e-5)  # the empty body does not halve it
    per = metrics.per_sample_summary(clean, adv, SK, FPS)
    assert set(per) >= {"l2", "linf", "bone_length_rel_dev", "velocity_dev", "accel_dev", "jerk_dev", "foot_skating"}
    assert all(v.shape == (2,) for v in per.values())
    assert metrics.success_rate(np.array([True, True, False, False])) == 0.5
    assert metrics.success_rate(np.array([], dtype=bool)) == 0.0
