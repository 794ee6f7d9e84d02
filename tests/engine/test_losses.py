"""The shared perceptual-loss building blocks: derivatives in real units, dynamics and bone-length losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import skeletons
from engine.losses import bone_length_loss, bone_lengths, dynamics_loss, temporal_derivative


def _clip(n=2, t=12, m=1, skeleton="hdm05_25", seed=0):
    sk = skeletons.get(skeleton)
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, t, sk.num_joints, m, generator=g), sk


def test_derivatives_use_the_real_frame_interval():
    fps = 30.0
    t = torch.arange(10, dtype=torch.float64) / fps
    # x(t) = 0.5 * a * t² with a = 4 m/s²: velocity a*t, acceleration a, jerk 0.
    x = (0.5 * 4.0 * t**2).reshape(1, 1, -1, 1, 1).expand(1, 3, -1, 2, 1)
    acc = temporal_derivative(x, 2, 1 / fps)
    assert acc.shape == (1, 3, 8, 2, 1)
    assert torch.allclose(acc, torch.full_like(acc, 4.0))
    vel = temporal_derivative(x, 1, 1 / fps)
    assert torch.allclose(vel[0, 0, :, 0, 0], 4.0 * (t[1:] + t[:-1]) / 2)
    assert torch.allclose(temporal_derivative(x, 3, 1 / fps), torch.zeros(1, 3, 7, 2, 1, dtype=torch.float64))
    assert temporal_derivative(x, 0, 1 / fps) is x
    with pytest.raises(ValueError, match="frames"):
        temporal_derivative(x[:, :, :2], 2, 1 / fps)


def test_dynamics_loss_matches_its_definition():
    x, _ = _clip()
    x_adv = x + 0.01 * torch.randn_like(x)
    dt = 1 / 30
    betas = [0.5, 0.2, 0.3]
    expected = torch.zeros(x.shape[0])
    for n, b in enumerate(betas):
        d = temporal_derivative(x, n, dt) - temporal_derivative(x_adv, n, dt)
        expected += b * d.square().sum(1).flatten(1).mean(1)
    got = dynamics_loss(x, x_adv, betas, dt, reduction="none")
    assert torch.allclose(got, expected, rtol=1e-4)
    assert torch.allclose(dynamics_loss(x, x_adv, betas, dt), expected.mean(), rtol=1e-4)
    assert torch.allclose(dynamics_loss(x, x_adv, betas, dt, reduction="sum"), expected.sum(), rtol=1e-4)
    # a joint weighted twice counts twice
    w = torch.ones(x.shape[3])
    w[3] = 2.0
    weighted = dynamics_loss(x, x_adv, [1.0], dt, joint_weights=w, reduction="none")
    sq = (x - x_adv).square().sum(1)
    sq[:, :, 3] *= 2
    assert torch.allclose(weighted, sq.flatten(1).mean(1), rtol=1e-5)
    assert float(dynamics_loss(x, x, betas, dt)) == 0.0


def test_dynamics_loss_ignores_a_constant_offset_beyond_order_zero():
    x, _ = _clip()
    shifted = x + torch.tensor([0.1, -0.2, 0.3]).reshape(1, 3, 1, 1, 1)
    assert float(dynamics_loss(x, shifted, [0.0, 0.5, 0.5], 1 / 30)) == pytest.approx(0.0, abs=1e-8)
    assert float(dynamics_loss(x, shifted, [1.0], 1 / 30)) == pytest.approx(0.14, rel=1e-5)


def test_bone_lengths_agree_with_the_skeleton_and_use_its_bones():
    x, sk = _clip(m=2)
    lengths = bone_lengths(x, sk)
    assert lengths.shape == (2, x.shape[2], sk.num_bones, 2)
    positions = x.permute(0, 4, 2, 3, 1).numpy()  # (N, M, T, V, 3)
    ref = sk.bone_lengths(positions)  # (N, M, T, B)
    assert np.allclose(lengths.permute(0, 3, 1, 2).numpy(), ref, atol=1e-5)


def test_bone_length_loss_is_zero_for_rigid_motion_and_counts_changes():
    x, sk = _clip()
    # a rigid rotation about y plus a translation leaves every bone length unchanged
    c, s = np.cos(0.7), np.sin(0.7)
    rot = torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=torch.float32)
    moved = torch.einsum("ij,njtvm->nitvm", rot, x) + 0.5
    assert float(bone_length_loss(x, moved, sk)) == pytest.approx(0.0, abs=1e-9)
    # stretch one bone in every frame: loss = (Δl)² / (number of bones)
    child = int(sk.bone_children[4])
    stretched = x.clone()
    parent = int(sk.bone_parents[4])
    direction = x[:, :, :, child] - x[:, :, :, parent]
    direction = direction / direction.norm(dim=1, keepdim=True)
    # moving the child along the bone moves its own subtree's bones rigidly only if we move the subtree
    subtree = [child]
    for j in sk.topological_order:
        if sk.parents[j] in subtree:
            subtree.append(j)
    for j in subtree:
        stretched[:, :, :, j] += 0.1 * direction
    per = bone_length_loss(x, stretched, sk, reduction="none")
    assert torch.allclose(per, torch.full((2,), 0.01 / sk.num_bones), rtol=1e-4)
    clean = bone_lengths(x, sk)
    assert torch.allclose(bone_length_loss(x, stretched, sk, clean_lengths=clean), per.mean())


def test_zero_length_bones_keep_gradients_finite():
    x, sk = _clip()
    # hdm05_25 data can put LHipJoint exactly on Hips (a zero-length bone)
    x[:, :, :, sk.index("LHipJoint")] = x[:, :, :, sk.root]
    x_adv = x.clone().requires_grad_(True)
    loss = bone_length_loss(x, x_adv, sk) + dynamics_loss(x, x_adv, [0.5, 0.0, 0.5], 1 / 30)
    (grad,) = torch.autograd.grad(loss, x_adv)
    assert torch.isfinite(grad).all()


def test_gradients_flow_and_devices_match():
    x, sk = _clip()
    x_adv = (x + 0.01).requires_grad_(True)
    loss = bone_length_loss(x, x_adv, sk) + dynamics_loss(x, x_adv, [1.0], 1 / 30)
    (grad,) = torch.autograd.grad(loss, x_adv)
    assert grad.abs().sum() > 0
    with pytest.raises(ValueError, match="reduction"):
        dynamics_loss(x, x_adv, [1.0], 1 / 30, reduction="max")
