"""Session files: one HDF5 file per participant session, crash-safe and resumable.

Schema (root attribute ``schema_version`` = 1, ``format`` = ``"skelviz-session"``)::

    /                    attrs: schema_version, format, session_id, participant_id, seed, app_version, created,
                                protocol_title, protocol_sha256, stimuli_file, stimuli_file_sha256, status
                                ("running" | "completed" | "aborted"), n_planned; optional: runner
                                ("desktop" | "web"; absent in older files: desktop), order (counterbalancing),
                                token_sha256 (web: hash of the participant's URL token)
    /protocol            the protocol's TOML text (scalar string)
    /planned_trials      one row per planned trial (PLAN_FIELDS), practice first
    /stimulus_hashes     (stimulus, sha256) for every stimulus the plan shows
    /responses           one row per answered trial (RESPONSE_FIELDS), appended and flushed one at a time
    /events              (time_unix, kind, trial_index, detail): focus changes, pauses, resumes, aborts ...

Everything up to ``/stimulus_hashes`` is written and flushed when the session is created, before the first
trial. :meth:`SessionFile.append_response` grows ``/responses`` by one row, writes it, flushes HDF5 and fsyncs the
file descriptor, so the row is on disk before the next trial starts. Between trials the file is idle and
consistent: a process killed at any moment (SIGKILL included) leaves a file that opens and holds every completed
trial. A row carries ``complete`` = 1, written in the same operation as its data; a row left at the fill value by
a kill inside the (sub-millisecond) append is ignored by the readers. Nothing is saved from ``__del__`` or
``atexit``: rows are written when the participant answers, and ``close`` is called explicitly.
"""

from __future__ import annotations

import os
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np

from engine.errors import StudyError
from studies.protocol import Protocol, parse_protocol
from studies.schedule import Trial
from studies.stimuli import StimulusSet, file_sha256

FORMAT = "skelviz-session"
SCHEMA_VERSION = 1
_STR = h5py.string_dtype()

PLAN_FIELDS: list[tuple[str, object]] = [
    ("trial_index", "<i4"),
    ("phase", _STR),
    ("block", "<i4"),
    ("condition", _STR),
    ("clip", _STR),
    ("stimulus_left", _STR),
    ("stimulus_right", _STR),
    ("method_left", _STR),
    ("method_right", _STR),
    ("target_side", _STR),
    ("label", _STR),
    ("expected", _STR),
    ("is_catch", "u1"),
]
RESPONSE_FIELDS: list[tuple[str, object]] = PLAN_FIELDS + [
    ("response", _STR),
    ("chosen_method", _STR),
    ("correct", "i1"),  # 1/0 where an answer is defined, -1 otherwise
    ("rt_s", "<f8"),  # from the first frame swap that showed the stimulus
    ("replays", "<i4"),
    ("focus_losses", "<i4"),
    ("presentations", "<i4"),  # > 1 when a pause restarted the trial
    ("onset_unix", "<f8"),
    ("response_unix", "<f8"),
    ("participant_id", _STR),
    ("session_id", _STR),
    ("complete", "u1"),
]
EVENT_FIELDS: list[tuple[str, object]] = [
    ("time_unix", "<f8"),
    ("kind", _STR),
    ("trial_index", "<i4"),
    ("detail", _STR),
]
PLAN_DTYPE = np.dtype(PLAN_FIELDS)
RESPONSE_DTYPE = np.dtype(RESPONSE_FIELDS)
EVENT_DTYPE = np.dtype(EVENT_FIELDS)
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_ID_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


def new_participant_id() -> str:
    """A random participant code such as ``P-7KQ2MX``: participants are never identified by name."""
    return "P-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(6))


def check_participant_id(pid: str) -> str:
    if not _ID_RE.match(pid):
        raise StudyError(
            f"participant id {pid!r} is not a code: use 1-32 letters, digits, '-' or '_' (never a name), "
            "or leave it out to generate one"
        )
    return pid


def plan_row(t: Trial) -> tuple:
    left = t.stimuli[0]
    right = t.stimuli[1] if len(t.stimuli) > 1 else ""
    m_right = t.methods[1] if len(t.methods) > 1 else ""
    return (t.index, t.phase, t.block, t.condition, t.clip, left, right, t.methods[0], m_right, t.target_side,
            t.label, t.expected, int(t.is_catch))


def trial_from_row(row: dict) -> Trial:
    stimuli = (row["stimulus_left"],) + ((row["stimulus_right"],) if row["stimulus_right"] else ())
    methods = (row["method_left"],) + ((row["method_right"],) if row["method_right"] else ())
    return Trial(int(row["trial_index"]), row["phase"], int(row["block"]), row["condition"], row["clip"], stimuli,
                 methods, row["target_side"], row["label"], row["expected"], bool(row["is_catch"]))


def _decode(arr: np.ndarray) -> list[dict]:
    """Structured rows as dicts of plain Python values (vlen strings decoded)."""
    out = []
    for rec in arr:
        row = {}
        for name in arr.dtype.names:
            v = rec[name]
            row[name] = v.decode("utf-8") if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v
        out.append(row)
    return out


@dataclass
class Response:
    """What the participant did on one trial (the trial itself is added from the plan)."""

    response: str
    rt_s: float
    replays: int = 0
    focus_losses: int = 0
    presentations: int = 1
    onset_unix: float = float("nan")
    response_unix: float = float("nan")


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class SessionFile:
    """An open session file being written. Create with :meth:`create`, reopen with :meth:`resume`."""

    def __init__(self, path: Path, f: h5py.File, *, fsync: bool = True) -> None:
        self.path = path
        self._f = f
        self._fsync = fsync
        self.participant_id = _text(f.attrs["participant_id"])
        self.session_id = _text(f.attrs["session_id"])
        self.seed = int(f.attrs["seed"])
        self.plan = [trial_from_row(r) for r in _decode(f["planned_trials"][()])]
        self.completed = {int(r["trial_index"]) for r in _decode(f["responses"][()]) if r["complete"]}
        self._n_rows = f["responses"].shape[0]
        self.consented = any(e["kind"] == "consent_given" for e in _decode(f["events"][()]))

    # -- creation -------------------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        protocol: Protocol,
        stimuli: StimulusSet,
        plan: list[Trial],
        *,
        participant_id: str,
        seed: int,
        fsync: bool = True,
        attrs: dict[str, str | int] | None = None,
    ) -> SessionFile:
        """Write everything known before the first trial (protocol, seed, plan, hashes, ids) and flush it.

        ``attrs`` are extra root attributes the runner knows at creation (``runner``, counterbalancing ``order``).
        """
        from engine import __version__

        path = Path(path)
        if path.exists():
            raise StudyError(f"{path} already exists; resume it with --resume or choose another output folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        check_participant_id(participant_id)
        f = h5py.File(path, "w")
        try:
            a = f.attrs
            a["schema_version"] = SCHEMA_VERSION
            a["format"] = FORMAT
            a["session_id"] = uuid.uuid4().hex
            a["participant_id"] = participant_id
            a["seed"] = np.int64(seed)
            a["app_version"] = __version__
            a["created"] = datetime.now(UTC).isoformat(timespec="seconds")
            a["protocol_title"] = protocol.title
            a["protocol_kind"] = protocol.kind
            a["protocol_sha256"] = protocol.sha256
            a["stimuli_file"] = str(Path(stimuli.path).resolve())
            a["stimuli_file_sha256"] = file_sha256(stimuli.path)
            a["status"] = "running"
            a["n_planned"] = len(plan)
            for key, value in (attrs or {}).items():
                a[key] = value
            f.create_dataset("protocol", data=protocol.text, dtype=_STR)
            f.create_dataset("planned_trials", data=np.array([plan_row(t) for t in plan], dtype=PLAN_DTYPE))
            shown = sorted({s for t in plan for s in t.stimuli})
            hashes = stimuli.hashes()
            f.create_dataset("stimulus_hashes", data=np.array([(s, hashes[s]) for s in shown],
                                                               dtype=[("stimulus", _STR), ("sha256", _STR)]))
            f.create_dataset("responses", shape=(0,), maxshape=(None,), dtype=RESPONSE_DTYPE, chunks=(64,))
            f.create_dataset("events", shape=(0,), maxshape=(None,), dtype=EVENT_DTYPE, chunks=(64,))
            f.flush()
        except Exception:
            f.close()
            path.unlink(missing_ok=True)
            raise
        session = cls(path, f, fsync=fsync)
        session._sync()
        return session

    @classmethod
    def resume(cls, path: str | Path, protocol: Protocol, stimuli: StimulusSet, *, fsync: bool = True) -> SessionFile:
        """Reopen a session to continue it: same protocol, same stimuli (by hash), the stored plan."""
        path = Path(path)
        info = read_session(path)  # validates the file and reads it without opening it for writing
        if info.attrs["protocol_sha256"] != protocol.sha256:
            raise StudyError(
                f"{path} was run with a different protocol ({info.attrs['protocol_title']!r}, another version); "
                "resume it with the protocol file it was started with"
            )
        if info.attrs["status"] == "completed":
            raise StudyError(f"{path} is already complete ({len(info.responses)} trials); nothing to resume")
        hashes = stimuli.hashes()
        for sid, digest in info.stimulus_hashes.items():
            if hashes.get(sid) != digest:
                raise StudyError(
                    f"{path}: stimulus {sid!r} differs from the one this session showed; resume with the same "
                    f"stimulus file ({info.attrs['stimuli_file']})"
                )
        f = h5py.File(path, "r+")
        session = cls(path, f, fsync=fsync)
        session.set_status("running")
        session.log_event("resumed", session.next_index(), f"{len(session.completed)} trials already done")
        return session

    # -- writing --------------------------------------------------------------------------------------------
    def _sync(self) -> None:
        self._f.flush()
        if self._fsync:
            os.fsync(self._f.id.get_vfd_handle())

    def next_index(self) -> int | None:
        """The first planned trial without a response (trials are answered in plan order)."""
        for t in self.plan:
            if t.index not in self.completed:
                return t.index
        return None

    def append_response(self, trial: Trial, r: Response) -> None:
        """Append one response row and put it on disk before returning."""
        if trial.index in self.completed:
            raise StudyError(f"trial {trial.index} already has a response in {self.path}")
        chosen = ""
        if len(trial.methods) == 2 and r.response in ("left", "right"):
            chosen = trial.methods[0 if r.response == "left" else 1]
        correct = -1 if not trial.expected else int(r.response == trial.expected)
        row = np.array(
            [plan_row(trial) + (r.response, chosen, correct, r.rt_s, r.replays, r.focus_losses, r.presentations,
                                r.onset_unix, r.response_unix, self.participant_id, self.session_id, 1)],
            dtype=RESPONSE_DTYPE,
        )
        ds = self._f["responses"]
        n = self._n_rows
        ds.resize((n + 1,))
        ds[n] = row[0]
        self._sync()
        self._n_rows = n + 1
        self.completed.add(trial.index)

    def log_event(self, kind: str, trial_index: int | None = None, detail: str = "") -> None:
        ds = self._f["events"]
        n = ds.shape[0]
        ds.resize((n + 1,))
        ds[n] = np.array([(time.time(), kind, -1 if trial_index is None else trial_index, detail)], EVENT_DTYPE)[0]
        self._sync()

    def set_status(self, status: str) -> None:
        self._f.attrs["status"] = status
        self._sync()

    def close(self) -> None:
        if self._f.id.valid:
            self._f.flush()
            self._f.close()

    @property
    def closed(self) -> bool:
        return not self._f.id.valid


# -- reading ----------------------------------------------------------------------------------------------------
@dataclass
class SessionData:
    """A session file read back: attributes, protocol, plan, complete responses, events, stimulus hashes."""

    path: Path
    attrs: dict
    protocol: Protocol
    plan: list[Trial]
    responses: list[dict]
    events: list[dict]
    stimulus_hashes: dict[str, str]

    @property
    def participant_id(self) -> str:
        return self.attrs["participant_id"]


def read_session(path: str | Path) -> SessionData:
    """Read a session file (also one left by a killed process); only complete response rows are returned."""
    path = Path(path)
    if not path.is_file():
        raise StudyError(f"session file {path} does not exist")
    if not h5py.is_hdf5(path):
        raise StudyError(f"{path} is not an HDF5 session file (damaged or the wrong file)")
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: (_text(v) if isinstance(v, (bytes, str)) else v.item() if hasattr(v, "item") else v)
                     for k, v in f.attrs.items()}
            if attrs.get("format") != FORMAT:
                raise StudyError(f"{path} is not a skelviz session file")
            if int(attrs.get("schema_version", -1)) != SCHEMA_VERSION:
                raise StudyError(f"{path}: session schema version {attrs.get('schema_version')} is not supported")
            text = _text(f["protocol"][()])
            plan = [trial_from_row(r) for r in _decode(f["planned_trials"][()])]
            responses = [r for r in _decode(f["responses"][()]) if r["complete"]]
            events = _decode(f["events"][()])
            hashes = {r["stimulus"]: r["sha256"] for r in _decode(f["stimulus_hashes"][()])}
    except (OSError, KeyError) as exc:
        raise StudyError(f"{path}: the session file cannot be read ({exc})") from None
    protocol = parse_protocol(text, f"{path}:/protocol")
    return SessionData(path, attrs, protocol, plan, responses, events, hashes)

