"""Rotations and forward kinematics: known rotations, round trips, a two-bone chain worked by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.kinematics import (
    acclaim_euler_to_matrix,
    axis_angle_to_matrix,
    best_fit_rotation,
    euler_to_matrix,
    forward_kinematics,
    matrix_to_axis_angle,
    matrix_to_euler,
    rotation_between,
    topological_order,
)

ORDERS = ["XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"]


def _random_rotations(rng, n):
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def test_elementary_rotations_are_right_handed():
    ex, ey, ez = np.eye(3)
    np.testing.assert_allclose(euler_to_matrix([0, 0, np.pi / 2], "XYZ") @ ex, ey, atol=1e-12)  # Rz: x → y
    np.testing.assert_allclose(euler_to_matrix([np.pi / 2, 0, 0], "XYZ") @ ey, ez, atol=1e-12)  # Rx: y → z
    np.testing.assert_allclose(euler_to_matrix([0, np.pi / 2, 0], "XYZ") @ ez, ex, atol=1e-12)  # Ry: z → x


def test_bvh_channel_order_is_left_to_right_product():
    z, x, y = 0.3, -0.7, 1.1
    Rz = euler_to_matrix([0, 0, z], "XYZ")
    Rx = euler_to_matrix([x, 0, 0], "XYZ")
    Ry = euler_to_matrix([0, y, 0], "XYZ")
    np.testing.assert_allclose(euler_to_matrix([z, x, y], "ZXY"), Rz @ Rx @ Ry, atol=1e-12)


def test_acclaim_order_applies_first_axis_first():
    ax, ay, az = 0.4, -0.2, 0.9
    Rx = euler_to_matrix([ax, 0, 0], "XYZ")
    Ry = euler_to_matrix([0, ay, 0], "XYZ")
    Rz = euler_to_matrix([0, 0, az], "XYZ")
    np.testing.assert_allclose(acclaim_euler_to_matrix([ax, ay, az], "XYZ"), Rz @ Ry @ Rx, atol=1e-12)


@pytest.mark.parametrize("order", ORDERS)
def test_euler_round_trip_all_orders(order):
    rng = np.random.default_rng(0)
    R = _random_rotations(rng, 500)
    angles = matrix_to_euler(R, order)
    assert np.all(np.abs(angles[:, 1]) <= np.pi / 2 + 1e-9)
    np.testing.assert_allclose(euler_to_matrix(angles, order), R, atol=1e-9)
    a = rng.uniform(-1.4, 1.4, size=(200, 3))
    np.testing.assert_allclose(matrix_to_euler(euler_to_matrix(a, order), order), a, atol=1e-9)


@pytest.mark.parametrize("order", ORDERS)
def test_euler_round_trip_at_gimbal_lock(order):
    a = np.array([[0.3, np.pi / 2, -0.4], [1.0, -np.pi / 2, 0.2]])
    R = euler_to_matrix(a, order)
    np.testing.assert_allclose(euler_to_matrix(matrix_to_euler(R, order), order), R, atol=1e-9)


def test_bad_order_is_rejected():
    with pytest.raises(ValueError, match="Euler order"):
        euler_to_matrix([0, 0, 0], "XXY")


def test_axis_angle_known_and_round_trip():
    R = axis_angle_to_matrix([0, 0, 1], np.pi / 2)
    np.testing.assert_allclose(R @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(axis_angle_to_matrix(np.zeros(3)), np.eye(3), atol=1e-12)
    rng = np.random.default_rng(1)
    R = _random_rotations(rng, 300)
    np.testing.assert_allclose(axis_angle_to_matrix(matrix_to_axis_angle(R)), R, atol=1e-8)
    half = axis_angle_to_matrix(np.array([[0.0, np.pi, 0.0], [np.pi / np.sqrt(2), np.pi / np.sqrt(2), 0]]))
    np.testing.assert_allclose(axis_angle_to_matrix(matrix_to_axis_angle(half)), half, atol=1e-8)


def test_rotation_between_takes_a_to_b_minimally():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(400, 3))
    b = rng.normal(size=(400, 3))
    R = rotation_between(a, b)
    an = a / np.linalg.norm(a, axis=-1, keepdims=True)
    bn = b / np.linalg.norm(b, axis=-1, keepdims=True)
    np.testing.assert_allclose(np.einsum("nij,nj->ni", R, an), bn, atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-9)
    # Minimal: the rotation angle equals the angle between a and b.
    angle = np.linalg.norm(matrix_to_axis_angle(R), axis=-1)
    np.testing.assert_allclose(angle, np.arccos(np.clip(np.sum(an * bn, -1), -1, 1)), atol=1e-6)


def test_rotation_between_parallel_and_opposite():
    np.testing.assert_allclose(rotation_between([0, 1, 0], [0, 2, 0]), np.eye(3), atol=1e-12)
    for a in ([0, 1, 0], [1, 0, 0], [0.3, -0.2, 0.9]):
        a = np.array(a, float)
        R = rotation_between(a, -a)
        np.testing.assert_allclose(R @ (a / np.linalg.norm(a)), -a / np.linalg.norm(a), atol=1e-9)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-9)
        np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-9)


def test_best_fit_rotation_recovers_a_rotation():
    rng = np.random.default_rng(3)
    R = _random_rotations(rng, 20)
    src = rng.normal(size=(20, 4, 3))
    dst = np.einsum("nij,nkj->nki", R, src)
    np.testing.assert_allclose(best_fit_rotation(src, dst), R, atol=1e-9)


def test_torch_matches_numpy_and_is_differentiable():
    rng = np.random.default_rng(4)
    a = rng.uniform(-3, 3, size=(10, 3))
    ref = euler_to_matrix(a, "ZXY")
    t = torch.tensor(a, requires_grad=True)
    out = euler_to_matrix(t, "ZXY")
    np.testing.assert_allclose(out.detach().numpy(), ref, atol=1e-12)
    out.sum().backward()
    assert t.grad is not None and torch.isfinite(t.grad).all()
    u, v = rng.normal(size=(10, 3)), rng.normal(size=(10, 3))
    np.testing.assert_allclose(rotation_between(torch.tensor(u), torch.tensor(v)).numpy(), rotation_between(u, v))
    np.testing.assert_allclose(axis_angle_to_matrix(torch.tensor(u)).numpy(), axis_angle_to_matrix(u), atol=1e-12)


def test_topological_order_handles_any_numbering():
    parents = [3, 3, 0, -1, 1]  # root is joint 3
    order = topological_order(parents)
    assert order[0] == 3 and sorted(order) == list(range(5))
    pos = {j: i for i, j in enumerate(order)}
    assert all(pos[p] < pos[j] for j, p in enumerate(parents) if p >= 0)
    with pytest.raises(ValueError):
        topological_order([1, 0])


def test_forward_kinematics_two_bone_chain_by_hand():
    # root at (1, 0, 0); joint 1 one unit above the root, joint 2 two units further along the parent's y.
    parents = [-1, 0, 1]
    offsets = np.array([[0, 0, 0], [0, 1, 0], [0, 2, 0]], float)
    L = np.tile(np.eye(3), (2, 3, 1, 1))
    # frame 1: the root turns 90° about z (y → -x), joint 1 turns another 90° about z.
    Rz90 = euler_to_matrix([0, 0, np.pi / 2], "XYZ")
    L[1, 0] = Rz90
    L[1, 1] = Rz90
    root = np.array([[1, 0, 0], [1, 0, 0]], float)
    pos, rot = forward_kinematics(parents, offsets, L, root, return_rotations=True)
    np.testing.assert_allclose(pos[0], [[1, 0, 0], [1, 1, 0], [1, 3, 0]], atol=1e-12)
    # frame 1: joint 1 = root + Rz90 (0,1,0) = (1,0,0) + (-1,0,0); joint 2 = joint 1 + Rz180 (0,2,0).
    np.testing.assert_allclose(pos[1], [[1, 0, 0], [0, 0, 0], [0, -2, 0]], atol=1e-12)
    np.testing.assert_allclose(rot[1, 2], Rz90 @ Rz90, atol=1e-12)


def test_forward_kinematics_keeps_bone_lengths_and_accepts_torch():
    rng = np.random.default_rng(5)
    parents = [2, 0, -1, 1, 1]
    offsets = rng.normal(size=(5, 3))
    L = _random_rotations(rng, 7 * 5).reshape(7, 5, 3, 3)
    root = rng.normal(size=(7, 3))
    pos = forward_kinematics(parents, offsets, L, root)
    for j, p in enumerate(parents):
        if p >= 0:
            np.testing.assert_allclose(np.linalg.norm(pos[:, j] - pos[:, p], axis=-1), np.linalg.norm(offsets[j]))
    np.testing.assert_allclose(pos[:, 2], root + offsets[2])
    t = forward_kinematics(parents, torch.tensor(offsets), torch.tensor(L), torch.tensor(root))
    np.testing.assert_allclose(t.numpy(), pos, atol=1e-12)
    per_frame = forward_kinematics(parents, np.broadcast_to(offsets, (7, 5, 3)), L, root)
    np.testing.assert_allclose(per_frame, pos, atol=1e-12)
