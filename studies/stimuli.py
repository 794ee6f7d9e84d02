"""The stimulus file: every motion a study shows, with its provenance, prepared before any participant comes.

Layout (HDF5, root attribute ``schema_version`` = 1, ``format`` = ``"skelviz-stimuli"``)::

    /                   attrs: schema_version, format, skeleton (JSON), fps, class_names (JSON), created,
                               app_version, model, model_sha256, data, data_sha256, protocol_title,
                               protocol_sha256
    /stimuli/<id>       float32 (T, V, 3) joint positions in metres
                        attrs: clip, method, label, true_class, attack, params (JSON), prediction,
                               predicted_class, success (1/0, -1 when not an attack), sha256, source

``sha256`` hashes the array's shape and float32 bytes, so a file edited or damaged after preparation is refused.
:func:`open_stimuli` validates everything (format, schema, skeleton, shapes, finite values, hashes, and that the
protocol finds every method it needs) and raises :class:`~engine.errors.StudyError` before a participant starts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np

from engine.errors import StudyError
from engine.skeletons import Skeleton
from studies.protocol import Protocol
from studies.schedule import Catalogue, StimulusRef, plan_trials

log = logging.getLogger(__name__)

FORMAT = "skelviz-stimuli"
SCHEMA_VERSION = 1
_STIMULUS_ATTRS = ("clip", "method", "label", "sha256")


def positions_hash(positions: np.ndarray) -> str:
    """Content hash of a motion: its shape and its float32 little-endian bytes."""
    arr = np.ascontiguousarray(positions, dtype="<f4")
    h = hashlib.sha256(repr(arr.shape).encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def stimulus_id(clip: str, method: str) -> str:
    """A stimulus id usable as an HDF5 name: ``<clip>~<method>`` with path separators replaced."""
    return f"{clip}~{method}".replace("/", "_")


@dataclass
class Stimulus:
    """One stimulus as prepared: positions plus provenance."""

    id: str
    clip: str
    method: str
    label: str
    positions: np.ndarray
    true_class: int = -1
    attack: str = ""
    params: dict = field(default_factory=dict)
    prediction: str = ""
    predicted_class: int = -1
    success: int = -1
    source: str = ""

    @property
    def sha256(self) -> str:
        return positions_hash(self.positions)


@dataclass
class StimulusSet:
    """A validated stimulus file held in memory (stimuli are small: a few seconds of motion each)."""

    path: Path
    skeleton: Skeleton
    fps: float
    class_names: list[str]
    stimuli: dict[str, Stimulus]
    meta: dict

    def catalogue(self) -> Catalogue:
        refs = [StimulusRef(s.id, s.clip, s.method, s.label) for s in self.stimuli.values()]
        return Catalogue(refs, self.class_names)

    def hashes(self) -> dict[str, str]:
        return {sid: s.sha256 for sid, s in self.stimuli.items()}

    def __getitem__(self, sid: str) -> Stimulus:
        try:
            return self.stimuli[sid]
        except KeyError:
            raise StudyError(f"{self.path}: no stimulus {sid!r}") from None


def write_stimuli(
    path: str | Path,
    stimuli: Iterable[Stimulus],
    *,
    skeleton: Skeleton,
    fps: float,
    class_names: list[str],
    meta: dict | None = None,
) -> Path:
    """Write a stimulus file atomically (a temporary file renamed into place when complete)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    from engine import __version__

    with h5py.File(tmp, "w") as f:
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["format"] = FORMAT
        f.attrs["skeleton"] = json.dumps(skeleton.to_dict())
        f.attrs["fps"] = float(fps)
        f.attrs["class_names"] = json.dumps(list(class_names))
        f.attrs["created"] = datetime.now(UTC).isoformat(timespec="seconds")
        f.attrs["app_version"] = __version__
        for key, value in (meta or {}).items():
            f.attrs[key] = value if isinstance(value, (int, float)) else str(value)
        group = f.create_group("stimuli")
        for s in stimuli:
            if s.id in group:
                raise StudyError(f"stimulus id {s.id!r} written twice")
            pos = np.asarray(s.positions, dtype=np.float32)
            skeleton.check_positions(pos, f"stimulus {s.id}")
            ds = group.create_dataset(s.id, data=pos)
            ds.attrs.update(
                {
                    "clip": s.clip,
                    "method": s.method,
                    "label": s.label,
                    "true_class": int(s.true_class),
                    "attack": s.attack,
                    "params": json.dumps(s.params, sort_keys=True, default=str),
                    "prediction": s.prediction,
                    "predicted_class": int(s.predicted_class),
                    "success": int(s.success),
                    "sha256": positions_hash(pos),
                    "source": s.source,
                }
            )
    os.replace(tmp, path)
    return path


def _attr(attrs, key: str, where: str):
    try:
        value = attrs[key]
    except KeyError:
        raise StudyError(f"{where}: the attribute {key!r} is missing; re-create the file with `skelviz study prepare`") from None
    return value.decode() if isinstance(value, bytes) else value


def read_stimuli(path: str | Path) -> StimulusSet:
    """Read and check a stimulus file (format, schema, skeleton, shapes, finite values, content hashes)."""
    path = Path(path)
    if not path.is_file():
        raise StudyError(f"stimulus file {path} does not exist; create it with `skelviz study prepare`")
    if not h5py.is_hdf5(path):
        raise StudyError(f"{path} is not an HDF5 file (damaged, truncated or the wrong file); prepare it again")
    try:
        with h5py.File(path, "r") as f:
            return _read_open(path, f)
    except OSError as exc:  # truncated or damaged HDF5 internals
        raise StudyError(f"{path}: the stimulus file cannot be read ({exc}); it is damaged, prepare it again") from None


def _read_open(path: Path, f: h5py.File) -> StimulusSet:
    where = str(path)
    if _attr(f.attrs, "format", where) != FORMAT:
        raise StudyError(f"{path} is not a skelviz stimulus file (format {f.attrs['format']!r})")
    version = int(_attr(f.attrs, "schema_version", where))
    if version != SCHEMA_VERSION:
        raise StudyError(f"{path}: stimulus schema version {version} is not supported (expected {SCHEMA_VERSION})")
    try:
        skeleton = Skeleton.from_dict(json.loads(_attr(f.attrs, "skeleton", where)))
        class_names = [str(c) for c in json.loads(_attr(f.attrs, "class_names", where))]
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        raise StudyError(f"{path}: the skeleton or class names are unreadable ({exc})") from None
    fps = float(_attr(f.attrs, "fps", where))
    if not (np.isfinite(fps) and fps > 0):
        raise StudyError(f"{path}: frame rate must be positive, got {fps}")
    if "stimuli" not in f or not len(f["stimuli"]):
        raise StudyError(f"{path} holds no stimuli")
    stimuli: dict[str, Stimulus] = {}
    for sid, ds in f["stimuli"].items():
        w = f"{path}: stimulus {sid!r}"
        if not isinstance(ds, h5py.Dataset):
            raise StudyError(f"{w} is not a dataset")
        pos = np.asarray(ds[()], dtype=np.float32)
        if pos.ndim != 3 or pos.shape[1:] != (skeleton.num_joints, 3) or pos.shape[0] == 0:
            raise StudyError(f"{w} has shape {pos.shape}; skeleton {skeleton.name!r} needs (T, {skeleton.num_joints}, 3)")
        if not np.isfinite(pos).all():
            raise StudyError(f"{w} contains NaN or Inf")
        attrs = {k: _attr(ds.attrs, k, w) for k in _STIMULUS_ATTRS}
        if positions_hash(pos) != attrs["sha256"]:
            raise StudyError(f"{w}: content does not match its recorded hash: the file was modified or damaged")
        try:
            params = json.loads(ds.attrs.get("params", "{}"))
        except json.JSONDecodeError:
            raise StudyError(f"{w}: its attack parameters are unreadable") from None
        stimuli[sid] = Stimulus(
            id=sid,
            clip=str(attrs["clip"]),
            method=str(attrs["method"]),
            label=str(attrs["label"]),
            positions=pos,
            true_class=int(ds.attrs.get("true_class", -1)),
            attack=str(ds.attrs.get("attack", "")),
            params=params,
            prediction=str(ds.attrs.get("prediction", "")),
            predicted_class=int(ds.attrs.get("predicted_class", -1)),
            success=int(ds.attrs.get("success", -1)),
            source=str(ds.attrs.get("source", "")),
        )
    meta = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    return StimulusSet(path, skeleton, fps, class_names, stimuli, meta)


def open_stimuli(path: str | Path, protocol: Protocol) -> StimulusSet:
    """Read the stimulus file and check that ``protocol`` can run on it; every problem is a clear StudyError.

    Besides the file checks of :func:`read_stimuli`: every method the protocol uses must be present, and a
    trial plan must be buildable (conditions with clips, catch trials possible, feasible run-length limits).
    """
    stim = read_stimuli(path)
    methods = {s.method for s in stim.stimuli.values()}
    missing = sorted(protocol.methods() - methods)
    if missing:
        raise StudyError(
            f"{path} does not fit protocol {protocol.title!r}: it lacks the stimulus method(s) {missing} "
            f"(it has {sorted(methods)}); prepare it with this protocol"
        )
    prepared_for = stim.meta.get("protocol_sha256")
    if prepared_for and prepared_for != protocol.sha256:
        log.warning("%s was prepared with a different version of protocol %r", path, protocol.title)
    plan = plan_trials(protocol, stim.catalogue(), protocol.seed)  # raises StudyError when it cannot be run
    n_main = sum(t.phase == "main" for t in plan)
    if protocol.blocks > n_main:
        raise StudyError(f"protocol {protocol.title!r} asks for {protocol.blocks} blocks but has {n_main} trials")
    return stim
