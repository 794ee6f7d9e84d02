"""ST-GCN / MS-G3D / CTR-GCN arrays: ``<split>_data_joint.npy`` (N, C, T, V, M) + ``<split>_label.pkl``.

The ``.npy`` holds C = 3 coordinates in metres for T frames (zero-padded at the end), V joints and M
performers (absent ones all zero). The label file is a pickle of two plain lists, ``(sample_names, labels)``.
A pickle can run arbitrary code when loaded, so it is read with :class:`RestrictedUnpickler`, which
accepts only lists, tuples, strings, numbers and booleans and refuses every class, function or
persistent reference. The ``.npy`` is read with ``allow_pickle=False``.

The arrays do not say which skeleton they use: ``skeleton=`` does (default ``hdm05_25``, the layout of the
shared ``stgcn_npy`` sample; NTU RGB+D data needs ``skeleton="ntu25"``). Class names come from
``class_names=`` or a ``classes.txt`` beside the file, else ``class_<k>``.
"""

from __future__ import annotations

import io
import logging
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine import skeletons
from engine.data import Clip, ClipDataset, Provenance
from engine.errors import DataFormatError, MissingCompanionFileError, SkeletonMismatchError
from engine.skeletons import Skeleton

log = logging.getLogger(__name__)

FORMAT = "stgcn-npy"
DEFAULT_SKELETON = "hdm05_25"
DEFAULT_FPS = 30.0
_PLAIN = (list, tuple, str, int, float, bool)


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles only built-in containers and scalars: any global (class or function) is refused."""

    def __init__(self, file, path: Path | None = None) -> None:
        super().__init__(file)
        self._path = path

    def find_class(self, module: str, name: str):
        raise DataFormatError(
            self._path, f"the pickle refers to {module}.{name}; only plain lists, strings and numbers are accepted",
            hint="rewrite the labels as plain Python lists (pickle.dump((names, labels), f))",
        )

    def persistent_load(self, pid):
        raise DataFormatError(self._path, "the pickle uses persistent references; only plain lists are accepted")


def _check_plain(obj, path: Path | None, depth: int = 0) -> None:
    if depth > 4:
        raise DataFormatError(path, "the label pickle is nested too deeply")
    if not isinstance(obj, _PLAIN):
        raise DataFormatError(path, f"the label pickle holds a {type(obj).__name__}; only lists, strings and numbers")
    if isinstance(obj, (list, tuple)):
        for item in obj:
            _check_plain(item, path, depth + 1)


def safe_load_pickle(path: str | Path):
    """Load a pickle of plain lists/strings/numbers without executing anything."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataFormatError(path, f"cannot read ({exc})") from None
    try:
        obj = RestrictedUnpickler(io.BytesIO(data), path).load()
    except DataFormatError:
        raise
    except Exception as exc:  # truncated or not a pickle
        raise DataFormatError(path, f"not a readable pickle ({type(exc).__name__}: {exc})",
                              hint="the file is truncated or corrupt") from None
    _check_plain(obj, path)
    return obj


def read_label_pickle(path: str | Path) -> tuple[list[str], list[int]]:
    """``(sample_names, labels)`` from an ST-GCN label pickle."""
    path = Path(path)
    obj = safe_load_pickle(path)
    if not (isinstance(obj, (list, tuple)) and len(obj) == 2 and all(isinstance(o, (list, tuple)) for o in obj)):
        raise DataFormatError(path, "expected a pair of lists (sample_names, labels)")
    names, labels = obj
    if len(names) != len(labels):
        raise DataFormatError(path, f"{len(names)} sample names but {len(labels)} labels")
    if not all(isinstance(n, str) for n in names):
        raise DataFormatError(path, "sample names must be strings")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in labels):
        raise DataFormatError(path, "labels must be integers")
    return list(names), [int(v) for v in labels]


def find_label_file(npy: str | Path) -> Path | None:
    """The label pickle for an array: ``val_data_joint.npy`` → ``val_label.pkl``, ``X.npy`` → ``X_label.pkl`` /
    ``X.pkl``, or the only ``.pkl`` in the folder."""
    npy = Path(npy)
    stem = npy.stem
    candidates = []
    for marker in ("_data_joint", "_data_bone", "_data"):
        if marker in stem:
            candidates.append(npy.with_name(stem.split(marker)[0] + "_label.pkl"))
    candidates += [npy.with_name(stem + "_label.pkl"), npy.with_suffix(".pkl")]
    for c in candidates:
        if c.is_file():
            return c
    pkls = sorted(npy.parent.glob("*.pkl"))
    return pkls[0] if len(pkls) == 1 else None


class _StgcnArray:
    """The opened array and its labels; builds one clip per sample on demand."""

    def __init__(self, path, labels, skeleton, fps, class_names, trim) -> None:
        self.path = path = Path(path)
        if not path.is_file():
            raise DataFormatError(path, "no such file")
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as exc:
            raise DataFormatError(path, f"cannot read the array ({exc})", hint="truncated, corrupt or pickled") from None
        if arr.ndim == 4:
            arr = arr[..., None]
        if arr.ndim != 5:
            raise DataFormatError(path, f"expected (N, C, T, V, M), got shape {arr.shape}")
        n, c, t, v, m = arr.shape
        if c != 3:
            raise DataFormatError(path, f"expected C = 3 coordinates, got {c} (shape {arr.shape})")
        self.skeleton = sk = skeletons.get(skeleton)
        if v != sk.num_joints:
            raise SkeletonMismatchError(
                f"{path}: {v} joints per frame but skeleton {sk.name!r} has {sk.num_joints}; pass skeleton= "
                f"(e.g. 'ntu25' for NTU RGB+D)"
            )
        if n == 0 or t == 0 or m == 0:
            raise DataFormatError(path, f"the array holds no data (shape {arr.shape})")
        self.arr = arr
        if labels is None:
            labels = find_label_file(path)
            if labels is None:
                raise MissingCompanionFileError(
                    path, "no label pickle beside it (e.g. val_label.pkl for val_data_joint.npy)",
                    hint="pass labels= with its path, or labels=False for unlabelled samples",
                )
        if labels is False:
            self.names, self.labels = [f"{path.stem}_{i:05d}" for i in range(n)], [-1] * n
        else:
            self.names, self.labels = read_label_pickle(labels)
            if len(self.labels) != n:
                raise DataFormatError(labels, f"{len(self.labels)} labels for {n} samples in {path.name}")
        if class_names is None and (path.parent / "classes.txt").is_file():
            from engine.io.npz import read_class_names

            class_names = read_class_names(path.parent / "classes.txt")
        top = max(self.labels, default=-1)
        if class_names is None:
            class_names = [f"class_{k}" for k in range(top + 1)]
        self.class_names = [str(s) for s in class_names]
        if top >= len(self.class_names):
            raise DataFormatError(path, f"label {top} but only {len(self.class_names)} class names")
        self.fps = float(fps)
        self.trim = trim

    def __len__(self) -> int:
        return self.arr.shape[0]

    def clip(self, i: int) -> Clip:
        n = len(self)
        if not -n <= i < n:
            raise DataFormatError(self.path, f"sample index {i} out of range: the file holds {n} samples")
        i %= n
        bodies = np.asarray(self.arr[i], dtype=np.float32).transpose(3, 1, 2, 0)  # (M, T, V, 3)
        bad = ~np.isfinite(bodies)
        if bad.any():
            raise DataFormatError(self.path, f"sample {i} ({self.names[i]}) contains NaN or Inf",
                                  frame=int(np.argwhere(bad)[0][1]))
        if self.trim:
            present = np.any(bodies != 0, axis=(2, 3))  # (M, T)
            keep = np.flatnonzero(present.any(axis=1))
            frames = np.flatnonzero(present.any(axis=0))
            if len(keep) == 0:
                raise DataFormatError(self.path, f"sample {i} ({self.names[i]}) is empty: every value is zero")
            bodies = bodies[keep, : frames[-1] + 1]
        k = self.labels[i]
        return Clip.from_bodies(
            bodies, self.skeleton, self.fps, label=self.class_names[k] if k >= 0 else None, name=self.names[i],
            provenance=Provenance(str(self.path), FORMAT, {"index": i}),
        )


def read_stgcn(
    path: str | Path,
    *,
    labels: str | Path | bool | None = None,
    skeleton: str | Skeleton = DEFAULT_SKELETON,
    fps: float = DEFAULT_FPS,
    class_names: Sequence[str] | None = None,
    trim: bool = True,
) -> ClipDataset:
    """An ST-GCN ``.npy`` (+ label pickle) as a :class:`ClipDataset`.

    ``labels``: the pickle (default: found beside, see :func:`find_label_file`; ``False``: unlabelled).
    ``skeleton`` (default ``hdm05_25``): the joint layout of the array. ``trim`` drops trailing all-zero
    frames and performers that are zero throughout (the padding of these files).
    """
    a = _StgcnArray(path, labels, skeleton, fps, class_names, trim)
    clips = [a.clip(i) for i in range(len(a))]
    return ClipDataset(clips, a.class_names, skeleton=a.skeleton, name=Path(path).stem, source=str(path))


def read_stgcn_clip(path: str | Path, index: int = 0, *, labels=None, skeleton=DEFAULT_SKELETON, fps=DEFAULT_FPS,
                    class_names=None, trim=True) -> Clip:
    """One sample of an ST-GCN ``.npy`` (only that sample is read from disk)."""
    return _StgcnArray(path, labels, skeleton, fps, class_names, trim).clip(index)
