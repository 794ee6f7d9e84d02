"""BioVision Hierarchy (``.bvh``) motion files: reader for any hierarchy, writer for any clip.

Reading
    * Any hierarchy and any channel order; a joint may have 3 rotation channels, 3 position channels, or 6
      (root or not). Rotation channels are composed in their listed order: ``Zrotation Xrotation Yrotation``
      with values ``z x y`` gives ``R = Rz(z) @ Rx(x) @ Ry(y)`` (see :mod:`engine.kinematics`).
    * Position channels give the joint's translation relative to its parent, *replacing* its ``OFFSET``
      (the reading of Blender and three.js; for the root this is its global position).
    * ``End Site`` entries are not joints of the clip; their offsets are kept in ``provenance.details``.
    * ``Frame Time`` gives the frame rate (rounded to an integer rate when within 0.01 fps of one).
    * BVH does not declare an up axis. skelviz assumes y-up (CMU, HDM05, MotionBuilder and Blender's
      default export); a file whose rest pose is taller along z than along y is read as is, with a warning.

Units
    BVH does not declare units either. ``units=`` sets them: ``"m"``, ``"cm"``, ``"mm"``, ``"inch"``,
    ``"acclaim"`` (the CMU/HDM05 ASF unit, 0.0254 / 0.45 = 0.056444 m) or a float (metres per file unit).
    Without it the unit is detected from the figure's height ``h`` in file units (the vertical extent of the
    rest pose, end sites included; of the first frame when the rest pose is flat):

    ======================  ========================  =====================
    h in file units         read as                   a 1.75 m person is
    ======================  ========================  =====================
    0.5 – 3                 metres                    1.75
    15 – 50                 Acclaim units (×0.056444) 31
    50 – 100                inches                    69
    100 – 300               centimetres               175
    500 – 3000              millimetres               1750
    ======================  ========================  =====================

    Outside these ranges the candidate that makes the figure closest to 1.7 m is used, with a warning. The
    decision and the figure height are recorded in ``provenance.details``.

Writing (:func:`write_bvh`)
    Positions-only clips are turned into a rotation hierarchy: rest offsets point along each bone's
    first-frame direction with the bone's mean length; each joint's global rotation takes its children's
    rest offsets to their current bone vectors (the minimal rotation for one child, a Kabsch fit for several,
    the parent's rotation for leaves and joints whose children all have zero length). Joints the rotations
    cannot place within ``tolerance`` (bone lengths that change over time, or siblings that move relative to
    each other) also get position channels with ``translations="auto"``, so what is written reproduces the
    clip to the printed precision (1 µm); ``translations="none"`` writes a rotation-only rig (best fit) and
    ``"all"`` gives every joint position channels.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.data import Clip, Provenance
from engine.errors import DataFormatError, ParameterError
from engine.io.text import read_text_lines
from engine.kinematics import (
    best_fit_rotation,
    euler_to_matrix,
    forward_kinematics,
    matrix_to_euler,
    rotation_between,
)
from engine.skeletons import Skeleton

__all__ = ["read_bvh", "write_bvh", "UNIT_SCALES", "detect_units", "resolve_units"]

log = logging.getLogger(__name__)

#: metres per file unit for the named units ``read_bvh`` accepts.
UNIT_SCALES: dict[str, float] = {
    "m": 1.0,
    "cm": 0.01,
    "mm": 0.001,
    "inch": 0.0254,
    "in": 0.0254,
    "acclaim": 0.0254 / 0.45,
}
# (low, high, unit) ranges of the figure height in file units, see the module docstring.
_HEIGHT_RANGES = (
    (0.5, 3.0, "m"),
    (15.0, 50.0, "acclaim"),
    (50.0, 100.0, "inch"),
    (100.0, 300.0, "cm"),
    (500.0, 3000.0, "mm"),
)
_CHANNELS = ("Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation")


@dataclass
class _Joint:
    name: str
    parent: int
    offset: np.ndarray
    channels: list[str] = field(default_factory=list)
    line: int = 0
    end_sites: list[np.ndarray] = field(default_factory=list)


class _Tokens:
    def __init__(self, path: Path, lines: list[str], stop: int) -> None:
        self.path = path
        self.items = [(i + 1, t) for i, ln in enumerate(lines[:stop]) for t in ln.split()]
        self.pos = 0
        self.end_line = stop

    def next(self, expect: str) -> tuple[int, str]:
        if self.pos >= len(self.items):
            raise DataFormatError(
                self.path,
                f"the hierarchy ends early: expected {expect}",
                line=self.end_line,
                hint="the file is truncated",
            )
        item = self.items[self.pos]
        self.pos += 1
        return item

    def peek(self) -> str | None:
        return self.items[self.pos][1] if self.pos < len(self.items) else None

    def keyword(self, word: str) -> int:
        line, tok = self.next(f"'{word}'")
        if tok.upper() != word.upper():
            raise DataFormatError(self.path, f"expected '{word}', found {tok!r}", line=line)
        return line

    def number(self, what: str) -> float:
        line, tok = self.next(what)
        try:
            value = float(tok)
        except ValueError:
            raise DataFormatError(self.path, f"{what}: non-numeric value {tok!r}", line=line) from None
        if not math.isfinite(value):
            raise DataFormatError(self.path, f"{what}: value {tok!r} is NaN or Inf", line=line)
        return value


def _open_joint(tok: _Tokens, joints: list[_Joint], parent: int, line: int, name: str) -> None:
    """Read a joint's ``{``, ``OFFSET`` and optional ``CHANNELS``; its children and ``}`` follow."""
    joint = _Joint(name, parent, np.zeros(3), line=line)
    joints.append(joint)
    tok.keyword("{")
    tok.keyword("OFFSET")
    joint.offset = np.array([tok.number(f"OFFSET of {name}") for _ in range(3)])
    if (tok.peek() or "").upper() == "CHANNELS":
        tok.next("CHANNELS")
        joint.channels = _channels(tok, name)


def _channels(tok: _Tokens, name: str) -> list[str]:
    cline, count_tok = tok.next("the channel count")
    if not count_tok.isdigit():
        raise DataFormatError(tok.path, f"channel count of {name} is not an integer: {count_tok!r}", line=cline)
    channels: list[str] = []
    for _ in range(int(count_tok)):
        cl, ch = tok.next(f"a channel name of {name}")
        canonical = next((c for c in _CHANNELS if c.lower() == ch.lower()), None)
        if canonical is None:
            raise DataFormatError(
                tok.path, f"unknown channel {ch!r} of {name}; channels are {', '.join(_CHANNELS)}", line=cl
            )
        if canonical in channels:
            raise DataFormatError(tok.path, f"channel {ch} appears twice for {name}", line=cl)
        channels.append(canonical)
    return channels


def _parse_hierarchy(tok: _Tokens) -> list[_Joint]:
    """The joints of ``HIERARCHY ROOT ...`` in file order (parents first).

    Iterative, with an explicit stack of open joints: a hierarchy of any depth is read without recursion.
    """
    tok.keyword("HIERARCHY")
    line = tok.keyword("ROOT")
    _, root_name = tok.next("the root joint name")
    joints: list[_Joint] = []
    _open_joint(tok, joints, -1, line, root_name)
    open_joints = [0]
    while open_joints:
        index = open_joints[-1]
        name = joints[index].name
        line, t = tok.next(f"'}}' closing {name}")
        word = t.upper()
        if word == "}":
            open_joints.pop()
        elif word == "JOINT":
            _, child = tok.next("a joint name")
            _open_joint(tok, joints, index, line, child)
            open_joints.append(len(joints) - 1)
        elif word == "END":
            tok.keyword("Site")
            tok.keyword("{")
            tok.keyword("OFFSET")
            joints[index].end_sites.append(np.array([tok.number(f"End Site OFFSET under {name}") for _ in range(3)]))
            tok.keyword("}")
        else:
            raise DataFormatError(tok.path, f"unexpected {t!r} inside joint {name}", line=line)
    if tok.peek() is not None:
        line, t = tok.items[tok.pos]
        raise DataFormatError(tok.path, f"unexpected {t!r} after the hierarchy (only one ROOT is supported)", line=line)
    return joints


def detect_units(height: float) -> tuple[str, float, bool]:
    """(unit name, metres per unit, whether ``height`` fell inside a documented range)."""
    for lo, hi, unit in _HEIGHT_RANGES:
        if lo <= height < hi:
            return unit, UNIT_SCALES[unit], True
    if not (height > 0 and math.isfinite(height)):
        return "m", 1.0, False
    best = min(("m", "acclaim", "inch", "cm", "mm"), key=lambda u: abs(math.log(height * UNIT_SCALES[u] / 1.7)))
    return best, UNIT_SCALES[best], False


def resolve_units(units: str | float) -> tuple[str, float]:
    """``(unit name, metres per file unit)`` of a ``units=`` value; :class:`ParameterError` when unknown."""
    if isinstance(units, (int, float)) and not isinstance(units, bool):
        if not (math.isfinite(units) and units > 0):
            raise ParameterError(f"units scale must be a positive number of metres per file unit, got {units}")
        return f"{float(units):g} m/unit", float(units)
    key = str(units).strip().lower()
    aliases = {
        "metre": "m",
        "meter": "m",
        "metres": "m",
        "meters": "m",
        "centimetre": "cm",
        "centimeter": "cm",
        "millimetre": "mm",
        "millimeter": "mm",
        "inches": "inch",
        '"': "inch",
    }
    key = aliases.get(key, key)
    if key not in UNIT_SCALES:
        try:
            value = float(key)
        except ValueError:
            raise ParameterError(
                f"unknown units {units!r}; use one of {', '.join(UNIT_SCALES)} or metres per file unit as a number"
            ) from None
        return resolve_units(value)
    return key, UNIT_SCALES[key]


def _local_rotations(joints: list[_Joint], motion: np.ndarray, starts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(T, V, 3, 3) local rotations and (T, V, 3) local translations (file units) from the channel values."""
    T, V = motion.shape[0], len(joints)
    local = np.broadcast_to(np.eye(3), (T, V, 3, 3)).copy()
    offsets = np.broadcast_to(np.stack([j.offset for j in joints]), (T, V, 3)).copy()
    for v, (joint, start) in enumerate(zip(joints, starts)):
        rot = [(ch[0], start + k) for k, ch in enumerate(joint.channels) if ch.endswith("rotation")]
        pos = [(ch[0], start + k) for k, ch in enumerate(joint.channels) if ch.endswith("position")]
        if rot:
            order = "".join(a for a, _ in rot)
            order += "".join(a for a in "XYZ" if a not in order)
            angles = np.zeros((T, 3))
            for k, (_, col) in enumerate(rot):
                angles[:, k] = np.deg2rad(motion[:, col])
            local[:, v] = euler_to_matrix(angles, order)
        for axis, col in pos:
            offsets[:, v, "XYZ".index(axis)] = motion[:, col]
    return local, offsets


def _figure_height(joints: list[_Joint], parents: list[int], local: np.ndarray, offsets: np.ndarray) -> float:
    """Vertical extent (file units) of the rest pose with end sites; of frame 0 when the rest pose is flat."""

    def extent(loc: np.ndarray, off: np.ndarray) -> tuple[float, float]:
        pos, rot = forward_kinematics(parents, off[None], loc[None], np.zeros((1, 3)), return_rotations=True)
        pts = [pos[0]]
        for v, j in enumerate(joints):
            for e in j.end_sites:
                pts.append((pos[0, v] + rot[0, v] @ e)[None])
        pts = np.concatenate(pts)
        span = pts.max(0) - pts.min(0)
        return float(span[1]), float(span.max())

    rest_off = np.stack([j.offset for j in joints])
    height, largest = extent(np.broadcast_to(np.eye(3), local.shape[1:]), rest_off)
    if height < 0.25 * largest:  # lying rest pose (or z-up data): fall back to the first frame
        height, largest = extent(local[0], offsets[0])
        if height < 0.25 * largest:
            log.warning("the figure is much longer across than along y; BVH is read as y-up")
    return height




def _read_motion_header(path: Path, lines: list[str], motion_at: int) -> tuple[int, float, int]:
    """``(frames, frame time, index of the first line after the header)`` of the MOTION section."""
    header: dict[str, tuple[int, str]] = {}
    i = motion_at + 1
    while i < len(lines) and len(header) < 2:
        text = lines[i].strip()
        i += 1
        if not text:
            continue
        m = re.match(r"(frames|frame\s+time)\s*:\s*(\S*)\s*$", text, re.IGNORECASE)
        if m is None:
            raise DataFormatError(
                path, f"expected 'Frames:' and 'Frame Time:' after MOTION, found {text[:40]!r}", line=i
            )
        header["frames" if m.group(1).lower() == "frames" else "time"] = (i, m.group(2))
    for key, what in (("frames", "'Frames:'"), ("time", "'Frame Time:'")):
        if key not in header:
            raise DataFormatError(
                path, f"the MOTION section has no {what} line", line=len(lines), hint="the file is truncated"
            )
    fline, ftok = header["frames"]
    try:
        n_frames = int(ftok)
    except ValueError:
        raise DataFormatError(path, f"frame count is not an integer: {ftok!r}", line=fline) from None
    if n_frames <= 0:
        raise DataFormatError(
            path, f"the file declares {n_frames} frames", line=fline, hint="an empty clip cannot be used"
        )
    tline, ttok = header["time"]
    try:
        frame_time = float(ttok)
    except ValueError:
        raise DataFormatError(path, f"frame time is not a number: {ttok!r}", line=tline) from None
    if not (math.isfinite(frame_time) and frame_time > 0):
        raise DataFormatError(path, f"frame time must be a positive number of seconds, got {ttok!r}", line=tline)
    return n_frames, frame_time, i


def _read_motion_rows(
    path: Path, lines: list[str], first: int, n_frames: int, joints: list[_Joint], starts: list[int]
) -> np.ndarray:
    """(frames, channels) float64 channel values, checked for count, numbers and NaN/Inf."""
    n_channels = sum(len(j.channels) for j in joints)
    data = [(k + 1, ln) for k, ln in enumerate(lines[first:], start=first) if ln.strip()]
    if len(data) < n_frames:
        last = data[-1][0] if data else first
        raise DataFormatError(
            path,
            f"the header declares {n_frames} frames but the file holds {len(data)}",
            line=last,
            frame=len(data),
            hint="the file is truncated",
        )
    if len(data) > n_frames:
        log.warning("%s: %d lines after the %d declared frames are ignored", path, len(data) - n_frames, n_frames)
        data = data[:n_frames]
    rows = [ln.split() for _, ln in data]
    for f, row in enumerate(rows):
        if len(row) != n_channels:
            raise DataFormatError(
                path,
                f"a frame needs {n_channels} values (one per channel), this one has {len(row)}",
                line=data[f][0],
                frame=f,
                hint="the file is truncated" if len(row) < n_channels and f == len(rows) - 1 else None,
            )
    try:
        motion = np.array(rows, dtype=np.float64).reshape(n_frames, n_channels)
    except ValueError:
        for f, row in enumerate(rows):
            for t in row:
                try:
                    float(t)
                except ValueError:
                    raise DataFormatError(path, f"non-numeric value {t!r}", line=data[f][0], frame=f) from None
        raise  # pragma: no cover
    bad = ~np.isfinite(motion)
    if bad.any():
        f, c = (int(x) for x in np.argwhere(bad)[0])
        owner = max(v for v, s in enumerate(starts) if s <= c and joints[v].channels)
        raise DataFormatError(
            path,
            f"NaN or Inf in channel {joints[owner].channels[c - starts[owner]]} of {joints[owner].name}",
            line=data[f][0],
            frame=f,
        )
    return motion


def _choose_units(path: Path, height: float, scale_override: tuple[str, float] | None) -> tuple[str, float, str]:
    """``(unit, metres per unit, "given" | "detected")``."""
    if scale_override is not None:
        return scale_override[0], scale_override[1], "given"
    unit, scale, in_range = detect_units(height)
    if not in_range:
        log.warning(
            "%s: figure height %.3g file units fits no known unit; reading it as %s. Pass units= to override",
            path,
            height,
            unit,
        )
    return unit, scale, "detected"


def _unique_names(path: Path, joints: list[_Joint]) -> list[str]:
    names = [j.name for j in joints]
    if len(set(names)) != len(names):
        seen: dict[str, int] = {}
        for k, n in enumerate(names):
            seen[n] = seen.get(n, 0) + 1
            if seen[n] > 1:
                names[k] = f"{n}_{seen[n]}"
        log.warning("%s: duplicate joint names were made unique with _2, _3 suffixes", path)
    return names


def read_bvh(path: str | Path, *, units: str | float | None = None) -> Clip:
    """Read a BVH file into a :class:`Clip` (metres, y up) on a skeleton ``bvh:<stem>`` built from its hierarchy.

    ``units`` overrides unit detection (see the module docstring). Raises :class:`DataFormatError` with the
    line (and frame) of a truncated hierarchy or motion, a non-numeric or NaN/Inf value, a frame with the
    wrong number of values, or a file without frames.
    """
    path = Path(path)
    scale_override = None if units is None else resolve_units(units)
    lines = read_text_lines(path)
    motion_at = next((i for i, ln in enumerate(lines) if ln.strip().upper().startswith("MOTION")), None)
    joints = _parse_hierarchy(_Tokens(path, lines, len(lines) if motion_at is None else motion_at))
    if motion_at is None:
        raise DataFormatError(path, "no MOTION section", line=len(lines), hint="the file is truncated")
    n_frames, frame_time, first = _read_motion_header(path, lines, motion_at)
    starts = [0]  # first motion column of each joint
    for j in joints[:-1]:
        starts.append(starts[-1] + len(j.channels))
    motion = _read_motion_rows(path, lines, first, n_frames, joints, starts)

    parents = [j.parent for j in joints]
    local, offsets = _local_rotations(joints, motion, starts)
    height = _figure_height(joints, parents, local, offsets)
    unit, scale, unit_source = _choose_units(path, height, scale_override)
    positions = forward_kinematics(parents, offsets * scale, local, np.zeros((n_frames, 3)))

    skeleton = Skeleton(f"bvh:{path.stem}", tuple(_unique_names(path, joints)), tuple(parents), "y")
    fps = 1.0 / frame_time
    if abs(fps - round(fps)) < 0.01:
        fps = float(round(fps))
    details = {
        "units": unit,
        "units_source": unit_source,
        "metres_per_unit": scale,
        "figure_height_file_units": height,
        "frame_time": frame_time,
        "channels": {j.name: list(j.channels) for j in joints},
        "end_sites": {j.name: [e.tolist() for e in j.end_sites] for j in joints if j.end_sites},
        "up_axis": "y (assumed)",
    }
    return Clip(
        positions.astype(np.float32),
        skeleton,
        fps,
        name=path.stem,
        provenance=Provenance(source=str(path), format="bvh", details=details),
    )


# -- writer ---------------------------------------------------------------------------------------------------
def _bvh_names(skeleton: Skeleton) -> list[str]:
    names, used = [], set()
    for n in skeleton.joint_names:
        base = re.sub(r"[^A-Za-z0-9_.:-]+", "_", n).strip("_") or "joint"
        name, k = base, 2
        while name in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        names.append(name)
    return names


def _global_rotations(skeleton: Skeleton, pos: np.ndarray, rest: np.ndarray, eps: float) -> np.ndarray:
    """(T, V, 3, 3) global joint rotations taking each joint's children's rest offsets to the current bones."""
    T, V = pos.shape[:2]
    G = np.empty((T, V, 3, 3))
    for j in skeleton.topological_order:
        kids = [c for c in skeleton.children[j] if np.linalg.norm(rest[c]) > eps]
        p = skeleton.parents[j]
        inherited = np.broadcast_to(np.eye(3), (T, 3, 3)) if p < 0 else G[:, p]
        if not kids:
            G[:, j] = inherited
            continue
        cur = pos[:, kids] - pos[:, j : j + 1]  # (T, K, 3)
        src = rest[kids]  # (K, 3)
        # Several children help only when their rest offsets span more than a line.
        if len(kids) > 1 and np.linalg.matrix_rank(src / np.linalg.norm(src, axis=1, keepdims=True), tol=1e-6) >= 2:
            G[:, j] = best_fit_rotation(np.broadcast_to(src, cur.shape), cur)
        else:
            longest = int(np.argmax(np.linalg.norm(src, axis=1)))
            G[:, j] = rotation_between(np.broadcast_to(src[longest], (T, 3)), cur[:, longest])
            # A vanished bone (zero current length) gives no direction: keep the parent's rotation.
            gone = np.linalg.norm(cur[:, longest], axis=-1) <= eps
            if gone.any():
                G[gone, j] = inherited[gone]
    return G


def write_bvh(
    clip: Clip,
    path: str | Path,
    *,
    translations: str = "auto",
    tolerance: float = 1e-4,
    rotation_order: str = "ZYX",
    body: int = 0,
) -> Path:
    """Write one performer of a clip as BVH (metres, y up, ``Frame Time`` = 1 / fps).

    The hierarchy is the clip's skeleton (joint names sanitised to BVH identifiers, depth-first order); the
    root has 6 channels at ``OFFSET 0 0 0``, other joints 3 rotation channels in ``rotation_order``
    (``"ZYX"`` → ``Zrotation Yrotation Xrotation``), plus position channels per ``translations``:
    ``"auto"`` (joints the rotations place worse than ``tolerance`` metres), ``"none"`` or ``"all"``.
    Every leaf joint gets an ``End Site`` continuing its bone by a tenth of its length.

    Reading the file back gives the clip's positions to 1e-5 m with ``"auto"``/``"all"``; with ``"none"``,
    joints whose parent has a single child are exact too, the rest are a best fit (see the module docstring).
    """
    path = Path(path)
    if translations not in ("auto", "none", "all"):
        raise ValueError(f"translations must be 'auto', 'none' or 'all', got {translations!r}")
    order = rotation_order.upper()
    sk = clip.skeleton
    pos = np.asarray(clip.bodies[body], dtype=np.float64)  # (T, V, 3)
    T, V = pos.shape[:2]
    parents = np.array(sk.parents)
    eps = 1e-9

    # Rest pose: first-frame bone directions with mean bone lengths; the root at the origin.
    rest = np.zeros((V, 3))
    for c in range(V):
        p = parents[c]
        if p < 0:
            continue
        vec = pos[:, c] - pos[:, p]
        length = np.linalg.norm(vec, axis=-1)
        mean_len = float(length.mean())
        if mean_len <= eps:
            continue
        first = int(np.argmax(length > eps))  # first frame where the bone has a direction
        rest[c] = vec[first] / length[first] * mean_len
    G = _global_rotations(sk, pos, rest, eps)

    # Which joints also need position channels: the rotations misplace them.
    local_t = np.zeros((T, V, 3))
    needs = np.zeros(V, dtype=bool)
    for c in range(V):
        p = parents[c]
        if p < 0:
            continue
        local_t[:, c] = np.einsum("tji,tj->ti", G[:, p], pos[:, c] - pos[:, p])  # G_pᵀ (p_c − p_p)
        err = np.linalg.norm(local_t[:, c] - rest[c], axis=-1).max()
        needs[c] = translations == "all" or (translations == "auto" and err > tolerance)

    L = G.copy()
    for c in range(V):
        p = parents[c]
        if p >= 0:
            L[:, c] = np.swapaxes(G[:, p], -1, -2) @ G[:, c]
    angles = np.rad2deg(matrix_to_euler(L, order))  # (T, V, 3)

    names = _bvh_names(sk)
    rot_channels = " ".join(f"{a}rotation" for a in order)
    columns: list[np.ndarray] = []
    out: list[str] = ["HIERARCHY"]

    def open_joint(j: int, depth: int) -> None:
        ind = "\t" * depth
        is_root = parents[j] < 0
        out.append(f"{ind}{'ROOT' if is_root else 'JOINT'} {names[j]}")
        out.append(f"{ind}{{")
        off = np.zeros(3) if is_root else rest[j]
        out.append(f"{ind}\tOFFSET {off[0]:.6f} {off[1]:.6f} {off[2]:.6f}")
        if is_root or needs[j]:
            out.append(f"{ind}\tCHANNELS 6 Xposition Yposition Zposition {rot_channels}")
            columns.append(pos[:, j] if is_root else local_t[:, j])
        else:
            out.append(f"{ind}\tCHANNELS 3 {rot_channels}")
        columns.append(angles[:, j])
        if not sk.children[j]:
            tail = rest[j] * 0.1 if np.linalg.norm(rest[j]) > eps else np.array([0.0, 0.01, 0.0])
            out.append(f"{ind}\tEnd Site")
            out.append(f"{ind}\t{{")
            out.append(f"{ind}\t\tOFFSET {tail[0]:.6f} {tail[1]:.6f} {tail[2]:.6f}")
            out.append(f"{ind}\t}}")

    # Depth first without recursion (a read BVH may be thousands of joints deep): (joint, depth, closing).
    stack = [(sk.root, 0, False)]
    while stack:
        j, depth, closing = stack.pop()
        if closing:
            out.append("\t" * depth + "}")
            continue
        open_joint(j, depth)
        stack.append((j, depth, True))
        stack.extend((c, depth + 1, False) for c in reversed(sk.children[j]))
    out.append("MOTION")
    out.append(f"Frames: {T}")
    out.append(f"Frame Time: {1.0 / clip.fps:.8f}")
    table = np.concatenate(columns, axis=1)
    table[np.abs(table) < 5e-7] = 0.0  # no "-0.000000"
    body_lines = "\n".join(" ".join(f"{v:.6f}" for v in row) for row in table)
    path.write_text("\n".join(out) + "\n" + body_lines + "\n", encoding="ascii")
    return path
