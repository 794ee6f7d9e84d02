"""Clips and datasets of clips.

A :class:`Clip` is one motion: ``positions`` float32 (T, V, 3) in metres with the skeleton's up axis (y),
for the main performer, ``bodies`` (M, T, V, 3) for every performer, the :class:`~engine.skeletons.Skeleton`,
the frame rate, an optional label and where it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from engine.errors import DataFormatError, SkeletonMismatchError
from engine.skeletons import Skeleton


@dataclass(frozen=True)
class Provenance:
    """Where a clip came from: the file, its format, and anything format-specific (subject, take, window)."""

    source: str = ""
    format: str = ""
    details: dict = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Clip:
    """One motion clip. Build it with ``Clip(positions, skeleton, fps, ...)`` or ``Clip.from_bodies``.

    ``positions`` is the main performer (``bodies[0]``); passing ``bodies`` alone derives it. Arrays are
    validated on construction: shape against the skeleton, at least one frame, finite values.
    """

    positions: np.ndarray
    skeleton: Skeleton
    fps: float
    label: str | None = None
    name: str = ""
    bodies: np.ndarray | None = None
    provenance: Provenance = field(default_factory=Provenance)

    def __post_init__(self) -> None:
        pos = np.asarray(self.positions, dtype=np.float32)
        where = self.provenance.source or self.name or None
        if pos.ndim != 3 or pos.shape[-1] != 3:
            raise DataFormatError(where, f"clip positions must be (T, V, 3), got shape {pos.shape}")
        if pos.shape[1] != self.skeleton.num_joints:
            raise SkeletonMismatchError(
                f"{where or 'clip'}: {pos.shape[1]} joints per frame but skeleton {self.skeleton.name!r} has "
                f"{self.skeleton.num_joints}; load it with the matching skeleton"
            )
        if pos.shape[0] == 0:
            raise DataFormatError(where, "the clip has no frames", hint="an empty clip cannot be shown or attacked")
        bad = ~np.isfinite(pos)
        if bad.any():
            frame = int(np.argwhere(bad)[0][0])
            raise DataFormatError(where, "positions contain NaN or Inf", frame=frame)
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise DataFormatError(where, f"frame rate must be positive, got {self.fps}")
        bodies = pos[None] if self.bodies is None else np.asarray(self.bodies, dtype=np.float32)
        if bodies.ndim != 4 or bodies.shape[1:] != pos.shape:
            raise DataFormatError(
                where, f"bodies must be (M, T, V, 3) matching positions {pos.shape}, got {bodies.shape}"
            )
        if not np.isfinite(bodies).all():
            frame = int(np.argwhere(~np.isfinite(bodies))[0][1])
            raise DataFormatError(where, "a performer's positions contain NaN or Inf", frame=frame)
        object.__setattr__(self, "positions", pos)
        object.__setattr__(self, "bodies", bodies)
        object.__setattr__(self, "fps", float(self.fps))

    @classmethod
    def from_bodies(cls, bodies: np.ndarray, skeleton: Skeleton, fps: float, **kw) -> Clip:
        bodies = np.asarray(bodies, dtype=np.float32)
        if bodies.ndim != 4 or bodies.shape[0] == 0:
            raise DataFormatError(kw.get("name") or None, f"bodies must be (M, T, V, 3), got {bodies.shape}")
        return cls(bodies[0], skeleton, fps, bodies=bodies, **kw)

    @property
    def num_frames(self) -> int:
        return self.positions.shape[0]

    @property
    def num_bodies(self) -> int:
        return self.bodies.shape[0]

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    @property
    def title(self) -> str:
        return self.name or (Path(self.provenance.source).stem if self.provenance.source else "clip")

    def with_positions(self, positions: np.ndarray, **changes) -> Clip:
        """A copy with new main-performer positions (other performers kept); e.g. an adversarial version."""
        positions = np.asarray(positions, dtype=np.float32)
        bodies = self.bodies.copy()
        if bodies.shape[1:] == positions.shape:
            bodies[0] = positions
        else:
            bodies = positions[None]
        return replace(self, positions=positions, bodies=bodies, **changes)

    def with_bodies(self, bodies: np.ndarray, **changes) -> Clip:
        bodies = np.asarray(bodies, dtype=np.float32)
        return replace(self, positions=bodies[0], bodies=bodies, **changes)
