"""The natural-motion manifold of BASAR: joint angles, their limits, and projection onto the manifold.

BASAR (Diao et al., CVPR 2021; extended in "Understanding the Vulnerability of Skeleton-based Human Activity
Recognition via Black-box Attack", 2022) keeps its adversarial motions natural by projecting them onto a
manifold defined by three things, all taken from the clean clip ``x`` that is being attacked:

* **bone lengths** exactly those of ``x`` in every frame (positions are rebuilt from bone directions along
  the kinematic tree, so this holds by construction, to float rounding);
* **joint angles** inside per-joint limits estimated from real motion (:func:`estimate_joint_angle_limits`);
* **dynamics**: among such motions the projection ``x̃`` of an adversarial clip ``x′`` minimises
  ``‖x̃ − x′‖² + w ‖ẍ̃ − ẍ‖²`` (squared distances summed over frames, joints and coordinates; ``ẍ`` is the
  clean clip's acceleration: per-frame second differences, so ``w`` does not depend on the frame rate).

The paper solves that with an external NLP solver on Euler angles; here it is a batched torch optimisation
(projected Adam) on the model's device: every body of every clip is optimised at once and independently.

Joint angles (defined here, once, for all of skelviz)
-----------------------------------------------------
Positions carry no twist, so a joint has two angular degrees of freedom. Each bone ``b`` (parent joint →
child joint) has a **frame**: the root's frame ``F₀``, then down the tree ``F_b = F_parent(b) · Exp(ω_b)``,
where ``ω_b`` is the *swing* (the minimal rotation, ``engine.kinematics.rotation_between``) taking the bone's
**rest direction** ``r_b`` (a unit vector in its parent's frame) to its actual direction
``l_b = F_parent(b)ᵀ (p_child − p_parent) / length``. ``ω_b`` is perpendicular to ``r_b``; its two
coordinates in a fixed tangent basis ``(u_b, w_b)`` of ``r_b`` are the bone's **joint angles** (radians),
``joint_angles(...)[..., b, :]``: "axis 0" is the swing about ``u_b``, "axis 1" the swing about ``w_b``. Zero
means "at rest". Unlike Euler angles this is smooth everywhere except directly opposite the rest direction,
which real motion never reaches because the rest direction is the mean observed direction.

The root frame ``F₀`` comes from two of the root's bones (those most nearly perpendicular on average, e.g. a
hip and the lower spine): the first gives its x axis, the second, Gram–Schmidt orthogonalised, its y axis.
Those two bones therefore have fixed or one-dimensional angles (the first is always 0, the second only
opens and closes in the x–y plane); a skeleton whose root has a single bone uses the world frame.
``tangent_basis(rest)`` (a deterministic function of ``r_b``) gives ``(u_b, w_b)``. Bones of zero length
(some HDM05 hip joints) have angle 0 and pass their parent's frame on.

Joint-angle limits: estimation, storage, loading
------------------------------------------------
``estimate_joint_angle_limits(data, skeleton, margin)`` takes clips (a ``ClipDataset``, a list of
:class:`~engine.data.Clip`, a ``WindowSet``, ``(..., V, 3)`` position arrays or ``(N, 3, T, V, M)`` model
inputs), sets each
rest direction to the mean observed direction, and takes per joint and per axis the observed minimum and
maximum widened by ``margin`` radians (default 5°), always including 0. The result is a
:class:`JointLimits`. Store it with the model or the dataset it came from, either

* as a JSON file beside it — ``save_limits_beside(limits, "model.pt")`` writes ``model.joint_limits.json``
  and ``load_limits_beside("model.pt")`` reads it back (``None`` when there is none); or
* inside a checkpoint's metadata — ``classifier.meta["joint_limits"] = limits.to_dict()`` before saving;
  :func:`find_joint_limits` looks at both (the sidecar first).

``JointLimits.save(path)`` / ``JointLimits.load(path)`` read and write ``.json`` or ``.npz`` at any path.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from engine.errors import AttackError, CheckpointError, SkeletonMismatchError
from engine.losses import temporal_derivative
from engine.skeletons import Skeleton

log = logging.getLogger(__name__)

__all__ = [
    "CleanReference",
    "DEFAULT_MARGIN",
    "LIMITS_SUFFIX",
    "JointLimits",
    "ManifoldProjector",
    "estimate_joint_angle_limits",
    "find_joint_limits",
    "joint_angles",
    "limits_path_beside",
    "load_limits_beside",
    "project_to_manifold",
    "save_limits_beside",
    "tangent_basis",
    "widen_limits",
]

DEFAULT_MARGIN = math.radians(5.0)
LIMITS_SUFFIX = ".joint_limits.json"
_FORMAT = "skelviz.joint_limits"
_VERSION = 1
_MIN_BONE = 1e-6  # metres: shorter bones have no direction
# Projection keeps angles this far (radians) inside their limits, so that angles recomputed from float32
# positions are still inside.
_INSIDE = 1e-4
# Swing magnitudes stay below π: beyond it the swing of the rebuilt direction would alias.
_MAX_SWING = math.pi - 1e-3


# -- joint limits -------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class JointLimits:
    """Per-bone rest directions and per-joint, per-axis angle limits (radians) for one skeleton.

    ``rest``: (B, 3) unit rest direction of each bone in its parent's frame. ``lower``/``upper``: (B, 2)
    limits of the two joint angles of each bone (bones in ``skeleton.bones`` order). ``frame_bones``: the two
    root bones defining the root frame, or ``None`` for the world frame. See the module docstring.
    """

    skeleton: Skeleton
    rest: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    frame_bones: tuple[int, int] | None
    margin: float = DEFAULT_MARGIN
    source: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        b = self.skeleton.num_bones
        for name in ("rest", "lower", "upper"):
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            want = (b, 3) if name == "rest" else (b, 2)
            if arr.shape != want:
                raise SkeletonMismatchError(
                    f"joint limits for skeleton {self.skeleton.name!r}: {name} has shape {arr.shape}, expected {want}"
                )
            object.__setattr__(self, name, arr)
        if self.frame_bones is not None:
            object.__setattr__(self, "frame_bones", (int(self.frame_bones[0]), int(self.frame_bones[1])))

    @cached_property
    def axes(self) -> np.ndarray:
        """(B, 2, 3): the tangent basis ``(u_b, w_b)`` of each rest direction (the joint-angle axes)."""
        axes = tangent_basis(self.rest)
        if self.frame_bones is not None:
            b = self.frame_bones[1]
            ez = np.array([0.0, 0.0, 1.0])
            axes[b] = [ez, np.cross(self.rest[b], ez)]
        return axes

    @cached_property
    def free(self) -> np.ndarray:
        """(B, 2) bool: which angles can move (the root-frame bones' are fixed by the frame definition)."""
        free = np.ones((self.skeleton.num_bones, 2), dtype=bool)
        if self.frame_bones is not None:
            a, b = self.frame_bones
            free[a] = False
            free[b, 1] = False
        return free

    def violation(self, angles, clean=None):
        """How far (radians, ≥ 0) each angle ``(..., T, B, 2)`` lies outside its limits.

        ``clean``: the joint angles ``(..., T, B, 2)`` of the clean motion each sequence was made from; its own
        range (over its frames) then counts as inside (see :func:`widen_limits`).
        """
        if isinstance(angles, torch.Tensor):
            lo = torch.as_tensor(self.lower, dtype=angles.dtype, device=angles.device)
            hi = torch.as_tensor(self.upper, dtype=angles.dtype, device=angles.device)
            if clean is not None:
                lo, hi = widen_limits(lo, hi, torch.as_tensor(clean, dtype=angles.dtype, device=angles.device))
            return torch.maximum(lo - angles, angles - hi).clamp_min(0)
        angles = np.asarray(angles)
        lo, hi = self.lower, self.upper
        if clean is not None:
            lo, hi = (t.numpy() for t in widen_limits(torch.as_tensor(lo), torch.as_tensor(hi),
                                                      torch.as_tensor(np.asarray(clean, dtype=np.float64))))
        return np.maximum(np.maximum(lo - angles, angles - hi), 0.0)

    # -- serialisation --------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain lists and numbers (JSON-able; fits in a checkpoint's ``meta`` under ``weights_only``)."""
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "angle_definition": "two-axis swing of each bone from its rest direction, in its parent bone's frame",
            "units": "radian",
            "skeleton": self.skeleton.to_dict(),
            "bones": list(self.skeleton.bone_names),
            "frame_bones": None if self.frame_bones is None else list(self.frame_bones),
            "margin": float(self.margin),
            "source": self.source,
            "rest": self.rest.tolist(),
            "lower": self.lower.tolist(),
            "upper": self.upper.tolist(),
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, d: dict) -> JointLimits:
        if d.get("format") != _FORMAT:
            raise CheckpointError(f"not a skelviz joint-limits record (format {d.get('format')!r})")
        if int(d.get("version", 0)) > _VERSION:
            raise CheckpointError(
                f"joint limits of version {d['version']} are newer than this skelviz reads ({_VERSION}); update skelviz"
            )
        fb = d.get("frame_bones")
        return cls(
            skeleton=Skeleton.from_dict(d["skeleton"]),
            rest=np.asarray(d["rest"], dtype=np.float64),
            lower=np.asarray(d["lower"], dtype=np.float64),
            upper=np.asarray(d["upper"], dtype=np.float64),
            frame_bones=None if fb is None else (int(fb[0]), int(fb[1])),
            margin=float(d.get("margin", DEFAULT_MARGIN)),
            source=str(d.get("source", "")),
            extra=dict(d.get("extra", {})),
        )

    def save(self, path: str | Path) -> Path:
        """Write ``.json`` (readable) or ``.npz`` (the same record, JSON inside an array)."""
        path = Path(path)
        text = json.dumps(self.to_dict(), indent=1)
        if path.suffix == ".npz":
            np.savez(path, joint_limits=np.array(text))
        else:
            path.write_text(text, encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> JointLimits:
        path = Path(path)
        try:
            if path.suffix == ".npz":
                with np.load(path, allow_pickle=False) as f:
                    text = str(f["joint_limits"])
            else:
                text = path.read_text(encoding="utf-8")
            return cls.from_dict(json.loads(text))
        except (OSError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{path}: cannot read joint limits ({exc})") from exc


def tangent_basis(rest: np.ndarray) -> np.ndarray:
    """(B, 3) unit directions → (B, 2, 3) orthonormal ``(u, w)`` perpendicular to each, ``w = r × u``.

    ``u`` is the coordinate axis least aligned with ``r`` (lowest index on ties), made perpendicular to it.
    """
    rest = np.asarray(rest, dtype=np.float64)
    k = np.argmin(np.abs(rest), axis=-1)
    e = np.eye(3)[k]
    u = e - np.sum(e * rest, axis=-1, keepdims=True) * rest
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    w = np.cross(rest, u)
    return np.stack([u, w], axis=-2)


def widen_limits(lower: torch.Tensor, upper: torch.Tensor, clean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sequence limits ``(..., 1, B, 2)``: ``lower``/``upper`` ``(B, 2)`` widened to include the range of the
    clean joint angles ``(..., T, B, 2)`` over their frames.

    The clean motion is natural by definition, so the manifold of an attack on it must contain it; limits
    estimated from other data (other performers, other takes) can leave parts of it outside, and clamping to them
    would move the clean motion itself (seen: up to 3.5 m over a 60-frame cmu8 test window).
    """
    return torch.minimum(lower, clean.amin(-3, keepdim=True)), torch.maximum(upper, clean.amax(-3, keepdim=True))


def limits_path_beside(path: str | Path) -> Path:
    """Where the joint limits of a model or dataset file live: ``name.pt`` → ``name.joint_limits.json``."""
    path = Path(path)
    return path.with_name(path.stem + LIMITS_SUFFIX)


def save_limits_beside(limits: JointLimits, path: str | Path) -> Path:
    """Save ``limits`` as the JSON sidecar of the model or dataset at ``path``."""
    return limits.save(limits_path_beside(path))


def load_limits_beside(path: str | Path) -> JointLimits | None:
    """The joint limits saved beside a model or dataset file, or ``None`` when there are none."""
    sidecar = limits_path_beside(path)
    return JointLimits.load(sidecar) if sidecar.is_file() else None


def find_joint_limits(path: str | Path | None = None, model=None) -> JointLimits | None:
    """The limits stored with a model: a sidecar beside ``path``, else ``model.meta["joint_limits"]``."""
    if path is not None:
        found = load_limits_beside(path)
        if found is not None:
            return found
    meta = getattr(model, "meta", None)
    if isinstance(meta, dict) and meta.get("joint_limits"):
        return JointLimits.from_dict(meta["joint_limits"])
    return None


# -- kinematics on the tree (batched torch, any leading dims) -----------------------------------------------
def _normalise(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _frame_from_two(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Gram–Schmidt frame (columns x, y, z) with x along ``a`` and y in the plane of ``a`` and ``b``."""
    x = _normalise(a)
    y = _normalise(b - (b * x).sum(-1, keepdim=True) * x)
    z = torch.linalg.cross(x, y, dim=-1)
    return torch.stack([x, y, z], dim=-1)


def _exp_so3(omega: torch.Tensor) -> torch.Tensor:
    """Rodrigues for rotation vectors ``(..., 3)`` → ``(..., 3, 3)``, written for the projection's inner loop.

    ``engine.kinematics.axis_angle_to_matrix`` normalises the axis first, which gives a zero gradient at the
    zero rotation (a bone exactly at rest could never leave it), and takes more kernels per call, which
    matters in a loop run hundreds of times per projection. Here ``θ = sqrt(|ω|² + ε²)`` with ``ε = 1e-6``
    keeps ``sin θ / θ`` and ``(1 − cos θ) / θ²`` finite and exact to float64 rounding at and near zero.
    """
    t2 = omega.square().sum(-1)[..., None, None] + 1e-12
    t = t2.sqrt()
    cos_t = t.cos()
    x, y, z = omega.unbind(-1)
    zero = torch.zeros_like(x)
    K = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*omega.shape, 3)
    eye = torch.eye(3, dtype=omega.dtype, device=omega.device)
    return cos_t * eye + (t.sin() / t) * K + ((1 - cos_t) / t2) * (omega[..., :, None] * omega[..., None, :])


def _swing_basis(axes: torch.Tensor) -> torch.Tensor:
    """(B, 2, 3) joint-angle axes ``(u, w)`` → (B, 6, 9): the flattened matrices ``I, [u]×, [w]×, u uᵀ, u wᵀ + w uᵀ,
    w wᵀ``, whose combination gives the rotation of a swing (see :func:`_exp_swing`)."""
    def skew(v):
        x, y, z = v.unbind(-1)
        zero = torch.zeros_like(x)
        return torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*v.shape, 3)

    u, w = axes[:, 0], axes[:, 1]
    eye = torch.eye(3, dtype=axes.dtype, device=axes.device).expand(len(axes), 3, 3)
    outer = lambda a, b: a[:, :, None] * b[:, None, :]  # noqa: E731
    mats = [eye, skew(u), skew(w), outer(u, u), outer(u, w) + outer(w, u), outer(w, w)]
    return torch.stack(mats, dim=1).reshape(len(axes), 6, 9)


def _exp_swing(angles: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """:func:`_exp_so3` of the swings ``ω = a₀ u + a₁ w`` of joint angles ``(..., B, 2)`` with orthonormal axes:
    Rodrigues' ``cos θ I + (sin θ / θ) [ω]× + ((1 − cos θ) / θ²) ω ωᵀ`` expanded over the constant ``basis``
    (:func:`_swing_basis`), so that the only per-pose work is on six coefficients per bone (one batched product
    instead of 3×3 tensors built per pose; the forward kinematics' hottest part in the projection's loop)."""
    a0, a1 = angles.unbind(-1)
    t2 = a0 * a0 + a1 * a1 + 1e-12  # |ω|² + ε², as _exp_so3
    t = t2.sqrt()
    cos_t = t.cos()
    s, c = t.sin() / t, (1 - cos_t) / t2
    coef = torch.stack([cos_t, s * a0, s * a1, c * a0 * a0, c * a0 * a1, c * a1 * a1], dim=-1)  # (..., B, 6)
    return torch.einsum("...bk,bkn->...bn", coef, basis).reshape(*angles.shape[:-1], 3, 3)


def _swing(rest: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """Rotation vector of the minimal rotation taking unit ``rest`` to unit ``direction`` (perpendicular to rest)."""
    n = torch.linalg.cross(rest.expand_as(direction), direction, dim=-1)
    s = n.norm(dim=-1, keepdim=True)
    c = (rest * direction).sum(-1, keepdim=True)
    theta = torch.atan2(s, c)
    scale = torch.where(s > 1e-12, theta / s.clamp_min(1e-12), torch.ones_like(s))
    return n * scale


class _Tree:
    """Forward and inverse kinematics in the joint-angle parametrisation of :class:`JointLimits`.

    Parameters of a pose sequence ``(..., V, 3)``: root position ``(..., 3)``, root frame as two vectors
    ``(..., 6)`` (Gram–Schmidt gives the rotation, so the optimiser needs no constraint), joint angles
    ``(..., B, 2)``; bone lengths ``(..., B)`` are given, not optimised.
    """

    def __init__(self, limits: JointLimits, device: torch.device, dtype: torch.dtype = torch.float64) -> None:
        sk = limits.skeleton
        self.limits = limits
        self.skeleton = sk
        self.dtype = dtype
        self.device = device
        t = lambda a: torch.tensor(np.asarray(a), dtype=dtype, device=device)  # noqa: E731 (a copy)
        self.rest = t(limits.rest)
        self.axes = t(limits.axes)
        self.free = torch.as_tensor(limits.free, device=device)
        self._fk_consts = None  # built at first use (after any rest-direction fit)
        # Clamp box: a little inside the limits, and fixed angles exactly 0.
        lo, hi = limits.lower.copy(), limits.upper.copy()
        room = (hi - lo) > 2 * _INSIDE
        lo[room] += _INSIDE
        hi[room] -= _INSIDE
        lo[~limits.free] = 0.0
        hi[~limits.free] = 0.0
        self.lo, self.hi = t(lo), t(hi)
        self.bone_parent = [int(p) for p in sk.bone_parents]
        self.bone_child = [int(c) for c in sk.bone_children]
        self.root = sk.root
        bone_of_joint = {c: b for b, c in enumerate(self.bone_child)}
        depth = sk.depth
        # Bones by depth. A bone's parent joint is the child of a bone one level up (or the root), so each level
        # only reads the level above: ``slot`` is the parent's position within that level (-1: the root).
        self.levels = []
        slot_of_joint = {self.root: -1}
        for d in range(1, int(depth.max()) + 1):
            bones = [bone_of_joint[j] for j in range(sk.num_joints) if depth[j] == d]
            slots = [slot_of_joint[self.bone_parent[b]] for b in bones]
            for k, b in enumerate(bones):
                slot_of_joint[self.bone_child[b]] = k
            self.levels.append(
                (
                    torch.as_tensor(bones, device=device),
                    torch.as_tensor(slots if d > 1 else [0] * len(bones), device=device),
                    torch.as_tensor([self.bone_parent[b] for b in bones], device=device),
                    torch.as_tensor([self.bone_child[b] for b in bones], device=device),
                )
            )
        bone_order = [b for lv in self.levels for b in lv[0].tolist()]
        self.bone_order = torch.as_tensor(bone_order, device=device)  # bones in level order
        self.bone_unpermute = torch.as_tensor(np.argsort(bone_order), device=device)
        order = [self.root] + [self.bone_child[b] for b in bone_order]
        self.unpermute = torch.as_tensor(np.argsort(order), device=device)  # level order -> joint order
        self.frame_bones = limits.frame_bones
        # ancestors[j, i]: 1 where the i-th bone in level order lies on the path from the root to joint j
        ancestors = np.zeros((sk.num_joints, len(bone_order)))
        level_index = {b: i for i, b in enumerate(bone_order)}
        for j in range(sk.num_joints):
            k = j
            while k != self.root:
                b = bone_of_joint[k]
                ancestors[j, level_index[b]] = 1.0
                k = self.bone_parent[b]
        self.ancestors = t(ancestors)

    def lengths(self, pos: torch.Tensor) -> torch.Tensor:
        par = torch.as_tensor(self.bone_parent, device=pos.device)
        ch = torch.as_tensor(self.bone_child, device=pos.device)
        return (pos.index_select(-2, ch) - pos.index_select(-2, par)).norm(dim=-1)

    def root_frame(self, pos: torch.Tensor) -> torch.Tensor:
        if self.frame_bones is None:
            eye = torch.eye(3, dtype=pos.dtype, device=pos.device)
            return eye.expand(*pos.shape[:-2], 3, 3)
        a, b = self.frame_bones
        r = pos[..., self.root, :]
        return _frame_from_two(pos[..., self.bone_child[a], :] - r, pos[..., self.bone_child[b], :] - r)

    def ik(
        self, pos: torch.Tensor, *, fit_rest: bool = False, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Positions ``(..., V, 3)`` → (root position, root 6-vector, joint angles ``(..., B, 2)``).

        ``fit_rest``: first set each bone's rest direction to its mean local direction over all of ``pos``
        (level by level, since a bone's local direction depends on its parent's rest direction).
        ``lengths``: the bone lengths ``(..., B)`` the angles will be used with (e.g. the clean clip's). A bone
        that is zero there gets angle 0, as :meth:`fk` gives it, even where ``pos`` stretched it a little:
        otherwise the arbitrary direction of that tiny bone would rotate every bone below it.
        """
        pos = pos.to(self.dtype)
        keep = None if lengths is None else (lengths > _MIN_BONE)[..., None].index_select(-2, self.bone_order)
        start = 0
        f0 = self.root_frame(pos)
        prev_frames = f0[..., None, :, :]
        angles = []
        for bones, slot, par, ch in self.levels:
            fp = prev_frames.index_select(-3, slot)  # (..., nb, 3, 3)
            vec = pos.index_select(-2, ch) - pos.index_select(-2, par)
            length = vec.norm(dim=-1, keepdim=True)
            ok = length > _MIN_BONE
            if keep is not None:
                ok = ok & keep[..., start : start + len(bones), :]
            start += len(bones)
            local = (fp.transpose(-1, -2) @ vec[..., None])[..., 0] / length.clamp_min(1e-12)
            if fit_rest:
                self._fit_rest(bones, local, ok)
            rest, axes = self.rest[bones], self.axes[bones]
            omega = torch.where(ok, _swing(rest, local), torch.zeros_like(local))
            ang = (omega[..., None, :] * axes).sum(-1)  # (..., nb, 2)
            angles.append(ang)
            prev_frames = fp @ _exp_so3((ang[..., None] * axes).sum(-2))
        angles = torch.cat(angles, dim=-2).index_select(-2, self.bone_unpermute)
        rot6 = torch.cat([f0[..., :, 0], f0[..., :, 1]], dim=-1)
        return pos[..., self.root, :].clone(), rot6, angles

    def nearest(self, pos: torch.Tensor, lengths: torch.Tensor, box=None, *, positions: bool = False):
        """Manifold parameters of a pose sequence close to ``pos`` ``(..., V, 3)``: bone lengths ``lengths``,
        angles inside ``box`` (default: the limits).

        Bone by bone down the tree, each bone points from its already placed parent joint towards the target
        position of its child, with its angles clamped in the frame its clamped parent really has. (Clamping
        after a plain :meth:`ik` would keep the children's local angles, so that clamping a short bone near the
        root swung everything below it.) A pose that is already on the manifold comes back unchanged.
        ``positions``: also return the joint positions ``(..., V, 3)`` built on the way down (the same point as
        :meth:`fk` of the parameters, without running it; float rounding differs).
        """
        pos = pos.to(self.dtype)
        lo, hi = (self.lo, self.hi) if box is None else box
        lo, hi = lo.index_select(-2, self.bone_order), hi.index_select(-2, self.bone_order)  # broadcast over frames
        keep = (lengths > _MIN_BONE)[..., None].index_select(-2, self.bone_order)
        ordered_lengths = lengths.index_select(-1, self.bone_order)
        f0 = self.root_frame(pos)
        prev_frames, prev_pos = f0[..., None, :, :], pos[..., self.root, None, :]
        angles, start, joints = [], 0, [prev_pos]
        for bones, slot, _, ch in self.levels:
            here = slice(start, start + len(bones))
            fp = prev_frames.index_select(-3, slot)
            pp = prev_pos.index_select(-2, slot)
            vec = pos.index_select(-2, ch) - pp
            length = vec.norm(dim=-1, keepdim=True)
            ok = (length > _MIN_BONE) & keep[..., here, :]
            local = (fp.transpose(-1, -2) @ vec[..., None])[..., 0] / length.clamp_min(1e-12)
            rest, axes = self.rest[bones], self.axes[bones]
            omega = torch.where(ok, _swing(rest, local), torch.zeros_like(local))
            ang = (omega[..., None, :] * axes).sum(-1) * self.free[bones]
            ang = _clamp_angles(ang, lo[..., here, :], hi[..., here, :], keep[..., here, :])
            frames = fp @ _exp_so3((ang[..., None] * axes).sum(-2))
            direction = (frames * rest[:, None, :]).sum(-1)
            prev_pos = pp + ordered_lengths[..., here, None] * direction
            prev_frames = frames
            angles.append(ang)
            joints.append(prev_pos)
            start = here.stop
        angles = torch.cat(angles, dim=-2).index_select(-2, self.bone_unpermute)
        rot6 = torch.cat([f0[..., :, 0], f0[..., :, 1]], dim=-1)
        params = (pos[..., self.root, :].clone(), rot6, angles)
        if positions:
            return params, torch.cat(joints, dim=-2).index_select(-2, self.unpermute)
        return params

    def _fit_rest(self, bones: torch.Tensor, local: torch.Tensor, ok: torch.Tensor) -> None:
        mean = (local * ok).reshape(-1, *local.shape[-2:]).sum(0)
        if self.frame_bones is not None:
            mean[bones == self.frame_bones[1], 2] = 0.0  # exactly in the root frame's x–y plane
        norm = mean.norm(dim=-1, keepdim=True)
        fallback = torch.tensor([1.0, 0.0, 0.0], dtype=mean.dtype, device=mean.device)
        self.rest[bones] = torch.where(norm > 1e-9, mean / norm.clamp_min(1e-12), fallback)
        limits = JointLimits(self.skeleton, self.rest.cpu().numpy(), self.limits.lower, self.limits.upper, self.frame_bones)
        self.axes = torch.as_tensor(limits.axes, dtype=self.dtype, device=self.device)
        self._fk_consts = None

    def fk(self, root: torch.Tensor, rot6: torch.Tensor, angles: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(root position, root 6-vector, joint angles, bone lengths) → positions ``(..., V, 3)`` (differentiable).

        Written for the projection's inner loop (hundreds of calls per projection, forward and backward): every
        bone's local rotation comes from one Rodrigues evaluation over constant per-bone matrices
        (:func:`_exp_swing`), only the frames' chain runs level by level (one
        matrix product per level), and every joint's position is the root plus the sum of its ancestors' bone
        vectors (one product with the ancestor matrix).
        """
        if self.frame_bones is None:
            f0 = torch.eye(3, dtype=root.dtype, device=root.device).expand(*root.shape[:-1], 3, 3)
        else:
            f0 = _frame_from_two(rot6[..., :3], rot6[..., 3:])
        order = self.bone_order
        if self._fk_consts is None:  # in level order: each bone's rotation basis and rest direction
            self._fk_consts = (_swing_basis(self.axes.index_select(0, order)), self.rest.index_select(0, order))
        basis, rest = self._fk_consts
        # Fixed angles are 0, and so are those of zero-length bones (their direction is undefined).
        angles = (angles * self.free * (lengths > _MIN_BONE)[..., None]).index_select(-2, order)  # level order
        local = _exp_swing(angles, basis)  # (..., B, 3, 3)
        frames, prev, start = [], f0[..., None, :, :], 0
        for bones, slot, _, _ in self.levels:
            n = len(bones)
            prev = prev.index_select(-3, slot) @ local[..., start : start + n, :, :]
            frames.append(prev)
            start += n
        direction = (torch.cat(frames, dim=-3) @ rest[:, :, None])[..., 0]
        offsets = lengths.index_select(-1, order)[..., None] * direction  # (..., B, 3) bone vectors
        return root[..., None, :] + self.ancestors @ offsets

    def box(self, clean_angles: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The clamp box: the limits (a little inside), widened by the clean angles' own range if given."""
        if clean_angles is None:
            return self.lo, self.hi
        lo, hi = widen_limits(self.lo, self.hi, clean_angles)
        return lo * self.free, hi * self.free

    def clamp_(self, angles: torch.Tensor, lengths: torch.Tensor | None = None, box=None) -> torch.Tensor:
        """Put angles inside their (slightly shrunk) limits, or ``box`` = (lower, upper), and swing magnitudes
        below π, in place."""
        lo, hi = (self.lo, self.hi) if box is None else box
        keep = None if lengths is None else (lengths > _MIN_BONE)[..., None]
        return angles.copy_(_clamp_angles(angles, lo, hi, keep))


def _clamp_angles(angles: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """Angles ``(..., B, 2)`` inside ``[lo, hi]``, swing magnitudes below π, and 0 where ``keep`` is False."""
    angles = torch.minimum(torch.maximum(angles, lo), hi)
    norm = angles.norm(dim=-1, keepdim=True)
    angles = angles * torch.where(norm > _MAX_SWING, _MAX_SWING / norm.clamp_min(1e-12), torch.ones_like(norm))
    return angles if keep is None else angles * keep


# -- public joint-angle functions ---------------------------------------------------------------------------
def _as_positions(data, skeleton: Skeleton) -> list[np.ndarray]:
    """Every accepted input form → a list of (F, V, 3) float64 arrays (all-zero padding frames dropped)."""
    out: list[np.ndarray] = []

    def add(arr) -> None:
        if isinstance(arr, torch.Tensor):
            arr = arr.detach().cpu().numpy()
        arr = np.asarray(arr, dtype=np.float64)
        V = skeleton.num_joints
        if arr.ndim == 5 and arr.shape[1] == 3 and arr.shape[3] == V:  # (N, 3, T, V, M) model input
            arr = np.moveaxis(arr, 1, -1)  # (N, T, V, M, 3)
            arr = np.moveaxis(arr, 3, 1)  # (N, M, T, V, 3)
        skeleton.check_positions(arr, "joint-limit data")
        arr = arr.reshape(-1, V, 3)
        keep = np.abs(arr).reshape(len(arr), -1).max(axis=1) > 0
        out.append(arr[keep])

    if isinstance(data, (np.ndarray, torch.Tensor)):
        add(data)
    elif hasattr(data, "bodies") and hasattr(data, "skeleton"):  # a Clip
        add(data.bodies)
    elif hasattr(data, "x") and hasattr(data, "skeleton"):  # a WindowSet: (N, 3, T, V, M) model inputs
        add(data.x)
    elif isinstance(data, Iterable):
        for item in data:
            if hasattr(item, "bodies"):
                add(item.bodies)
            elif isinstance(item, tuple):  # (clip, label) pairs
                add(item[0].bodies if hasattr(item[0], "bodies") else item[0])
            else:
                add(item)
    else:
        raise TypeError(f"cannot read positions from {type(data).__name__}")
    if not out or sum(len(a) for a in out) == 0:
        raise SkeletonMismatchError("no frames to estimate joint-angle limits from")
    return out


def estimate_joint_angle_limits(
    data, skeleton: Skeleton, margin: float = DEFAULT_MARGIN, *, source: str = ""
) -> JointLimits:
    """Rest directions and per-joint, per-axis angle limits from real motion (see the module docstring).

    ``data``: a :class:`~engine.data.ClipDataset` or any iterable of clips, a
    :class:`~engine.data.WindowSet`, ``(..., V, 3)`` positions in metres or ``(N, 3, T, V, M)`` model inputs. ``margin`` (radians) widens every observed range on both sides; every
    range contains 0 (the rest direction) so that the projection always has a feasible point.
    """
    frames = np.concatenate(_as_positions(data, skeleton), axis=0)
    pos = torch.as_tensor(frames, dtype=torch.float64)
    B = skeleton.num_bones
    root = skeleton.root
    root_bones = [b for b in range(B) if int(skeleton.bone_parents[b]) == root]
    lengths = np.linalg.norm(frames[:, skeleton.bone_children] - frames[:, skeleton.bone_parents], axis=-1)
    usable = [b for b in root_bones if np.median(lengths[:, b]) > _MIN_BONE]
    frame_bones = None
    if len(usable) >= 2:
        dirs = {b: frames[:, skeleton.bone_children[b]] - frames[:, root] for b in usable}
        dirs = {b: d / np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-12) for b, d in dirs.items()}
        pairs = [(a, b) for i, a in enumerate(usable) for b in usable[i + 1 :]]
        frame_bones = min(pairs, key=lambda p: float(np.mean(np.abs(np.sum(dirs[p[0]] * dirs[p[1]], -1)))))
    provisional = JointLimits(skeleton, np.tile([1.0, 0.0, 0.0], (B, 1)), np.zeros((B, 2)), np.zeros((B, 2)), frame_bones)
    tree = _Tree(provisional, torch.device("cpu"))
    angles = tree.ik(pos, fit_rest=True)[2].numpy()
    rest = tree.rest.numpy()
    valid = lengths > _MIN_BONE
    lower = np.where(valid[..., None], angles, np.inf).min(axis=0)
    upper = np.where(valid[..., None], angles, -np.inf).max(axis=0)
    lower = np.minimum(np.where(np.isfinite(lower), lower, 0.0), 0.0) - margin
    upper = np.maximum(np.where(np.isfinite(upper), upper, 0.0), 0.0) + margin
    if frame_bones is not None:
        # The second frame bone opens in the x–y plane; keep it strictly between the x axis and its opposite so
        # the Gram–Schmidt frame cannot flip.
        b = frame_bones[1]
        alpha0 = math.atan2(rest[b, 1], rest[b, 0])
        lower[b, 0] = max(lower[b, 0], 0.05 - alpha0)
        upper[b, 0] = min(upper[b, 0], math.pi - 0.05 - alpha0)
    return JointLimits(
        skeleton,
        rest,
        lower,
        upper,
        frame_bones,
        float(margin),
        source,
        {"frames": int(len(frames))},
    )


def joint_angles(positions, limits: JointLimits):
    """Joint angles (radians) of positions ``(..., V, 3)`` → ``(..., B, 2)``; numpy in, numpy out.

    Defined in the module docstring; ``limits`` supplies the rest directions and the root frame's bones.
    """
    limits.skeleton.check_positions(positions)
    if isinstance(positions, torch.Tensor):
        tree = _Tree(limits, positions.device)
        with torch.no_grad():
            return tree.ik(positions.detach())[2].to(positions.dtype if positions.is_floating_point() else torch.float64)
    tree = _Tree(limits, torch.device("cpu"))
    with torch.no_grad():
        return tree.ik(torch.as_tensor(np.asarray(positions, dtype=np.float64)))[2].numpy()


# -- clips <-> bodies ---------------------------------------------------------------------------------------
def _bodies(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, T, V, M) → (N, M, T, V, 3)."""
    return x.permute(0, 4, 2, 3, 1)


def _clips(b: torch.Tensor) -> torch.Tensor:
    """(N, M, T, V, 3) → (N, 3, T, V, M)."""
    return b.permute(0, 4, 2, 3, 1)


# -- projection ---------------------------------------------------------------------------------------------
DEFAULT_STEPS = 100
DEFAULT_LR = 0.01


@dataclass(frozen=True)
class CleanReference:
    """Per clean clip: bone lengths ``(N, M, T, B)`` and the clamp box ``lower``/``upper`` ``(N, M, 1, B, 2)``."""

    lengths: torch.Tensor
    lower: torch.Tensor
    upper: torch.Tensor

    def __getitem__(self, idx) -> CleanReference:
        return CleanReference(self.lengths[idx], self.lower[idx], self.upper[idx])


class ManifoldProjector:
    """Batched projection onto BASAR's manifold of a clean clip, on one device (see the module docstring).

    ``accel_weight`` is ``w`` in ``‖x̃ − x′‖² + w ‖ẍ̃ − ẍ‖²`` (default 1.0, the BASAR code's ``--w``);
    ``steps``/``lr`` drive projected Adam over root positions, root frames and joint angles, started from the
    exact joint angles of ``x′`` clamped into the limits.
    """

    def __init__(
        self,
        limits: JointLimits,
        device: torch.device | str = "cpu",
        *,
        accel_weight: float = 1.0,
        steps: int = DEFAULT_STEPS,
        lr: float = DEFAULT_LR,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        if accel_weight < 0:
            raise AttackError(f"accel_weight must be >= 0, got {accel_weight}")
        self.limits = limits
        self.device = torch.device(device)
        self.dtype = dtype
        self.tree = _Tree(limits, self.device, dtype)
        self.accel_weight = float(accel_weight)
        self.steps = int(steps)
        self.lr = float(lr)

    def _check(self, adversarial: torch.Tensor, clean: torch.Tensor) -> None:
        if adversarial.shape != clean.shape or adversarial.ndim != 5 or adversarial.shape[1] != 3:
            raise AttackError(
                f"projection needs matching (N, 3, T, V, M) clips, got {tuple(adversarial.shape)} and "
                f"{tuple(clean.shape)}"
            )
        if adversarial.shape[3] != self.limits.skeleton.num_joints:
            raise SkeletonMismatchError(
                f"clips have {adversarial.shape[3]} joints but the joint limits are for skeleton "
                f"{self.limits.skeleton.name!r} ({self.limits.skeleton.num_joints} joints)"
            )

    def reference(self, clean: torch.Tensor) -> CleanReference:
        """What the manifold of each clean clip needs, computed once: bone lengths and the clamp box (the limits
        widened by the clip's own angles). Index it like the clips (``ref[idx]``) and pass it as ``ref=`` to
        :meth:`params`, :meth:`nearest` and :meth:`project` to save recomputing it on every call."""
        with torch.no_grad():
            b = _bodies(clean).to(self.device, self.dtype)
            lengths = self.tree.lengths(b)
            lo, hi = self.tree.box(self.tree.ik(b, lengths=lengths)[2])
        return CleanReference(lengths, lo, hi)

    def params(self, clips: torch.Tensor, clean: torch.Tensor, ref: CleanReference | None = None):
        """Manifold parameters (root, root 6-vector, angles) of the point of the manifold of ``clean`` nearest
        ``clips`` (:meth:`_Tree.nearest`: clean bone lengths, angles inside the limits widened by the clean
        clip's own range), and the clean bone lengths. ``ref``: :meth:`reference` of ``clean``."""
        self._check(clips, clean)
        ref = self.reference(clean) if ref is None else ref
        with torch.no_grad():
            params = self.tree.nearest(_bodies(clips).to(self.device, self.dtype), ref.lengths, (ref.lower, ref.upper))
        return params, ref.lengths

    def positions(self, params, lengths: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Clips (N, 3, T, V, M) from manifold parameters (always on the manifold)."""
        with torch.no_grad():
            return _clips(self.tree.fk(*params, lengths)).to(dtype)

    def nearest(self, adversarial: torch.Tensor, clean: torch.Tensor, ref: CleanReference | None = None, *,
                direct: bool = False) -> torch.Tensor:
        """The cheap projection (``w = 0``, no optimisation): clean bone lengths, angles clamped to the limits
        (widened by the clean clip's own range), bone by bone down the tree (:meth:`_Tree.nearest`).

        ``direct``: return the positions built on the way down the tree instead of running :meth:`positions` on
        the parameters: the same point, about a third cheaper, rounded differently (~1e-7 m)."""
        if not direct:
            params, lengths = self.params(adversarial, clean, ref)
            return self.positions(params, lengths, adversarial.dtype)
        self._check(adversarial, clean)
        ref = self.reference(clean) if ref is None else ref
        with torch.no_grad():
            _, pos = self.tree.nearest(_bodies(adversarial).to(self.device, self.dtype), ref.lengths,
                                       (ref.lower, ref.upper), positions=True)
        return _clips(pos).to(adversarial.dtype)

    def project(
        self,
        adversarial: torch.Tensor,
        clean: torch.Tensor,
        accel_weight: float | torch.Tensor | None = None,
        *,
        init: torch.Tensor | None = None,
        steps: int | None = None,
        ref: CleanReference | None = None,
    ) -> torch.Tensor:
        """Project ``adversarial`` (N, 3, T, V, M) onto the manifold of ``clean``; same dtype and device.

        ``accel_weight``: one ``w`` for all clips, or a tensor of N, one per clip (every clip is its own problem,
        so N clips projected with N weights in one call give what N separate calls give).

        Each body starts from the best (lowest objective) of the feasible points: the joint angles of ``x′``
        clamped into the limits, those of the clean clip (clamped too, in case it lies outside limits
        estimated from other data) and, if given, those of ``init`` (e.g. an earlier projection); projected
        Adam with a cosine-decaying step then descends from there for ``steps`` (default: the projector's).
        """
        steps = self.steps if steps is None else int(steps)
        self._check(adversarial, clean)
        dev = self.device
        target = _bodies(adversarial).to(dev, self.dtype)
        clean_b = _bodies(clean).to(dev, self.dtype)
        if isinstance(accel_weight, torch.Tensor):
            if accel_weight.shape != adversarial.shape[:1]:
                raise AttackError(f"per-clip accel_weight needs {adversarial.shape[0]} values, got "
                                  f"{tuple(accel_weight.shape)}")
            # (N,) per clip → (N, 1) per body; no host read of the values (a zero weight just adds zero).
            w = accel_weight.to(dev, self.dtype)[:, None]
            use_accel = target.shape[2] > 2
        else:
            w = self.accel_weight if accel_weight is None else float(accel_weight)
            use_accel = w > 0 and target.shape[2] > 2
        clean_acc = temporal_derivative(clean_b, 2, 1.0, dim=2) if use_accel else None
        ref = self.reference(clean) if ref is None else ref
        (root, rot6, ang), lengths = self.params(adversarial, clean, ref)
        clean_params, _ = self.params(clean, clean, ref)
        box = (ref.lower, ref.upper)

        def objective(params) -> torch.Tensor:
            x = self.tree.fk(*params, lengths)
            loss = (x - target).square().sum(dim=(2, 3, 4))
            if use_accel:
                acc = temporal_derivative(x, 2, 1.0, dim=2)
                loss = loss + w * (acc - clean_acc).square().sum(dim=(2, 3, 4))
            return loss  # (N, M): every body is its own problem

        def pick(mask, a, b):
            return torch.where(mask.reshape(*mask.shape, *([1] * (a.ndim - 2))), a, b)

        params = (root, rot6, ang)
        with torch.no_grad():
            best_loss = objective(params)
            for other in [clean_params] + ([self.params(init, clean, ref)[0]] if init is not None else []):
                loss = objective(other)
                better = loss < best_loss
                best_loss = torch.where(better, loss, best_loss)
                params = tuple(pick(better, o, p) for o, p in zip(other, params))
        params = [p.clone().requires_grad_(True) for p in params]
        ang = params[2]
        best = [p.detach().clone() for p in params]
        best_loss = torch.full(target.shape[:2], float("inf"), dtype=self.dtype, device=dev)
        # Adam (torch.optim.Adam's update: betas 0.9/0.999, eps 1e-8, bias-corrected) with a cosine-decaying step
        # (CosineAnnealingLR's closed form, down to lr/20), written out: the optimizer objects cost more than
        # the update itself at these sizes, and their first use imports torch's compiler stack (seconds).
        b1, b2, eps, lr_min = 0.9, 0.999, 1e-8, self.lr / 20
        m = [torch.zeros_like(p) for p in params]
        v = [torch.zeros_like(p) for p in params]
        with torch.enable_grad():
            for step in range(steps + 1):
                loss = objective(params)
                with torch.no_grad():
                    better = loss < best_loss
                    best_loss = torch.where(better, loss, best_loss)
                    for b, p in zip(best, params):
                        b.copy_(pick(better, p, b))
                if step == steps:
                    break
                grads = torch.autograd.grad(loss.sum(), params, allow_unused=True)  # no root frame: rot6 unused
                lr = lr_min + (self.lr - lr_min) * (1 + math.cos(math.pi * step / max(steps, 1))) / 2
                t = step + 1
                step_size, root_bc2 = lr / (1 - b1**t), math.sqrt(1 - b2**t)
                with torch.no_grad():
                    for p, g, m_, v_ in zip(params, grads, m, v):
                        if g is None:  # as torch's Adam: a parameter without a gradient is left alone
                            continue
                        m_.lerp_(g, 1 - b1)
                        v_.mul_(b2).addcmul_(g, g, value=1 - b2)
                        p.addcdiv_(m_, v_.sqrt().div_(root_bc2).add_(eps), value=-step_size)
                    self.tree.clamp_(ang, lengths, box)
        return self.positions(best, lengths, adversarial.dtype).to(adversarial.device)


def project_to_manifold(
    adversarial: torch.Tensor,
    clean: torch.Tensor,
    limits: JointLimits,
    *,
    accel_weight: float = 1.0,
    steps: int = DEFAULT_STEPS,
    lr: float = DEFAULT_LR,
) -> torch.Tensor:
    """One-call form of :meth:`ManifoldProjector.project` on ``adversarial``'s device."""
    return ManifoldProjector(limits, adversarial.device, accel_weight=accel_weight, steps=steps, lr=lr).project(
        adversarial, clean
    )
