"""Acclaim skeleton (``.asf``) and motion (``.amc``) files, as used by CMU mocap and HDM05.

The ASF describes bones in a rest pose, in global coordinates: each bone has a ``direction`` (unit vector)
and ``length``, a local frame given by ``axis ax ay az ORDER`` and its degrees of freedom ``dof rx ry rz``
with ``limits``. The AMC gives, per frame, one line per bone with the values of its dofs (and the root's
translation and rotation in the order of ``:root order``).

Forward kinematics (as in the Acclaim specification and the CMU ``amc_to_matrix`` code):

* ``C`` = rotation of the bone's ``axis`` angles, ``M`` = rotation of the frame's dof values; both apply
  their angles in the listed order ("XYZ" / ``rx ry rz`` → ``Rz @ Ry @ Rx``, see
  :func:`engine.kinematics.acclaim_euler_to_matrix`). The root uses ``orientation`` for ``C`` with the root
  ``axis`` order, and the rotation values of ``:root order`` in their listed order for ``M``.
* the bone's local transform is ``L = C @ M @ Cᵀ``; its global rotation ``G = G_parent @ L``;
* the bone's distal end is ``p = p_parent_end + G @ (direction × length)``; the root is at the AMC's
  translation (the ASF root ``position`` is the rest position and is not added).

Joints of the resulting clip: ``root`` plus the distal end of every bone, named after the bone (lower-case
ASF names: ``lhipjoint``, ``lfemur``, ...). :mod:`engine.skeletons` maps these names to ``cmu31`` and
``hdm05_25``.

Units: lengths and root translations are in ASF length units; metres = value × (1 / ``:units length``) ×
0.0254 (0.056444 m per unit for the usual ``length 0.45``). Angles follow ``:units angle deg|rad`` for the
ASF, and the AMC's ``:DEGREES`` / ``:RADIANS`` header (default: the ASF's unit). CMU and HDM05 data are y-up.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.data import Clip, Provenance
from engine.errors import DataFormatError, MissingCompanionFileError
from engine.io.text import read_text_lines
from engine.kinematics import acclaim_euler_to_matrix, forward_kinematics
from engine.skeletons import Skeleton

__all__ = ["AsfBone", "AsfSkeleton", "read_asf", "read_amc", "find_asf", "ACCLAIM_DEFAULT_FPS"]

log = logging.getLogger(__name__)

#: CMU and HDM05 capture Acclaim motion at 120 frames per second.
ACCLAIM_DEFAULT_FPS = 120.0
_INCH = 0.0254
_ROT_DOFS = ("rx", "ry", "rz")
_ALL_DOFS = ("tx", "ty", "tz", "rx", "ry", "rz", "l")


@dataclass(frozen=True)
class AsfBone:
    """One ASF bone. ``direction`` is a unit vector in rest-pose global coordinates, ``length`` in ASF units,
    ``axis`` in radians about ``axis_order``; ``dof`` lists channel names (``rx``, ``ry``, ``rz``, and rarely
    ``tx ty tz l``) in AMC order; ``limits`` one (low, high) pair per dof (radians for rotations)."""

    name: str
    id: int | None
    direction: np.ndarray
    length: float
    axis: np.ndarray
    axis_order: str
    dof: tuple[str, ...] = ()
    limits: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True, eq=False)
class AsfSkeleton:
    """A parsed ASF file: bones, hierarchy, units and the root's channel layout."""

    path: str
    name: str
    length_unit: float
    angle_unit: str
    root_order: tuple[str, ...]
    root_axis: str
    root_position: np.ndarray
    root_orientation: np.ndarray
    bones: tuple[AsfBone, ...]
    bone_parent: dict = field(default_factory=dict)  # bone name -> parent bone name ("root" for the root)

    @property
    def metres_per_unit(self) -> float:
        """Metres per ASF length unit: ``(1 / length) × 0.0254``."""
        return _INCH / self.length_unit

    @property
    def joint_names(self) -> tuple[str, ...]:
        return ("root",) + tuple(b.name for b in self.bones)

    @property
    def parents(self) -> tuple[int, ...]:
        index = {n: i for i, n in enumerate(self.joint_names)}
        return (-1,) + tuple(index[self.bone_parent[b.name]] for b in self.bones)

    @property
    def bone(self) -> dict[str, AsfBone]:
        return {b.name: b for b in self.bones}

    @property
    def skeleton(self) -> Skeleton:
        """The joint tree of clips read with this ASF: ``root`` + the distal end of every bone."""
        return Skeleton(f"acclaim:{self.name}", self.joint_names, self.parents, "y")

    def rest_positions(self) -> np.ndarray:
        """(V, 3) joint positions in metres in the ASF rest pose, root at the origin."""
        pos = np.zeros((len(self.joint_names), 3))
        index = {n: i for i, n in enumerate(self.joint_names)}
        for i in _topological(self.parents):
            if i == 0:
                continue
            b = self.bones[i - 1]
            pos[i] = pos[index[self.bone_parent[b.name]]] + b.direction * b.length * self.metres_per_unit
        return pos


def _topological(parents) -> list[int]:
    from engine.kinematics import topological_order

    return topological_order(parents)


# -- ASF ------------------------------------------------------------------------------------------------------


def _float(path: Path, token: str, line: int, what: str, frame: int | None = None) -> float:
    try:
        value = float(token)
    except ValueError:
        raise DataFormatError(path, f"{what}: non-numeric value {token!r}", line=line, frame=frame) from None
    return value


def _finite(path: Path, token: str, line: int, what: str) -> float:
    value = _float(path, token, line, what)
    if not np.isfinite(value):
        raise DataFormatError(path, f"{what}: value {token!r} is NaN or Inf", line=line)
    return value


def _order_string(tokens: list[str], path: Path, line: int) -> str:
    order = "".join(tokens).upper()
    if sorted(order) != ["X", "Y", "Z"]:
        raise DataFormatError(
            path, f"rotation order must name X, Y and Z once each, got {' '.join(tokens)!r}", line=line
        )
    return order


def _asf_units(units: dict, key: str, tokens: list[str], path: Path, lineno: int) -> None:
    """One line of ``:units``."""
    if key == "length" and len(tokens) > 1:
        units["length"] = _finite(path, tokens[1], lineno, "units length")
        if units["length"] <= 0:
            raise DataFormatError(path, f"units length must be positive, got {tokens[1]}", line=lineno)
    elif key == "angle" and len(tokens) > 1:
        unit = tokens[1].lower()
        if unit not in ("deg", "rad"):
            raise DataFormatError(path, f"units angle must be deg or rad, got {tokens[1]!r}", line=lineno)
        units["angle"] = unit


def _asf_root(root: dict, key: str, tokens: list[str], path: Path, lineno: int) -> None:
    """One line of ``:root``."""
    if key == "order":
        order = tuple(t.upper() for t in tokens[1:])
        bad = [t for t in order if t not in ("TX", "TY", "TZ", "RX", "RY", "RZ")]
        if bad or len(set(order)) != len(order):
            raise DataFormatError(
                path, f"root order has unknown or repeated channels {' '.join(tokens[1:])!r}", line=lineno
            )
        root["order"] = order
    elif key == "axis":
        root["axis"] = _order_string(tokens[1:], path, lineno)
    elif key in ("position", "orientation"):
        if len(tokens) != 4:
            raise DataFormatError(path, f"root {key} needs 3 values, got {len(tokens) - 1}", line=lineno)
        root[key] = np.array([_finite(path, t, lineno, f"root {key}") for t in tokens[1:]])


def _asf_bone_line(
    bone: dict | None, raw_bones: list[dict], key: str, tokens: list[str], text: str, path: Path, lineno: int
) -> dict | None:
    """One line of ``:bonedata``; returns the bone block now open (``None`` between blocks)."""
    if key == "begin":
        return {"line": lineno, "dof": (), "limits": []}
    if key == "end":
        if bone is None:
            raise DataFormatError(path, "'end' without 'begin' in :bonedata", line=lineno)
        for needed in ("name", "direction", "length"):
            if needed not in bone:
                raise DataFormatError(path, f"bone defined at line {bone['line']} has no {needed}", line=lineno)
        raw_bones.append(bone)
        return None
    if bone is None:
        raise DataFormatError(path, f"{tokens[0]!r} outside a begin/end bone block", line=lineno)
    if key == "id":
        bone["id"] = int(_finite(path, tokens[1], lineno, "bone id")) if len(tokens) > 1 else None
    elif key == "name":
        if len(tokens) < 2:
            raise DataFormatError(path, "bone name missing", line=lineno)
        bone["name"] = tokens[1].lower()
    elif key == "direction":
        if len(tokens) != 4:
            raise DataFormatError(path, f"bone direction needs 3 values, got {len(tokens) - 1}", line=lineno)
        bone["direction"] = np.array([_finite(path, t, lineno, "bone direction") for t in tokens[1:]])
    elif key == "length":
        if len(tokens) != 2:
            raise DataFormatError(path, f"bone length needs 1 value, got {len(tokens) - 1}", line=lineno)
        bone["length"] = _finite(path, tokens[1], lineno, "bone length")
    elif key == "axis":
        if len(tokens) != 5:
            raise DataFormatError(
                path, "bone axis needs 3 angles and an order, e.g. 'axis 0 0 20 XYZ'", line=lineno
            )
        bone["axis"] = np.array([_finite(path, t, lineno, "bone axis") for t in tokens[1:4]])
        bone["axis_order"] = _order_string([tokens[4]], path, lineno)
    elif key == "dof":
        dof = tuple(t.lower() for t in tokens[1:])
        bad = [t for t in dof if t not in _ALL_DOFS]
        if bad:
            raise DataFormatError(path, f"unknown dof {bad[0]!r}; dofs are {' '.join(_ALL_DOFS)}", line=lineno)
        bone["dof"] = dof
    elif key == "limits" or key.startswith("("):
        body = text[len("limits") :] if key == "limits" else text
        for lo, hi in re.findall(r"\(\s*(\S+)\s+(\S+?)\s*\)", body):
            bone["limits"].append((_float(path, lo, lineno, "limit"), _float(path, hi, lineno, "limit")))
    # Other keys (bodymass, cofmass, ...) do not affect kinematics.
    return bone


def _asf_sections(path: Path, lines: list[str]) -> tuple[dict, dict, list[dict], list[tuple[int, list[str]]]]:
    """``(units, root, raw bones, hierarchy lines)`` read section by section."""
    section = None
    units = {"length": 1.0, "angle": "deg", "mass": 1.0}
    root = {
        "order": ("TX", "TY", "TZ", "RX", "RY", "RZ"),
        "axis": "XYZ",
        "position": np.zeros(3),
        "orientation": np.zeros(3),
    }
    raw_bones: list[dict] = []
    bone: dict | None = None
    hierarchy: list[tuple[int, list[str]]] = []
    for lineno, text in enumerate(lines, start=1):
        text = text.split("#", 1)[0].strip()
        if not text:
            continue
        tokens = text.split()
        key = tokens[0].lower()
        if key.startswith(":"):
            section = key
            if key == ":units" and len(tokens) > 1:  # single-line form ":units length 0.45"
                tokens = tokens[1:]
                key = tokens[0].lower()
            else:
                continue
        if section == ":units":
            _asf_units(units, key, tokens, path, lineno)
        elif section == ":root":
            _asf_root(root, key, tokens, path, lineno)
        elif section == ":bonedata":
            bone = _asf_bone_line(bone, raw_bones, key, tokens, text, path, lineno)
        elif section == ":hierarchy" and key not in ("begin", "end"):
            hierarchy.append((lineno, [t.lower() for t in tokens]))
    if bone is not None:
        raise DataFormatError(
            path, f"the file ends inside the bone block opened at line {bone['line']}", hint="the file is truncated"
        )
    if not raw_bones:
        raise DataFormatError(path, "no :bonedata bones found", hint="is this an ASF skeleton file?")
    return units, root, raw_bones, hierarchy


def _asf_hierarchy(path: Path, names: list[str], hierarchy: list[tuple[int, list[str]]]) -> dict[str, str]:
    """bone name → parent bone name, checked: every bone defined once, attached once, and only known bones."""
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise DataFormatError(path, f"bones defined twice: {', '.join(dup)}")
    known = set(names) | {"root"}
    bone_parent: dict[str, str] = {}
    for lineno, tokens in hierarchy:
        parent, children = tokens[0], tokens[1:]
        for n in [parent, *children]:
            if n not in known:
                raise DataFormatError(path, f"hierarchy names an undefined bone {n!r}", line=lineno)
        for c in children:
            if c in bone_parent:
                raise DataFormatError(path, f"bone {c!r} has two parents in the hierarchy", line=lineno)
            bone_parent[c] = parent
    orphans = [n for n in names if n not in bone_parent]
    if orphans:
        raise DataFormatError(
            path,
            f"bones not attached in :hierarchy: {', '.join(orphans)}",
            hint="the file is truncated or inconsistent",
        )
    return bone_parent


def _asf_bone(b: dict, angle_scale: float) -> AsfBone:
    direction = b["direction"]
    norm = np.linalg.norm(direction)
    direction = direction / norm if norm > 0 else direction
    rot_limits = [
        (lo * angle_scale, hi * angle_scale) if d in _ROT_DOFS else (lo, hi)
        for d, (lo, hi) in zip(b["dof"], b["limits"])
    ]
    return AsfBone(
        name=b["name"],
        id=b.get("id"),
        direction=direction,
        length=float(b["length"]),
        axis=b.get("axis", np.zeros(3)) * angle_scale,
        axis_order=b.get("axis_order", "XYZ"),
        dof=b["dof"],
        limits=tuple(rot_limits),
    )


def read_asf(path: str | Path) -> AsfSkeleton:
    """Parse an ASF skeleton file. Raises :class:`DataFormatError` naming the line of any problem."""
    path = Path(path)
    units, root, raw_bones, hierarchy = _asf_sections(path, read_text_lines(path))
    bone_parent = _asf_hierarchy(path, [b["name"] for b in raw_bones], hierarchy)
    angle_scale = np.pi / 180.0 if units["angle"] == "deg" else 1.0
    asf = AsfSkeleton(
        path=str(path),
        name=path.stem,
        length_unit=float(units["length"]),
        angle_unit=units["angle"],
        root_order=tuple(root["order"]),
        root_axis=root["axis"],
        root_position=root["position"],
        root_orientation=root["orientation"] * angle_scale,
        bones=tuple(_asf_bone(b, angle_scale) for b in raw_bones),
        bone_parent=bone_parent,
    )
    try:
        asf.skeleton  # noqa: B018 - validates the tree (cycles)
    except Exception as exc:
        raise DataFormatError(path, f"the bone hierarchy is not a tree: {exc}") from None
    return asf


# -- AMC ------------------------------------------------------------------------------------------------------
def find_asf(amc: str | Path) -> Path | None:
    """The ASF for an AMC: the only ``.asf`` in its folder, or the one whose stem prefixes the AMC's stem."""
    amc = Path(amc)
    candidates = sorted(p for p in amc.parent.glob("*") if p.suffix.lower() == ".asf" and p.is_file())
    if len(candidates) == 1:
        return candidates[0]
    stem = amc.stem.lower()
    prefixed = [p for p in candidates if stem.startswith(p.stem.lower())]
    if prefixed:
        return max(prefixed, key=lambda p: len(p.stem))
    return None


def _fps_from_name(stem: str) -> float | None:
    m = re.search(r"_(\d{2,3})$", stem)  # HDM05: ..._120
    return float(m.group(1)) if m else None


def _rotation_from_channels(values: np.ndarray, channels: tuple[str, ...], angle_scale: float) -> np.ndarray:
    """(T, 3, 3) Acclaim rotation of the r* channels of ``values`` (T, len(channels)), applied in listed order."""
    rot = [(c[-1].upper(), i) for i, c in enumerate(channels) if c.lower() in _ROT_DOFS]
    order = "".join(a for a, _ in rot)
    order += "".join(a for a in "XYZ" if a not in order)
    angles = np.zeros((values.shape[0], 3))
    for k, (_, i) in enumerate(rot):
        angles[:, k] = values[:, i] * angle_scale
    return acclaim_euler_to_matrix(angles, order)


def _resolve_asf(path: Path, asf: str | Path | AsfSkeleton | None) -> AsfSkeleton:
    """The ASF skeleton of the AMC ``path``: given, parsed from the path given, or found beside it."""
    if asf is None:
        found = find_asf(path)
        if found is None:
            raise MissingCompanionFileError(
                path,
                "an AMC motion needs its ASF skeleton, and none was found beside it",
                hint="pass the skeleton file with --asf FILE.asf (asf= in Python)",
            )
        asf = found
    if isinstance(asf, AsfSkeleton):
        return asf
    asf_path = Path(asf)
    if not asf_path.is_file():
        raise MissingCompanionFileError(path, f"the ASF skeleton {asf_path} does not exist", hint="pass --asf FILE.asf")
    return read_asf(asf_path)


class _AmcFrames:
    """The frames of an AMC file: frame numbers, and per bone the value tokens and line of every frame."""

    def __init__(self, path: Path, asf: AsfSkeleton) -> None:
        self.path, self.asf = path, asf
        self.channels = {"root": tuple(t.lower() for t in asf.root_order)}
        self.channels.update({b.name: b.dof for b in asf.bones})
        self.required = [n for n, ch in self.channels.items() if ch]
        self.angle_unit = asf.angle_unit
        self.numbers: list[int] = []
        self.lines: list[int] = []
        self.tokens: dict[str, list[list[str]]] = {n: [] for n in self.required}
        self.token_lines: dict[str, list[int]] = {n: [] for n in self.required}
        self.seen: set[str] = set()

    def close_frame(self, lineno: int) -> None:
        missing = [n for n in self.required if n not in self.seen]
        if missing:
            raise DataFormatError(
                self.path,
                f"frame {self.numbers[-1]} lacks {', '.join(missing[:6])}{'…' if len(missing) > 6 else ''}",
                line=lineno,
                frame=len(self.numbers) - 1,
                hint="the file is truncated or does not match the ASF skeleton",
            )

    def header(self, text: str) -> None:
        key = text.split()[0].upper()
        if key == ":DEGREES":
            self.angle_unit = "deg"
        elif key == ":RADIANS":
            self.angle_unit = "rad"

    def frame_number(self, number: int, lineno: int) -> None:
        if self.numbers:
            self.close_frame(lineno)
        self.numbers.append(number)
        self.lines.append(lineno)
        self.seen = set()

    def bone_line(self, fields: list[str], lineno: int) -> None:
        path, frame = self.path, len(self.numbers) - 1
        if not self.numbers:
            raise DataFormatError(path, f"expected a frame number before {fields[0]!r}", line=lineno)
        name = fields[0].lower()
        if name not in self.channels:
            raise DataFormatError(
                path,
                f"bone {fields[0]!r} is not in the ASF skeleton {self.asf.name}",
                line=lineno,
                frame=frame,
                hint="use the ASF file this motion was recorded with",
            )
        if len(fields) - 1 != len(self.channels[name]):
            raise DataFormatError(
                path,
                f"bone {name} has {len(fields) - 1} values but the ASF gives it {len(self.channels[name])} "
                f"({' '.join(self.channels[name]) or 'no dof'})",
                line=lineno,
                frame=frame,
            )
        if name in self.seen:
            raise DataFormatError(path, f"bone {name} appears twice in one frame", line=lineno, frame=frame)
        self.seen.add(name)
        if self.channels[name]:
            self.tokens[name].append(fields[1:])
            self.token_lines[name].append(lineno)

    def finish(self, last_line: int) -> None:
        if not self.numbers:
            raise DataFormatError(self.path, "the motion has no frames", hint="an empty clip cannot be used")
        self.close_frame(last_line)
        steps = np.diff(self.numbers)
        if np.any(steps != 1):
            k = int(np.argmax(steps != 1)) + 1
            raise DataFormatError(
                self.path,
                f"frame numbers jump from {self.numbers[k - 1]} to {self.numbers[k]}",
                line=self.lines[k],
                frame=k,
            )

    def values(self) -> dict[str, np.ndarray]:
        """bone → (T, dofs) float64, checked for non-numeric and NaN/Inf values."""
        values: dict[str, np.ndarray] = {}
        for name in self.required:
            try:
                arr = np.array(self.tokens[name], dtype=np.float64)
            except ValueError:
                for k, row in enumerate(self.tokens[name]):
                    for t in row:
                        _float(self.path, t, self.token_lines[name][k], f"bone {name}", frame=k)
                raise  # pragma: no cover - one of the rows above raises
            bad = ~np.isfinite(arr)
            if bad.any():
                k = int(np.argwhere(bad)[0][0])
                raise DataFormatError(self.path, f"bone {name}: NaN or Inf value", line=self.token_lines[name][k],
                                      frame=k)
            values[name] = arr
        return values


def _read_amc_frames(path: Path, asf: AsfSkeleton) -> _AmcFrames:
    lines = read_text_lines(path)
    frames = _AmcFrames(path, asf)
    for lineno, raw in enumerate(lines, start=1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        if text.startswith(":"):
            frames.header(text)
            continue
        fields = text.split()
        if len(fields) == 1 and fields[0].isdigit():
            frames.frame_number(int(fields[0]), lineno)
        else:
            frames.bone_line(fields, lineno)
    frames.finish(len(lines))
    return frames


def _amc_positions(path: Path, asf: AsfSkeleton, frames: _AmcFrames) -> np.ndarray:
    """(T, V, 3) joint positions in metres by Acclaim forward kinematics (module docstring)."""
    values = frames.values()
    T = len(frames.numbers)
    scale = asf.metres_per_unit
    angle_scale = np.pi / 180.0 if frames.angle_unit == "deg" else 1.0
    V = len(asf.joint_names)
    local = np.empty((T, V, 3, 3))
    offsets = np.zeros((T, V, 3))
    # Root: translation channels, rotation about the root frame given by orientation and the root axis order.
    root_ch = frames.channels["root"]
    root_vals = values.get("root", np.zeros((T, 0)))
    root_pos = np.zeros((T, 3))
    for i, c in enumerate(root_ch):
        if c in ("tx", "ty", "tz"):
            root_pos[:, "xyz".index(c[1])] = root_vals[:, i] * scale
    C = acclaim_euler_to_matrix(asf.root_orientation, asf.root_axis)
    local[:, 0] = C @ _rotation_from_channels(root_vals, root_ch, angle_scale) @ C.T
    ignored = set()
    for j, b in enumerate(asf.bones, start=1):
        C = acclaim_euler_to_matrix(b.axis, b.axis_order)
        if b.dof:
            M = _rotation_from_channels(values[b.name], b.dof, angle_scale)
            local[:, j] = C @ M @ C.T
            ignored.update(d for d in b.dof if d not in _ROT_DOFS)
        else:
            local[:, j] = np.eye(3)
        # Bone vector in the bone's own (rotated) frame, expressed in the parent's frame for BVH-style FK.
        offsets[:, j] = local[:, j] @ (b.direction * b.length * scale)
    if ignored:
        log.warning("%s: translation/length dofs (%s) are not applied", path, " ".join(sorted(ignored)))
    return forward_kinematics(asf.parents, offsets, local, root_pos)


def read_amc(path: str | Path, asf: str | Path | AsfSkeleton | None = None, fps: float | None = None) -> Clip:
    """Read an AMC motion with its ASF skeleton into a :class:`Clip` (metres, y up).

    ``asf``: the skeleton (path or parsed); ``None`` looks beside the AMC (:func:`find_asf`) and raises
    :class:`MissingCompanionFileError` when there is none. ``fps``: default from a ``_120``-style suffix of the
    file name (HDM05), else 120 (CMU).
    """
    path = Path(path)
    asf = _resolve_asf(path, asf)
    frames = _read_amc_frames(path, asf)
    positions = _amc_positions(path, asf, frames)
    details = {"asf": asf.path, "frame_numbers": (frames.numbers[0], frames.numbers[-1]),
               "metres_per_unit": asf.metres_per_unit}
    if fps is None:
        fps = _fps_from_name(path.stem)
        details["fps_source"] = "file name" if fps is not None else f"default for Acclaim ({ACCLAIM_DEFAULT_FPS:g})"
        fps = fps or ACCLAIM_DEFAULT_FPS
    else:
        details["fps_source"] = "given"
    return Clip(
        positions.astype(np.float32),
        asf.skeleton,
        float(fps),
        name=path.stem,
        provenance=Provenance(source=str(path), format="acclaim-amc", details=details),
    )
