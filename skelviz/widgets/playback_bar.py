"""Transport controls for the shared playback model, and the timer that drives it."""

from __future__ import annotations

import time

from PySide6 import QtCore, QtGui, QtWidgets

from skelviz.model.playback import SPEEDS, Playback


class PlaybackDriver(QtCore.QObject):
    """Advances a :class:`Playback` by real elapsed time on a precise ~60 Hz timer while it plays."""

    def __init__(self, playback: Playback, parent=None, interval_ms: int = 15) -> None:
        super().__init__(parent)
        self.playback = playback
        self.timer = QtCore.QTimer(self)
        self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.clock = QtCore.QElapsedTimer()
        playback.playing_changed.connect(self._on_playing)

    def _on_playing(self, playing: bool) -> None:
        if playing:
            self.clock.start()
            self.timer.start()
        else:
            self.timer.stop()

    def _tick(self) -> None:
        elapsed = self.clock.nsecsElapsed() / 1e9
        self.clock.restart()
        self.playback.advance(elapsed)


class PlaybackBar(QtWidgets.QWidget):
    def __init__(self, playback: Playback, parent=None) -> None:
        super().__init__(parent)
        self.playback = playback
        self._last_update = 0.0
        style = self.style()
        sp = QtWidgets.QStyle.StandardPixmap

        def button(icon, tip, slot):
            b = QtWidgets.QToolButton(self)
            b.setIcon(style.standardIcon(icon))
            b.setToolTip(tip)
            b.setAutoRaise(True)
            b.clicked.connect(slot)
            return b

        self.home_button = button(sp.SP_MediaSkipBackward, "First frame (Home)", playback.home)
        self.back_button = button(sp.SP_MediaSeekBackward, "Previous frame (←)", lambda: playback.step(-1))
        self.play_button = button(sp.SP_MediaPlay, "Play / pause (Space)", playback.toggle)
        self.fwd_button = button(sp.SP_MediaSeekForward, "Next frame (→)", lambda: playback.step(1))
        self.end_button = button(sp.SP_MediaSkipForward, "Last frame (End)", playback.end)
        self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal, self)
        self.slider.setObjectName("frameSlider")
        self.slider.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.slider.valueChanged.connect(playback.seek)
        self.counter = QtWidgets.QLabel(self)
        self.counter.setObjectName("frameCounter")
        self.counter.setMinimumWidth(190)
        font = QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont)
        self.counter.setFont(font)
        self.loop_box = QtWidgets.QCheckBox("Loop", self)
        self.loop_box.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.loop_box.setChecked(playback.loop)
        self.loop_box.toggled.connect(playback.set_loop)
        self.speed_box = QtWidgets.QComboBox(self)
        self.speed_box.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.speed_box.setToolTip("Playback speed (remembered)")
        for s in SPEEDS:
            self.speed_box.addItem(f"{s:g}×", s)
        self.speed_box.currentIndexChanged.connect(lambda i: playback.set_speed(self.speed_box.itemData(i)))

        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(4, 0, 4, 0)
        for w in (self.home_button, self.back_button, self.play_button, self.fwd_button, self.end_button):
            lay.addWidget(w)
        lay.addWidget(self.slider, 1)
        lay.addWidget(self.counter)
        lay.addWidget(self.loop_box)
        lay.addWidget(QtWidgets.QLabel("Speed", self))
        lay.addWidget(self.speed_box)

        playback.frame_changed.connect(self._on_frame)
        playback.length_changed.connect(lambda *_: self._on_length())
        playback.playing_changed.connect(self._on_playing)
        playback.speed_changed.connect(self._on_speed)
        playback.loop_changed.connect(self.loop_box.setChecked)
        self._on_length()
        self._on_speed(playback.speed)

    def _on_length(self) -> None:
        self.slider.blockSignals(True)
        self.slider.setRange(0, self.playback.num_frames - 1)
        self.slider.setValue(self.playback.frame)
        self.slider.blockSignals(False)
        self._on_frame(self.playback.frame)

    def _on_frame(self, frame: int) -> None:
        # While playing, refresh the slider and counter ~8 times a second: every update of an ordinary widget
        # recomposes the whole window (GL views included), which would double the cost of each frame.
        now = time.monotonic()
        if self.playback.playing and now - self._last_update < 0.12:
            return
        self._last_update = now
        if self.slider.value() != frame:
            self.slider.blockSignals(True)
            self.slider.setValue(frame)
            self.slider.blockSignals(False)
        p = self.playback
        self.counter.setText(f"{frame + 1:>4}/{p.num_frames:<4} {p.time:6.2f}/{p.duration:.2f} s")

    def _on_playing(self, playing: bool) -> None:
        self._on_frame(self.playback.frame)
        sp = QtWidgets.QStyle.StandardPixmap
        self.play_button.setIcon(self.style().standardIcon(sp.SP_MediaPause if playing else sp.SP_MediaPlay))

    def _on_speed(self, speed: float) -> None:
        i = self.speed_box.findData(speed)
        if i < 0:
            self.speed_box.addItem(f"{speed:g}×", speed)
            i = self.speed_box.count() - 1
        self.speed_box.blockSignals(True)
        self.speed_box.setCurrentIndex(i)
        self.speed_box.blockSignals(False)
