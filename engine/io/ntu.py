"""NTU RGB+D ``.skeleton`` files (Kinect v2 text dumps; Shahroudy et al., CVPR 2016; Liu et al., TPAMI 2019).

Layout, one value list per line::

    <frame count>
    per frame:  <body count>
        per body:   <bodyID> <clippedEdges> <handLeftConfidence> <handLeftState> <handRightConfidence>
                    <handRightState> <isRestricted> <leanX> <leanY> <trackingState>      (10 values)
                    <joint count>                                                          (25)
                    per joint: x y z depthX depthY colorX colorY orientW orientX orientY orientZ trackingState

Only the camera-space ``x y z`` (metres) are kept. Kinect v2 camera space is right-handed with y up, x to
the sensor's left and z pointing away from the sensor into the scene, so it is already y-up and needs no
flip; the floor is wherever the sensor's height puts it (about y = -0.7 to -1 m), and the sensor's tilt is
not undone.

Bodies are tracked by ``bodyID`` across frames. Every distinct body becomes one performer in
``Clip.bodies``; the performers are ranked by the number of frames they appear in, then by how much they
move (summed per-joint positional variance), so the main performer comes first. Frames in which a body is
absent (including frames with no body at all) repeat that body's nearest earlier pose (its first pose for
frames before it appears); ``provenance.details`` records which frames were filled.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from engine.data import Clip, Provenance
from engine.errors import DataFormatError
from engine.skeletons import NTU25

__all__ = ["read_ntu", "parse_ntu_name", "NTU_FPS"]

log = logging.getLogger(__name__)

NTU_FPS = 30.0
_JOINTS = 25
_VALUES_PER_JOINT = 12
_BODY_INFO_VALUES = 10
_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})", re.IGNORECASE)


def parse_ntu_name(name: str) -> dict:
    """``SsssCcccPpppRrrrAaaa`` → setup, camera, performer, replication, action (ints); ``{}`` if no match."""
    m = _NAME.search(name)
    if m is None:
        return {}
    keys = ("setup", "camera", "performer", "replication", "action")
    return {k: int(v) for k, v in zip(keys, m.groups())}


class _Lines:
    """Non-blank lines with 1-based line numbers, and error messages that say where."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.items = [(i + 1, ln) for i, ln in enumerate(text.splitlines()) if ln.strip()]
        self.pos = 0
        self.last_line = len(text.splitlines())

    def next(self, what: str, frame: int | None) -> tuple[int, list[str]]:
        if self.pos >= len(self.items):
            raise DataFormatError(
                self.path,
                f"the file ends early: expected {what}",
                line=self.last_line + 1,
                frame=frame,
                hint="the file is truncated",
            )
        lineno, text = self.items[self.pos]
        self.pos += 1
        return lineno, text.split()

    def count(self, what: str, frame: int | None) -> int:
        lineno, fields = self.next(what, frame)
        if len(fields) != 1:
            raise DataFormatError(
                self.path, f"expected {what} (one integer), got {len(fields)} values", line=lineno, frame=frame
            )
        try:
            value = int(fields[0])
        except ValueError:
            raise DataFormatError(
                self.path, f"{what} is not an integer: {fields[0]!r}", line=lineno, frame=frame
            ) from None
        if value < 0:
            raise DataFormatError(self.path, f"{what} is negative ({value})", line=lineno, frame=frame)
        return value


def _floats(lines: _Lines, fields: list[str], lineno: int, frame: int, what: str) -> np.ndarray:
    try:
        values = np.array([float(f) for f in fields])
    except ValueError:
        bad = next(f for f in fields if not _is_float(f))
        raise DataFormatError(lines.path, f"non-numeric value {bad!r} in {what}", line=lineno, frame=frame) from None
    return values


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def read_ntu(path: str | Path, *, max_bodies: int | None = None) -> Clip:
    """Read an NTU RGB+D ``.skeleton`` file into a :class:`Clip` on the ``ntu25`` skeleton at 30 fps.

    ``positions`` is the main performer; ``bodies`` holds every tracked body (or the first ``max_bodies``
    after ranking). The label is the action code from the file name (``"A001"``); setup, camera, performer,
    replication and action go to ``provenance.details``.

    Raises :class:`DataFormatError` (with line and frame) for a truncated file, a non-numeric or NaN/Inf
    value, a body without 25 joints, a joint line without 12 values, or a file without frames or bodies.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, f"not a text file (undecodable byte at offset {exc.start})") from None
    except OSError as exc:
        raise DataFormatError(path, f"cannot read the file: {exc.strerror or exc}") from None
    lines = _Lines(path, text)
    n_frames = lines.count("the frame count", None)
    if n_frames == 0:
        raise DataFormatError(
            path, "the file declares 0 frames", line=lines.items[0][0], hint="an empty clip cannot be used"
        )

    # body id -> {frame: (25, 3)}; ids kept in order of first appearance.
    tracks: dict[str, dict[int, np.ndarray]] = {}
    empty_frames: list[int] = []
    for f in range(n_frames):
        n_bodies = lines.count("a body count", f)
        if n_bodies == 0:
            empty_frames.append(f)
        for _ in range(n_bodies):
            lineno, info = lines.next("a body information line", f)
            if len(info) != _BODY_INFO_VALUES:
                raise DataFormatError(
                    path,
                    f"a body information line needs {_BODY_INFO_VALUES} values (bodyID, clippedEdges, hand states, "
                    f"isRestricted, lean, trackingState), got {len(info)}",
                    line=lineno,
                    frame=f,
                )
            _floats(lines, info[1:], lineno, f, "the body information line")
            body_id = info[0]
            n_joints = lines.count("a joint count", f)
            if n_joints != _JOINTS:
                raise DataFormatError(
                    path,
                    f"body {body_id} has {n_joints} joints; NTU RGB+D (Kinect v2) bodies have {_JOINTS}",
                    line=lines.items[lines.pos - 1][0],
                    frame=f,
                )
            xyz = np.empty((_JOINTS, 3))
            for j in range(_JOINTS):
                lineno, fields = lines.next(f"joint {j + 1} of {_JOINTS}", f)
                if len(fields) != _VALUES_PER_JOINT:
                    raise DataFormatError(
                        path,
                        f"joint {j + 1} of body {body_id} has {len(fields)} values; each joint line has "
                        f"{_VALUES_PER_JOINT} (x y z depthX depthY colorX colorY orientation wxyz trackingState)",
                        line=lineno,
                        frame=f,
                    )
                values = _floats(lines, fields, lineno, f, f"joint {j + 1}")
                if not np.isfinite(values[:3]).all():
                    raise DataFormatError(path, f"joint {j + 1} position is NaN or Inf", line=lineno, frame=f)
                xyz[j] = values[:3]
            frames = tracks.setdefault(body_id, {})
            if f in frames:
                raise DataFormatError(path, f"body {body_id} appears twice in one frame", line=lineno, frame=f)
            frames[f] = xyz
    if lines.pos < len(lines.items):
        log.warning("%s: ignoring %d lines after the %d declared frames", path, len(lines.items) - lines.pos, n_frames)
    if not tracks:
        raise DataFormatError(
            path, f"none of the {n_frames} frames contains a body", hint="an empty clip cannot be used"
        )

    from engine.io.limits import check_size

    # Every tracked body is filled to the whole clip: a new id in every frame would need bodies x frames poses.
    check_size(path, f"{len(tracks)} bodies over {n_frames} frames", len(tracks) * n_frames * _JOINTS * 3 * 8,
               path.stat().st_size)
    bodies, summary = [], []
    for body_id, frames in tracks.items():
        present = np.array(sorted(frames))
        poses = np.stack([frames[f] for f in present])
        motion = float(poses.var(axis=0).sum()) if len(present) > 1 else 0.0
        # Fill absent frames with the nearest earlier pose (the first pose before the body appears).
        idx = np.searchsorted(present, np.arange(n_frames), side="right") - 1
        filled = poses[np.maximum(idx, 0)]
        missing = sorted(set(range(n_frames)) - set(present.tolist()))
        bodies.append(filled)
        summary.append({"id": body_id, "frames_present": int(len(present)), "motion": motion, "filled_frames": missing})
    order = sorted(range(len(bodies)), key=lambda i: (-summary[i]["frames_present"], -summary[i]["motion"]))
    if max_bodies is not None:
        order = order[: max(1, int(max_bodies))]
    stacked = np.stack([bodies[i] for i in order]).astype(np.float32)

    details = parse_ntu_name(path.name)
    details.update(
        bodies=[summary[i] for i in order],
        dropped_bodies=len(bodies) - len(order),
        empty_frames=empty_frames,
        fill="previous pose of the same body (first pose before it appears)",
        coordinates="Kinect v2 camera space, metres: x to the sensor's left, y up, z away from the sensor",
    )
    label = f"A{details['action']:03d}" if "action" in details else None
    if empty_frames:
        log.info("%s: %d frames without a body, filled with the previous pose", path, len(empty_frames))
    return Clip.from_bodies(
        stacked,
        NTU25,
        NTU_FPS,
        label=label,
        name=path.stem,
        provenance=Provenance(source=str(path), format="ntu-skeleton", details=details),
    )
