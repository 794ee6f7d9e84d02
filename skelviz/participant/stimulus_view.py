"""One stimulus motion in a GL view, for the participant window.

A minimal view of its own (helper F's ``skelviz.render`` visual had not landed when this was written): one
``GLLinePlotItem(mode='lines')`` for the bones, updated with ``setData(pos=...)`` each frame (never rebuilt),
a floor grid, and a fixed camera that frames the whole motion. Mouse interaction is disabled: every
participant sees the same view. ``first_swap`` is emitted once per presentation, at the first frame swap after
the stimulus was set: that is the stimulus onset used for response times.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph.opengl as gl
from PySide6 import QtCore, QtGui

from engine.skeletons import Skeleton

BONE_COLOUR = (0.92, 0.92, 0.95, 1.0)


def to_z_up(positions: np.ndarray, up_axis: str) -> np.ndarray:
    """Skeleton coordinates with ``up_axis`` up → pyqtgraph's z-up frame (a proper rotation)."""
    p = np.asarray(positions, np.float32)
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    if up_axis == "y":
        return np.stack([x, -z, y], axis=-1)
    if up_axis == "x":
        return np.stack([-z, y, x], axis=-1)
    return p.copy()


class StimulusView(gl.GLViewWidget):
    """A GL view playing one motion."""

    first_swap = QtCore.Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setBackgroundColor((28, 30, 36))
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.grid = gl.GLGridItem()
        self.grid.setSpacing(0.5, 0.5)
        self.grid.setSize(8, 8)
        self.grid.setColor((120, 120, 130, 90))
        self.addItem(self.grid)
        self.bones = gl.GLLinePlotItem(mode="lines", width=4.0, antialias=True, color=BONE_COLOUR)
        self.addItem(self.bones)
        self._frames: np.ndarray | None = None  # (T, V, 3) z-up
        self._pairs = np.zeros(0, np.int64)
        self._waiting_swap = False
        self.frameSwapped.connect(self._on_swapped)

    @property
    def num_frames(self) -> int:
        return 0 if self._frames is None else self._frames.shape[0]

    def set_motion(self, positions: np.ndarray | None, skeleton: Skeleton | None = None) -> None:
        """Show ``positions`` (T, V, 3) at frame 0 (or nothing); the next swap emits ``first_swap``."""
        if positions is None:
            self._frames = None
            self.bones.setVisible(False)
            self.update()
            return
        frames = to_z_up(positions, skeleton.up_axis)
        # put the floor under the lowest point, the camera on the motion's centre
        floor = float(frames[..., 2].min())
        frames[..., 2] -= floor
        self._frames = frames
        pairs = np.stack([skeleton.bone_parents, skeleton.bone_children], axis=1).reshape(-1)
        self._pairs = pairs
        lo, hi = frames.reshape(-1, 3).min(0), frames.reshape(-1, 3).max(0)
        centre = (lo + hi) / 2
        extent = float(max(np.max(hi - lo), 1.0))
        self.grid.resetTransform()
        self.grid.translate(float(centre[0]), float(centre[1]), 0.0)
        self.setCameraPosition(pos=QtGui.QVector3D(*map(float, centre)), distance=2.2 * extent, elevation=12,
                               azimuth=-90)
        self.bones.setVisible(True)
        self.set_frame(0)
        self._waiting_swap = True

    def set_frame(self, index: int) -> None:
        if self._frames is None:
            return
        index = int(np.clip(index, 0, self._frames.shape[0] - 1))
        self.bones.setData(pos=self._frames[index][self._pairs])

    def _on_swapped(self) -> None:
        if self._waiting_swap:
            self._waiting_swap = False
            self.first_swap.emit()

    # every participant sees the same camera: no orbiting, panning or zooming
    def mousePressEvent(self, ev):
        ev.ignore()

    def mouseMoveEvent(self, ev):
        ev.ignore()

    def mouseReleaseEvent(self, ev):
        ev.ignore()

    def wheelEvent(self, ev):
        ev.ignore()

    def keyPressEvent(self, ev):  # keys belong to the window (responses), not to the camera
        ev.ignore()
