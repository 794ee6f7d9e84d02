"""One playback clock driving every view: frame, play/pause, loop, speed.

Qt-free: a timer in the UI calls :meth:`Playback.advance` with the real elapsed time; the model turns it into
frames at the clip's frame rate times ``speed`` and emits :attr:`frame_changed` only when the frame changes.
"""

from __future__ import annotations

import math

from skelviz.model.events import Signal

SPEEDS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)


class Playback:
    def __init__(self, num_frames: int = 1, fps: float = 30.0, *, speed: float = 1.0, loop: bool = True) -> None:
        self.frame_changed = Signal()  # (frame)
        self.playing_changed = Signal()  # (playing)
        self.length_changed = Signal()  # (num_frames, fps)
        self.speed_changed = Signal()  # (speed)
        self.loop_changed = Signal()  # (loop)
        self._num_frames = max(1, int(num_frames))
        self._fps = float(fps)
        self._frame = 0
        self._phase = 0.0  # fractional frames accumulated since the last whole frame
        self._playing = False
        self._speed = float(speed)
        self._loop = bool(loop)

    # -- state --------------------------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return self._num_frames

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def frame(self) -> int:
        return self._frame

    @property
    def time(self) -> float:
        """Seconds since the first frame."""
        return self._frame / self._fps

    @property
    def duration(self) -> float:
        return self._num_frames / self._fps

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def loop(self) -> bool:
        return self._loop

    # -- changes ------------------------------------------------------------------------------------------
    def set_length(self, num_frames: int, fps: float) -> None:
        num_frames, fps = max(1, int(num_frames)), float(fps)
        if fps <= 0 or not math.isfinite(fps):
            raise ValueError(f"frame rate must be positive, got {fps}")
        if (num_frames, fps) == (self._num_frames, self._fps):
            return
        self._num_frames, self._fps = num_frames, fps
        self.length_changed.emit(num_frames, fps)
        if self._frame >= num_frames:
            self.seek(num_frames - 1)

    def set_speed(self, speed: float) -> None:
        speed = float(speed)
        if not speed > 0:
            raise ValueError(f"playback speed must be positive, got {speed}")
        if speed != self._speed:
            self._speed = speed
            self.speed_changed.emit(speed)

    def set_loop(self, loop: bool) -> None:
        if bool(loop) != self._loop:
            self._loop = bool(loop)
            self.loop_changed.emit(self._loop)

    def seek(self, frame: int) -> None:
        frame = min(max(int(frame), 0), self._num_frames - 1)
        self._phase = 0.0
        if frame != self._frame:
            self._frame = frame
            self.frame_changed.emit(frame)

    def step(self, frames: int = 1) -> None:
        """Move by ``frames`` (negative steps back); wraps around when looping."""
        target = self._frame + int(frames)
        if self._loop:
            target %= self._num_frames
        self.seek(target)

    def home(self) -> None:
        self.seek(0)

    def end(self) -> None:
        self.seek(self._num_frames - 1)

    def play(self) -> None:
        if not self._playing:
            if not self._loop and self._frame >= self._num_frames - 1:
                self.seek(0)
            self._playing = True
            self._phase = 0.0
            self.playing_changed.emit(True)

    def pause(self) -> None:
        if self._playing:
            self._playing = False
            self.playing_changed.emit(False)

    def toggle(self) -> None:
        self.pause() if self._playing else self.play()

    def advance(self, seconds: float) -> None:
        """Move the clock on by ``seconds`` of wall time (only while playing)."""
        if not self._playing or seconds <= 0:
            return
        self._phase += seconds * self._fps * self._speed
        whole = int(self._phase)
        if whole == 0:
            return
        self._phase -= whole
        target = self._frame + whole
        if target >= self._num_frames:
            if self._loop:
                target %= self._num_frames
            else:
                target = self._num_frames - 1
                self._frame_to(target)
                self.pause()
                return
        self._frame_to(target)

    def _frame_to(self, frame: int) -> None:
        if frame != self._frame:
            self._frame = frame
            self.frame_changed.emit(frame)
