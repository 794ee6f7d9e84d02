"""The participant window: a full-screen, distraction-free view of a :class:`~studies.session.StudySession`.

It renders the session's state (consent, instructions, trials, practice over, breaks, end) and forwards what
happens; it holds no study state of its own. Keys (from the protocol) and buttons answer; Space (by default)
replays while replays are left. Response times start at the first frame swap that shows the stimulus (both
views' swaps for a pair). Focus loss is reported to the session. Escape pauses and asks whether to end the
session (Y ends it, Escape or N continues); Ctrl+P pauses and resumes for the experimenter; closing the window
during a session asks the same question. Every answer is on disk before the next trial, so nothing is lost.
"""

from __future__ import annotations

import logging
import time

from PySide6 import QtCore, QtGui, QtWidgets

from skelviz.participant.stimulus_view import StimulusView
from studies.session import State, StudySession

log = logging.getLogger(__name__)

_BUTTON_TEXT = {"yes": "Yes", "no": "No", "left": "Left", "right": "Right", "same": "Same", "different": "Different"}
_STYLE = """
QWidget#participant { background: #1c1e24; }
QLabel { color: #e8e8ee; }
QLabel#title { font-size: 26pt; font-weight: 600; }
QLabel#body { font-size: 15pt; }
QLabel#question { font-size: 20pt; font-weight: 600; }
QLabel#label { font-size: 22pt; color: #ffd479; }
QLabel#caption { font-size: 14pt; color: #a8a8b8; }
QLabel#progress { font-size: 12pt; color: #a8a8b8; }
QPushButton { font-size: 15pt; padding: 10px 28px; color: #f0f0f5; background: #3a3f4b; border-radius: 6px; }
QPushButton:disabled { color: #777; background: #2a2d35; }
QProgressBar { background: #2a2d35; border: none; height: 6px; }
QProgressBar::chunk { background: #4c78a8; }
"""


def _key_code(name: str) -> int:
    seq = QtGui.QKeySequence(name)
    if seq.count() != 1:
        raise ValueError(f"{name!r} is not a single key")
    return int(seq[0].key().value)


class ParticipantWindow(QtWidgets.QWidget):
    """Shows one session. ``fullscreen=False`` keeps a normal window (tests, screenshots)."""

    finished = QtCore.Signal(str)  # the final state: "end" or "aborted"

    def __init__(self, session: StudySession, parent=None, *, fullscreen: bool = True) -> None:
        super().__init__(parent, QtCore.Qt.WindowType.Window)
        self.session = session
        self.protocol = session.protocol
        self.setObjectName("participant")
        self.setWindowTitle(f"{self.protocol.title} — participant {session.participant_id}")
        self.setStyleSheet(_STYLE)
        self.setAttribute(QtCore.Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        self.setCursor(QtCore.Qt.CursorShape.ArrowCursor)
        self._keys = {_key_code(k): action for action, k in self.protocol.keys.items()}
        self._presenting = False
        self._shown_trial: int | None = None
        self._pending_swaps: set[StimulusView] = set()
        self._play_start = 0.0
        self._build()
        self._play_timer = QtCore.QTimer(self, timerType=QtCore.Qt.TimerType.PreciseTimer)
        self._play_timer.timeout.connect(self._advance_frame)
        self._iti_timer = QtCore.QTimer(self, singleShot=True)
        self._iti_timer.timeout.connect(self._present)
        session.on_change = lambda _s: self.render()
        self.render()
        if fullscreen:
            self.showFullScreen()

    # -- layout ---------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.stack = QtWidgets.QStackedLayout(self)
        # text page: consent, instructions, practice over, break, pause, end
        self.text_page = QtWidgets.QWidget()
        v = QtWidgets.QVBoxLayout(self.text_page)
        v.setContentsMargins(120, 80, 120, 80)
        self.title = QtWidgets.QLabel(objectName="title", alignment=QtCore.Qt.AlignmentFlag.AlignCenter)
        self.body = QtWidgets.QLabel(objectName="body", wordWrap=True)
        self.body.setAlignment(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter)
        self.text_buttons = QtWidgets.QHBoxLayout()
        v.addStretch(1)
        v.addWidget(self.title)
        v.addSpacing(30)
        v.addWidget(self.body, 3)
        v.addSpacing(30)
        v.addLayout(self.text_buttons)
        v.addStretch(1)
        self.stack.addWidget(self.text_page)

        # trial page
        self.trial_page = QtWidgets.QWidget()
        t = QtWidgets.QVBoxLayout(self.trial_page)
        t.setContentsMargins(40, 20, 40, 30)
        top = QtWidgets.QHBoxLayout()
        self.progress_label = QtWidgets.QLabel(objectName="progress")
        self.progress_bar = QtWidgets.QProgressBar(textVisible=False, maximumHeight=6)
        top.addWidget(self.progress_label)
        top.addWidget(self.progress_bar, 1)
        t.addLayout(top)
        self.question = QtWidgets.QLabel(objectName="question", alignment=QtCore.Qt.AlignmentFlag.AlignCenter)
        t.addWidget(self.question)
        self.label = QtWidgets.QLabel(objectName="label", alignment=QtCore.Qt.AlignmentFlag.AlignCenter)
        t.addWidget(self.label)
        views = QtWidgets.QHBoxLayout()
        self.views: list[StimulusView] = []
        self.captions: list[QtWidgets.QLabel] = []
        for _ in range(2 if self.protocol.two_stimuli else 1):
            col = QtWidgets.QVBoxLayout()
            view = StimulusView()
            view.first_swap.connect(lambda view=view: self._on_first_swap(view))
            cap = QtWidgets.QLabel(objectName="caption", alignment=QtCore.Qt.AlignmentFlag.AlignCenter)
            col.addWidget(view, 1)
            col.addWidget(cap)
            views.addLayout(col, 1)
            self.views.append(view)
            self.captions.append(cap)
        t.addLayout(views, 1)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addStretch(1)
        self.response_buttons: dict[str, QtWidgets.QPushButton] = {}
        for response in self.protocol.responses:
            key = self.protocol.keys[response]
            b = self._button(f"{_BUTTON_TEXT.get(response, response)}  [{key}]", lambda r=response: self._respond(r))
            self.response_buttons[response] = b
            buttons.addWidget(b)
            buttons.addSpacing(20)
        self.replay_button = self._button("", self._replay)
        buttons.addSpacing(40)
        buttons.addWidget(self.replay_button)
        buttons.addStretch(1)
        t.addLayout(buttons)
        self.stack.addWidget(self.trial_page)

    def _button(self, text: str, slot) -> QtWidgets.QPushButton:
        b = QtWidgets.QPushButton(text)
        # buttons never take keyboard focus: Space and Enter must not press a focused button by accident
        b.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        b.clicked.connect(slot)
        return b

    def _set_text_page(self, title: str, body: str, buttons: list[tuple[str, object]]) -> None:
        self._stop_presentation()
        self.title.setText(title)
        self.body.setText(body)
        while self.text_buttons.count():
            item = self.text_buttons.takeAt(0)
            if item.widget():  # hide at once: deletion waits for the event loop
                item.widget().hide()
                item.widget().deleteLater()
        self.text_buttons.addStretch(1)
        for text, slot in buttons:
            self.text_buttons.addWidget(self._button(text, slot))
            self.text_buttons.addSpacing(20)
        self.text_buttons.addStretch(1)
        self.stack.setCurrentWidget(self.text_page)

    # -- rendering the session's state ------------------------------------------------------------------------
    def render(self) -> None:
        s = self.session
        p = self.protocol
        if s.confirming_abort:
            self._set_text_page(
                "Paused",
                "Nothing has been lost: every answer so far is saved.\n\n"
                "Press Y to end the session now, or Escape / N to continue.",
                [("Continue  [Esc]", s.cancel_abort), ("End the session  [Y]", s.confirm_abort)],
            )
        elif s.paused:
            self._set_text_page("Paused", "The experimenter paused the study. Please wait.\n\n(Ctrl+P continues.)",
                                [("Continue  [Ctrl+P]", s.unpause)])
        elif s.state is State.CONSENT:
            self._set_text_page(p.title, p.consent,
                                [("I do not agree", s.decline_consent), ("I agree — continue  [Enter]",
                                                                         s.accept_consent)])
        elif s.state is State.INSTRUCTIONS:
            body = p.instructions
            if s.resumed:
                done, total = s.progress()
                body = f"Welcome back: the study continues where it stopped ({done} of {total} done).\n\n" + body
            self._set_text_page("Instructions", body, [("Start  [Enter]", s.advance)])
        elif s.state is State.PRACTICE_DONE:
            self._set_text_page("Practice over", "The practice trials are over. The real trials start now and are "
                                "scored.\nAnswer as you did in the practice.", [("Start  [Enter]", s.advance)])
        elif s.state is State.BREAK:
            done, total = s.progress()
            self._set_text_page("Break", f"You have done {done} of {total} trials. Take a short rest.\n\n"
                                "Continue when you are ready.", [("Continue  [Enter]", s.advance)])
        elif s.state is State.END:
            self._set_text_page("Thank you", p.end_text, [("Close", self.close)])
            self.finished.emit("end")
        elif s.state is State.ABORTED:
            self._set_text_page("Session ended", "The session was ended. Every answer given so far is saved.",
                                [("Close", self.close)])
            self.finished.emit("aborted")
        elif s.state is State.TRIAL:
            self._show_trial_page()

    def _show_trial_page(self) -> None:
        s = self.session
        trial = s.current
        done, total = s.progress()
        if trial.phase == "practice":
            self.progress_label.setText(f"Practice {trial.index + 1} of {self.protocol.practice} (not scored)")
        else:
            self.progress_label.setText(f"Trial {done + 1} of {total}")
        self.progress_bar.setRange(0, max(1, total))
        self.progress_bar.setValue(done)
        self.question.setText(self.protocol.question)
        self.label.setVisible(self.protocol.show_label)
        self.label.setText(f"“{trial.label}”" if self.protocol.show_label else "")
        for cap, side in zip(self.captions, ("Left", "Right")):
            cap.setText(side if len(self.views) == 2 else "")
        if not self._presenting or self._shown_trial != trial.index:
            # a new trial, or one to show again after a pause: blank views for the inter-trial interval
            self._stop_presentation()
            self._iti_timer.start(self.protocol.inter_trial_ms)
        self._update_buttons()
        self.stack.setCurrentWidget(self.trial_page)

    def _update_buttons(self) -> None:
        s = self.session
        for b in self.response_buttons.values():
            b.setEnabled(s.accepting_responses)
        left = s.replays_left
        self.replay_button.setText(f"Replay  [{self.protocol.keys['replay']}]  ({left} left)")
        self.replay_button.setEnabled(s.accepting_responses and left > 0)
        self.replay_button.setVisible(self.protocol.replays > 0)

    # -- presentation ---------------------------------------------------------------------------------------
    def _present(self) -> None:
        s = self.session
        if s.state is not State.TRIAL or s.paused:
            return
        trial = s.current
        s.presentation_started()
        self._presenting = True
        self._shown_trial = trial.index
        self._pending_swaps = set(self.views)
        for view, sid in zip(self.views, trial.stimuli):
            stim = s.stimuli[sid]
            view.set_motion(stim.positions, s.stimuli.skeleton, s.stimuli.fps)
        self._fps = self.protocol.fps or s.stimuli.fps
        self._frames = max(v.num_frames for v in self.views)
        self._restart_playback()

    def _restart_playback(self) -> None:
        self._play_start = time.perf_counter()
        self._play_timer.start(max(1, int(1000 / self._fps / 2)))
        for v in self.views:
            v.update()

    def _advance_frame(self) -> None:
        elapsed = time.perf_counter() - self._play_start
        frame = int(elapsed * self._fps)
        loops = self.protocol.loops
        if frame >= loops * self._frames:  # hold the last frame once the loops are done
            self._play_timer.stop()
            frame = self._frames - 1
        else:
            frame %= self._frames
        for v in self.views:
            v.set_frame(frame)
            v.update()

    def _on_first_swap(self, view: StimulusView) -> None:
        self._pending_swaps.discard(view)
        if self._presenting and not self._pending_swaps and self.session.onset is None:
            self.session.stimulus_onset()  # the swap that completed the display of every stimulus
            self._update_buttons()

    def _stop_presentation(self) -> None:
        self._presenting = False
        self._iti_timer.stop()
        self._play_timer.stop()
        for v in self.views:
            v.set_motion(None)

    # -- input ----------------------------------------------------------------------------------------------
    def _respond(self, response: str) -> None:
        if not self.session.accepting_responses:
            return
        self._play_timer.stop()
        self.session.respond(response)  # on disk before the next trial; triggers render()

    def _replay(self) -> None:
        if self.session.replay():
            self._restart_playback()
            self._update_buttons()

    def keyPressEvent(self, ev: QtGui.QKeyEvent) -> None:
        s = self.session
        key = ev.key()
        mods = ev.modifiers()
        if ev.isAutoRepeat():
            return
        if key == QtCore.Qt.Key.Key_P and mods & QtCore.Qt.KeyboardModifier.ControlModifier:
            (s.unpause if s.paused and not s.confirming_abort else s.pause)()
            return
        if s.state in (State.END, State.ABORTED):
            if key in (QtCore.Qt.Key.Key_Escape, QtCore.Qt.Key.Key_Return, QtCore.Qt.Key.Key_Enter):
                self.close()
            return
        if s.confirming_abort:
            if key == QtCore.Qt.Key.Key_Y:
                s.confirm_abort()
            elif key in (QtCore.Qt.Key.Key_Escape, QtCore.Qt.Key.Key_N):
                s.cancel_abort()
            return
        if key == QtCore.Qt.Key.Key_Escape:
            s.request_abort()
            return
        if s.paused:
            return
        if key in (QtCore.Qt.Key.Key_Return, QtCore.Qt.Key.Key_Enter):
            if s.state is State.CONSENT:
                s.accept_consent()
            else:
                s.advance()
            return
        action = self._keys.get(key)
        if action == "replay":
            self._replay()
        elif action is not None and s.state is State.TRIAL:
            self._respond(action)

    # -- attention and closing ------------------------------------------------------------------------------
    def changeEvent(self, ev: QtCore.QEvent) -> None:
        if ev.type() == QtCore.QEvent.Type.ActivationChange and self.session.state not in (State.END, State.ABORTED):
            (self.session.focus_gained if self.isActiveWindow() else self.session.focus_lost)()
        super().changeEvent(ev)

    def closeEvent(self, ev: QtGui.QCloseEvent) -> None:
        s = self.session
        if s.state in (State.END, State.ABORTED, State.CONSENT) or s.file.closed:
            self._stop_presentation()
            s.close()
            ev.accept()
            return
        ev.ignore()  # a running session is only ended through the confirmation
        s.request_abort()
