"""How far an adversarial motion is from its clean original, and how often attacks succeed.

Every function takes clean and adversarial clips as numpy arrays or torch tensors in either layout:

* the classifiers' ``(N, 3, T, V, M)`` (recognised by five dimensions with 3 on axis 1), or
* the clips' ``(..., T, V, 3)`` (``(T, V, 3)`` one clip, ``(M, T, V, 3)`` its performers, ``(N, M, T, V, 3)``).

Internally everything is brought to ``(..., T, V, 3)`` (model inputs become ``(N, M, T, V, 3)``) and computed
in float64 with torch, vectorised over all leading axes. Per-frame results keep the leading axes and come back
as the input's type (numpy in, numpy out; tensors stay on their device). :func:`summary` returns plain floats
for the CLI, the app and the studies.

Definitions (positions in metres; ``fps`` the clips' frame rate):

* **joint displacement** ``d[t, v] = ‖x̂[t, v] − x[t, v]‖₂``; **L2 per joint**: its mean over frames;
  **L∞ per joint**: its maximum over frames (the worst frame's Euclidean displacement).
* **bone-length deviation**: ``|l̂ − l|`` per bone and frame (metres), and relative ``|l̂ − l| / l``. Bones
  whose clean length is below ``min_bone_length`` (default 1 cm; hdm05_25 has zero-length LHipJoint/RHipJoint
  bones in some data) have no meaningful relative change: their relative deviation is NaN and summaries skip
  them (their absolute deviation is still counted).
* **velocity / acceleration / jerk deviation**: ``‖Dⁿx̂ − Dⁿx‖₂`` per joint and frame for n = 1, 2, 3
  (m/s, m/s², m/s³), derivatives from :func:`engine.losses.temporal_derivative` with ``dt = 1 / fps``.
* **joint-angle violations**: how far (radians) each joint angle of the adversarial clip lies outside limits
  estimated from a dataset (:func:`engine.attacks.manifold.estimate_joint_angle_limits`, the one implementation of
  joint angles in skelviz), and the fraction of (frame, angle) pairs outside.
* **foot skating**: horizontal speed (m/s) of each foot joint in the frames where it is in ground contact,
  contact meaning its height is within ``contact_height`` (default 5 cm) of the clip's lowest foot height
  (heights along the skeleton's up axis, so a clip need not stand on y = 0). Reported for the adversarial
  clip and as the increase over the clean clip.
* **concentration**: the share of the summed joint displacement ``Σ_t Σ_v d[t, v]`` carried by the
  most-perturbed joint (``top_joint_share``; ``1/V`` when spread evenly) and frame (``top_frame_share``).
* **success rate**: the fraction of successful samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from engine.errors import ParameterError
from engine.losses import temporal_derivative
from engine.skeletons import Skeleton

__all__ = [
    "as_positions",
    "success_rate",
    "joint_displacement",
    "l2_per_joint",
    "linf_per_joint",
    "bone_length_deviation",
    "derivative_deviation",
    "velocity_deviation",
    "acceleration_deviation",
    "jerk_deviation",
    "joint_angle_violations",
    "foot_joints",
    "foot_skating",
    "summary",
    "per_sample_summary",
    "DEFAULT_MIN_BONE_LENGTH",
    "DEFAULT_CONTACT_HEIGHT",
]

DEFAULT_MIN_BONE_LENGTH = 0.01  # metres
DEFAULT_CONTACT_HEIGHT = 0.05  # metres
_T_AXIS = -3  # time axis of (..., T, V, 3)


def as_positions(x) -> torch.Tensor:
    """``(N, 3, T, V, M)`` model input or ``(..., T, V, 3)`` positions → float64 tensor ``(..., T, V, 3)``."""
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    t = t.detach().to(torch.float64)
    if t.ndim == 5 and t.shape[1] == 3:
        return t.permute(0, 4, 2, 3, 1)  # (N, M, T, V, 3)
    if t.ndim < 3 or t.shape[-1] != 3:
        raise ParameterError(f"expected (N, 3, T, V, M) or (..., T, V, 3) positions, got shape {tuple(t.shape)}")
    return t


def _like(value: torch.Tensor, like):
    """Return ``value`` as numpy when ``like`` was not a tensor."""
    if isinstance(like, torch.Tensor):
        return value
    return value.cpu().numpy()


def _pair(clean, adv) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = as_positions(clean), as_positions(adv)
    if a.shape != b.shape:
        raise ParameterError(f"clean {tuple(a.shape)} and adversarial {tuple(b.shape)} clips differ in shape")
    return a, b.to(a.device)


def success_rate(success) -> float:
    """Fraction of true entries of a boolean array/tensor (0.0 for an empty one)."""
    s = success if isinstance(success, torch.Tensor) else torch.as_tensor(np.asarray(success))
    return float(s.float().mean()) if s.numel() else 0.0


def joint_displacement(clean, adv):
    """Euclidean displacement of every joint in every frame: ``(..., T, V)`` metres."""
    a, b = _pair(clean, adv)
    return _like((b - a).norm(dim=-1), adv)


def l2_per_joint(clean, adv):
    """Mean over frames of each joint's displacement: ``(..., V)`` metres."""
    a, b = _pair(clean, adv)
    return _like((b - a).norm(dim=-1).mean(dim=-2), adv)


def linf_per_joint(clean, adv):
    """Largest displacement of each joint over the frames: ``(..., V)`` metres."""
    a, b = _pair(clean, adv)
    return _like((b - a).norm(dim=-1).amax(dim=-2), adv)


def _bone_lengths(p: torch.Tensor, skeleton: Skeleton) -> torch.Tensor:
    return skeleton.bone_lengths(p)  # (..., T, B)


def bone_length_deviation(clean, adv, skeleton: Skeleton, min_bone_length: float = DEFAULT_MIN_BONE_LENGTH):
    """``(absolute, relative)`` bone-length change per bone and frame, each ``(..., T, B)``.

    Relative values are NaN for bones shorter than ``min_bone_length`` in the clean clip (see module docstring).
    """
    a, b = _pair(clean, adv)
    skeleton.check_positions(a)
    la, lb = _bone_lengths(a, skeleton), _bone_lengths(b, skeleton)
    absolute = (lb - la).abs()
    relative = torch.where(la >= min_bone_length, absolute / la.clamp_min(min_bone_length), torch.nan)
    return _like(absolute, adv), _like(relative, adv)


def derivative_deviation(clean, adv, order: int, fps: float):
    """``‖Dⁿx̂ − Dⁿx‖₂`` per joint and frame: ``(..., T − n, V)`` in m/sⁿ (``order`` ≥ 1)."""
    a, b = _pair(clean, adv)
    if a.shape[_T_AXIS] <= order:
        return _like(a.new_zeros(a.shape[:-3] + (0, a.shape[-2])), adv)
    d = temporal_derivative(b - a, order, 1.0 / fps, dim=_T_AXIS)
    return _like(d.norm(dim=-1), adv)


def velocity_deviation(clean, adv, fps: float):
    return derivative_deviation(clean, adv, 1, fps)


def acceleration_deviation(clean, adv, fps: float):
    return derivative_deviation(clean, adv, 2, fps)


def jerk_deviation(clean, adv, fps: float):
    return derivative_deviation(clean, adv, 3, fps)


def joint_angle_violations(adv, limits, clean=None) -> dict:
    """Joint-angle range violations of ``adv`` against ``limits`` (an ``engine.attacks.manifold.JointLimits``).

    Returns ``{"excess": (..., T, B, 2) radians outside the limits (0 inside), "fraction": (...) share of
    (frame, bone, axis) entries outside, "max": (...) largest excess}``. Bones whose clean length (``clean``
    given, else ``adv``) is under 1 mm have no direction and are never counted. With ``clean`` given, the range
    of the clean motion's own angles (over its frames) counts as inside the limits.
    """
    from engine.attacks.manifold import joint_angles  # the single definition of joint angles

    b = as_positions(adv)
    angles = joint_angles(b, limits)  # (..., T, B, 2)
    ref = b if clean is None else as_positions(clean).to(b.device)
    # The clean motion's own angle range counts as inside (engine.attacks.manifold.widen_limits).
    excess = limits.violation(angles, clean=None if clean is None else joint_angles(ref, limits)).to(torch.float64)
    valid = (_bone_lengths(ref, limits.skeleton) > 1e-3)[..., None].to(excess.dtype)
    excess = excess * valid
    outside = (excess > 0).to(torch.float64)
    fraction = outside.flatten(-3).sum(-1) / valid.expand_as(excess).flatten(-3).sum(-1).clamp_min(1)
    return {
        "excess": _like(excess, adv),
        "fraction": _like(fraction, adv),
        "max": _like(excess.flatten(-3).amax(-1) if excess.numel() else excess.sum((-1, -2, -3)), adv),
    }


_FOOT_NAMES = ("foot", "toe", "ankle")


def foot_joints(skeleton: Skeleton) -> list[int]:
    """Joints whose names say foot, toe or ankle (e.g. LeftFoot/LeftToeBase, ntu25's ankles and feet)."""
    found = [i for i, n in enumerate(skeleton.joint_names) if any(k in n.lower() for k in _FOOT_NAMES)]
    return found or list(skeleton.leaves)


def _skating(p: torch.Tensor, skeleton: Skeleton, fps: float, feet: Sequence[int], contact_height: float):
    """Per-clip mean horizontal foot speed (m/s) over foot-frames in contact, and the contact fraction."""
    up = skeleton.up_index
    horizontal = [i for i in range(3) if i != up]
    f = p[..., list(feet), :]  # (..., T, F, 3)
    if f.shape[_T_AXIS] < 2:
        zero = f.new_zeros(f.shape[:-3])
        return zero, zero
    height = f[..., up]
    floor = height.flatten(-2).amin(-1)[..., None, None]
    contact = height - floor <= contact_height  # (..., T, F)
    both = contact[..., 1:, :] & contact[..., :-1, :]  # in contact at both ends of the step
    speed = (f[..., 1:, :, :][..., horizontal] - f[..., :-1, :, :][..., horizontal]).norm(dim=-1) * fps
    n = both.flatten(-2).sum(-1)
    mean = (speed * both).flatten(-2).sum(-1) / n.clamp_min(1)
    return mean, n.to(mean.dtype) / (both.shape[-2] * both.shape[-1])


def foot_skating(
    clean,
    adv,
    skeleton: Skeleton,
    fps: float,
    *,
    contact_height: float = DEFAULT_CONTACT_HEIGHT,
    feet: Sequence[int] | None = None,
) -> dict:
    """Foot skating: mean horizontal foot speed (m/s) while in ground contact (see module docstring).

    Returns ``{"adversarial": (...), "clean": (...), "increase": (...)}`` per clip (leading axes of the input).
    """
    a, b = _pair(clean, adv)
    feet = foot_joints(skeleton) if feet is None else list(feet)
    s_adv, _ = _skating(b, skeleton, fps, feet, contact_height)
    s_clean, _ = _skating(a, skeleton, fps, feet, contact_height)
    return {"adversarial": _like(s_adv, adv), "clean": _like(s_clean, adv), "increase": _like(s_adv - s_clean, adv)}


def _nanmean(t: torch.Tensor, dims) -> torch.Tensor:
    ok = ~torch.isnan(t)
    return torch.where(ok, t, 0).sum(dims) / ok.sum(dims).clamp_min(1)


def per_sample_summary(
    clean,
    adv,
    skeleton: Skeleton,
    fps: float,
    *,
    limits=None,
    min_bone_length: float = DEFAULT_MIN_BONE_LENGTH,
    contact_height: float = DEFAULT_CONTACT_HEIGHT,
) -> dict[str, np.ndarray]:
    """The :func:`summary` quantities for every sample of an ``(N, 3, T, V, M)`` batch: ``{name: (N,)}``.

    Performers that are absent (all-zero in the clean clip) are left out of every mean.
    """
    a, b = _pair(clean, adv)
    if a.ndim == 3:
        a, b = a[None, None], b[None, None]
    elif a.ndim == 4:
        a, b = a[None], b[None]
    # a, b: (N, M, T, V, 3)
    present = (a.abs().flatten(2).amax(-1) > 0).to(torch.float64)  # (N, M)
    present = torch.where(present.sum(1, keepdim=True) > 0, present, torch.ones_like(present))

    def over_bodies(per_body: torch.Tensor, reduce: str = "mean") -> torch.Tensor:
        """(N, M) → (N,) over the present performers."""
        if reduce == "max":
            return torch.where(present > 0, per_body, -math.inf).amax(1)
        return (per_body * present).sum(1) / present.sum(1)

    disp = (b - a).norm(dim=-1)  # (N, M, T, V)
    absolute = (_bone_lengths(b, skeleton) - _bone_lengths(a, skeleton)).abs()
    la = _bone_lengths(a, skeleton)
    rel = torch.where(la >= min_bone_length, absolute / la.clamp_min(min_bone_length), torch.nan)
    out = {
        "l2": over_bodies(disp.mean((-1, -2))),
        "linf": over_bodies(disp.flatten(2).amax(-1), "max"),
        "bone_length_dev": over_bodies(absolute.mean((-1, -2))),
        "bone_length_rel_dev": over_bodies(_nanmean(rel, (-1, -2))),
        "max_bone_length_rel_dev": over_bodies(torch.nan_to_num(rel, nan=0.0).flatten(2).amax(-1), "max"),
    }
    for name, order in (("velocity_dev", 1), ("accel_dev", 2), ("jerk_dev", 3)):
        if a.shape[-3] > order:
            d = temporal_derivative(b - a, order, 1.0 / fps, dim=_T_AXIS).norm(dim=-1)
            out[name] = over_bodies(d.mean((-1, -2)))
        else:
            out[name] = torch.zeros(a.shape[0], dtype=torch.float64)
    # Where the perturbation sits: the share of the summed joint displacement carried by the most-perturbed joint
    # (and frame). A result concentrated on one joint or one frame is suspect (validity diagnostics).
    total = (disp * present[:, :, None, None]).sum((1, 2, 3)).clamp_min(1e-12)
    per_joint = (disp * present[:, :, None, None]).sum((1, 2))  # (N, V)
    per_frame = (disp * present[:, :, None, None]).sum((1, 3))  # (N, T)
    moved = total > 1e-9
    out["top_joint_share"] = torch.where(moved, per_joint.amax(-1) / total, torch.zeros_like(total))
    out["top_joint"] = torch.where(moved, per_joint.argmax(-1).to(torch.float64), torch.full_like(total, -1.0))
    out["top_frame_share"] = torch.where(moved, per_frame.amax(-1) / total, torch.zeros_like(total))
    feet = foot_joints(skeleton)
    s_adv, _ = _skating(b, skeleton, fps, feet, contact_height)
    s_clean, _ = _skating(a, skeleton, fps, feet, contact_height)
    out["foot_skating"] = over_bodies(s_adv)
    out["foot_skating_increase"] = over_bodies(s_adv - s_clean)
    if limits is not None:
        v = joint_angle_violations(b, limits, clean=a)
        out["angle_violation_fraction"] = over_bodies(torch.as_tensor(v["fraction"]))
        out["angle_violation_max"] = over_bodies(torch.as_tensor(v["max"]), "max")
    return {k: v.cpu().numpy() for k, v in out.items()}


def summary(
    clean,
    adv,
    skeleton: Skeleton,
    fps: float,
    *,
    success=None,
    limits=None,
    min_bone_length: float = DEFAULT_MIN_BONE_LENGTH,
    contact_height: float = DEFAULT_CONTACT_HEIGHT,
) -> dict[str, float]:
    """Headline deviations of ``adv`` from ``clean`` as plain floats (means over samples).

    Keys: ``mean_l2`` / ``max_linf`` (m), ``mean_bone_length_dev`` (m), ``mean_bone_length_rel_dev`` and
    ``max_bone_length_rel_dev`` (fractions), ``mean_velocity_dev`` (m/s), ``mean_accel_dev`` (m/s²),
    ``mean_jerk_dev`` (m/s³), ``mean_foot_skating`` and ``mean_foot_skating_increase`` (m/s),
    ``mean_top_joint_share`` / ``mean_top_frame_share`` (the share of the summed joint displacement on the
    most-perturbed joint / frame; 1 means everything on one joint), with ``limits``
    ``mean_angle_violation_fraction`` and ``max_angle_violation`` (rad), with ``success`` ``success_rate``
    and ``n``. Accepts one clip or a batch (see the module docstring for layouts).
    """
    per = per_sample_summary(
        clean, adv, skeleton, fps, limits=limits, min_bone_length=min_bone_length, contact_height=contact_height
    )
    out = {
        "n": int(len(per["l2"])),
        "mean_l2": float(np.mean(per["l2"])),
        "max_linf": float(np.max(per["linf"])),
        "mean_bone_length_dev": float(np.mean(per["bone_length_dev"])),
        "mean_bone_length_rel_dev": float(np.mean(per["bone_length_rel_dev"])),
        "max_bone_length_rel_dev": float(np.max(per["max_bone_length_rel_dev"])),
        "mean_velocity_dev": float(np.mean(per["velocity_dev"])),
        "mean_accel_dev": float(np.mean(per["accel_dev"])),
        "mean_jerk_dev": float(np.mean(per["jerk_dev"])),
        "mean_foot_skating": float(np.mean(per["foot_skating"])),
        "mean_foot_skating_increase": float(np.mean(per["foot_skating_increase"])),
        "mean_top_joint_share": float(np.mean(per["top_joint_share"])),
        "mean_top_frame_share": float(np.mean(per["top_frame_share"])),
    }
    if limits is not None:
        out["mean_angle_violation_fraction"] = float(np.mean(per["angle_violation_fraction"]))
        out["max_angle_violation"] = float(np.max(per["angle_violation_max"]))
    if success is not None:
        out["success_rate"] = success_rate(success)
    return out
