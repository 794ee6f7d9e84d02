"""HDF5 files: the project's own clip/dataset format, and the "positions" layout of ``shared/data/cmu8``.

Project format (``format = "skelviz-clips"``, ``schema_version = 1``; full schema in ``docs/formats.md``)::

    /                      attrs: format, schema_version, kind ("clip" | "dataset"), skeleton_name,
                                  joint_names (str[V]), parents (int[V], -1 = root), up_axis, units = "metre",
                                  class_names (str[K], may be empty), num_clips
    /clips/<name>/         one group per clip; attrs: index (order in the file), fps, label (absent = none),
                           source, format (where the clip first came from), details (JSON object)
    /clips/<name>/bodies   float32 (M, T, V, 3), metres, y up, gzip-compressed

One file holds one clip or a whole dataset: a clip file is a dataset file with one clip. Everything is
validated on read; any problem raises :class:`~engine.errors.DataFormatError` naming the file and the clip.

Positions layout (``cmu8_positions.h5``): root attrs ``joint_names``, ``parents``, ``fps``, ``units``,
``up_axis``; one (T, V, 3) dataset per clip anywhere below the root (``train/<action>_<n>``...) with an
attribute ``label``. The first path component (``train``/``test``) is kept as ``provenance.details["split"]``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from engine import skeletons
from engine.data import Clip, ClipDataset, Provenance
from engine.errors import DataFormatError, SkeletonMismatchError
from engine.skeletons import Skeleton

log = logging.getLogger(__name__)

FORMAT_NAME = "skelviz-clips"
SCHEMA_VERSION = 1
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
PROJECT_FORMAT = "skelviz-h5"
POSITIONS_FORMAT = "positions-h5"

_UNITS_TO_METRES = {
    "m": 1.0, "metre": 1.0, "metres": 1.0, "meter": 1.0, "meters": 1.0,
    "cm": 0.01, "centimetre": 0.01, "centimetres": 0.01, "centimeter": 0.01, "centimeters": 0.01,
    "mm": 0.001, "millimetre": 0.001, "millimetres": 0.001, "millimeter": 0.001, "millimeters": 0.001,
    "in": 0.0254, "inch": 0.0254, "inches": 0.0254,
}


def _h5py():
    import h5py

    return h5py


def is_hdf5(path: str | Path) -> bool:
    """True when the file starts with the HDF5 signature (superblock at offset 0)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(8) == HDF5_SIGNATURE
    except OSError:
        return False


def _open(path: Path):
    h5py = _h5py()
    if not path.is_file():
        raise DataFormatError(path, "no such file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        hint = "the file is truncated or corrupt" if is_hdf5(path) else "it is not an HDF5 file"
        raise DataFormatError(path, f"cannot open as HDF5: {exc}", hint=hint) from None


class _AttrTypeError(ValueError):
    """An attribute of the wrong type; the caller turns it into a DataFormatError naming the file."""


def _attr_str(value) -> str:
    """A text attribute: str, UTF-8 bytes or a 0-d array of either. Anything else is a type error."""
    if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "OSU":
        value = value.item()
    if isinstance(value, (bytes, np.bytes_)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise _AttrTypeError("is not valid UTF-8 text") from None
    if isinstance(value, str):
        return str(value)
    raise _AttrTypeError(f"must be text, got {_describe(value)}")


def _attr_strs(value) -> list[str]:
    if value is None:
        return []
    arr = np.atleast_1d(np.asarray(value, dtype=object))
    if arr.ndim != 1:
        raise _AttrTypeError(f"must be a list of text, got shape {arr.shape}")
    return [_attr_str(v) for v in arr]


def _attr_float(value) -> float:
    arr = np.asarray(value)
    if arr.size != 1 or arr.dtype.kind not in "iuf":
        raise _AttrTypeError(f"must be one number, got {_describe(value)}")
    return float(arr.reshape(-1)[0])


def _attr_int(value) -> int:
    arr = np.asarray(value)
    if arr.size != 1 or arr.dtype.kind not in "iu":
        raise _AttrTypeError(f"must be one integer, got {_describe(value)}")
    return int(arr.reshape(-1)[0])


def _attr_ints(value) -> list[int]:
    arr = np.asarray(value)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise _AttrTypeError(f"must be a list of integers, got {_describe(value)}")
    return [int(v) for v in arr]


def _describe(value) -> str:
    arr = np.asarray(value) if not isinstance(value, (str, bytes)) else None
    if arr is None:
        return type(value).__name__
    return f"{arr.dtype} of shape {arr.shape}" if arr.shape else f"{arr.dtype} {value!r}"[:80]


def _attr(attrs, key: str, convert, path: Path, where: str = "root", default=None):
    """``convert(attrs[key])`` (``default`` when absent); a wrong type is a DataFormatError naming the file."""
    if key not in attrs:
        return default
    try:
        value = attrs[key]
    except (OSError, TypeError, ValueError) as exc:  # h5py cannot even decode it (odd dtypes)
        raise DataFormatError(path, f"{where} attribute {key!r} cannot be read ({exc})") from None
    try:
        return convert(value)
    except _AttrTypeError as exc:
        raise DataFormatError(path, f"{where} attribute {key!r} {exc}") from None


def _numeric_dataset(parent, name: str, path: Path, where: str):
    """The dataset ``parent[name]`` stored in this file with a real numeric dtype, or a DataFormatError."""
    h5py = _h5py()
    link = parent.get(name, getlink=True)
    if link is None:
        raise DataFormatError(path, f"{where}: dataset {name!r} is missing")
    if isinstance(link, (h5py.SoftLink, h5py.ExternalLink)):
        raise DataFormatError(path, f"{where}: {name!r} is a link, not data stored in the file",
                              hint="skelviz reads only datasets stored in the file itself")
    try:
        obj = parent[name]
    except (KeyError, OSError, ValueError) as exc:
        raise DataFormatError(path, f"{where}: {name!r} cannot be opened ({exc})") from None
    if not isinstance(obj, h5py.Dataset):
        raise DataFormatError(path, f"{where}: {name!r} is a {type(obj).__name__.lower()}, not a dataset")
    _check_numeric(obj, path, f"{where}: {name!r}")
    return obj


def _check_numeric(ds, path: Path, what: str) -> None:
    """A real numeric dtype, and a declared size the limits allow (:mod:`engine.io.limits`)."""
    from engine.io.limits import check_size

    if ds.dtype.kind not in "iuf" or ds.dtype.fields is not None:
        raise DataFormatError(path, f"{what} must hold numbers, but its type is {ds.dtype}")
    try:
        stored = int(ds.id.get_storage_size())
    except Exception:  # noqa: BLE001 - virtual or odd layouts: no expansion check, the size limit still holds
        stored = None
    check_size(path, what, int(np.prod(ds.shape, dtype=np.float64)) * 4, stored)


def probe(path: str | Path) -> str:
    """``"skelviz-h5"`` for a project file, ``"positions-h5"`` for the cmu8 layout; DataFormatError otherwise."""
    path = Path(path)
    with _open(path) as f:
        return _kind_of(f, path)


def _kind_of(f, path: Path) -> str:
    try:
        fmt = _attr_str(f.attrs["format"]) if "format" in f.attrs else None
    except (_AttrTypeError, OSError, TypeError):
        fmt = None
    if fmt == FORMAT_NAME:
        return PROJECT_FORMAT
    if "joint_names" in f.attrs and "parents" in f.attrs:
        return POSITIONS_FORMAT
    raise DataFormatError(
        path,
        "an HDF5 file that is neither a skelviz clip/dataset file (root attribute format='skelviz-clips') nor a "
        "positions file (root attributes joint_names and parents, one (T, V, 3) dataset per clip)",
        hint="see docs/formats.md for both layouts",
    )


# -- writing --------------------------------------------------------------------------------------------------------
def _safe_name(name: str, used: set[str], i: int) -> str:
    base = re.sub(r"[/\\.\s]+", "_", name).strip("_") or f"clip_{i:05d}"
    out, k = base, 1
    while out in used:
        k += 1
        out = f"{base}_{k}"
    used.add(out)
    return out


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return repr(obj)


def write_clips(
    clips: Iterable[Clip],
    path: str | Path,
    *,
    class_names: Iterable[str] | None = None,
    skeleton: Skeleton | None = None,
    kind: str = "dataset",
    compression: str | None = "gzip",
) -> Path:
    """Write clips sharing one skeleton to a project HDF5 file (atomically: a temporary file then a rename)."""
    h5py = _h5py()
    clips = list(clips)
    path = Path(path)
    if skeleton is None:
        if not clips:
            raise DataFormatError(path, "nothing to write: no clips and no skeleton")
        skeleton = clips[0].skeleton
    for c in clips:
        if c.skeleton != skeleton:
            raise SkeletonMismatchError(
                f"{path}: clip {c.title!r} uses skeleton {c.skeleton.name!r} but the file's skeleton is "
                f"{skeleton.name!r}; one file holds one skeleton"
            )
    if class_names is None:
        class_names = sorted({c.label for c in clips if c.label is not None})
    class_names = [str(n) for n in class_names]
    str_dt = h5py.string_dtype("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    # mkstemp creates the file 0600; give the result the permissions a normally created file would get.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT_NAME
            f.attrs["schema_version"] = SCHEMA_VERSION
            f.attrs["kind"] = kind
            f.attrs["skeleton_name"] = skeleton.name
            f.attrs["joint_names"] = np.array(skeleton.joint_names, dtype=str_dt)
            f.attrs["parents"] = np.array(skeleton.parents, dtype=np.int64)
            f.attrs["up_axis"] = skeleton.up_axis
            f.attrs["units"] = "metre"
            f.attrs["class_names"] = np.array(class_names, dtype=str_dt)
            f.attrs["num_clips"] = len(clips)
            group = f.create_group("clips", track_order=True)
            used: set[str] = set()
            for i, clip in enumerate(clips):
                g = group.create_group(_safe_name(clip.name or clip.title, used, i))
                g.create_dataset(
                    "bodies", data=np.asarray(clip.bodies, dtype=np.float32), compression=compression,
                    shuffle=compression is not None,
                )
                details = {k: v for k, v in clip.provenance.details.items() if k not in ("origin_source",
                                                                                       "origin_format", "clip")}
                g.attrs["index"] = i
                g.attrs["name"] = clip.name
                g.attrs["fps"] = float(clip.fps)
                if clip.label is not None:
                    g.attrs["label"] = str(clip.label)
                g.attrs["source"] = str(clip.provenance.details.get("origin_source", clip.provenance.source))
                g.attrs["format"] = str(clip.provenance.details.get("origin_format", clip.provenance.format))
                g.attrs["details"] = json.dumps(details, default=_json_default)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_dataset_h5(dataset: ClipDataset, path: str | Path) -> Path:
    return write_clips(
        dataset.clips, path, class_names=dataset.class_names,
        skeleton=dataset.skeleton if len(dataset) else None, kind="dataset",
    )


def save_clip_h5(clip: Clip, path: str | Path) -> Path:
    return write_clips([clip], path, kind="clip")


def _register_if_free(skeleton: Skeleton, path: Path) -> None:
    """Make a skeleton read from a file findable by name (checkpoints name their skeleton), unless a different
    skeleton already holds that name."""
    try:
        registered = skeletons.get(skeleton.name)
    except KeyError:
        skeletons.register(skeleton)
        return
    if registered != skeleton:
        log.warning("%s: a different skeleton is registered as %r; not registering this one", path, skeleton.name)


# -- reading the project format -------------------------------------------------------------------------------------
def _project_skeleton(f, path: Path) -> Skeleton:
    for attr in ("joint_names", "parents"):
        if attr not in f.attrs:
            raise DataFormatError(path, f"root attribute {attr!r} is missing", hint="the skeleton cannot be built")
    name = _attr(f.attrs, "skeleton_name", _attr_str, path, default=path.stem)
    joint_names = _attr(f.attrs, "joint_names", _attr_strs, path)
    parents = _attr(f.attrs, "parents", _attr_ints, path)
    up_axis = _attr(f.attrs, "up_axis", _attr_str, path, default="y")
    try:
        skeleton = skeletons.from_arrays(name, joint_names, parents, up_axis)
    except SkeletonMismatchError as exc:
        raise DataFormatError(path, f"invalid skeleton in the root attributes: {exc}") from None
    _register_if_free(skeleton, path)
    return skeleton


def _clip_groups(f, path: Path) -> list[tuple[str, object]]:
    h5py = _h5py()
    version = _attr(f.attrs, "schema_version", _attr_int, path)
    if version is None:
        raise DataFormatError(path, "root attribute 'schema_version' is missing")
    if version > SCHEMA_VERSION:
        raise DataFormatError(
            path, f"schema_version {version} is newer than this skelviz reads ({SCHEMA_VERSION})",
            hint="upgrade skelviz",
        )
    if "clips" not in f:
        raise DataFormatError(path, "the group 'clips' is missing")
    if not isinstance(f.get("clips", getlink=True), h5py.HardLink) or not isinstance(f["clips"], h5py.Group):
        raise DataFormatError(path, "'clips' must be a group stored in the file (one subgroup per clip)")
    items = []
    for name in f["clips"]:
        if not isinstance(f["clips"].get(name, getlink=True), h5py.HardLink):
            raise DataFormatError(path, f"clips/{name} is a link, not a clip stored in the file")
        g = f["clips"][name]
        if not isinstance(g, h5py.Group):
            raise DataFormatError(path, f"clips/{name} is not a group")
        items.append((name, g, _attr(g.attrs, "index", _attr_int, path, f"clip {name!r}", 1 << 30)))
    items.sort(key=lambda item: (item[2], item[0]))
    return [(name, g) for name, g, _ in items]


def _read_project_clip(name: str, g, skeleton: Skeleton, path: Path) -> Clip:
    where = f"clip {name!r}"
    ds = _numeric_dataset(g, "bodies", path, where)
    if "fps" not in g.attrs:
        raise DataFormatError(path, f"{where}: attribute 'fps' is missing", hint="every clip needs its frame rate")
    fps = _attr(g.attrs, "fps", _attr_float, path, where)
    if ds.ndim != 4 or ds.shape[-1] != 3:
        raise DataFormatError(path, f"{where}: 'bodies' must be (M, T, V, 3), got shape {ds.shape}")
    try:
        bodies = np.asarray(ds[()], dtype=np.float32)
    except (OSError, ValueError) as exc:
        raise DataFormatError(path, f"{where}: cannot read 'bodies' ({exc})", hint="the file is truncated or corrupt") from None
    if bodies.ndim != 4 or bodies.shape[-1] != 3:
        raise DataFormatError(path, f"{where}: 'bodies' must be (M, T, V, 3), got shape {bodies.shape}")
    if bodies.shape[2] != skeleton.num_joints:
        raise DataFormatError(
            path,
            f"{where}: {bodies.shape[2]} joints per frame, but the file's skeleton {skeleton.name!r} has "
            f"{skeleton.num_joints}",
        )
    if bodies.shape[0] == 0 or bodies.shape[1] == 0:
        raise DataFormatError(path, f"{where}: the clip is empty (shape {bodies.shape})")
    bad = ~np.isfinite(bodies)
    if bad.any():
        frame = int(np.argwhere(bad)[0][1])
        raise DataFormatError(path, f"{where}: positions contain NaN or Inf", frame=frame)
    if not (np.isfinite(fps) and fps > 0):
        raise DataFormatError(path, f"{where}: frame rate must be positive, got {fps}")
    try:
        details = json.loads(_attr(g.attrs, "details", _attr_str, path, where, "{}") or "{}")
    except (json.JSONDecodeError, RecursionError) as exc:
        raise DataFormatError(path, f"{where}: attribute 'details' is not valid JSON ({exc})") from None
    if not isinstance(details, dict):
        raise DataFormatError(path, f"{where}: attribute 'details' must be a JSON object")
    details["clip"] = name
    details["origin_source"] = _attr(g.attrs, "source", _attr_str, path, where, "")
    details["origin_format"] = _attr(g.attrs, "format", _attr_str, path, where, "")
    label = _attr(g.attrs, "label", _attr_str, path, where)
    clip_name = _attr(g.attrs, "name", _attr_str, path, where, name) or name
    return Clip.from_bodies(
        bodies, skeleton, fps, label=label, name=clip_name,
        provenance=Provenance(str(path), PROJECT_FORMAT, details),
    )


def read_project(path: str | Path) -> ClipDataset:
    """Every clip of a project HDF5 file, validated, as a :class:`ClipDataset`."""
    path = Path(path)
    with _open(path) as f:
        if _kind_of(f, path) != PROJECT_FORMAT:
            raise DataFormatError(path, "not a skelviz clip/dataset file")
        skeleton = _project_skeleton(f, path)
        class_names = _attr(f.attrs, "class_names", _attr_strs, path)
        items = _clip_groups(f, path)
        if not items:
            raise DataFormatError(path, "the file holds no clips")
        clips = [_read_project_clip(n, g, skeleton, path) for n, g in items]
    try:
        return ClipDataset(clips, class_names or None, skeleton=skeleton, name=path.stem, source=str(path))
    except DataFormatError as exc:
        raise DataFormatError(path, exc.problem, hint=exc.hint) from None


def read_project_clip(path: str | Path, index: int = 0) -> Clip:
    """One clip of a project HDF5 file (only that clip is read)."""
    path = Path(path)
    with _open(path) as f:
        if _kind_of(f, path) != PROJECT_FORMAT:
            raise DataFormatError(path, "not a skelviz clip/dataset file")
        skeleton = _project_skeleton(f, path)
        items = _clip_groups(f, path)
        if not items:
            raise DataFormatError(path, "the file holds no clips")
        if not -len(items) <= index < len(items):
            raise DataFormatError(path, f"clip index {index} out of range: the file holds {len(items)} clips")
        return _read_project_clip(*items[index], skeleton, path)


def count_clips(path: str | Path) -> int:
    path = Path(path)
    with _open(path) as f:
        if _kind_of(f, path) == PROJECT_FORMAT:
            return len(_clip_groups(f, path))
        return len(_positions_items(f))


# -- reading the positions layout (shared cmu8) ---------------------------------------------------------------------
def _positions_items(f) -> list[tuple[str, object]]:
    """Every (T, V, 3) dataset stored in the file (``visititems`` follows no soft or external link)."""
    items = []

    def visit(name, obj):
        if hasattr(obj, "shape") and len(obj.shape) == 3 and obj.shape[-1] == 3:
            items.append((name, obj))

    f.visititems(visit)
    return items


def _positions_skeleton(f, path: Path, skeleton_name: str | None) -> tuple[Skeleton, float, str]:
    joint_names = _attr(f.attrs, "joint_names", _attr_strs, path)
    parents = _attr(f.attrs, "parents", _attr_ints, path)
    up_axis = _attr(f.attrs, "up_axis", _attr_str, path, default="y").lower()
    file_fps = _attr(f.attrs, "fps", _attr_float, path, default=float("nan"))
    name = skeleton_name or f"{path.stem.split('_')[0]}_{len(joint_names)}"
    try:
        skeleton = skeletons.from_arrays(name, joint_names, parents, "y")
    except SkeletonMismatchError as exc:
        raise DataFormatError(path, f"invalid skeleton in the root attributes: {exc}") from None
    _register_if_free(skeleton, path)
    return skeleton, file_fps, up_axis


def _to_y_up(x: np.ndarray, up_axis: str) -> np.ndarray:
    if up_axis == "y":
        return x
    if up_axis == "z":  # right-handed z-up → y-up: (x, y, z) → (x, z, -y)
        return np.stack([x[..., 0], x[..., 2], -x[..., 1]], axis=-1)
    if up_axis == "x":  # rotate +90° about z: (x, y, z) → (-y, x, z)
        return np.stack([-x[..., 1], x[..., 0], x[..., 2]], axis=-1)
    raise ValueError(up_axis)


def read_positions_h5(
    path: str | Path, *, skeleton_name: str | None = None, fps: float | None = None
) -> ClipDataset:
    """A positions-layout HDF5 file (the shared ``cmu8`` set): one (T, V, 3) dataset per clip with ``label``.

    The skeleton comes from the root attributes and is named ``<file stem prefix>_<V>`` (``cmu8_28``) unless
    ``skeleton_name`` is given; it is registered so that :func:`engine.skeletons.get` finds it. ``units`` are
    converted to metres and ``up_axis`` to y. Each clip's top-level group (``train``/``test``) is kept in
    ``provenance.details["split"]``.
    """
    path = Path(path)
    with _open(path) as f:
        if _kind_of(f, path) != POSITIONS_FORMAT:
            raise DataFormatError(path, "not a positions-layout HDF5 file")
        skeleton, file_fps, up_axis = _positions_skeleton(f, path, skeleton_name)
        if up_axis not in ("x", "y", "z"):
            raise DataFormatError(path, f"root attribute up_axis={up_axis!r} must be x, y or z")
        units = _attr(f.attrs, "units", _attr_str, path, default="metre").lower()
        if units not in _UNITS_TO_METRES:
            raise DataFormatError(
                path, f"unknown units {units!r}", hint=f"use one of {', '.join(sorted(_UNITS_TO_METRES))}"
            )
        scale = _UNITS_TO_METRES[units]
        clip_fps = float(fps) if fps is not None else file_fps
        if not (np.isfinite(clip_fps) and clip_fps > 0):
            raise DataFormatError(path, "root attribute 'fps' is missing or not positive", hint="pass fps=")
        clips = []
        items = _positions_items(f)
        if not items:
            raise DataFormatError(path, "the file holds no clips (no (T, V, 3) dataset)",
                                  hint="a positions file holds one (T, V, 3) dataset per clip")
        for name, ds in items:
            _check_numeric(ds, path, f"clip {name!r}")
            if ds.shape[1] != skeleton.num_joints:
                raise DataFormatError(
                    path, f"clip {name!r}: {ds.shape[1]} joints per frame, but the file's skeleton has "
                    f"{skeleton.num_joints}"
                )
            if ds.shape[0] == 0:
                raise DataFormatError(path, f"clip {name!r} is empty")
            try:
                x = np.asarray(ds[()], dtype=np.float32)
            except (OSError, ValueError) as exc:
                raise DataFormatError(path, f"clip {name!r}: cannot read ({exc})", hint="the file is truncated or corrupt") from None
            bad = ~np.isfinite(x)
            if bad.any():
                raise DataFormatError(path, f"clip {name!r}: positions contain NaN or Inf", frame=int(np.argwhere(bad)[0][0]))
            x = _to_y_up(x * scale, up_axis) if (scale != 1.0 or up_axis != "y") else x
            label = _attr(ds.attrs, "label", _attr_str, path, f"clip {name!r}")
            split = name.split("/")[0] if "/" in name else ""
            clips.append(
                Clip(
                    x, skeleton, clip_fps, label=label, name=name.replace("/", ":"),
                    provenance=Provenance(str(path), POSITIONS_FORMAT, {"dataset": name, "split": split}),
                )
            )
    return ClipDataset(clips, skeleton=skeleton, name=path.stem, source=str(path))


def read_positions_clip(path: str | Path, index: int = 0, **kw) -> Clip:
    ds = read_positions_h5(path, **kw)
    if not -len(ds) <= index < len(ds):
        raise DataFormatError(path, f"clip index {index} out of range: the file holds {len(ds)} clips")
    return ds[index]


def read_h5_dataset(path: str | Path, **kw) -> ClipDataset:
    """Either HDF5 layout, detected from the root attributes."""
    kind = probe(path)
    if kind == PROJECT_FORMAT:
        if kw:
            raise TypeError(f"unexpected options for a skelviz HDF5 file: {', '.join(kw)}")
        return read_project(path)
    return read_positions_h5(path, **kw)


def read_h5_clip(path: str | Path, index: int = 0, **kw) -> Clip:
    kind = probe(path)
    if kind == PROJECT_FORMAT:
        return read_project_clip(path, index)
    return read_positions_clip(path, index, **kw)
