"""The participants of an online study: one :class:`~studies.session.StudySession` per URL token, Qt-free.

The browser only shows what :meth:`WebSessions.state` says and reports what happened (:meth:`WebSessions.act`).
The study logic is the desktop runner's (:mod:`studies.session`) and so is the file format
(:mod:`studies.storage`): a session file is created and fsynced before the first trial, every answer is appended
and fsynced before the reply that carries the next trial leaves the server.

Why tokens are found through the session files: a session file records ``token_sha256`` (the hash of the
participant's URL token, never the token itself) and ``runner = "web"``, so a server restarted after ``kill -9``
rebuilds its token index by reading the folder and resumes each session on its next request, with no second
store that could disagree with the data. Writes to one file are serialised by that session's lock; different
participants write different files concurrently.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from engine.errors import StudyError
from studies.counterbalance import OrderAllocator, plan_session
from studies.protocol import Protocol
from studies.session import State, StudySession
from studies.stimuli import StimulusSet
from studies.storage import FORMAT, SessionFile, new_participant_id

log = logging.getLogger(__name__)

_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_BUTTON_TEXT = {"yes": "Yes", "no": "No", "left": "Left", "right": "Right", "same": "Same", "different": "Different"}
_MAX_RT_S = 24 * 3600.0


class UnknownSession(StudyError):
    """A URL token that names no session of this study (mistyped link, or another study's link)."""


class StaleRequest(StudyError):
    """A request about a trial that is not the one on screen (a second tab, or a reply that crossed another)."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _y_up(positions: np.ndarray, up_axis: str) -> np.ndarray:
    """Positions rotated so that y is up (three.js's convention), by a proper rotation as the desktop view does."""
    x, y, z = positions[..., 0], positions[..., 1], positions[..., 2]
    if up_axis == "z":  # rotate −90° about x: z → y, y → −z
        return np.stack([x, z, -y], axis=-1)
    if up_axis == "x":  # rotate +90° about z: x → y, y → −x
        return np.stack([-y, x, z], axis=-1)
    return positions


@dataclass
class _Finished:
    """A session that is over (completed or aborted) as read back from its file after a restart."""

    status: str


class _Entry:
    """One participant: the session file's path, the live session once loaded, and the lock serialising its writes."""

    def __init__(self, path: Path, order: int = -1) -> None:
        self.path = path
        self.order = order
        self.lock = threading.Lock()
        self.session: StudySession | _Finished | None = None


class WebSessions:
    """Creates, finds and drives the sessions of one study served from ``out_dir``."""

    def __init__(self, protocol: Protocol, stimuli: StimulusSet, out_dir: str | Path, *, fsync: bool = True) -> None:
        self.protocol = protocol
        self.stimuli = stimuli
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self.allocator = OrderAllocator(self.out_dir, protocol)
        self._scan()
        skeleton = stimuli.skeleton
        # bones derive from the skeleton's parents (topology is data): (parent, child) joint index pairs
        bones = [[int(a), int(b)] for a, b in zip(skeleton.bone_parents, skeleton.bone_children)]
        self._skeleton_json = {"name": skeleton.name, "joints": skeleton.num_joints, "bones": bones}

    def _scan(self) -> None:
        for path in sorted(self.out_dir.glob("*.h5")):
            try:
                with h5py.File(path, "r") as f:
                    a = f.attrs
                    if a.get("format") != FORMAT or a.get("runner") != "web" or "token_sha256" not in a:
                        continue
                    if a.get("protocol_sha256") != self.protocol.sha256:
                        log.warning("%s belongs to another protocol (%s); not served", path, a.get("protocol_title"))
                        continue
                    self._entries[str(a["token_sha256"])] = _Entry(path, int(a.get("order", -1)))
            except OSError as exc:
                log.warning("skipping %s: it cannot be read (%s)", path, exc)
        if self._entries:
            log.info("%d online session(s) found in %s; each resumes on its next request", len(self._entries),
                     self.out_dir)

    # -- sessions -----------------------------------------------------------------------------------------------
    def create(self) -> str:
        """A new participant: generated id, counterbalanced plan, session file on disk. Returns the URL token."""
        token = secrets.token_urlsafe(18)
        pid = new_participant_id()
        plan = plan_session(self.protocol, self.stimuli.catalogue(), pid, self.allocator)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        slug = "".join(ch if ch.isalnum() else "-" for ch in self.protocol.title.lower()).strip("-")[:40] or "study"
        path = self.out_dir / f"{slug}_{pid}_{stamp}.h5"
        try:
            file = SessionFile.create(path, self.protocol, self.stimuli, plan.trials, participant_id=pid,
                                      seed=plan.seed, fsync=self.fsync,
                                      attrs={"runner": "web", "order": plan.order, "token_sha256": token_hash(token)})
        except Exception:
            self.allocator.release(plan.order)
            raise
        file.log_event("created", None, f"{len(plan.trials)} trials planned (online, order {plan.order})")
        entry = _Entry(path, plan.order)
        entry.session = StudySession(self.protocol, self.stimuli, file)
        with self._lock:
            self._entries[token_hash(token)] = entry
        log.info("new online participant %s (order %d): %s", pid, plan.order, path.name)
        return token

    def _entry(self, token: str) -> _Entry:
        if not _TOKEN_RE.match(token or ""):
            raise UnknownSession("this link is not valid: check that you copied the whole address")
        with self._lock:
            entry = self._entries.get(token_hash(token))
        if entry is None:
            raise UnknownSession("this link names no session of this study: check that you copied the whole address")
        return entry

    def _load(self, entry: _Entry) -> StudySession | _Finished:
        """The live session (resumed from its file after a restart); the caller holds ``entry.lock``."""
        if entry.session is None:
            with h5py.File(entry.path, "r") as f:
                status = str(f.attrs["status"])
            if status in ("completed", "aborted"):
                entry.session = _Finished(status)
            else:
                s = StudySession.resume(self.protocol, self.stimuli, entry.path, fsync=self.fsync)
                if s.state is State.INSTRUCTIONS and s.file.completed:
                    # the server restarted under a participant who was already answering: continue at the next
                    # trial (a pause the participant never asked for should not send them back to the instructions)
                    s.advance()
                entry.session = s
                log.info("resumed %s at trial %s", entry.path.name, s.file.next_index())
        return entry.session

    def close(self) -> None:
        """Close every open session file (a clean shutdown; a killed server loses nothing either)."""
        with self._lock:
            entries = list(self._entries.values())
        for entry in entries:
            with entry.lock:
                if isinstance(entry.session, StudySession):
                    entry.session.close()

    def session_path(self, token: str) -> Path:
        return self._entry(token).path

    # -- what the page shows ------------------------------------------------------------------------------------
    def state(self, token: str) -> dict:
        entry = self._entry(token)
        with entry.lock:
            return self._state(self._load(entry))

    def _state(self, s: StudySession | _Finished) -> dict:
        p = self.protocol
        out: dict = {"title": p.title, "min_width": p.online.min_width, "min_height": p.online.min_height}
        if isinstance(s, _Finished) or s.state in (State.END, State.ABORTED):
            ended = s.status if isinstance(s, _Finished) else ("completed" if s.state is State.END else "aborted")
            if ended == "completed":
                code = p.online.completion_code
                out.update(state="end", page={"title": "Thank you", "body": p.end_text, "buttons": []},
                           completion_code=code, redirect_url=p.online.redirect_url.replace("{code}", code))
            else:
                out.update(state="aborted", page={"title": "Session ended", "body": "The session was ended. Every "
                                                  "answer given so far is saved. You may close this page.",
                                                  "buttons": []})
            return out
        done, total = s.progress()
        out["progress"] = {"done": done, "total": total}
        if s.state is State.CONSENT:
            out.update(state="consent", page={"title": p.title, "body": p.consent, "buttons": [
                {"action": "decline", "label": "I do not agree"},
                {"action": "consent", "label": "I agree — continue", "key": "Enter"}]})
        elif s.state is State.INSTRUCTIONS:
            body = p.instructions
            if s.resumed:
                body = f"Welcome back: the study continues where it stopped ({done} of {total} done).\n\n" + body
            out.update(state="instructions", page={"title": "Instructions", "body": body, "buttons": [
                {"action": "advance", "label": "Start", "key": "Enter"}]})
        elif s.state is State.PRACTICE_DONE:
            out.update(state="practice_done", page={"title": "Practice over", "body": "The practice trials are over. "
                       "The real trials start now and are scored.\nAnswer as you did in the practice.",
                       "buttons": [{"action": "advance", "label": "Start", "key": "Enter"}]})
        elif s.state is State.BREAK:
            out.update(state="break", page={"title": "Break", "body": f"You have done {done} of {total} trials. "
                       "Take a short rest.\n\nContinue when you are ready.",
                       "buttons": [{"action": "advance", "label": "Continue", "key": "Enter"}]})
        elif s.state is State.TRIAL:
            t = s.current
            out.update(state="trial", trial={
                "index": t.index,
                "phase": t.phase,
                "practice_number": t.index + 1 if t.phase == "practice" else None,
                "practice_total": p.practice,
                "question": p.question,
                "label": t.label if p.show_label else "",
                "views": len(t.stimuli),
                "presentation": p.online.presentation if len(t.stimuli) == 2 else "single",
                "gap_ms": p.online.gap_ms,
                "inter_trial_ms": p.inter_trial_ms,
                "loops": p.loops,
                "responses": [{"value": r, "label": _BUTTON_TEXT.get(r, r), "key": p.keys[r]} for r in p.responses],
                "replay_key": p.keys["replay"],
                "replays": p.replays,
                "replays_left": s.replays_left,
            })
        return out

    def motion(self, token: str, trial_index: int) -> dict:
        """The current trial's motions as compact arrays: float32 (T, V, 3) little-endian, base64, y up."""
        entry = self._entry(token)
        with entry.lock:
            s = self._load(entry)
            if isinstance(s, _Finished) or s.state is not State.TRIAL or s.current.index != trial_index:
                raise StaleRequest(f"trial {trial_index} is not on screen")
            trial = s.current
        fps = self.protocol.fps or self.stimuli.fps
        up = self.stimuli.skeleton.up_axis
        motions = []
        for sid in trial.stimuli:
            pos = np.ascontiguousarray(_y_up(self.stimuli[sid].positions, up), dtype="<f4")
            motions.append({"frames": int(pos.shape[0]), "data": base64.b64encode(pos.tobytes()).decode("ascii")})
        return {"trial_index": trial_index, "fps": fps, "skeleton": self._skeleton_json, "motions": motions}

    # -- what the participant did ---------------------------------------------------------------------------------
    def act(self, token: str, action: str, body: dict) -> dict:
        """Apply one action of the page and return the new state (``accepted`` says whether it changed anything).

        Repeated requests are harmless: an answer to a trial that already has one (the page retried after a lost
        reply) is acknowledged without a second row.
        """
        entry = self._entry(token)
        with entry.lock:
            s = self._load(entry)
            accepted = False
            if isinstance(s, StudySession):
                accepted = self._apply(entry, s, action, body)
            return {"accepted": accepted, "state": self._state(s)}

    def _apply(self, entry: _Entry, s: StudySession, action: str, body: dict) -> bool:
        if action == "consent":
            if s.state is not State.CONSENT:
                return False
            s.accept_consent()
        elif action == "decline":
            if s.state is not State.CONSENT:
                return False
            s.decline_consent()
            self.allocator.release(entry.order)  # no data: the order goes to the next participant
        elif action == "advance":
            before = s.state
            s.advance()
            return s.state is not before
        elif action == "onset":
            if not self._is_current(s, body):
                return False
            s.presentation_started()  # a reload or a replayed page presents the trial again: counted
            s.stimulus_onset(0.0)  # response times are measured by the page from its first drawn frame
        elif action == "replay":
            return self._is_current(s, body) and s.replay()
        elif action == "respond":
            index = _int(body, "trial_index")
            if index in s.file.completed:
                return False  # already on disk: a retry of a request whose reply was lost
            if not self._is_current(s, body):
                raise StaleRequest(f"trial {index} is not the one on screen")
            rt = body.get("rt_s")
            if not isinstance(rt, (int, float)) or isinstance(rt, bool) or not math.isfinite(rt) or not 0 <= rt < _MAX_RT_S:
                raise StudyError(f"rt_s must be a response time in seconds, got {rt!r}")
            if s.onset is None:  # the onset report was lost on the way: the trial was shown all the same
                s.presentation_started()
                s.stimulus_onset(0.0)
            return s.respond(str(body.get("response", "")), t=float(rt))
        elif action == "focus":
            (s.focus_lost if body.get("lost") else s.focus_gained)()
        elif action == "refused":
            s.file.log_event("page_refused", None, str(body.get("reason", ""))[:200])
        else:
            raise StudyError(f"unknown action {action!r}")
        return True

    @staticmethod
    def _is_current(s: StudySession, body: dict) -> bool:
        return s.state is State.TRIAL and s.current is not None and s.current.index == _int(body, "trial_index")


def _int(body: dict, key: str) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise StudyError(f"{key} must be an integer, got {value!r}")
    return value
