"""One stimulus motion in a GL view, for the participant window.

The skeleton is drawn by the app's :class:`~skelviz.render.skeleton_visual.SkeletonVisual` (bones as one
``GLLinePlotItem(mode='lines')`` updated with ``setData`` per frame). The view adds a floor grid under the
motion and a fixed camera framing it; mouse interaction is disabled so that every participant sees the same
picture. ``first_swap`` is emitted once per presentation, at the first frame swap after the stimulus was set:
that is the stimulus onset used for response times.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph.opengl as gl
from PySide6 import QtCore, QtGui

from engine.data import Clip
from engine.skeletons import Skeleton
from skelviz.render.colors import BACKGROUND, GRID_COLOUR
from skelviz.render.skeleton_visual import SkeletonVisual, to_gl
from skelviz.render.view import fit_distance

BONE_COLOUR = (0.92, 0.92, 0.95, 1.0)


class StimulusView(gl.GLViewWidget):
    """A GL view playing one motion."""

    first_swap = QtCore.Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setBackgroundColor(BACKGROUND)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.grid = gl.GLGridItem(color=GRID_COLOUR)
        self.grid.setSpacing(0.5, 0.5)
        self.addItem(self.grid)
        self.skeleton = SkeletonVisual(self, BONE_COLOUR, width=4.0)
        self._num_frames = 0
        self._waiting_swap = False
        self.frameSwapped.connect(self._on_swapped)

    @property
    def num_frames(self) -> int:
        return self._num_frames

    def set_motion(self, positions: np.ndarray | None, skeleton: Skeleton | None = None, fps: float = 30.0) -> None:
        """Show ``positions`` (T, V, 3) at frame 0 (or nothing); the next swap emits ``first_swap``."""
        if positions is None:
            self._num_frames = 0
            self.skeleton.set_clip(None)
            self.update()
            return
        clip = Clip(positions, skeleton, fps)
        self._num_frames = clip.num_frames
        gl_pos = to_gl(positions, skeleton.up_axis).reshape(-1, 3)
        lo, hi = gl_pos.min(0), gl_pos.max(0)
        centre = (lo + hi) / 2
        size = float(np.ceil(max(hi[0] - lo[0], hi[1] - lo[1]) + 2.0))
        self.grid.setSize(size, size, 1)
        self.grid.resetTransform()
        self.grid.translate(float(centre[0]), float(centre[1]), float(lo[2]))  # the floor under the lowest point
        # A fixed camera (the same for every participant) that frames the whole motion tightly: the box's
        # projection is fitted to the view, not its largest side (which left a standing person small).
        # (pyqtgraph's own projection, used here, takes ``fov`` as the horizontal field of view.)
        aspect = self.width() / max(self.height(), 1) if self.isVisible() else 16 / 9
        vertical_fov = 2 * np.degrees(np.arctan(np.tan(np.radians(self.opts["fov"]) / 2) / aspect))
        distance = fit_distance(lo, hi, 12.0, -90.0, vertical_fov, aspect)
        self.setCameraPosition(pos=QtGui.QVector3D(*map(float, centre)), distance=distance, elevation=12,
                               azimuth=-90)
        self.skeleton.set_clip(clip)
        self.skeleton.set_frame(0, force=True)
        self._waiting_swap = True
        self.update()

    def set_frame(self, index: int) -> None:
        self.skeleton.set_frame(index)

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
