"""Rotations and forward kinematics shared by the motion readers, the demo generator and the attacks.

Conventions (one place, used everywhere in skelviz):

* Rotation matrices act on **column vectors**: ``v_parent = R @ v_local``. Batched arrays carry the matrix in
  the last two axes, ``(..., 3, 3)``.
* Euler angles: ``euler_to_matrix(angles, order)`` with ``order`` a string of three distinct axes such as
  ``"XYZ"`` or ``"ZXY"`` and ``angles[..., i]`` the angle (radians) about axis ``order[i]`` returns

      R = R_{order[0]}(angles[..., 0]) @ R_{order[1]}(angles[..., 1]) @ R_{order[2]}(angles[..., 2])

  i.e. *intrinsic* rotations read left to right (the rightmost one is applied to a vector first). This is
  exactly the BVH convention: channels ``Zrotation Xrotation Yrotation`` with values ``z x y`` give
  ``R = Rz(z) @ Rx(x) @ Ry(y)`` = ``euler_to_matrix([z, x, y], "ZXY")``.
* The Acclaim (ASF/AMC) convention is the other way round: an ASF ``axis ax ay az XYZ`` or a dof list
  ``rx ry rz`` means "rotate about X first, then Y, then Z" about fixed axes, i.e. ``R = Rz @ Ry @ Rx``
  = ``euler_to_matrix([az, ay, ax], "ZYX")``. :func:`acclaim_euler_to_matrix` does that reversal so the
  Acclaim reader never has to.
* Elementary rotations are right-handed: ``R_Z(θ)`` takes the x axis towards the y axis for θ > 0.

Forward kinematics (:func:`forward_kinematics`) follows BVH: a joint's offset is expressed in its parent's
frame, and a joint's local rotation turns the frames of its children.

The functions accept numpy arrays and, where it costs nothing, torch tensors (``euler_to_matrix``,
``axis_angle_to_matrix``, ``rotation_between``, ``forward_kinematics``): they then stay differentiable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "euler_to_matrix",
    "matrix_to_euler",
    "acclaim_euler_to_matrix",
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "rotation_between",
    "best_fit_rotation",
    "topological_order",
    "forward_kinematics",
]

_AXIS_INDEX = {"X": 0, "Y": 1, "Z": 2}
_TAIT_BRYAN = {"XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"}


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def _stack(items, axis):
    if _is_torch(items[0]):
        import torch

        return torch.stack(items, dim=axis)
    return np.stack(items, axis=axis)


def _as_float(x):
    if _is_torch(x):
        return x if x.is_floating_point() else x.float()
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


def _check_order(order: str) -> str:
    o = str(order).upper()
    if o not in _TAIT_BRYAN:
        raise ValueError(f"Euler order must be three distinct axes out of X, Y, Z (e.g. 'XYZ', 'ZXY'), got {order!r}")
    return o


def _elementary(axis: str, angle):
    """(..., 3, 3) right-handed rotation about one coordinate axis."""
    c, s = (angle.cos(), angle.sin()) if _is_torch(angle) else (np.cos(angle), np.sin(angle))
    one, zero = c * 0 + 1, c * 0
    if axis == "X":
        rows = [[one, zero, zero], [zero, c, -s], [zero, s, c]]
    elif axis == "Y":
        rows = [[c, zero, s], [zero, one, zero], [-s, zero, c]]
    else:
        rows = [[c, -s, zero], [s, c, zero], [zero, zero, one]]
    return _stack([_stack(r, -1) for r in rows], -2)


def euler_to_matrix(angles_rad, order: str):
    """Rotation matrices from Euler angles: ``(..., 3)`` radians → ``(..., 3, 3)``.

    ``angles_rad[..., i]`` is the angle about axis ``order[i]`` and
    ``R = R_{order[0]} @ R_{order[1]} @ R_{order[2]}`` (intrinsic, BVH channel order; see the module docstring).
    """
    order = _check_order(order)
    a = _as_float(angles_rad)
    if a.shape[-1] != 3:
        raise ValueError(f"Euler angles must have a last axis of 3, got shape {tuple(a.shape)}")
    r0, r1, r2 = (_elementary(ax, a[..., i]) for i, ax in enumerate(order))
    return r0 @ r1 @ r2


def matrix_to_euler(R, order: str) -> np.ndarray:
    """Inverse of :func:`euler_to_matrix` (numpy): ``(..., 3, 3)`` → ``(..., 3)`` radians.

    The middle angle lies in [-π/2, π/2], the others in (-π, π]. At gimbal lock (middle angle ±π/2) the last
    angle is set to 0 and the first carries the whole remaining rotation.
    """
    order = _check_order(order)
    R = np.asarray(R, dtype=np.float64)
    i, j, k = (_AXIS_INDEX[c] for c in order)
    # +1 when (i, j, k) is a cyclic permutation of (0, 1, 2).
    s = 1.0 if (j - i) % 3 == 1 else -1.0
    sin_b = np.clip(s * R[..., i, k], -1.0, 1.0)
    beta = np.arcsin(sin_b)
    cos_b = np.sqrt(np.maximum(0.0, 1.0 - sin_b**2))
    alpha = np.arctan2(-s * R[..., j, k], R[..., k, k])
    gamma = np.arctan2(-s * R[..., i, j], R[..., i, i])
    locked = cos_b < 1e-6
    if np.any(locked):
        # R = R_i(α) R_j(±π/2) with γ = 0: the j column is R_i(α) e_j = cos α e_j + s sin α e_k.
        alpha = np.where(locked, np.arctan2(s * R[..., k, j], R[..., j, j]), alpha)
        gamma = np.where(locked, 0.0, gamma)
    return np.stack([alpha, beta, gamma], axis=-1)


def acclaim_euler_to_matrix(angles_rad, order: str = "XYZ"):
    """Acclaim (ASF ``axis``, AMC dof) rotation: rotate about ``order[0]`` first, then ``order[1]``, ``order[2]``.

    ``angles_rad[..., i]`` is the angle about ``order[i]``; the result is
    ``R = R_{order[2]} @ R_{order[1]} @ R_{order[0]}`` (so ``"XYZ"`` gives ``Rz @ Ry @ Rx``).
    """
    order = _check_order(order)
    a = _as_float(angles_rad)
    return euler_to_matrix(a[..., ::-1] if not _is_torch(a) else a.flip(-1), order[::-1])


def axis_angle_to_matrix(axis, angle=None):
    """Rodrigues' formula. ``axis`` (..., 3); ``angle`` (...) radians, or ``None`` when ``axis`` is a rotation
    vector (direction = axis, norm = angle). A zero rotation vector gives the identity."""
    v = _as_float(axis)
    torch_mode = _is_torch(v)
    norm = v.norm(dim=-1, keepdim=True) if torch_mode else np.linalg.norm(v, axis=-1, keepdims=True)
    if angle is None:
        theta = norm[..., 0]
    else:
        theta = _as_float(angle)
        if not torch_mode:
            theta = np.broadcast_to(theta, v.shape[:-1])
    if torch_mode:
        import torch

        unit = v / norm.clamp_min(1e-12)
        eye = torch.eye(3, dtype=v.dtype, device=v.device)
        c, s = theta.cos()[..., None, None], theta.sin()[..., None, None]
    else:
        unit = v / np.maximum(norm, 1e-12)
        eye = np.eye(3)
        c, s = np.cos(theta)[..., None, None], np.sin(theta)[..., None, None]
    x, y, z = unit[..., 0], unit[..., 1], unit[..., 2]
    zero = x * 0
    K = _stack([_stack([zero, -z, y], -1), _stack([z, zero, -x], -1), _stack([-y, x, zero], -1)], -2)
    return eye + s * K + (1 - c) * (K @ K)


def matrix_to_axis_angle(R) -> np.ndarray:
    """Rotation vectors (axis × angle, angle in [0, π]) of ``(..., 3, 3)`` rotation matrices (numpy)."""
    R = np.asarray(R, dtype=np.float64)
    cos_t = np.clip((np.trace(R, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
    theta = np.arccos(cos_t)
    w = np.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], -1)
    sin_t = np.sin(theta)
    small = sin_t < 1e-6
    axis = w / np.where(small, 1.0, 2.0 * sin_t)[..., None]
    # Near π the skew part vanishes: take the axis from the symmetric part, R + I = 2 u uᵀ.
    near_pi = small & (cos_t < 0)
    if np.any(near_pi):
        B = (R + np.eye(3)) / 2.0
        col = np.argmax(np.diagonal(B, axis1=-2, axis2=-1), axis=-1)
        u = np.take_along_axis(B, col[..., None, None], axis=-1)[..., 0]
        u = u / np.maximum(np.linalg.norm(u, axis=-1, keepdims=True), 1e-12)
        axis = np.where(near_pi[..., None], u, axis)
    near_zero = small & (cos_t >= 0)
    axis = np.where(near_zero[..., None], w / 2.0, axis)  # θ ≈ sin θ: the rotation vector is w / 2
    theta = np.where(near_zero, 1.0, theta)
    return axis * theta[..., None]


def rotation_between(a, b):
    """The minimal rotation (about ``a × b``) taking direction ``a`` to direction ``b``; batched (..., 3).

    Inputs need not be unit length. Opposite directions give a half turn about an axis perpendicular to ``a``;
    a zero vector gives the identity.
    """
    a, b = _as_float(a), _as_float(b)
    torch_mode = _is_torch(a) or _is_torch(b)
    if torch_mode:
        import torch

        a, b = torch.as_tensor(a), torch.as_tensor(b)
        a, b = torch.broadcast_tensors(a, b)
        a = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        b = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        v = torch.linalg.cross(a, b, dim=-1)
        c = (a * b).sum(-1)
        # A perpendicular axis for the opposite case: a × (the coordinate axis least aligned with a).
        helper = torch.eye(3, dtype=a.dtype, device=a.device)[a.abs().argmin(dim=-1)]
        perp = torch.linalg.cross(a, helper, dim=-1)
        perp = perp / perp.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        opposite = (c < -1 + 1e-7)[..., None]
        v = torch.where(opposite, perp * 1e-7, v)
        half_turn = 2 * perp[..., :, None] * perp[..., None, :] - torch.eye(3, dtype=a.dtype, device=a.device)
        eye = torch.eye(3, dtype=a.dtype, device=a.device)
        c_safe = torch.where(opposite[..., 0], torch.zeros_like(c), c)
    else:
        a, b = np.broadcast_arrays(a, b)
        a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
        b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
        v = np.cross(a, b)
        c = np.sum(a * b, axis=-1)
        helper = np.eye(3)[np.argmin(np.abs(a), axis=-1)]
        perp = np.cross(a, helper)
        perp = perp / np.maximum(np.linalg.norm(perp, axis=-1, keepdims=True), 1e-12)
        opposite = (c < -1 + 1e-7)[..., None]
        half_turn = 2 * perp[..., :, None] * perp[..., None, :] - np.eye(3)
        eye = np.eye(3)
        c_safe = np.where(opposite[..., 0], 0.0, c)
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    zero = x * 0
    K = _stack([_stack([zero, -z, y], -1), _stack([z, zero, -x], -1), _stack([-y, x, zero], -1)], -2)
    R = eye + K + (K @ K) / (1 + c_safe)[..., None, None]
    if torch_mode:
        return torch.where(opposite[..., None], half_turn, R)
    return np.where(opposite[..., None], half_turn, R)


def best_fit_rotation(src, dst, weights=None) -> np.ndarray:
    """Kabsch: the rotation R minimising ``Σ w ‖R src_n − dst_n‖²`` over paired vectors (numpy).

    ``src``, ``dst``: (..., N, 3). Returns (..., 3, 3), a proper rotation (det +1). With a single pair the
    problem is underdetermined; use :func:`rotation_between` for that.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if weights is not None:
        src = src * np.asarray(weights, dtype=np.float64)[..., None]
    H = np.swapaxes(src, -1, -2) @ dst  # (..., 3, 3) = Σ src dstᵀ
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(np.swapaxes(Vt, -1, -2) @ np.swapaxes(U, -1, -2)))
    d = np.where(d == 0, 1.0, d)
    D = np.zeros(H.shape)
    D[..., 0, 0] = 1.0
    D[..., 1, 1] = 1.0
    D[..., 2, 2] = d
    return np.swapaxes(Vt, -1, -2) @ D @ np.swapaxes(U, -1, -2)


def topological_order(parents: Sequence[int]) -> list[int]:
    """Joint indices ordered so that each parent precedes its children (any parent numbering)."""
    parents = [int(p) for p in parents]
    n = len(parents)
    children: list[list[int]] = [[] for _ in range(n)]
    roots = []
    for j, p in enumerate(parents):
        if p < 0 or p == j:
            roots.append(j)
        elif p >= n:
            raise ValueError(f"joint {j} has parent {p}, but there are only {n} joints")
        else:
            children[p].append(j)
    order, stack = [], list(reversed(roots))
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(children[j]))
    if len(order) != n:
        raise ValueError("the parent list has a cycle or no root")
    return order


def forward_kinematics(
    parents: Sequence[int],
    offsets,
    local_rotations,
    root_positions,
    *,
    return_rotations: bool = False,
):
    """Global joint positions from a rest offset hierarchy and local joint rotations (BVH semantics).

    Args:
        parents: parent index per joint (``-1``, or the joint itself, for the root); any numbering.
        offsets: (V, 3) or (T, V, 3): each joint's position relative to its parent, in the parent's frame.
            The root's offset is added, unrotated, to ``root_positions``.
        local_rotations: (T, V, 3, 3): each joint's rotation relative to its parent's frame.
        root_positions: (T, 3): the root's translation per frame.
        return_rotations: also return the (T, V, 3, 3) global rotations.

    Returns:
        positions (T, V, 3) where ``G_j = G_parent @ L_j`` and ``p_j = p_parent + G_parent @ offset_j``.
        Works on numpy arrays and torch tensors (differentiable; no in-place writes).
    """
    parents = [int(p) for p in parents]
    V = len(parents)
    L = local_rotations
    if L.shape[-3:] != (V, 3, 3) or L.ndim != 4:
        raise ValueError(f"local_rotations must be (T, {V}, 3, 3), got {tuple(L.shape)}")
    if offsets.shape[-2:] != (V, 3):
        raise ValueError(f"offsets must be ({V}, 3) or (T, {V}, 3), got {tuple(offsets.shape)}")
    if root_positions.shape[-1] != 3:
        raise ValueError(f"root_positions must be (T, 3), got {tuple(root_positions.shape)}")
    per_frame = offsets.ndim == 3
    glob_rot: list = [None] * V
    glob_pos: list = [None] * V
    for j in topological_order(parents):
        p = parents[j]
        off = offsets[:, j] if per_frame else offsets[j]
        if p < 0 or p == j:
            glob_rot[j] = L[:, j]
            glob_pos[j] = root_positions + off
        else:
            glob_rot[j] = glob_rot[p] @ L[:, j]
            glob_pos[j] = glob_pos[p] + (glob_rot[p] @ off[..., None])[..., 0]
    positions = _stack(glob_pos, 1)
    if return_rotations:
        return positions, _stack(glob_rot, 1)
    return positions
