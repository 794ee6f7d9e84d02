"""Clips and datasets of clips.

A :class:`Clip` is one motion: ``positions`` float32 (T, V, 3) in metres with the skeleton's up axis (y),
for the main performer, ``bodies`` (M, T, V, 3) for every performer, the :class:`~engine.skeletons.Skeleton`,
the frame rate, an optional label and where it came from.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from engine.errors import DataFormatError, ParameterError, SkeletonMismatchError
from engine.skeletons import Skeleton

log = logging.getLogger(__name__)


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


# -- datasets ----------------------------------------------------------------------------------------------------
class ClipDataset(Sequence):
    """An ordered collection of clips that share one skeleton, with class names for their labels.

    ``class_names`` defaults to the sorted distinct labels. A clip whose label is not among the class names
    raises :class:`DataFormatError`; an unlabelled clip (``label=None``) gets label index ``-1``.
    Indexing with an int gives a :class:`Clip`; with a slice or index array a new :class:`ClipDataset`.
    """

    def __init__(
        self,
        clips: Iterable[Clip],
        class_names: Iterable[str] | None = None,
        *,
        skeleton: Skeleton | None = None,
        name: str = "",
        source: str = "",
    ) -> None:
        self._clips: tuple[Clip, ...] = tuple(clips)
        self.name = name
        self.source = str(source)
        for i, c in enumerate(self._clips):
            if not isinstance(c, Clip):
                raise TypeError(f"ClipDataset item {i} is a {type(c).__name__}, not a Clip")
        if skeleton is None and self._clips:
            skeleton = self._clips[0].skeleton
        for c in self._clips:
            if c.skeleton != skeleton:
                raise SkeletonMismatchError(
                    f"clip {c.title!r} uses skeleton {c.skeleton.name!r} ({c.skeleton.num_joints} joints) but the "
                    f"dataset uses {skeleton.name!r} ({skeleton.num_joints} joints); map the clips to one layout "
                    "first (engine.data.map_clip)"
                )
        self._skeleton = skeleton
        if class_names is None:
            class_names = sorted({c.label for c in self._clips if c.label is not None})
        self._class_names: tuple[str, ...] = tuple(str(n) for n in class_names)
        if len(set(self._class_names)) != len(self._class_names):
            raise DataFormatError(self.source or None, f"duplicate class names in {list(self._class_names)}")
        index = {n: i for i, n in enumerate(self._class_names)}
        labels = []
        for c in self._clips:
            if c.label is None:
                labels.append(-1)
            elif c.label in index:
                labels.append(index[c.label])
            else:
                raise DataFormatError(
                    self.source or c.provenance.source or None,
                    f"clip {c.title!r} has label {c.label!r}, which is not one of the class names "
                    f"{list(self._class_names)}",
                    hint="add the class name or fix the clip's label",
                )
        self._labels = np.asarray(labels, dtype=np.int64)

    # -- sequence protocol --------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._clips)

    def __getitem__(self, item):
        if isinstance(item, (int, np.integer)):
            return self._clips[item]
        if isinstance(item, slice):
            return self.subset(range(len(self))[item])
        return self.subset(item)

    def __iter__(self) -> Iterator[Clip]:
        return iter(self._clips)

    def __repr__(self) -> str:
        sk = self._skeleton.name if self._skeleton is not None else None
        return f"ClipDataset({len(self)} clips, {len(self._class_names)} classes, skeleton={sk!r})"

    # -- properties -----------------------------------------------------------------------------------------------
    @property
    def clips(self) -> tuple[Clip, ...]:
        return self._clips

    @property
    def skeleton(self) -> Skeleton:
        if self._skeleton is None:
            raise SkeletonMismatchError("an empty dataset has no skeleton")
        return self._skeleton

    @property
    def class_names(self) -> tuple[str, ...]:
        return self._class_names

    @property
    def num_classes(self) -> int:
        return len(self._class_names)

    @property
    def labels(self) -> np.ndarray:
        """Class index of every clip (int64, ``-1`` for unlabelled clips)."""
        return self._labels.copy()

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self._labels[self._labels >= 0], minlength=len(self._class_names))
        return {n: int(k) for n, k in zip(self._class_names, counts)}

    # -- selections -------------------------------------------------------------------------------------------------
    def subset(self, indices: Iterable[int]) -> ClipDataset:
        """The clips at ``indices`` (in that order), keeping the class names and skeleton."""
        arr = np.asarray(indices if isinstance(indices, np.ndarray) else list(indices))
        if arr.dtype == bool:
            if arr.shape != (len(self),):
                raise IndexError(f"boolean mask of shape {arr.shape} for {len(self)} clips")
            arr = np.flatnonzero(arr)
        idx = [int(i) for i in arr.ravel()]
        return ClipDataset(
            [self._clips[i] for i in idx], self._class_names, skeleton=self._skeleton, name=self.name,
            source=self.source,
        )

    def by_label(self, label: str | int) -> ClipDataset:
        """The clips of one class, given by name or index."""
        k = self.class_index(label)
        return self.subset(np.flatnonzero(self._labels == k))

    def class_index(self, label: str | int) -> int:
        if isinstance(label, (int, np.integer)):
            if not 0 <= int(label) < len(self._class_names):
                raise DataFormatError(
                    self.source or None, f"class index {label} out of range (0..{len(self._class_names) - 1})"
                )
            return int(label)
        try:
            return self._class_names.index(label)
        except ValueError:
            raise DataFormatError(
                self.source or None, f"no class named {label!r}; classes are {list(self._class_names)}"
            ) from None

    def with_class_names(self, class_names: Iterable[str]) -> ClipDataset:
        return ClipDataset(self._clips, class_names, skeleton=self._skeleton, name=self.name, source=self.source)

    def split(self, test_fraction: float = 0.25, seed: int = 0) -> tuple[ClipDataset, ClipDataset]:
        """Seeded train/test split by clip (never by window), stratified per class.

        In each class ``round(n * test_fraction)`` clips go to test, at least one when the class has two or
        more clips and never all of them; a class with a single clip stays in train. Unlabelled clips are
        split as one more group. The same seed gives the same split.
        """
        train_idx, test_idx = _stratified_clip_split(self._labels, test_fraction, seed)
        return self.subset(train_idx), self.subset(test_idx)

    def to_windows(
        self,
        fps: float,
        window: int,
        stride: int | None = None,
        *,
        short: str = "pad",
        num_bodies: int | None = None,
    ) -> WindowSet:
        """Every clip resampled to ``fps`` and cut into windows: a :class:`WindowSet` in world coordinates (see
        :func:`preprocess_clip`)."""
        return make_windows(self, fps=fps, window=window, stride=stride, short=short, num_bodies=num_bodies)


def _check_fraction(test_fraction: float) -> None:
    if not 0.0 < float(test_fraction) < 1.0:
        raise ParameterError(f"test_fraction must be between 0 and 1 (exclusive), got {test_fraction}")


def _stratified_clip_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    _check_fraction(test_fraction)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for k in sorted(set(labels.tolist())):
        members = np.flatnonzero(labels == k)
        members = members[rng.permutation(len(members))]
        n = len(members)
        n_test = 0 if n < 2 else min(n - 1, max(1, int(round(n * test_fraction))))
        test.extend(members[:n_test].tolist())
        train.extend(members[n_test:].tolist())
    return sorted(train), sorted(test)


# -- layout mapping and resampling --------------------------------------------------------------------------------
def map_clip(clip: Clip, skeleton: Skeleton | str) -> Clip:
    """The clip re-indexed into another skeleton layout by joint names (see :func:`engine.skeletons.joint_map`)."""
    from engine import skeletons

    dst = skeletons.get(skeleton)
    if clip.skeleton == dst:
        return clip
    idx = skeletons.joint_map(clip.skeleton, dst)
    bodies = clip.bodies[:, :, idx, :]
    details = {**clip.provenance.details, "mapped_from": clip.skeleton.name}
    return replace(
        clip, positions=bodies[0], bodies=bodies, skeleton=dst, provenance=replace(clip.provenance, details=details)
    )


def _interp_frames(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Linear interpolation of (..., T, V, 3) at fractional frame positions ``t``; also the bracketing frames."""
    n = x.shape[-3]
    i0 = np.clip(np.floor(t).astype(np.int64), 0, n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    w = (t - i0).astype(np.float32)[:, None, None]
    a, b = x[..., i0, :, :], x[..., i1, :, :]
    return a + (b - a) * w, a, b, w


def resample(clip: Clip, fps: float, *, preserve_bones: bool = True) -> Clip:
    """The clip at another frame rate, by linear interpolation in time.

    Frames are taken at ``k / fps`` seconds for every ``k`` inside the clip's duration, so 120 → 30 fps keeps
    every fourth frame exactly. Linear interpolation of positions shortens bones that rotate between two
    frames; with ``preserve_bones`` each interpolated bone keeps its interpolated direction but gets the
    interpolated *length* of the two source frames (rebuilt from the root outwards), so rigid skeletons stay
    rigid.
    """
    fps = float(fps)
    if not (np.isfinite(fps) and fps > 0):
        raise ParameterError(f"target fps must be positive, got {fps}")
    if abs(fps - clip.fps) < 1e-9:
        return clip
    T = clip.num_frames
    n = int(np.floor((T - 1) / clip.fps * fps + 1e-6)) + 1
    t = np.arange(n, dtype=np.float64) * (clip.fps / fps)
    bodies, a, b, w = _interp_frames(clip.bodies, t)
    if preserve_bones and np.any(w > 1e-6):
        sk = clip.skeleton
        la, lb = sk.bone_lengths(a), sk.bone_lengths(b)  # (M, n, B)
        target = la + (lb - la) * w[..., 0]
        out = bodies.copy()
        order = {c: bone for bone, (p, c) in enumerate(sk.bones)}
        for j in sk.topological_order:
            p = sk.parents[j]
            if p < 0:
                continue
            v = bodies[..., j, :] - bodies[..., p, :]
            norm = np.linalg.norm(v, axis=-1, keepdims=True)
            unit = np.divide(v, norm, out=np.zeros_like(v), where=norm > 1e-9)
            length = target[..., order[j]][..., None]
            out[..., j, :] = np.where(norm > 1e-9, out[..., p, :] + unit * length, out[..., p, :] + v)
        bodies = out
    details = {**clip.provenance.details, "resampled_from_fps": clip.fps}
    return replace(
        clip, positions=bodies[0], bodies=bodies.astype(np.float32), fps=fps,
        provenance=replace(clip.provenance, details=details),
    )


# -- spatial normalisation ------------------------------------------------------------------------------------------
def root_centre(positions: np.ndarray, skeleton: Skeleton, *, per_frame: bool = True) -> np.ndarray:
    """Positions (..., T, V, 3) minus the root joint: of every frame (default, as the SMART code does), or of
    the first frame only (``per_frame=False``, keeps the global trajectory)."""
    x = np.asarray(positions)
    skeleton.check_positions(x)
    r = skeleton.root
    if per_frame:
        return x - x[..., r : r + 1, :]
    return x - x[..., :1, r : r + 1, :]


_HIP_WORDS = ("upleg", "thigh", "femur", "hip")
_SHOULDER_WORDS = ("shoulder", "clavicle", "humerus")


def _lateral_pairs(skeleton: Skeleton) -> list[tuple[int, int]]:
    pairs = []
    for left, right in skeleton.symmetric_pairs:
        name = skeleton.joint_names[left].lower()
        upper_arm = "arm" in name and not any(w in name for w in ("fore", "hand", "lower"))
        if any(w in name for w in _HIP_WORDS + _SHOULDER_WORDS) or upper_arm:
            pairs.append((left, right))
    return pairs


def _rotation_about(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    k = axis / np.linalg.norm(axis)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]], dtype=np.float64)
    s, c = np.sin(angle)[..., None, None], np.cos(angle)[..., None, None]
    return np.eye(3) + s * K + (1 - c) * (K @ K)


def facing_rotation(positions: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """Rotation matrices (..., 3, 3) about the up axis that turn frame 0 of (..., T, V, 3) to face +z.

    Facing is the up axis crossed with the left→right line through the hips and shoulders (summed over the
    left/right pairs named like hips, upper legs, shoulders or upper arms). A degenerate frame gets the identity.
    """
    x = np.asarray(positions, dtype=np.float64)
    skeleton.check_positions(x)
    pairs = _lateral_pairs(skeleton)
    if not pairs:
        raise SkeletonMismatchError(
            f"skeleton {skeleton.name!r} has no left/right hip or shoulder joints; facing normalisation needs them"
        )
    first = x[..., 0, :, :]
    across = sum(first[..., r, :] - first[..., l, :] for l, r in pairs)
    up = np.zeros(3)
    up[skeleton.up_index] = 1.0
    forward = np.cross(up, across)
    target = np.array([0.0, 0.0, 1.0]) if skeleton.up_axis != "z" else np.array([0.0, 1.0, 0.0])
    sin = np.cross(forward, target) @ up
    cos = forward @ target
    angle = np.where(np.hypot(sin, cos) > 1e-9, np.arctan2(sin, cos), 0.0)
    return _rotation_about(up, np.asarray(angle))


def face_forward(positions: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """Rotate (..., T, V, 3) about the vertical line through the root at frame 0 so that the body faces +z
    at frame 0 (see :func:`facing_rotation`). Bone lengths and heights are unchanged."""
    x = np.asarray(positions)
    rot = facing_rotation(x, skeleton)
    pivot = x[..., :1, skeleton.root : skeleton.root + 1, :].astype(np.float64)
    out = np.einsum("...ij,...tvj->...tvi", rot, x - pivot) + pivot
    return out.astype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32)


# -- windows ---------------------------------------------------------------------------------------------------------
SHORT_POLICIES = ("pad", "skip", "error")


def _window_starts(n: int, window: int, stride: int | None, short: str, where: str) -> tuple[list[int], bool]:
    """Window start frames for a clip of ``n`` frames, and whether the single window must be padded."""
    if window < 1:
        raise ParameterError(f"window must be at least 1 frame, got {window}")
    stride = window if stride is None else int(stride)
    if stride < 1:
        raise ParameterError(f"stride must be at least 1 frame, got {stride}")
    if short not in SHORT_POLICIES:
        raise ParameterError(f"short must be one of {SHORT_POLICIES}, got {short!r}")
    if n >= window:
        return list(range(0, n - window + 1, stride)), False
    if short == "skip":
        log.debug("%s: %d frames is shorter than the %d-frame window; skipped", where, n, window)
        return [], False
    if short == "error":
        raise DataFormatError(None, f"{where}: {n} frames is shorter than the {window}-frame window")
    log.debug("%s: %d frames is shorter than the %d-frame window; padded by repeating the last frame", where, n, window)
    return [0], True


def _cut(x: np.ndarray, starts: list[int], window: int, pad: bool) -> np.ndarray:
    """Windows along axis -3 of (..., T, V, 3): (W, ..., window, V, 3)."""
    if pad:
        n = x.shape[-3]
        idx = np.minimum(np.arange(window), n - 1)
        return x[..., idx, :, :][None]
    if not starts:
        return np.zeros((0, *x.shape[:-3], window, *x.shape[-2:]), dtype=x.dtype)
    idx = np.asarray(starts)[:, None] + np.arange(window)[None]  # (W, window)
    out = x[..., idx, :, :]  # (..., W, window, V, 3)
    return np.moveaxis(out, -4, 0)


def windows(clip: Clip | np.ndarray, window: int, stride: int | None = None, *, short: str = "pad") -> np.ndarray:
    """Fixed-length windows of the main performer: (W, window, V, 3).

    Windows start at 0, stride, 2·stride… (``stride=None`` means ``window``: no overlap); frames after the last
    full window are dropped. A clip shorter than ``window`` gives, by ``short``: ``"pad"`` (default) one window
    padded by repeating its last frame; ``"skip"`` no window; ``"error"`` a :class:`DataFormatError`.
    """
    if isinstance(clip, Clip):
        x, where = clip.positions, clip.title
    else:
        x, where = np.asarray(clip, dtype=np.float32), "positions"
        if x.ndim != 3 or x.shape[-1] != 3:
            raise ParameterError(f"positions must be (T, V, 3), got {x.shape}")
    starts, pad = _window_starts(x.shape[0], window, stride, short, where)
    return _cut(x, starts, window, pad)


def _present(bodies: np.ndarray) -> np.ndarray:
    """(…, M, T, 1, 1) mask of body-frames that are not zero padding."""
    return np.any(bodies != 0, axis=(-1, -2), keepdims=True)


def _preprocess(
    clip: Clip, fps: float, window: int, stride: int | None, short: str, num_bodies: int | None,
) -> tuple[np.ndarray, list[int], bool]:
    c = resample(clip, fps)
    bodies = c.bodies  # (M, T, V, 3)
    if num_bodies is not None:
        m = bodies.shape[0]
        if m > num_bodies:
            bodies = bodies[:num_bodies]
        elif m < num_bodies:
            bodies = np.concatenate([bodies, np.zeros((num_bodies - m, *bodies.shape[1:]), bodies.dtype)])
    starts, pad = _window_starts(bodies.shape[1], window, stride, short, clip.title)
    w = _cut(bodies, starts, window, pad)  # (W, M, window, V, 3)
    x = np.ascontiguousarray(np.asarray(w, dtype=np.float32).transpose(0, 4, 2, 3, 1))  # (W, 3, T, V, M)
    return x, starts, pad


def preprocess_clip(
    clip: Clip,
    *,
    fps: float,
    window: int,
    stride: int | None = None,
    short: str = "pad",
    num_bodies: int | None = None,
) -> np.ndarray:
    """A clip cut into windows for a classifier: (W, 3, T, V, M) float32, metres, **world coordinates**.

    Steps: :func:`resample` to ``fps``; cut windows of ``window`` frames every ``stride`` frames (see
    :func:`windows` for ``stride=None`` and the ``short`` policy); ``num_bodies`` pads (with zeros) or
    truncates the performer axis M. Nothing spatial happens here: root centring and facing are the
    classifier's own (:class:`engine.preprocessing.Preprocessing`), run inside its ``forward``. Use
    :meth:`Preprocessing.windows <engine.preprocessing.Preprocessing.windows>` to cut a clip as a given
    classifier takes it.
    """
    return _preprocess(clip, fps, window, stride, short, num_bodies)[0]


@dataclass
class WindowSet:
    """Fixed-length windows ready for a classifier.

    ``x`` float32 (N, 3, T, V, M) in metres; ``y`` int64 (N,) class index (-1 unlabelled); ``clip_index``
    (N,) the clip of the source dataset each window came from; ``start`` (N,) its first frame at ``fps``;
    ``padded`` (N,) whether it was padded because its clip was shorter than T.
    """

    x: np.ndarray
    y: np.ndarray
    clip_index: np.ndarray
    class_names: tuple[str, ...]
    skeleton: Skeleton
    fps: float
    start: np.ndarray | None = None
    padded: np.ndarray | None = None
    clip_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.x = np.asarray(self.x, dtype=np.float32)
        n = self.x.shape[0]
        if self.x.ndim != 5 or self.x.shape[1] != 3:
            raise DataFormatError(None, f"window array must be (N, 3, T, V, M), got {self.x.shape}")
        if self.x.shape[3] != self.skeleton.num_joints:
            raise SkeletonMismatchError(
                f"windows have {self.x.shape[3]} joints but skeleton {self.skeleton.name!r} has "
                f"{self.skeleton.num_joints}"
            )
        self.y = np.asarray(self.y, dtype=np.int64).reshape(-1)
        self.clip_index = np.asarray(self.clip_index, dtype=np.int64).reshape(-1)
        self.start = np.zeros(n, np.int64) if self.start is None else np.asarray(self.start, dtype=np.int64)
        self.padded = np.zeros(n, bool) if self.padded is None else np.asarray(self.padded, dtype=bool)
        self.class_names = tuple(self.class_names)
        self.clip_names = tuple(self.clip_names)
        for name in ("y", "clip_index", "start", "padded"):
            if len(getattr(self, name)) != n:
                raise DataFormatError(None, f"WindowSet.{name} has {len(getattr(self, name))} entries for {n} windows")
        if n and self.y.max(initial=-1) >= len(self.class_names):
            raise DataFormatError(None, f"label {int(self.y.max())} but only {len(self.class_names)} class names")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def window(self) -> int:
        return int(self.x.shape[2])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_bodies(self) -> int:
        return int(self.x.shape[4])

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.y[self.y >= 0], minlength=len(self.class_names))
        return {n: int(k) for n, k in zip(self.class_names, counts)}

    def subset(self, indices) -> WindowSet:
        idx = np.asarray(indices)
        return replace(
            self, x=self.x[idx], y=self.y[idx], clip_index=self.clip_index[idx], start=self.start[idx],
            padded=self.padded[idx],
        )

    def clip(self, i: int) -> Clip:
        """Window ``i`` as a :class:`Clip` (all performers), e.g. to show or save it."""
        bodies = self.x[i].transpose(3, 1, 2, 0)  # (M, T, V, 3)
        k = int(self.y[i])
        src = int(self.clip_index[i])
        name = self.clip_names[src] if src < len(self.clip_names) else f"clip{src}"
        return Clip.from_bodies(
            bodies, self.skeleton, self.fps, label=self.class_names[k] if k >= 0 else None,
            name=f"{name}@{int(self.start[i])}",
            provenance=Provenance("", "window", {"clip_index": src, "start": int(self.start[i])}),
        )


def make_windows(
    dataset: ClipDataset,
    *,
    fps: float,
    window: int,
    stride: int | None = None,
    short: str = "pad",
    num_bodies: int | None = None,
) -> WindowSet:
    """Every clip of ``dataset`` through :func:`preprocess_clip`, gathered into one :class:`WindowSet`.

    ``num_bodies`` defaults to the most performers any clip has; clips with fewer are zero-padded.
    """
    if num_bodies is None:
        num_bodies = max((c.num_bodies for c in dataset), default=1)
    xs, ys, ci, st, pd = [], [], [], [], []
    labels = dataset.labels
    for i, clip in enumerate(dataset):
        x, starts, pad = _preprocess(clip, fps, window, stride, short, num_bodies)
        xs.append(x)
        ys.append(np.full(len(x), labels[i], np.int64))
        ci.append(np.full(len(x), i, np.int64))
        st.append(np.asarray(starts, np.int64)[: len(x)])
        pd.append(np.full(len(x), pad, bool))
    if len(dataset) == 0:
        raise DataFormatError(dataset.source or None, "the dataset has no clips to cut into windows")
    x = np.concatenate(xs) if xs else np.zeros((0, 3, window, dataset.skeleton.num_joints, num_bodies), np.float32)
    if pd and np.concatenate(pd).any():
        log.info(
            "%d clip(s) shorter than %d frames at %g fps were padded by repeating their last frame",
            sum(int(p.any()) for p in pd), window, fps,
        )
    return WindowSet(
        x=x, y=np.concatenate(ys), clip_index=np.concatenate(ci), class_names=dataset.class_names,
        skeleton=dataset.skeleton, fps=float(fps), start=np.concatenate(st), padded=np.concatenate(pd),
        clip_names=tuple(c.name or c.title for c in dataset),
    )


def normalisation_stats(x: WindowSet | np.ndarray, per_joint: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Input normalisation ``(mean, std)`` of windows (N, 3, T, V, M), both float32 and broadcastable to them.

    ``mean`` is per coordinate and joint, shape (1, 3, 1, V, 1) (as the SMART code's ``Xmean``); ``std`` is one
    global scalar of shape (1, 1, 1, 1, 1) (as its ``Xstd``), or per coordinate and joint (1, 3, 1, V, 1)
    with ``per_joint=True``. Zero-padded performers are left out; a zero std becomes 1.
    """
    a = x.x if isinstance(x, WindowSet) else np.asarray(x, dtype=np.float32)
    if a.ndim != 5 or a.shape[1] != 3 or a.shape[0] == 0:
        raise ParameterError(f"need windows (N, 3, T, V, M) with N > 0, got shape {a.shape}")
    a = a.astype(np.float64)
    present = np.any(a != 0, axis=(1, 3), keepdims=True)  # (N, 1, T, 1, M)
    w = np.broadcast_to(present, a.shape).astype(np.float64)
    count = np.maximum(w.sum(axis=(0, 2, 4), keepdims=True), 1.0)
    mean = (a * w).sum(axis=(0, 2, 4), keepdims=True) / count
    dev2 = (a - mean) ** 2 * w
    if per_joint:
        std = np.sqrt(dev2.sum(axis=(0, 2, 4), keepdims=True) / count)
    else:
        std = np.sqrt(dev2.sum() / max(w.sum(), 1.0)).reshape(1, 1, 1, 1, 1)
    std = np.where(std > 1e-8, std, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


# -- splits ----------------------------------------------------------------------------------------------------------
def split_clip_in_time(clip: Clip, test_fraction: float = 0.25, gap_s: float = 1.0) -> tuple[Clip | None, Clip | None]:
    """Cut one clip in time: ``(head, tail)``. The tail is the last ``test_fraction`` of the frames; the
    ``gap_s`` seconds before it are dropped so that no window straddles both parts. When the clip is too short
    to leave a head, the whole clip is the head and the tail is ``None``."""
    _check_fraction(test_fraction)
    T = clip.num_frames
    n_test = max(1, int(round(T * test_fraction)))
    cut = T - n_test
    head_end = cut - int(round(gap_s * clip.fps))
    if head_end < 1:
        log.warning(
            "%s: %d frames is too short for a time split with a %.1f s gap; the whole clip stays on the train side",
            clip.title, T, gap_s,
        )
        return clip, None
    name = clip.name or clip.title

    def part(lo: int, hi: int, side: str) -> Clip:
        details = {**clip.provenance.details, "time_split": side, "frames": [lo, hi]}
        return replace(
            clip, positions=clip.positions[lo:hi], bodies=clip.bodies[:, lo:hi], name=f"{name}[{lo}:{hi}]",
            provenance=replace(clip.provenance, details=details),
        )

    return part(0, head_end, "train"), part(cut, T, "test")


def split_by_clip_with_time_fallback(
    dataset: ClipDataset, test_fraction: float = 0.25, seed: int = 0, min_clips: int = 3, gap_s: float = 1.0
) -> tuple[ClipDataset, ClipDataset]:
    """The project's benchmark split, ``(train, test)``.

    A class with at least ``min_clips`` clips is split by clip (seeded, as :meth:`ClipDataset.split`), so its
    test windows come from clips the classifier never saw. A class with fewer clips cannot spare whole clips:
    each of its clips is split in time (:func:`split_clip_in_time`: the last ``test_fraction`` of the frames
    to test, ``gap_s`` seconds before them dropped, the rest to train). Deterministic for a given seed.
    """
    _check_fraction(test_fraction)
    labels = dataset.labels
    rng = np.random.default_rng(seed)
    train: list[tuple[int, int, Clip]] = []
    test: list[tuple[int, int, Clip]] = []
    for k in sorted(set(labels.tolist())):
        members = np.flatnonzero(labels == k)
        if len(members) >= min_clips:
            order = members[rng.permutation(len(members))]
            n_test = min(len(members) - 1, max(1, int(round(len(members) * test_fraction))))
            test.extend((int(i), 0, dataset[int(i)]) for i in order[:n_test])
            train.extend((int(i), 0, dataset[int(i)]) for i in order[n_test:])
        else:
            for i in members:
                head, tail = split_clip_in_time(dataset[int(i)], test_fraction, gap_s)
                if head is not None:
                    train.append((int(i), 0, head))
                if tail is not None:
                    test.append((int(i), 1, tail))
    train.sort(key=lambda t: t[:2])
    test.sort(key=lambda t: t[:2])
    kw = {"skeleton": dataset.skeleton if len(dataset) else None, "name": dataset.name, "source": dataset.source}
    return (
        ClipDataset([c for *_, c in train], dataset.class_names, **kw),
        ClipDataset([c for *_, c in test], dataset.class_names, **kw),
    )
