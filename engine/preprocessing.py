"""A classifier's preprocessing: the one path from a motion clip to what the network sees.

The threat model of skelviz is the field's: an attacker perturbs the motion a sensor records (joint positions
in metres, y up, in world coordinates) and the deployed recogniser preprocesses it as it always does. So the
preprocessing is split in two and owned by the classifier (stored in its checkpoint as one frozen
:class:`Preprocessing`):

* **Choosing frames** (outside the model): resample to ``fps``, cut ``window``-frame windows every ``stride``
  frames, pad or truncate the performer axis to ``num_bodies``. :meth:`Preprocessing.windows` and
  :meth:`Preprocessing.window_set` do this; their output stays in world coordinates.
* **Spatial normalisation** (inside the model's ``forward``, differentiable): optionally turn each window to
  face +z (:attr:`face`), subtract the root joint (:attr:`centre`), then the input normalisation (mean/std held
  by the classifier). :meth:`Preprocessing.apply` is that step.

Because centring runs inside the model, an attack cannot win by moving the root joint of an already-centred
input (a channel the deployed pipeline would erase): moving the root is, to the model, moving every other joint
the opposite way. Translating a whole clip never changes a prediction (tested for every architecture).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Any, Literal, get_args

import numpy as np
import torch

from engine.errors import ParameterError
from engine.skeletons import Skeleton

log = logging.getLogger(__name__)

CentreMode = Literal["frame", "first", "none"]
NormalisationMode = Literal["global", "per_joint"]


@dataclass(frozen=True)
class Preprocessing:
    """How a classifier takes motion (see the module docstring).

    ``fps``: frame rate windows are resampled to. ``window``: frames per sample. ``stride``: frames between
    window starts when a clip is cut into many (evaluation, attacks over a dataset; default ``window // 3``, the
    SMART code's 60/20). ``centre``: ``"frame"`` subtracts the main performer's root joint in every frame (the
    SMART/BEAT code and most GCN pipelines), ``"first"`` only its position in the first frame (keeps the
    trajectory), ``"none"`` nothing (raw camera coordinates, as the official NTU code bases). ``face``: rotate
    each window about the vertical axis so that the main performer faces +z at its first frame.
    ``num_bodies``: performers per sample (zero padding for absent ones). ``normalisation``: how the input
    mean/std were estimated (``"global"``: per-coordinate-and-joint mean, one scalar std, as the SMART code's
    ``Xmean``/``Xstd``; ``"per_joint"``: both per coordinate and joint).
    """

    fps: float = 30.0
    window: int = 60
    stride: int | None = None
    centre: CentreMode = "frame"
    face: bool = False
    num_bodies: int = 1
    normalisation: NormalisationMode = "global"

    def __post_init__(self) -> None:
        fps = float(self.fps)
        if not (np.isfinite(fps) and fps > 0):
            raise ParameterError(f"preprocessing fps must be a positive number, got {self.fps!r}")
        object.__setattr__(self, "fps", fps)
        for name in ("window", "num_bodies"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 1:
                raise ParameterError(f"preprocessing {name} must be a whole number >= 1, got {value!r}")
            object.__setattr__(self, name, int(value))
        stride = max(1, self.window // 3) if self.stride is None else self.stride
        if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or int(stride) < 1:
            raise ParameterError(f"preprocessing stride must be a whole number >= 1, got {self.stride!r}")
        object.__setattr__(self, "stride", int(stride))
        if self.centre not in get_args(CentreMode):
            raise ParameterError(
                f"preprocessing centre must be one of {', '.join(get_args(CentreMode))}, got {self.centre!r}"
            )
        if self.normalisation not in get_args(NormalisationMode):
            raise ParameterError(
                f"preprocessing normalisation must be one of {', '.join(get_args(NormalisationMode))}, "
                f"got {self.normalisation!r}"
            )
        object.__setattr__(self, "face", bool(self.face))

    # -- storage -------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, where: str = "checkpoint", *, legacy: bool = False
                  ) -> Preprocessing:
        """Read a stored preprocessing; ``legacy``: convert the untyped dict of a format-1 checkpoint.

        Format 1 stored ``root_centre`` (bool, default True: windows were centred on the root in every frame
        before they reached the model) and often no ``stride`` (then the windows were cut without overlap,
        ``stride = window``). The conversion is exact: those models were trained on per-frame root-centred
        windows, which is what ``centre="frame"`` now computes inside the model from world coordinates.
        """
        d = {k: v for k, v in dict(d or {}).items() if v is not None}
        if "root_centre" in d:
            d["centre"] = "frame" if d.pop("root_centre") else "none"
        if legacy and "centre" not in d:
            d["centre"] = "frame"  # format 1's default
        if legacy and "stride" not in d and "window" in d:
            d["stride"] = d["window"]
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ParameterError(f"{where}: unknown preprocessing setting(s) {unknown}; known: {sorted(known)}")
        try:
            return cls(**d)
        except TypeError as exc:
            raise ParameterError(f"{where}: bad preprocessing {d}: {exc}") from None

    @classmethod
    def coerce(cls, value: Preprocessing | Mapping[str, Any] | None) -> Preprocessing:
        if isinstance(value, Preprocessing):
            return value
        return cls.from_dict(value, "preprocessing")

    # -- choosing frames (outside the model) ---------------------------------------------------------------------
    def windows(self, clip, *, short: str = "pad") -> np.ndarray:
        """``clip`` resampled and cut into windows, world coordinates: (W, 3, window, V, num_bodies) float32."""
        from engine.data import preprocess_clip

        return preprocess_clip(clip, fps=self.fps, window=self.window, stride=self.stride, short=short,
                               num_bodies=self.num_bodies)

    def window_set(self, dataset, *, short: str = "pad"):
        """Every clip of a :class:`~engine.data.ClipDataset` as a :class:`~engine.data.WindowSet` (world)."""
        from engine.data import make_windows

        return make_windows(dataset, fps=self.fps, window=self.window, stride=self.stride, short=short,
                            num_bodies=self.num_bodies)

    # -- spatial normalisation (inside the model) ----------------------------------------------------------------
    def apply(self, x: torch.Tensor, skeleton: Skeleton) -> torch.Tensor:
        """Facing and root centring of world-coordinate windows (N, 3, T, V, M), differentiably.

        Absent (all-zero) performers stay zero. The facing rotation and the root come from the main performer
        (body 0) and are applied to every performer, so their relative placement is kept.
        """
        if not self.face and self.centre == "none":
            return x
        present = (x != 0).any(dim=1, keepdim=True).any(dim=3, keepdim=True)  # (N, 1, T, 1, M)
        r = skeleton.root
        if self.face:
            x = _face(x, skeleton)
        if self.centre == "frame":
            x = x - x[:, :, :, r : r + 1, :1]
        elif self.centre == "first":
            x = x - x[:, :, :1, r : r + 1, :1]
        return torch.where(present, x, torch.zeros_like(x))


@lru_cache(maxsize=32)
def _facing_axes(skeleton: Skeleton) -> tuple[tuple[int, ...], tuple[int, ...], int, tuple[float, float, float]]:
    from engine.data import _lateral_pairs
    from engine.errors import SkeletonMismatchError

    pairs = _lateral_pairs(skeleton)
    if not pairs:
        raise SkeletonMismatchError(
            f"skeleton {skeleton.name!r} has no left/right hip or shoulder joints; facing normalisation needs them"
        )
    target = (0.0, 0.0, 1.0) if skeleton.up_axis != "z" else (0.0, 1.0, 0.0)
    return tuple(p[0] for p in pairs), tuple(p[1] for p in pairs), skeleton.up_index, target


def _face(x: torch.Tensor, skeleton: Skeleton) -> torch.Tensor:
    """Rotate (N, 3, T, V, M) about the up axis through the main performer's root at frame 0 so that its
    facing direction (up × the left→right line through hips and shoulders) at frame 0 is +z (the same rule
    as :func:`engine.data.facing_rotation`, in torch)."""
    left, right, up_i, target = _facing_axes(skeleton)
    first = x[:, :, 0, :, 0]  # (N, 3, V)
    across = (first[:, :, list(right)] - first[:, :, list(left)]).sum(dim=-1)  # (N, 3)
    up = torch.zeros(3, dtype=x.dtype, device=x.device)
    up[up_i] = 1.0
    tgt = torch.tensor(target, dtype=x.dtype, device=x.device)
    forward = torch.linalg.cross(up.expand_as(across), across, dim=-1)
    norm = forward.norm(dim=-1, keepdim=True)
    ok = norm > 1e-9
    f = forward / norm.clamp_min(1e-9)
    cos = torch.where(ok[:, 0], (f * tgt).sum(-1), torch.ones_like(norm[:, 0]))
    sin = torch.where(ok[:, 0], (torch.linalg.cross(f, tgt.expand_as(f), dim=-1) * up).sum(-1),
                      torch.zeros_like(norm[:, 0]))
    k = torch.tensor([[0.0, -up[2], up[1]], [up[2], 0.0, -up[0]], [-up[1], up[0], 0.0]], dtype=x.dtype,
                     device=x.device)
    eye = torch.eye(3, dtype=x.dtype, device=x.device)
    rot = eye + sin[:, None, None] * k + (1 - cos)[:, None, None] * (k @ k)  # (N, 3, 3) Rodrigues
    r = skeleton.root
    pivot = x[:, :, :1, r : r + 1, :1]
    return torch.einsum("nij,njtvm->nitvm", rot, x - pivot) + pivot
