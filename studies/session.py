"""The session engine: the participant's path through a study, as a Qt-free state machine.

    consent → instructions → practice trials → "practice over" → trials → break → trials … → end

The Qt participant window (``skelviz.participant``) only shows :attr:`StudySession.state` and forwards what
happens: key presses and buttons (:meth:`respond`, :meth:`replay`, :meth:`advance`), the first frame swap that
shows a stimulus (:meth:`stimulus_onset`), focus changes, the experimenter's pause and abort. The same engine
runs headless in tests and in the crash test's driver process.

Data safety: a response is on disk (see :mod:`studies.storage`) before :meth:`respond` returns and before the
next trial is shown. Escape only pauses and asks for confirmation (:meth:`request_abort`); aborting closes the
file with every completed trial in it, and ``--resume`` continues at the first unanswered trial. A trial
interrupted by a pause is shown again from the start (its response time would be meaningless otherwise).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from engine.errors import StudyError
from studies.counterbalance import OrderAllocator, plan_session
from studies.protocol import Protocol
from studies.schedule import Trial
from studies.stimuli import StimulusSet
from studies.storage import Response, SessionFile, check_participant_id, new_participant_id

_LETTER_RUN = re.compile(r"[A-Za-z]{5,}")


def check_participant_code(pid: str) -> str:
    """An experimenter-supplied participant id, checked so that it does not look like a name.

    The rule: 1-32 letters, digits, ``-`` or ``_``; not letters only; no run of five or more letters.
    ``P-7KQ2MX``, ``S012``, ``sub-07``, ``P-ONE`` pass; ``AliceJones``, ``Alice_Jones``, ``alice1``, ``Bob``
    do not. Generated ids (:func:`~studies.storage.new_participant_id`) always pass. Ids end up in file names
    and on every data row, so a name must never be one; leave the id out to generate one.
    """
    check_participant_id(pid)
    if pid.isalpha() or _LETTER_RUN.search(pid):
        raise StudyError(
            f"participant id {pid!r} looks like a name: a participant id must not be letters only nor hold five "
            "or more letters in a row (e.g. S012 or P-7KQ2MX); leave it out to generate one"
        )
    return pid


class State(StrEnum):
    CONSENT = "consent"
    INSTRUCTIONS = "instructions"
    TRIAL = "trial"
    PRACTICE_DONE = "practice_done"
    BREAK = "break"
    END = "end"
    ABORTED = "aborted"


class StudySession:
    """Drives one participant session. ``clock`` (seconds, monotonic) times responses; ``wall`` stamps rows.

    ``on_change`` is called after every state change (the window re-renders then).
    """

    def __init__(
        self,
        protocol: Protocol,
        stimuli: StimulusSet,
        file: SessionFile,
        *,
        resumed: bool = False,
        clock: Callable[[], float] = time.perf_counter,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.protocol = protocol
        self.stimuli = stimuli
        self.file = file
        self.plan = file.plan
        self.clock = clock
        self.wall = wall
        self.on_change: Callable[[StudySession], None] | None = None
        self.paused = False
        self.confirming_abort = False
        self.resumed = resumed
        self._pos = self._first_open()
        self._reset_trial()
        # a resumed session skips consent only if it was given (a session killed on the consent page asks again)
        self.state = State.INSTRUCTIONS if resumed and file.consented else State.CONSENT
        if self._pos is None:
            self._finish()

    # -- construction -----------------------------------------------------------------------------------------
    @classmethod
    def start(
        cls,
        protocol: Protocol,
        stimuli: StimulusSet,
        out_dir: str | Path,
        participant: str | None = None,
        **kw,
    ) -> StudySession:
        """A new session file in ``out_dir`` holding the plan for a (generated) participant id."""
        pid = check_participant_code(participant) if participant else new_participant_id()
        # the allocator shared with the online runner: with [design] orders > 1, the least used order in out_dir
        chosen = plan_session(protocol, stimuli.catalogue(), pid, OrderAllocator(out_dir, protocol))
        seed, plan = chosen.seed, chosen.trials
        stamp = time.strftime("%Y%m%dT%H%M%S")
        slug = "".join(ch if ch.isalnum() else "-" for ch in protocol.title.lower()).strip("-")[:40] or "study"
        path = Path(out_dir) / f"{slug}_{pid}_{stamp}.h5"
        file = SessionFile.create(path, protocol, stimuli, plan, participant_id=pid, seed=seed,
                                  fsync=kw.pop("fsync", True), attrs={"runner": "desktop", "order": chosen.order})
        file.log_event("created", None, f"{len(plan)} trials planned")
        return cls(protocol, stimuli, file, **kw)

    @classmethod
    def resume(cls, protocol: Protocol, stimuli: StimulusSet, path: str | Path, **kw) -> StudySession:
        file = SessionFile.resume(path, protocol, stimuli, fsync=kw.pop("fsync", True))
        return cls(protocol, stimuli, file, resumed=True, **kw)

    # -- queries ----------------------------------------------------------------------------------------------
    @property
    def participant_id(self) -> str:
        return self.file.participant_id

    @property
    def current(self) -> Trial | None:
        """The trial on screen (state TRIAL), or the next one to show."""
        return None if self._pos is None else self.plan[self._pos]

    @property
    def accepting_responses(self) -> bool:
        return (self.state is State.TRIAL and self.onset is not None and not self.paused
                and not self.confirming_abort)

    @property
    def replays_left(self) -> int:
        return max(0, self.protocol.replays - self.replays)

    def progress(self) -> tuple[int, int]:
        """(answered, total) of the scored trials; practice is not counted."""
        main = [t for t in self.plan if t.phase == "main"]
        done = sum(t.index in self.file.completed for t in main)
        return done, len(main)

    @property
    def block(self) -> int:
        t = self.current
        return -1 if t is None else t.block

    # -- transitions ------------------------------------------------------------------------------------------
    def _log(self, kind: str, detail: str = "") -> None:
        """An event row for the current trial; nothing once the file is closed (the window may outlive it)."""
        if not self.file.closed:
            self.file.log_event(kind, self.current.index if self.current else None, detail)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    def _first_open(self) -> int | None:
        for i, t in enumerate(self.plan):
            if t.index not in self.file.completed:
                return i
        return None

    def _reset_trial(self) -> None:
        self.onset: float | None = None
        self.onset_unix = float("nan")
        self.replays = 0
        self.focus_losses = 0
        self.presentations = 0

    def accept_consent(self) -> None:
        self._expect(State.CONSENT)
        self._log("consent_given")
        self.state = State.INSTRUCTIONS
        self._changed()

    def decline_consent(self) -> None:
        self._expect(State.CONSENT)
        self._log("consent_declined")
        self._abort("consent declined")

    def advance(self) -> None:
        """Leave a text screen (instructions, practice over, break) for the next trial."""
        if self.state not in (State.INSTRUCTIONS, State.PRACTICE_DONE, State.BREAK) or self.paused:
            return
        if self.state is State.BREAK:
            self._log("break_end")
        self._begin_trial()

    def _begin_trial(self) -> None:
        self._reset_trial()
        self.state = State.TRIAL
        self._changed()

    def presentation_started(self) -> None:
        """The window is about to draw the current trial's stimulus (again after a pause)."""
        self.onset = None
        self.presentations += 1

    def stimulus_onset(self, t: float | None = None) -> None:
        """The first frame swap that shows the stimulus; only the first call per presentation counts."""
        if self.state is not State.TRIAL or self.onset is not None:
            return
        self.onset = self.clock() if t is None else t
        self.onset_unix = self.wall()
        if self.presentations == 0:
            self.presentations = 1

    def replay(self) -> bool:
        """Count a replay when one is left; True when the window should restart the playback."""
        if not self.accepting_responses or self.replays_left == 0:
            return False
        self.replays += 1
        return True

    def respond(self, response: str, t: float | None = None) -> bool:
        """Record the answer to the current trial (on disk before returning) and move on.

        Ignored (returns False) before the stimulus is shown, while paused, or outside a trial.
        """
        if not self.accepting_responses:
            return False
        if response not in self.protocol.responses:
            raise StudyError(f"{response!r} is not a response of a {self.protocol.kind} study")
        now = self.clock() if t is None else t
        trial = self.current
        self.file.append_response(
            trial,
            Response(
                response=response,
                rt_s=max(0.0, now - self.onset),
                replays=self.replays,
                focus_losses=self.focus_losses,
                presentations=max(1, self.presentations),
                onset_unix=self.onset_unix,
                response_unix=self.wall(),
            ),
        )
        self._next(trial)
        return True

    def _next(self, done: Trial) -> None:
        self._pos = self._first_open()
        if self._pos is None:
            self._finish()
            return
        nxt = self.plan[self._pos]
        self._reset_trial()
        if done.phase == "practice" and nxt.phase == "main":
            self.state = State.PRACTICE_DONE
        elif done.phase == "main" and nxt.block != done.block:
            self.state = State.BREAK
            self._log("break_start", f"after block {done.block + 1}")
        else:
            self.state = State.TRIAL
        self._changed()

    def _finish(self) -> None:
        self.state = State.END
        self._log("completed")
        self.file.set_status("completed")
        self.file.close()
        self._changed()

    # -- attention, pause, abort -------------------------------------------------------------------------------
    def focus_lost(self) -> None:
        if self.state is State.TRIAL:
            self.focus_losses += 1
        self._log("focus_lost", self.state.value)

    def focus_gained(self) -> None:
        self._log("focus_gained", self.state.value)

    def pause(self) -> None:
        if self.paused or self.state in (State.END, State.ABORTED) or self.file.closed:
            return
        self.paused = True
        self._log("paused", self.state.value)
        self._changed()

    def unpause(self) -> None:
        """End a pause. A trial that was on screen is shown again from the start (a new onset)."""
        if not self.paused:
            return
        self.paused = False
        self.confirming_abort = False
        self._log("unpaused", self.state.value)
        if self.state is State.TRIAL:
            self.onset = None  # the window presents the stimulus again and reports the new first swap
        self._changed()

    def request_abort(self) -> None:
        """Escape: pause and ask for confirmation. Nothing is lost (every answer is already on disk)."""
        if self.state in (State.END, State.ABORTED) or self.file.closed:
            return
        if not self.paused:
            self.pause()
        self.confirming_abort = True
        self._changed()

    def cancel_abort(self) -> None:
        self.confirming_abort = False
        self.unpause()

    def confirm_abort(self) -> None:
        if not self.confirming_abort:
            return
        self._abort("aborted by the experimenter")

    def _abort(self, why: str) -> None:
        self._log("aborted", why)
        self.file.set_status("aborted")
        self.file.close()
        self.paused = False
        self.confirming_abort = False
        self.state = State.ABORTED
        self._changed()

    def close(self) -> None:
        """Close the file (the window calls this when it closes); answered trials are already on disk."""
        if not self.file.closed:
            self._log("window_closed", self.state.value)
            self.file.close()

    def _expect(self, state: State) -> None:
        if self.state is not state:
            raise StudyError(f"the session is at {self.state.value}, not {state.value}")
