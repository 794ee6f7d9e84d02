"""SMART / BEAT ``.npz`` arrays (the layout of the SMART, BASAR and BEAT code).

A file holds ``clips`` float32 (N, T, 3V) — T frames (60 at 30 fps in the papers), V joints of the
``hdm05_25`` layout with x, y, z interleaved per joint, root-centred per frame and normalised as
``(x - Xmean) / Xstd`` — and ``classes`` int (N,). The statistics live beside it in ``preprocess_core.npz``
(``Xmean``, ``Xstd``, each (1, 3V, 1); ``Xstd`` is one global scalar repeated) and the class names in
``classes.txt`` (one per line).

Reading de-normalises to metres (``x * Xstd + Xmean``) and reshapes to (N, T, V, 3). Files written here add
optional keys the original code ignores: ``normalised`` (0 = raw metres, no statistics needed),
``class_names``, ``fps`` and ``skeleton``. The reader uses them when present. Nothing is unpickled.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine import skeletons
from engine.data import Clip, ClipDataset, Provenance
from engine.errors import DataFormatError, MissingCompanionFileError, SkeletonMismatchError, UnknownSkeletonError
from engine.skeletons import Skeleton

log = logging.getLogger(__name__)

FORMAT = "smart-npz"
SMART_FPS = 30.0
STATS_FILE = "preprocess_core.npz"
CLASSES_FILE = "classes.txt"

Stats = tuple[np.ndarray, np.ndarray]


def _check_members(path: Path) -> None:
    """Refuse, before decompressing, members that declare far more data than the archive holds."""
    import zipfile

    from engine.io.limits import check_size

    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # np.load reports it below
    for info in infos:
        check_size(path, f"array {info.filename!r}", info.file_size, info.compress_size)


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataFormatError(path, "no such file")
    _check_members(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as exc:  # object arrays need pickle: refused
        raise DataFormatError(path, f"cannot read the arrays without unpickling ({exc})",
                              hint="skelviz never unpickles .npz contents") from None
    except Exception as exc:  # zipfile.BadZipFile, EOFError, OSError on truncated archives
        raise DataFormatError(path, f"not a readable .npz archive ({type(exc).__name__}: {exc})",
                              hint="the file is truncated or corrupt") from None


def read_stats(stats: str | Path | Stats | dict, n_features: int | None = None) -> Stats:
    """``(Xmean, Xstd)`` as flat (3V,) float32 arrays from a ``preprocess_core.npz`` path, a dict or a pair."""
    where = None
    if isinstance(stats, (str, Path)):
        where = Path(stats)
        stats = _load_npz(where)
    if isinstance(stats, dict):
        missing = [k for k in ("Xmean", "Xstd") if k not in stats]
        if missing:
            raise DataFormatError(where, f"normalisation statistics lack {', '.join(missing)}; keys: {sorted(stats)}")
        stats = (stats["Xmean"], stats["Xstd"])
    mean, std = (np.asarray(a, dtype=np.float32).reshape(-1) for a in stats)
    if n_features is not None:
        if mean.size == 1:
            mean = np.full(n_features, mean[0], np.float32)
        if std.size == 1:
            std = np.full(n_features, std[0], np.float32)
        if mean.size != n_features or std.size != n_features:
            raise DataFormatError(
                where, f"statistics have {mean.size}/{std.size} values but the clips have {n_features} features"
            )
    if not (np.isfinite(mean).all() and np.isfinite(std).all()) or (std <= 0).any():
        raise DataFormatError(where, "normalisation statistics contain NaN/Inf or a non-positive std")
    return mean, std


def read_class_names(path: str | Path) -> list[str]:
    path = Path(path)
    try:
        names = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(path, f"cannot read class names ({exc})") from None
    names = [n for n in names if n]
    if len(set(names)) != len(names):
        raise DataFormatError(path, "duplicate class names")
    return names


def _scalar_number(z: dict, key: str, path: Path) -> float:
    a = np.asarray(z[key])
    if a.size != 1 or a.dtype.kind not in "biuf":
        raise DataFormatError(path, f"array {key!r} must be one number, got {a.dtype} of shape {a.shape}")
    return float(a.reshape(-1)[0])


def _scalar_str(z: dict, key: str, path: Path) -> str:
    a = np.asarray(z[key])
    if a.size != 1 or a.dtype.kind not in "U":
        raise DataFormatError(path, f"array {key!r} must be one text value, got {a.dtype} of shape {a.shape}")
    return str(a.reshape(-1)[0])


def _str_list(a: np.ndarray) -> list[str]:
    return [str(s) for s in np.asarray(a).reshape(-1).tolist()]


def read_smart_npz(
    path: str | Path,
    *,
    stats: str | Path | Stats | dict | None = None,
    class_names: Sequence[str] | str | Path | None = None,
    skeleton: str | Skeleton | None = None,
    fps: float | None = None,
) -> ClipDataset:
    """A SMART/BEAT ``.npz`` as a :class:`ClipDataset` in metres.

    ``stats`` (default: ``preprocess_core.npz`` beside the file) de-normalises; ``class_names`` (a list or a
    ``classes.txt`` path; default: the file's ``class_names`` key, else ``classes.txt`` beside it, else
    ``class_<k>``). ``skeleton`` defaults to the file's ``skeleton`` key, else ``hdm05_25``; ``fps`` to the
    file's ``fps`` key, else 30.
    """
    path = Path(path)
    z = _load_npz(path)
    missing = [k for k in ("clips", "classes") if k not in z]
    if missing:
        raise DataFormatError(
            path, f"missing array(s) {', '.join(repr(m) for m in missing)}; the file holds {sorted(z) or 'nothing'}",
            hint="a SMART .npz needs 'clips' (N, T, 3V) and 'classes' (N,)",
        )
    clips, classes = z["clips"], z["classes"]
    if clips.dtype.kind not in "iuf" or clips.dtype.fields is not None:
        raise DataFormatError(path, f"'clips' must hold numbers, but its type is {clips.dtype}")
    if skeleton is None:
        skeleton = _scalar_str(z, "skeleton", path) if "skeleton" in z else "hdm05_25"
    try:
        sk = skeletons.get(skeleton)
    except UnknownSkeletonError as exc:
        raise DataFormatError(path, str(exc), hint="pass skeleton= with a registered name") from None
    v = sk.num_joints
    if clips.ndim != 3:
        raise DataFormatError(path, f"'clips' must be (N, T, {3 * v}), got shape {clips.shape}")
    if clips.shape[2] != 3 * v:
        raise SkeletonMismatchError(
            f"{path}: clips have {clips.shape[2]} features per frame but skeleton {sk.name!r} needs {3 * v} "
            f"({v} joints × 3); pass skeleton= for another layout"
        )
    if clips.shape[0] == 0 or clips.shape[1] == 0:
        raise DataFormatError(path, f"the file holds no frames (clips shape {clips.shape})")
    classes = np.asarray(classes).reshape(-1)
    if len(classes) != len(clips):
        raise DataFormatError(path, f"{len(clips)} clips but {len(classes)} class labels")
    if not np.issubdtype(classes.dtype, np.integer):
        raise DataFormatError(path, f"'classes' must be integers, got {classes.dtype}")

    x = clips.astype(np.float32)
    normalised = bool(_scalar_number(z, "normalised", path)) if "normalised" in z else True
    if normalised:
        if stats is None:
            stats_path = path.parent / STATS_FILE
            if not stats_path.is_file():
                raise MissingCompanionFileError(
                    path, f"the clips are normalised but {STATS_FILE} (Xmean, Xstd) is not beside the file",
                    hint=f"give its path: --stats PATH/{STATS_FILE} on the command line (the app asks for it)",
                )
            stats = stats_path
        mean, std = read_stats(stats, 3 * v)
        x = x * std[None, None] + mean[None, None]
    x = x.reshape(len(x), x.shape[1], v, 3)
    bad = ~np.isfinite(x)
    if bad.any():
        i, t = (int(a) for a in np.argwhere(bad)[0][:2])
        raise DataFormatError(path, f"clip {i} contains NaN or Inf", frame=t)

    if isinstance(class_names, (str, Path)):
        names = read_class_names(class_names)
    elif class_names is not None:
        names = [str(n) for n in class_names]
    elif "class_names" in z:
        names = _str_list(z["class_names"])
    elif (path.parent / CLASSES_FILE).is_file():
        names = read_class_names(path.parent / CLASSES_FILE)
    else:
        names = [f"class_{k}" for k in range(int(classes.max(initial=-1)) + 1)]
        log.warning("%s: no class names (%s beside it or class_names=); using %s", path, CLASSES_FILE, names)
    if len(classes) and (classes.max() >= len(names) or classes.min() < -1):
        raise DataFormatError(
            path, f"class label {int(classes.max())} but only {len(names)} class names ({names})",
            hint=f"check {CLASSES_FILE}",
        )
    clip_fps = float(fps) if fps is not None else (_scalar_number(z, "fps", path) if "fps" in z else SMART_FPS)
    if not (np.isfinite(clip_fps) and clip_fps > 0):
        raise DataFormatError(path, f"the frame rate must be a positive number, got {clip_fps}")
    out = []
    for i in range(len(x)):
        k = int(classes[i])
        out.append(
            Clip(
                x[i], sk, clip_fps, label=names[k] if k >= 0 else None, name=f"{path.stem}_{i:04d}",
                provenance=Provenance(str(path), FORMAT, {"index": i}),
            )
        )
    return ClipDataset(out, names, skeleton=sk, name=path.stem, source=str(path))


def read_smart_clip(path: str | Path, index: int = 0, **kw) -> Clip:
    ds = read_smart_npz(path, **kw)
    if not -len(ds) <= index < len(ds):
        raise DataFormatError(path, f"clip index {index} out of range: the file holds {len(ds)} clips")
    return ds[index]


# -- writing ------------------------------------------------------------------------------------------------------
def write_smart_npz(
    positions: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    path: str | Path,
    *,
    skeleton: Skeleton | str = "hdm05_25",
    fps: float = SMART_FPS,
    class_names: Sequence[str] | None = None,
    stats: str | Path | Stats | dict | None = None,
) -> Path:
    """Write (N, T, V, 3) metres in the SMART layout, root-centred per frame.

    Without ``stats`` the clips stay in metres (key ``normalised = 0``). With ``stats`` they are normalised as
    ``(x - Xmean) / Xstd`` like the original files and ``preprocess_core.npz`` is written beside (an existing,
    different one is never overwritten).
    """
    path = Path(path)
    sk = skeletons.get(skeleton)
    x = np.asarray(positions, dtype=np.float32)
    sk.check_positions(x, "SMART clips")
    if x.ndim != 4:
        raise DataFormatError(path, f"positions must be (N, T, V, 3), got {x.shape}")
    x = x - x[:, :, sk.root : sk.root + 1, :]
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    extra: dict[str, np.ndarray] = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    if stats is not None:
        mean, std = read_stats(stats, flat.shape[2])
        flat = (flat - mean[None, None]) / std[None, None]
        stats_path = path.parent / STATS_FILE
        new = {"Xmean": mean.reshape(1, -1, 1), "Xstd": std.reshape(1, -1, 1)}
        if stats_path.is_file():
            old_mean, old_std = read_stats(stats_path, flat.shape[2])
            if not (np.allclose(old_mean, mean) and np.allclose(old_std, std)):
                raise DataFormatError(
                    stats_path, "exists with different statistics; refusing to overwrite it",
                    hint="write the .npz into another folder",
                )
        else:
            np.savez(stats_path, **new)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(labels) != len(flat):
        raise DataFormatError(path, f"{len(flat)} clips but {len(labels)} labels")
    if class_names is not None:
        extra["class_names"] = np.array([str(n) for n in class_names])
    with open(path, "wb") as fh:
        np.savez(
            fh, clips=flat.astype(np.float32), classes=labels.astype(np.int32),
            normalised=np.array([int(stats is not None)]), fps=np.array(float(fps)), skeleton=np.array(sk.name),
            **extra,
        )
    return path


def write_smart_clip(clip: Clip, path: str | Path, *, class_names: Sequence[str] | None = None, stats=None) -> Path:
    """One clip (its main performer) as a one-clip SMART ``.npz``."""
    names = list(class_names) if class_names is not None else ([clip.label] if clip.label is not None else [])
    label = names.index(clip.label) if clip.label in names else -1
    return write_smart_npz(
        clip.positions[None], [label], path, skeleton=clip.skeleton, fps=clip.fps, class_names=names, stats=stats
    )


def write_smart_dataset(dataset: ClipDataset, path: str | Path, *, stats=None) -> Path:
    """A dataset of equal-length clips (e.g. windows) as a SMART ``.npz`` (main performers only)."""
    lengths = {c.num_frames for c in dataset}
    fpss = {c.fps for c in dataset}
    if len(dataset) == 0 or len(lengths) != 1 or len(fpss) != 1:
        raise DataFormatError(
            path, f"the SMART layout needs clips of one length and frame rate; got lengths {sorted(lengths)} and "
            f"fps {sorted(fpss)}", hint="cut fixed-length windows first (ClipDataset.to_windows)",
        )
    x = np.stack([c.positions for c in dataset])
    return write_smart_npz(
        x, dataset.labels, path, skeleton=dataset.skeleton, fps=fpss.pop(), class_names=dataset.class_names,
        stats=stats,
    )
