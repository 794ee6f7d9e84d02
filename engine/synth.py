"""Procedural, labelled demo actions on the ``hdm05_25`` skeleton. The data this makes is SYNTHETIC.

Every clip is made the way motion capture is replayed: joint-angle curves (hips, knees, ankles, spine, neck,
shoulders, elbows, wrists) drive :func:`engine.kinematics.forward_kinematics` over a rest skeleton, so bone
lengths are exactly constant within a clip. The root follows from the feet: while a foot is on the ground
its lowest point (heel or ball) is pinned to the floor (``y = 0``) and does not slide, and when no foot is on
the ground (running, jumping) the body flies on a ballistic arc. Nothing here is captured from a person; the
clips are meant to look like the action they are labelled with and to be learnable, not to be biomechanics.

Variation, all deterministic by seed:

* per subject (:func:`make_subject`, from the subject id alone): stature 1.55–1.95 m, limb, trunk, shoulder
  and hip proportions (±3–5 %), tempo, movement amplitude, posture (lean, arm carriage), handedness;
* per take (the ``seed`` of :func:`generate_clip`): speed, amplitude, starting phase, style choices (which
  hand waves, which leg kicks, squat depth...), facing direction, position on the floor, smooth low-pass
  noise on every joint angle, small tempo drift, clip length.

Coordinates are metres, y up; at rest the body faces +z with its left side towards +x. ``hdm05_25`` has no
head joint: its top joint (``Neck1``, mid-neck) stands at about 0.88 × stature.

``python -m engine.synth --out assets/demo/demo_actions.h5 --per-class 10 --seed 0`` writes the shipped demo
dataset (see ``assets/demo/README.md``).
"""

from __future__ import annotations

import argparse
import logging
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.ndimage import gaussian_filter1d

from engine import skeletons
from engine.data import Clip, ClipDataset, Provenance
from engine.errors import ParameterError
from engine.kinematics import euler_to_matrix, forward_kinematics
from engine.skeletons import Skeleton

log = logging.getLogger(__name__)

__all__ = [
    "ACTIONS",
    "SKELETON",
    "GENERATOR_VERSION",
    "DEMO_PER_CLASS",
    "DEMO_SEED",
    "REST_OFFSETS",
    "Subject",
    "make_subject",
    "rest_pose",
    "generate_clip",
    "generate_dataset",
]

#: The action classes, in class-index order of :func:`generate_dataset`.
ACTIONS: tuple[str, ...] = ("walk", "run", "jump", "wave", "punch", "kick", "squat", "bow")
#: Name of the skeleton the clips use (``engine.skeletons.get(SKELETON)``).
SKELETON = "hdm05_25"
#: Bumped whenever the generator's output changes, so a stale shipped asset is recognisable.
GENERATOR_VERSION = 1
FORMAT = "synthetic"
#: Clips per class and seed of the shipped demo file ``assets/demo/demo_actions.h5`` (10 keeps it under 2 MB).
DEMO_PER_CLASS = 10
DEMO_SEED = 0

GRAVITY = 9.81  # m/s², for the flight phases of running and jumping
REFERENCE_STATURE = 1.75  # the stature REST_OFFSETS describe
TOP_JOINT = "Neck1"

# Rest pose of a 1.75 m person, standing upright, arms hanging, facing +z, left = +x, y up, metres.
# Offset of each joint from its parent (``engine.skeletons`` defines the parents), and the proportion group
# that scales it per subject. Right-side joints are the mirror images (x → −x) of their left twins, found
# through ``Skeleton.symmetric_pairs``. The root's offset is zero: the root position carries it.
# LHipJoint/RHipJoint sit at the hips centre in the published HDM05 data (a zero-length bone); here they get a
# small offset towards the hip joint so that every bone has a direction.
REST_OFFSETS: dict[str, tuple[tuple[float, float, float], str]] = {
    "Hips": ((0.0, 0.0, 0.0), "trunk"),
    "LHipJoint": ((0.04, -0.03, 0.0), "pelvis"),
    "LeftUpLeg": ((0.05, -0.05, 0.0), "pelvis"),  # hip joint: 0.09 lateral, 0.08 below the hips centre
    "LeftLeg": ((0.0, -0.43, 0.01), "thigh"),  # knee
    "LeftFoot": ((0.0, -0.42, -0.02), "shank"),  # ankle, 8 cm above the floor
    "LeftToeBase": ((0.01, -0.06, 0.14), "foot"),  # ball of the foot, 2 cm above the floor
    "Spine": ((0.0, 0.12, -0.01), "trunk"),
    "Spine1": ((0.0, 0.14, 0.0), "trunk"),
    "Neck": ((0.0, 0.16, 0.01), "trunk"),  # base of the neck, between the shoulders
    "Neck1": ((0.0, 0.11, 0.01), "trunk"),  # mid-neck: the top joint of hdm05_25 (no head joint)
    "LeftArm": ((0.185, -0.02, -0.01), "shoulders"),  # shoulder joint
    "LeftForeArm": ((0.0, -0.30, 0.0), "upper_arm"),  # elbow
    "LeftHand": ((0.0, -0.25, 0.01), "forearm"),  # wrist
    "LeftHandIndex1": ((0.0, -0.15, 0.01), "hand"),  # index finger
    "LThumb": ((-0.01, 0.06, 0.03), "hand"),  # thumb tip, back towards the wrist and forwards (hdm05_25 hangs
    # the thumb off the index joint)
}
# Sole points, in the ankle's frame (heel) and the ball joint's frame (ball), scaled with the foot.
HEEL_OFFSET = np.array([0.0, -0.08, -0.05])
BALL_SOLE_OFFSET = np.array([0.0, -0.02, 0.0])

_GROUP_SD = {
    "trunk": 0.03, "pelvis": 0.05, "thigh": 0.03, "shank": 0.03, "foot": 0.04, "shoulders": 0.05,
    "upper_arm": 0.03, "forearm": 0.03, "hand": 0.04,
}
_SIDES = ("l", "r")
_LEG_DOFS = {"thigh", "hip_abd", "hip_rot", "knee", "foot_pitch"}
_MIRROR = np.diag([-1.0, 1.0, 1.0])

# Standard deviation (degrees) of the smooth angle noise per degree of freedom (scaled per take).
_NOISE_SD = {
    "pelvis_tilt": 1.0, "pelvis_roll": 1.0, "pelvis_yaw": 2.0, "spine_flex": 1.5, "spine_lat": 1.5,
    "spine_twist": 2.0, "neck_flex": 3.0, "neck_twist": 4.0, "thigh": 1.5, "hip_abd": 0.3, "hip_rot": 0.0,
    "knee": 1.5, "foot_pitch": 0.5, "sh_flex": 3.0, "sh_abd": 2.5, "sh_twist": 4.0, "elbow": 3.0, "wrist": 4.0,
}


def _skeleton() -> Skeleton:
    return skeletons.get(SKELETON)


# -- subjects -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Subject:
    """One synthetic performer: body proportions and movement habits, all drawn from ``id``."""

    id: int
    stature: float  # metres, head top (not a joint of hdm05_25) to the floor
    offsets: np.ndarray  # (V, 3) rest offsets, metres
    heel: np.ndarray  # (3,) heel sole point in the ankle frame
    ball_sole: np.ndarray  # (3,) sole under the ball joint, in the foot frame
    tempo: float  # > 1 moves faster
    amplitude: float  # scales joint excursions
    lean: float  # forward trunk lean at rest, degrees
    arm_abd: float  # arm carriage away from the body at rest, degrees
    elbow_rest: float  # elbow flexion at rest, degrees
    right_handed: bool
    style: dict = field(default_factory=dict)

    @property
    def top_height(self) -> float:
        """Standing height of the top joint (``Neck1``) above the floor, metres."""
        pos = rest_pose(self)
        return float(pos[_skeleton().index(TOP_JOINT), 1])


def _seed_sequence(*keys: int | str) -> np.random.SeedSequence:
    words = [k if isinstance(k, int) else zlib.crc32(k.encode()) for k in keys]
    return np.random.SeedSequence([int(w) & 0xFFFFFFFF for w in words])


def _rest_offsets_table(skeleton: Skeleton) -> tuple[np.ndarray, list[str]]:
    """(V, 3) reference offsets and the proportion group of every joint, mirroring the right side."""
    v = skeleton.num_joints
    offsets = np.zeros((v, 3))
    groups = [""] * v
    known = {skeleton.index(name): (np.asarray(off, dtype=float), g) for name, (off, g) in REST_OFFSETS.items()}
    twin = {}
    for left, right in skeleton.symmetric_pairs:
        twin[right] = left
    for j in range(v):
        if j in known:
            offsets[j], groups[j] = known[j]
        elif j in twin and twin[j] in known:
            off, g = known[twin[j]]
            offsets[j], groups[j] = _MIRROR @ off, g
        else:
            raise KeyError(f"REST_OFFSETS lacks joint {skeleton.joint_names[j]!r} (and its left twin)")
    return offsets, groups


def make_subject(subject_id: int) -> Subject:
    """The synthetic subject ``subject_id`` (any non-negative int): same id, same body and habits."""
    rng = np.random.default_rng(_seed_sequence("subject", int(subject_id)))
    skeleton = _skeleton()
    ref, groups = _rest_offsets_table(skeleton)
    factors = {g: float(np.clip(rng.normal(1.0, sd), 1 - 2.5 * sd, 1 + 2.5 * sd)) for g, sd in _GROUP_SD.items()}
    offsets = ref * np.array([[factors.get(g, 1.0)] for g in groups])
    stature = float(rng.uniform(1.55, 1.95))
    heel = HEEL_OFFSET * factors["foot"]
    ball = BALL_SOLE_OFFSET * factors["foot"]
    # Scale the whole body so that its top joint stands at the reference ratio of the drawn stature.
    ref_top = _standing_top(skeleton, ref, HEEL_OFFSET, BALL_SOLE_OFFSET)
    top = _standing_top(skeleton, offsets, heel, ball)
    k = (ref_top / REFERENCE_STATURE) * stature / top
    return Subject(
        id=int(subject_id),
        stature=stature,
        offsets=offsets * k,
        heel=heel * k,
        ball_sole=ball * k,
        tempo=float(np.clip(rng.normal(1.0, 0.07), 0.85, 1.15)),
        amplitude=float(np.clip(rng.normal(1.0, 0.08), 0.8, 1.2)),
        lean=float(rng.normal(3.0, 2.0)),
        arm_abd=float(np.clip(rng.normal(6.0, 2.5), 2.0, 12.0)),
        elbow_rest=float(np.clip(rng.normal(12.0, 4.0), 4.0, 22.0)),
        right_handed=bool(rng.random() < 0.85),
        style={"arm_swing": float(rng.uniform(0.6, 1.3)), "step": float(rng.uniform(0.85, 1.15))},
    )


def _standing_top(skeleton: Skeleton, offsets: np.ndarray, heel: np.ndarray, ball: np.ndarray) -> float:
    """Height of the top joint above the lowest sole point with all joints at rest."""
    rot = np.broadcast_to(np.eye(3), (1, skeleton.num_joints, 3, 3))
    pos = forward_kinematics(skeleton.parents, offsets, rot, np.zeros((1, 3)))[0]
    soles = [pos[skeleton.index(n)] + heel for n in ("LeftFoot", "RightFoot")]
    soles += [pos[skeleton.index(n)] + ball for n in ("LeftToeBase", "RightToeBase")]
    return float(pos[skeleton.index(TOP_JOINT), 1] - min(s[1] for s in soles))


def rest_pose(subject: Subject | int) -> np.ndarray:
    """(V, 3) joint positions of the subject standing at rest on the floor, facing +z."""
    subject = subject if isinstance(subject, Subject) else make_subject(subject)
    skeleton = _skeleton()
    rot = np.broadcast_to(np.eye(3), (1, skeleton.num_joints, 3, 3))
    pos = forward_kinematics(skeleton.parents, subject.offsets, rot, np.zeros((1, 3)))[0]
    lowest = min(
        pos[skeleton.index("LeftFoot"), 1] + subject.heel[1], pos[skeleton.index("LeftToeBase"), 1] + subject.ball_sole[1]
    )
    return pos - np.array([0.0, lowest, 0.0])


# -- curve helpers --------------------------------------------------------------------------------------------------
def _bump(phase: np.ndarray, centre: float, width: float) -> np.ndarray:
    """Periodic bump (von Mises), 1 at ``centre``, about ``width`` (fraction of a cycle) wide."""
    kappa = 1.0 / (2 * np.pi * width) ** 2
    return np.exp(kappa * (np.cos(2 * np.pi * (phase - centre)) - 1.0))


def _cycle_spline(phase: np.ndarray, keys: Sequence[tuple[float, float]]) -> np.ndarray:
    """Smooth periodic curve through ``(phase, value)`` keys (phases in [0, 1), increasing)."""
    x = np.array([k[0] for k in keys] + [keys[0][0] + 1.0])
    y = np.array([k[1] for k in keys] + [keys[0][1]])
    return CubicSpline(x, y, bc_type="periodic")(np.mod(phase - x[0], 1.0) + x[0])


def _min_jerk(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u**3 * (10 - 15 * u + 6 * u**2)


def _keyframes(phase: np.ndarray, keys: Sequence[tuple[float, float]]) -> np.ndarray:
    """Pose-to-pose periodic curve: minimum-jerk blends between ``(phase, value)`` keys (no overshoot)."""
    x = np.array([k[0] for k in keys] + [keys[0][0] + 1.0])
    y = np.array([k[1] for k in keys] + [keys[0][1]])
    p = np.mod(phase - x[0], 1.0) + x[0]
    i = np.clip(np.searchsorted(x, p, side="right") - 1, 0, len(x) - 2)
    u = (p - x[i]) / (x[i + 1] - x[i])
    return y[i] + (y[i + 1] - y[i]) * _min_jerk(u)


def _pose_track(phase: np.ndarray, keys: Sequence[tuple[float, Mapping[str, float]]], base: Mapping[str, float],
                amp: float) -> dict[str, np.ndarray]:
    """Keyframed poses → per-DOF curves. DOFs missing from a key keep their base value there; every excursion
    from the base is scaled by ``amp``."""
    names = sorted({n for _, pose in keys for n in pose})
    out = {}
    for n in names:
        b = base.get(n, 0.0)
        out[n] = _keyframes(phase, [(p, b + amp * (pose.get(n, b) - b)) for p, pose in keys])
    return out


_PAD_S = 1.0  # seconds simulated before and after the clip
_NOISE_RATE = 30.0  # Hz: the grid smooth noise is drawn on, whatever the clip's frame rate


def _smooth_noise(
    rng: np.random.Generator, t: np.ndarray, sigma_s: float, span: tuple[float, float], *, integral: bool = False
) -> np.ndarray:
    """Unit-variance low-pass Gaussian noise over the time ``span`` (seconds), sampled at times ``t``; or its
    running integral from ``span[0]``.

    The noise lives on a time grid fixed by ``span`` alone, so a take is the same motion at any frame rate."""
    pad = 4.0 * sigma_s
    steps = int(np.ceil((span[1] - span[0] + 2 * pad) * _NOISE_RATE)) + 1
    grid = span[0] - pad + np.arange(steps) / _NOISE_RATE
    x = gaussian_filter1d(rng.standard_normal(steps), sigma_s * _NOISE_RATE, mode="wrap")
    inner = (grid >= span[0]) & (grid <= span[1])
    x = x / max(float(np.std(x[inner])), 1e-9)
    if integral:
        x = np.concatenate([[0.0], np.cumsum((x[1:] + x[:-1]) / 2.0)]) / _NOISE_RATE
        x = x - np.interp(span[0], grid, x)
    return np.interp(t, grid, x)


# -- actions --------------------------------------------------------------------------------------------------------
@dataclass
class _Take:
    """What an action function gets: time, randomness, the performer and the per-take scalings."""

    t: np.ndarray  # seconds, (T,) including padding
    rng: np.random.Generator
    subject: Subject
    tempo: float
    amp: float
    phase0: float
    span: tuple[float, float]  # seconds simulated, padding included (independent of the frame rate)

    def base(self) -> dict[str, float]:
        """The standing pose of this subject (degrees)."""
        s = self.subject
        d = {"pelvis_tilt": s.lean, "spine_flex": 1.0, "neck_flex": 2.0}
        for side in _SIDES:
            d.update({f"{side}_thigh": 0.0, f"{side}_knee": 3.0, f"{side}_foot_pitch": 0.0,
                      f"{side}_hip_abd": 2.0, f"{side}_sh_abd": s.arm_abd, f"{side}_sh_flex": 2.0,
                      f"{side}_elbow": s.elbow_rest, f"{side}_wrist": 5.0})
        return d

    def phase(self, period: float, drift: float = 0.03) -> np.ndarray:
        """Cycle phase over time for a cycle of ``period`` seconds, with a slow tempo drift."""
        elapsed = self.t - self.span[0]
        wobble = _smooth_noise(self.rng, self.t, 1.0, self.span, integral=True)
        return self.phase0 + (elapsed + drift * wobble) / period

    def side(self, dominant: bool = True) -> str:
        """A limb side for one-sided actions: mostly the dominant hand/leg."""
        right = self.subject.right_handed if self.rng.random() < 0.75 else not self.subject.right_handed
        return "r" if right == dominant else "l"


@dataclass
class _Motion:
    dofs: dict[str, np.ndarray]  # degrees, each (T,)
    contact: np.ndarray  # (T, 2) bool: left, right foot on the floor
    flight_velocity: np.ndarray | None = None  # (2,) horizontal m/s in the body frame (x left, z forward)


def _fill(d: dict[str, float], n: int) -> dict[str, np.ndarray]:
    return {k: np.full(n, float(v)) if np.isscalar(v) else np.asarray(v, dtype=float) for k, v in d.items()}


def _walk(k: _Take) -> _Motion:
    s = k.subject
    n = len(k.t)
    period = k.rng.uniform(1.0, 1.2) / k.tempo
    phi = k.phase(period)
    amp, swing = k.amp, s.style["arm_swing"] * k.rng.uniform(0.8, 1.2)
    d = _fill(k.base(), n)
    contact = np.zeros((n, 2), bool)
    step = s.style["step"]
    for i, side in enumerate(_SIDES):
        p = phi + 0.5 * i
        c = np.cos(2 * np.pi * p)
        d[f"{side}_thigh"] = 5.0 + amp * step * _cycle_spline(
            p, [(0.0, 15.0), (0.15, 9.0), (0.5, -22.0), (0.62, -11.0), (0.75, 9.0), (0.87, 19.0)]
        )
        knee_amp = 1.0 + 0.5 * (amp - 1.0)
        d[f"{side}_knee"] = 4.0 + knee_amp * (14.0 * _bump(p, 0.12, 0.05) + 56.0 * _bump(p, 0.71, 0.085))
        d[f"{side}_foot_pitch"] = _cycle_spline(
            p, [(0.0, -14.0), (0.1, 0.0), (0.4, 0.0), (0.62, 28.0), (0.76, 8.0), (0.9, -8.0)]
        )
        d[f"{side}_hip_abd"] = 2.0 + 2.5 * c
        contact[:, i] = np.mod(p, 1.0) < 0.62
        arm = 16.0 * swing * amp
        d[f"{side}_sh_flex"] = 3.0 - arm * c
        d[f"{side}_elbow"] = s.elbow_rest + 6.0 + 0.35 * arm * (1.0 - c)
    d["pelvis_tilt"] = d["pelvis_tilt"] + 2.0 + 1.5 * np.cos(4 * np.pi * phi)
    d["pelvis_roll"] = 3.0 * np.sin(2 * np.pi * (phi + 0.1))
    d["pelvis_yaw"] = -5.0 * amp * np.cos(2 * np.pi * phi)
    d["spine_twist"] = 8.0 * amp * np.cos(2 * np.pi * phi)
    return _Motion(d, contact)


def _run(k: _Take) -> _Motion:
    s = k.subject
    n = len(k.t)
    period = k.rng.uniform(0.64, 0.76) / k.tempo
    phi = k.phase(period)
    amp, swing = k.amp, s.style["arm_swing"] * k.rng.uniform(0.8, 1.2)
    strike = k.rng.uniform(-12.0, 5.0)  # foot pitch at contact: heel strike (negative) to forefoot
    d = _fill(k.base(), n)
    contact = np.zeros((n, 2), bool)
    for i, side in enumerate(_SIDES):
        p = phi + 0.5 * i
        c = np.cos(2 * np.pi * p)
        d[f"{side}_thigh"] = 3.0 + amp * _cycle_spline(
            p, [(0.0, 25.0), (0.2, 2.0), (0.38, -17.0), (0.55, 0.0), (0.75, 42.0), (0.9, 36.0)]
        )
        d[f"{side}_knee"] = np.maximum(
            2.0, amp * _cycle_spline(p, [(0.0, 18.0), (0.14, 38.0), (0.36, 22.0), (0.6, 100.0), (0.8, 55.0),
                                         (0.93, 18.0)])
        )
        d[f"{side}_foot_pitch"] = _cycle_spline(
            p, [(0.0, strike), (0.12, 0.0), (0.26, 6.0), (0.4, 35.0), (0.58, 20.0), (0.82, -4.0)]
        )
        d[f"{side}_hip_abd"] = 1.0 + 2.0 * c
        contact[:, i] = np.mod(p, 1.0) < 0.38
        arm = 30.0 * swing * amp
        d[f"{side}_sh_flex"] = 8.0 - arm * c
        d[f"{side}_sh_abd"] = s.arm_abd + 4.0
        d[f"{side}_elbow"] = 80.0 + k.rng.uniform(-10, 10) + 0.3 * arm * (1.0 - c)
    d["pelvis_tilt"] = d["pelvis_tilt"] + 4.0 + 2.0 * np.cos(4 * np.pi * phi)
    d["spine_flex"] = d["spine_flex"] + 3.0
    d["pelvis_roll"] = 3.0 * np.sin(2 * np.pi * (phi + 0.1))
    d["pelvis_yaw"] = -6.0 * amp * np.cos(2 * np.pi * phi)
    d["spine_twist"] = 12.0 * amp * np.cos(2 * np.pi * phi)
    return _Motion(d, contact)


def _jump(k: _Take) -> _Motion:
    n = len(k.t)
    flight = k.rng.uniform(0.34, 0.48)  # seconds in the air
    rest = k.rng.uniform(0.15, 0.5)
    period = (1.15 + rest) / k.tempo + flight
    phi = k.phase(period, drift=0.0)
    f_on = 1.0 - (rest / k.tempo) / period  # the last part of the cycle is standing
    # Phases: crouch, push off, flight, land, recover, stand.
    take_off = 0.55 * f_on - flight / period / 2
    land = take_off + flight / period
    depth = k.rng.uniform(0.8, 1.15)
    arms_up = k.rng.uniform(120.0, 165.0)
    base = k.base()
    stand = {}
    crouch = {"pelvis_tilt": 30 * depth, "spine_flex": 8, "l_thigh": 55 * depth, "r_thigh": 55 * depth,
              "l_knee": 95 * depth, "r_knee": 95 * depth, "l_sh_flex": -40, "r_sh_flex": -40,
              "l_elbow": 15, "r_elbow": 15, "neck_flex": -5}
    push = {"pelvis_tilt": 4, "spine_flex": 0, "l_thigh": -4, "r_thigh": -4, "l_knee": 4, "r_knee": 4,
            "l_foot_pitch": 40, "r_foot_pitch": 40, "l_sh_flex": arms_up, "r_sh_flex": arms_up,
            "l_elbow": 20, "r_elbow": 20}
    air = {"pelvis_tilt": 8, "l_thigh": 22, "r_thigh": 22, "l_knee": 35, "r_knee": 35, "l_foot_pitch": 25,
           "r_foot_pitch": 25, "l_sh_flex": arms_up - 20, "r_sh_flex": arms_up - 20, "l_elbow": 25, "r_elbow": 25}
    touch = {"pelvis_tilt": 8, "l_thigh": 8, "r_thigh": 8, "l_knee": 12, "r_knee": 12, "l_foot_pitch": 15,
             "r_foot_pitch": 15, "l_sh_flex": 80, "r_sh_flex": 80, "l_elbow": 20, "r_elbow": 20}
    absorb = {"pelvis_tilt": 25 * depth, "spine_flex": 6, "l_thigh": 42 * depth, "r_thigh": 42 * depth,
              "l_knee": 72 * depth, "r_knee": 72 * depth, "l_sh_flex": 40, "r_sh_flex": 40, "l_elbow": 25,
              "r_elbow": 25}
    keys = [(0.0, stand), (0.12 * f_on, stand), (take_off - 0.13 * f_on, crouch), (take_off, push),
            ((take_off + land) / 2, air), (land, touch), (land + 0.1 * f_on, absorb), (f_on, stand)]
    d = _fill(base, n)
    d.update(_pose_track(phi, keys, base, k.amp))
    cyc = np.mod(phi, 1.0)
    contact = np.repeat(((cyc <= take_off) | (cyc >= land))[:, None], 2, axis=1)
    forward = k.rng.uniform(0.0, 0.9) if k.rng.random() < 0.5 else 0.0
    return _Motion(d, contact, flight_velocity=np.array([0.0, forward]))


def _wave(k: _Take) -> _Motion:
    s = k.subject
    n = len(k.t)
    period = k.rng.uniform(0.45, 0.7) / k.tempo
    phi = k.phase(period)
    sides = ("l", "r") if k.rng.random() < 0.15 else (k.side(),)
    d = _fill(k.base(), n)
    # The arm comes up over half a second somewhere in the first part of the clip, or is already up.
    t0 = k.span[0] + (k.rng.uniform(0.6, 1.6) if k.rng.random() < 0.6 else 0.0)
    up = _min_jerk((k.t - t0) / 0.5)
    for side in sides:
        elev = k.rng.uniform(95.0, 130.0)
        bend = float(np.clip(180.0 - elev + k.rng.uniform(-10.0, 15.0), 35.0, 100.0))  # forearm about upright
        swing = min(k.rng.uniform(15.0, 30.0) * k.amp, bend - 20.0)
        wave = np.sin(2 * np.pi * phi) * up
        d[f"{side}_sh_abd"] = s.arm_abd + up * (elev - s.arm_abd)
        d[f"{side}_sh_flex"] = 2.0 + up * k.rng.uniform(5.0, 25.0)
        d[f"{side}_sh_twist"] = 90.0 * up
        d[f"{side}_elbow"] = s.elbow_rest + up * (bend - s.elbow_rest) + swing * wave
        d[f"{side}_wrist"] = 5.0 + 10.0 * wave
        sign = 1.0 if side == "l" else -1.0
        d["spine_lat"] = d.get("spine_lat", 0.0) - sign * 3.0 * up
    d["neck_twist"] = (8.0 if sides == ("l",) else -8.0 if sides == ("r",) else 0.0) * up
    d["pelvis_yaw"] = 3.0 * np.sin(2 * np.pi * k.t / 3.0)
    return _Motion(d, np.ones((n, 2), bool))


def _punch(k: _Take) -> _Motion:
    s = k.subject
    n = len(k.t)
    period = k.rng.uniform(0.8, 1.1) / k.tempo  # one punch per arm per cycle
    phi = k.phase(period)
    lead = k.side(dominant=False)
    one_arm = k.rng.random() < 0.25  # jabs with the lead hand only
    stance = k.rng.uniform(8.0, 16.0)
    base = k.base()
    guard = {"pelvis_tilt": s.lean + 4}
    for side in _SIDES:
        guard.update({f"{side}_sh_flex": 35.0, f"{side}_sh_abd": 15.0, f"{side}_elbow": 105.0,
                      f"{side}_sh_twist": -35.0, f"{side}_knee": 14.0, f"{side}_wrist": 0.0})
    guard[f"{lead}_thigh"], guard[f"{'r' if lead == 'l' else 'l'}_thigh"] = stance, -stance * 0.5
    reach = k.rng.uniform(80.0, 95.0)

    def extended(side: str) -> dict[str, float]:
        p = dict(guard)
        p.update({f"{side}_sh_flex": reach, f"{side}_sh_abd": 6.0, f"{side}_elbow": 6.0, f"{side}_sh_twist": -55.0,
                  "spine_twist": 25.0 if side == "l" else -25.0, "pelvis_yaw": -4.0 if side == "l" else 4.0})
        return p

    first = lead
    second = lead if one_arm else ("r" if lead == "l" else "l")
    keys = [(0.0, guard), (0.12, extended(first)), (0.22, extended(first)), (0.42, guard),
            (0.5, guard), (0.62, extended(second)), (0.72, extended(second)), (0.92, guard)]
    d = _fill(base, n)
    d.update(_pose_track(phi, keys, base, k.amp))
    return _Motion(d, np.ones((n, 2), bool))


def _kick(k: _Take) -> _Motion:
    n = len(k.t)
    rest = k.rng.uniform(0.1, 0.5)
    period = (1.3 + rest) / k.tempo
    phi = k.phase(period, drift=0.0)
    f_on = 1.0 - (rest / k.tempo) / period
    leg = k.side()
    sup = "r" if leg == "l" else "l"
    height = k.rng.uniform(70.0, 95.0)
    guard_arms = k.rng.random() < 0.5
    base = k.base()
    arms = {}
    if guard_arms:
        for side in _SIDES:
            arms.update({f"{side}_sh_flex": 40.0, f"{side}_sh_abd": 20.0, f"{side}_elbow": 115.0,
                         f"{side}_sh_twist": -20.0})
    else:
        for side in _SIDES:
            arms.update({f"{side}_sh_abd": 35.0, f"{side}_elbow": 30.0})
    ready = {**arms, f"{sup}_knee": 10.0, f"{leg}_knee": 10.0}
    chamber = {**arms, f"{leg}_thigh": height - 10, f"{leg}_knee": 110.0, f"{leg}_foot_pitch": 20.0,
               f"{sup}_knee": 14.0, f"{sup}_thigh": 4.0, "pelvis_tilt": 0.0}
    extend = {**arms, f"{leg}_thigh": height, f"{leg}_knee": 6.0, f"{leg}_foot_pitch": height - 10,
              f"{sup}_knee": 12.0, f"{sup}_thigh": 6.0, "pelvis_tilt": -8.0, "spine_flex": -4.0}
    keys = [(0.0, arms), (0.1 * f_on, ready), (0.35 * f_on, chamber), (0.48 * f_on, extend),
            (0.58 * f_on, extend), (0.72 * f_on, chamber), (0.9 * f_on, ready), (f_on, arms)]
    d = _fill(base, n)
    d.update(_pose_track(phi, keys, base, k.amp))
    cyc = np.mod(phi, 1.0)
    contact = np.ones((n, 2), bool)
    contact[:, _SIDES.index(leg)] = (cyc < 0.2 * f_on) | (cyc > 0.84 * f_on)
    return _Motion(d, contact)


def _squat(k: _Take) -> _Motion:
    n = len(k.t)
    rest = k.rng.uniform(0.1, 0.5)
    period = (k.rng.uniform(1.8, 2.4) + rest) / k.tempo
    phi = k.phase(period, drift=0.0)
    f_on = 1.0 - (rest / k.tempo) / period
    depth = k.rng.uniform(0.75, 1.05)
    arms_forward = k.rng.random() < 0.7
    base = k.base()
    bottom = {"pelvis_tilt": 38 * depth, "spine_flex": 5, "neck_flex": -10, "l_thigh": 88 * depth,
              "r_thigh": 88 * depth, "l_knee": 118 * depth, "r_knee": 118 * depth}
    if arms_forward:
        reach = k.rng.uniform(60.0, 90.0) + 38.0 * depth + 5.0  # relative to the leaning trunk
        bottom.update({"l_sh_flex": reach, "r_sh_flex": reach, "l_elbow": 10.0, "r_elbow": 10.0,
                       "l_sh_abd": 5.0, "r_sh_abd": 5.0})
    else:  # hands on the hips
        for side in _SIDES:
            bottom.update({f"{side}_sh_abd": 40.0, f"{side}_sh_flex": -15.0, f"{side}_elbow": 100.0,
                           f"{side}_sh_twist": -25.0})
    keys = [(0.0, {}), (0.08 * f_on, {}), (0.45 * f_on, bottom), (0.58 * f_on, bottom), (f_on, {})]
    if not arms_forward:
        hold = {k_: v for k_, v in bottom.items() if "_sh_" in k_ or "elbow" in k_}
        keys = [(0.0, hold), (0.08 * f_on, hold), (0.45 * f_on, bottom), (0.58 * f_on, bottom), (f_on, hold)]
    d = _fill(base, n)
    d.update(_pose_track(phi, keys, base, k.amp))
    return _Motion(d, np.ones((n, 2), bool))


def _bow(k: _Take) -> _Motion:
    n = len(k.t)
    rest = k.rng.uniform(0.2, 0.6)
    period = (k.rng.uniform(1.8, 2.5) + rest) / k.tempo
    phi = k.phase(period, drift=0.0)
    f_on = 1.0 - (rest / k.tempo) / period
    deep = k.rng.uniform(30.0, 60.0)
    spine = k.rng.uniform(8.0, 20.0)
    hang = k.rng.random() < 0.6  # arms hang with gravity, or stay along the thighs
    base = k.base()
    bowed = {"pelvis_tilt": base["pelvis_tilt"] + deep, "spine_flex": spine, "neck_flex": 20.0,
             "l_thigh": -6.0, "r_thigh": -6.0, "l_knee": 6.0, "r_knee": 6.0}
    trunk = deep + spine + 20.0
    for side in _SIDES:
        bowed[f"{side}_sh_flex"] = 0.85 * trunk if hang else 0.45 * trunk
        bowed[f"{side}_sh_abd"] = 4.0
    keys = [(0.0, {}), (0.1 * f_on, {}), (0.42 * f_on, bowed), (0.62 * f_on, bowed), (f_on, {})]
    d = _fill(base, n)
    d.update(_pose_track(phi, keys, base, k.amp))
    return _Motion(d, np.ones((n, 2), bool))


_ACTION_FUNCS: dict[str, Callable[[_Take], _Motion]] = {
    "walk": _walk, "run": _run, "jump": _jump, "wave": _wave, "punch": _punch, "kick": _kick, "squat": _squat,
    "bow": _bow,
}
assert tuple(_ACTION_FUNCS) == ACTIONS


# -- joint angles → rotations → positions ---------------------------------------------------------------------------
def _rad(x) -> np.ndarray:
    return np.deg2rad(np.asarray(x, dtype=float))


def _euler(order: str, *angles_deg) -> np.ndarray:
    return euler_to_matrix(np.stack([_rad(a) for a in angles_deg], axis=-1), order)


def _local_rotations(dofs: Mapping[str, np.ndarray], facing_deg: float, skeleton: Skeleton) -> np.ndarray:
    """(T, V, 3, 3) local joint rotations from the named degrees of freedom (degrees).

    Conventions (body frame: x left, y up, z forward): pelvis tilt/spine/neck flexion > 0 bends forward;
    ``thigh`` is the thigh's forward angle from the vertical in the facing frame (legs are posed in that
    frame, the hip absorbing the pelvis's motion); knee and elbow flexion ≥ 0; ``foot_pitch`` > 0 points the toes down
    relative to the floor (the ankle angle is derived from it); shoulder ``sh_flex`` swings the arm forward,
    ``sh_abd`` away from the body, ``sh_twist`` > 0 rotates the upper arm outwards. Right-side DOFs mean the
    same anatomically: their rotations are the mirror images of the left side's.
    """
    n = len(next(iter(dofs.values())))
    zero = np.zeros(n)

    def g(name: str, default: float = 0.0) -> np.ndarray:
        v = dofs.get(name)
        return np.full(n, default) if v is None else v

    L = np.broadcast_to(np.eye(3), (n, skeleton.num_joints, 3, 3)).copy()
    idx = skeleton.index
    pelvis = _euler("YXZ", facing_deg + g("pelvis_yaw"), g("pelvis_tilt"), g("pelvis_roll"))
    L[:, idx("Hips")] = pelvis
    # Legs are posed in the facing frame, not the pelvis frame: the hip absorbs the pelvis's tilt, roll and
    # yaw, as it does when the feet are planted, so moving the pelvis does not drag the feet over the floor.
    hip_frame = np.swapaxes(pelvis, -1, -2) @ _euler("YXZ", np.full(n, facing_deg), zero, zero)
    L[:, idx("Spine")] = _euler("YXZ", 0.4 * g("spine_twist"), 0.5 * g("spine_flex"), 0.5 * g("spine_lat"))
    L[:, idx("Spine1")] = _euler("YXZ", 0.6 * g("spine_twist"), 0.5 * g("spine_flex"), 0.5 * g("spine_lat"))
    L[:, idx("Neck")] = _euler("YXZ", g("neck_twist"), g("neck_flex"), np.zeros(n))
    names = {"l": ("LeftUpLeg", "LeftLeg", "LeftFoot", "LeftArm", "LeftForeArm", "LeftHand"),
             "r": ("RightUpLeg", "RightLeg", "RightFoot", "RightArm", "RightForeArm", "RightHand")}
    for side in _SIDES:
        hip, knee_j, ankle_j, shoulder, elbow_j, wrist_j = (idx(j) for j in names[side])
        thigh = g(f"{side}_thigh")
        knee = np.clip(g(f"{side}_knee"), 0.0, 150.0)
        ankle = np.clip(g(f"{side}_foot_pitch") + thigh - knee, -40.0, 60.0)
        rots = {
            hip: _euler("ZXY", g(f"{side}_hip_abd"), -thigh, g(f"{side}_hip_rot")),
            knee_j: _euler("ZXY", zero, knee, zero),
            ankle_j: _euler("ZXY", zero, ankle, zero),
            shoulder: _euler("ZXY", g(f"{side}_sh_abd"), -g(f"{side}_sh_flex"), g(f"{side}_sh_twist")),
            elbow_j: _euler("ZXY", zero, -np.clip(g(f"{side}_elbow"), 0.0, 150.0), zero),
            wrist_j: _euler("ZXY", zero, -g(f"{side}_wrist"), zero),
        }
        for j, R in rots.items():
            L[:, j] = R if side == "l" else _MIRROR @ R @ _MIRROR
        L[:, hip] = hip_frame @ L[:, hip]
    return L


def _sole_points(pos: np.ndarray, rot: np.ndarray, subject: Subject, skeleton: Skeleton) -> np.ndarray:
    """(T, 2 feet, 2 points, 3): heel and ball sole points of the left and right foot."""
    out = []
    for ankle, ball in (("LeftFoot", "LeftToeBase"), ("RightFoot", "RightToeBase")):
        a, b = skeleton.index(ankle), skeleton.index(ball)
        heel = pos[:, a] + rot[:, a] @ subject.heel
        ball_sole = pos[:, b] + rot[:, b] @ subject.ball_sole
        out.append(np.stack([heel, ball_sole], axis=1))
    return np.stack(out, axis=1)


def _root_trajectory(soles: np.ndarray, contact: np.ndarray, fps: float, flight_velocity: np.ndarray) -> np.ndarray:
    """(T, 3) root translation that keeps the supporting foot on the floor and still, and flies in between.

    ``soles`` are the sole points with the root at the origin. A foot in contact has its lowest point at
    y = 0 and that point does not slide; with no foot down, the body follows a ballistic arc between take-off
    and landing and keeps ``flight_velocity`` (world x, z) horizontally.
    """
    n = len(soles)
    dt = 1.0 / fps
    any_contact = contact.any(axis=1)
    if not any_contact.any():
        raise ParameterError("a synthetic motion needs at least one frame with a foot on the floor")
    low = soles[..., 1].min(axis=2)  # (T, 2) lowest sole point per foot
    height = np.where(contact, low, np.inf).min(axis=1)
    y = np.full(n, np.nan)
    y[any_contact] = -height[any_contact]
    idx = np.flatnonzero(any_contact)
    for t in np.flatnonzero(~any_contact):
        before, after = idx[idx < t], idx[idx > t]
        t0 = before[-1] if len(before) else None
        t1 = after[0] if len(after) else None
        if t0 is None or t1 is None:  # flight at the very start or end (in the padding): hold the height
            y[t] = y[t0 if t0 is not None else t1]
            continue
        y0, y1 = y[t0], y[t1]
        u = (t - t0) / (t1 - t0)
        y[t] = y0 + (y1 - y0) * u + 0.5 * GRAVITY * ((t - t0) * dt) * ((t1 - t) * dt)
    # Horizontal: the root moves opposite to the supporting sole point, so that point stays put.
    xz = np.zeros((n, 2))
    which = np.argmin(soles[..., 1], axis=2)  # (T, 2) lowest point of each foot
    for t in range(n - 1):
        feet = np.flatnonzero(contact[t] & contact[t + 1])
        if len(feet):
            moves = [soles[t + 1, f, which[t, f], [0, 2]] - soles[t, f, which[t, f], [0, 2]] for f in feet]
            xz[t + 1] = xz[t] - np.mean(moves, axis=0)
        else:
            xz[t + 1] = xz[t] + flight_velocity * dt
    return np.stack([xz[:, 0], y, xz[:, 1]], axis=1)


# -- public API -----------------------------------------------------------------------------------------------------
def _clip_rng(action: str, seed: int) -> np.random.Generator:
    return np.random.default_rng(_seed_sequence("take", action, int(seed)))


def generate_clip(
    action: str,
    seed: int,
    *,
    fps: float = 30.0,
    duration_s: float | None = None,
    subject: int | Subject | None = None,
    take: int = 1,
) -> Clip:
    """One synthetic clip of ``action`` (one of :data:`ACTIONS`), deterministic in all its arguments.

    ``seed`` drives everything about the take (speed, amplitude, phase, style, facing, noise, length);
    ``subject`` (an id or a :class:`Subject`) fixes the body; without it the subject id is drawn from the seed.
    ``duration_s`` defaults to a length drawn between 2.2 and 2.8 s. ``take`` only names the clip
    (``"walk_s03_t1"``).
    """
    if action not in _ACTION_FUNCS:
        raise ParameterError(f"unknown synthetic action {action!r}; choose one of {', '.join(ACTIONS)}")
    fps = float(fps)
    if not (np.isfinite(fps) and fps > 0):
        raise ParameterError(f"fps must be positive, got {fps}")
    rng = _clip_rng(action, seed)
    if subject is None:
        subject = int(rng.integers(1, 100))
    subj = subject if isinstance(subject, Subject) else make_subject(int(subject))
    duration = float(rng.uniform(2.2, 2.8)) if duration_s is None else float(duration_s)
    n_frames = max(int(round(duration * fps)), 1)
    pad = int(np.ceil(_PAD_S * fps))  # simulate about a second either side: flights and drifts are well defined
    n = n_frames + 2 * pad
    t = (np.arange(n) - pad) / fps
    span = (-_PAD_S - 0.5, duration + _PAD_S + 0.5)
    take_ = _Take(
        t=t, rng=rng, subject=subj, tempo=subj.tempo * float(rng.uniform(0.9, 1.1)),
        amp=subj.amplitude * float(rng.uniform(0.85, 1.15)), phase0=float(rng.uniform(0.0, 1.0)), span=span,
    )
    motion = _ACTION_FUNCS[action](take_)
    # Smooth noise on every angle: idle sway, tremor-free, a few degrees.
    noise_scale = float(rng.uniform(0.7, 1.3))
    dofs, shared = {}, {}
    for name in sorted(motion.dofs):
        key = name[2:] if name[:2] in ("l_", "r_") else name
        sd = _NOISE_SD.get(key, 1.0) * noise_scale
        if key in _LEG_DOFS:  # one noise for both legs, so that planted feet stay planted
            if key not in shared:
                shared[key] = _smooth_noise(rng, t, 0.25, span)
            dofs[name] = motion.dofs[name] + sd * shared[key]
        else:
            dofs[name] = motion.dofs[name] + sd * _smooth_noise(rng, t, 0.25, span)
    facing = float(rng.uniform(0.0, 360.0))
    skeleton = _skeleton()
    local = _local_rotations(dofs, facing, skeleton)
    zero_root = np.zeros((n, 3))
    pos, rot = forward_kinematics(skeleton.parents, subj.offsets, local, zero_root, return_rotations=True)
    soles = _sole_points(pos, rot, subj, skeleton)
    fv = motion.flight_velocity
    yaw = np.deg2rad(facing)
    if fv is None:  # keep the mean speed of the supported frames (running)
        fv_world = None
    else:
        fv_world = np.array([fv[0] * np.cos(yaw) + fv[1] * np.sin(yaw), -fv[0] * np.sin(yaw) + fv[1] * np.cos(yaw)])
    root = _root_trajectory(soles, motion.contact, fps, np.zeros(2) if fv_world is None else fv_world)
    if fv_world is None and not motion.contact.all():
        # Running: fly at the average supported speed, then recompute.
        v = np.diff(root[:, [0, 2]], axis=0) * fps
        both = motion.contact.any(axis=1)
        supported = both[1:] & both[:-1]
        root = _root_trajectory(soles, motion.contact, fps, v[supported].mean(axis=0))
    positions = (pos + root[:, None, :])[pad : pad + n_frames]
    # Put the clip's path around a random spot near the origin of the floor.
    centre = positions[:, skeleton.root, [0, 2]].mean(axis=0)
    spot = rng.uniform(-0.5, 0.5, size=2)
    positions[..., 0] += spot[0] - centre[0]
    positions[..., 2] += spot[1] - centre[1]
    name = f"{action}_s{subj.id:02d}_t{int(take)}"
    details = {
        "generator": "engine.synth", "generator_version": GENERATOR_VERSION, "seed": int(seed),
        "subject": subj.id, "take": int(take), "stature_m": round(subj.stature, 4), "facing_deg": round(facing, 2),
    }
    return Clip(
        positions.astype(np.float32), skeleton, fps, label=action, name=name,
        provenance=Provenance(source="", format=FORMAT, details=details),
    )


def _dataset_plan(n_per_class: int, seed: int, n_subjects: int) -> list[tuple[str, int, int, int]]:
    """(action, clip seed, subject id, take) for every clip of :func:`generate_dataset`."""
    plan = []
    for c, action in enumerate(ACTIONS):
        for i in range(n_per_class):
            subject = int(seed) * n_subjects + (i % n_subjects) + 1
            take = i // n_subjects + 1
            clip_seed = int(_seed_sequence("dataset", int(seed), c, i).generate_state(1)[0])
            plan.append((action, clip_seed, subject, take))
    return plan


def generate_dataset(
    n_per_class: int = DEMO_PER_CLASS, seed: int = DEMO_SEED, fps: float = 30.0, *, n_subjects: int = 5
) -> ClipDataset:
    """A labelled synthetic dataset: ``n_per_class`` clips of every action in :data:`ACTIONS`.

    Clips are spread over ``n_subjects`` subjects (ids ``seed * n_subjects + 1 ...``, so another seed means
    other people as well as other takes); class names are :data:`ACTIONS` in that order. The defaults give
    exactly the shipped demo dataset.
    """
    if n_per_class < 1:
        raise ParameterError(f"n_per_class must be at least 1, got {n_per_class}")
    if n_subjects < 1:
        raise ParameterError(f"n_subjects must be at least 1, got {n_subjects}")
    clips = [
        generate_clip(action, clip_seed, fps=fps, subject=subject, take=take)
        for action, clip_seed, subject, take in _dataset_plan(n_per_class, seed, n_subjects)
    ]
    return ClipDataset(clips, ACTIONS, name=f"synthetic demo actions (seed {seed})", source="engine.synth")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.synth", description="Write the SYNTHETIC demo action dataset (project HDF5)."
    )
    parser.add_argument("--out", type=Path, required=True, help="output file (.h5)")
    parser.add_argument("--per-class", type=int, default=DEMO_PER_CLASS,
                        help=f"clips per action class (default {DEMO_PER_CLASS}, as shipped)")
    parser.add_argument("--seed", type=int, default=DEMO_SEED, help=f"dataset seed (default {DEMO_SEED})")
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate (default 30)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from engine.io import save_dataset

    ds = generate_dataset(args.per_class, seed=args.seed, fps=args.fps)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_dataset(ds, args.out)
    frames = sum(c.num_frames for c in ds)
    log.info("wrote %s: %d clips, %d classes, %d frames, %.0f kB", args.out, len(ds), ds.num_classes, frames,
             args.out.stat().st_size / 1024)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
