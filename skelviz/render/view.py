"""A GL view of skeletons: camera presets, a ground grid, joint picking and a camera-changed signal."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph.opengl as gl
from PySide6 import QtCore, QtGui

from skelviz.render.colors import BACKGROUND, GRID_COLOUR
from skelviz.render.skeleton_visual import SkeletonVisual

# name → (elevation, azimuth) in degrees. Clips are y-up with the performer facing +z, which maps to GL −y:
# a camera at azimuth −90° looks at the performer's front.
PRESETS = {
    "default": (12.0, -60.0),
    "front": (5.0, -90.0),
    "side": (5.0, 0.0),
    "top": (90.0, -90.0),
}
PICK_RADIUS_PX = 12.0
FRAME_MARGIN = 1.15  # the framed box fills 1/1.15 of the narrower side of the view


def fit_distance(lo: np.ndarray, hi: np.ndarray, elevation: float, azimuth: float, fov_deg: float,
                 aspect: float, margin: float = FRAME_MARGIN) -> float:
    """Camera distance at which the GL-space box ``lo``–``hi``, centred in the view, just fits a perspective view
    with vertical field of view ``fov_deg`` and width/height ``aspect`` seen from ``elevation``/``azimuth``.

    Each corner of the box is projected onto the camera's right, up and viewing axes (pyqtgraph's orbit
    convention: the camera sits at ``centre + distance * (cos e cos a, cos e sin a, sin e)``); a corner at depth
    ``d`` towards the camera and ``r`` to the side fits when ``r <= (distance - d) * tan(half-angle)``. Fitting
    the projection, not the box's diagonal, is what frames a standing person tightly.
    """
    e, a = np.radians(elevation), np.radians(azimuth)
    back = np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)])  # centre → camera
    right = np.array([-np.sin(a), np.cos(a), 0.0])
    up = np.cross(back, right)
    centre = (np.asarray(lo, np.float64) + np.asarray(hi, np.float64)) / 2
    half = (np.asarray(hi, np.float64) - np.asarray(lo, np.float64)) / 2
    corners = centre + half * np.array([[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)])
    rel = corners - centre
    tan_v = np.tan(np.radians(fov_deg) / 2) / margin
    tan_h = tan_v * aspect
    need = np.maximum(np.abs(rel @ right) / tan_h, np.abs(rel @ up) / tan_v) + rel @ back
    return float(max(need.max(), 0.5))


class SkeletonGLView(gl.GLViewWidget):
    """``GLViewWidget`` holding a primary and a secondary (overlay) :class:`SkeletonVisual`.

    Emits :attr:`cameraChanged` whenever the user orbits, pans or zooms (for linked cameras) and
    :attr:`jointHovered`/:attr:`jointClicked` with the index of the primary skeleton's joint under the cursor
    (−1 when none).
    """

    cameraChanged = QtCore.Signal()
    jointHovered = QtCore.Signal(int)
    jointClicked = QtCore.Signal(int)

    def __init__(self, primary_colour, secondary_colour, parent=None) -> None:
        super().__init__(parent)
        self.setBackgroundColor(BACKGROUND)
        self.setMinimumSize(200, 160)
        self.setMouseTracking(True)
        self.grid = gl.GLGridItem(color=GRID_COLOUR)
        self.addItem(self.grid)
        self.primary = SkeletonVisual(self, primary_colour)
        self.secondary = SkeletonVisual(self, secondary_colour, width=2.5)
        self.secondary.set_visible(False)
        self._bounds: tuple[np.ndarray, np.ndarray] | None = None
        # What the camera frames and follows: the performer's extent around its root and the root's path
        # (GL space, one row per frame); None frames the whole box (see set_framing).
        self._body: tuple[np.ndarray, np.ndarray] | None = None
        self._path: np.ndarray | None = None
        self.follow = True
        self._hovered = -1
        self._press_pos: QtCore.QPointF | None = None
        self.setCameraPosition(distance=4.0, elevation=PRESETS["default"][0], azimuth=PRESETS["default"][1])

    # -- framing ------------------------------------------------------------------------------------------
    def set_bounds(self, lo: np.ndarray, hi: np.ndarray) -> None:
        """Fit the grid and the default camera to a GL-space box (the extent of the shown clips)."""
        self._bounds = (np.asarray(lo, np.float64), np.asarray(hi, np.float64))
        lo, hi = self._bounds
        size = max(float(np.max(hi[:2] - lo[:2])) + 2.0, 4.0)
        spacing = 0.5 if size < 12 else 1.0
        size = math.ceil(size / spacing) * spacing
        self.grid.setSize(size, size, 1)
        self.grid.setSpacing(spacing, spacing, 1)
        self.grid.resetTransform()
        cx, cy = (lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2
        self.grid.translate(round(cx / spacing) * spacing, round(cy / spacing) * spacing, lo[2])

    def set_framing(self, body_lo: np.ndarray, body_hi: np.ndarray, path: np.ndarray) -> None:
        """Frame the performer: its extent ``body_lo``–``body_hi`` relative to its root over the whole clip, placed
        at the root's position ``path[frame]`` (T, 3); with :attr:`follow` the camera's centre moves with the
        root during playback, so a walker stays in view at the size it was framed."""
        self._body = (np.asarray(body_lo, np.float64), np.asarray(body_hi, np.float64))
        self._path = np.asarray(path, np.float64).reshape(-1, 3)

    def _framed_box(self, frame: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
        if self._body is not None and self._path is not None and len(self._path):
            root = self._path[min(max(frame, 0), len(self._path) - 1)]
            return root + self._body[0], root + self._body[1]
        return self._bounds

    def follow_frame(self, frame: int) -> None:
        """Keep the framed performer at the centre of the view at ``frame`` (when :attr:`follow` is on)."""
        box = self._framed_box(frame) if self.follow and self._path is not None else None
        if box is None:
            return
        centre = (box[0] + box[1]) / 2
        self.opts["center"] = QtGui.QVector3D(*map(float, centre))
        self.update()

    def reset_camera(self, preset: str = "default", frame: int = 0) -> None:
        elevation, azimuth = PRESETS[preset]
        box = self._framed_box(frame)
        if box is not None:
            lo, hi = box
            centre = (lo + hi) / 2
            # ``fov`` is vertical here (see projectionMatrix): a view wider than tall sees more horizontally.
            aspect = self.width() / max(self.height(), 1)
            distance = fit_distance(lo, hi, elevation, azimuth, self.opts["fov"], aspect)
            self.setCameraPosition(
                pos=QtGui.QVector3D(*map(float, centre)), distance=distance, elevation=elevation, azimuth=azimuth
            )
        else:
            self.setCameraPosition(elevation=elevation, azimuth=azimuth)
        self.cameraChanged.emit()

    def projectionMatrix(self, region, viewport):  # noqa: N802
        """pyqtgraph's perspective projection with ``fov`` as the VERTICAL field of view, so that widening a
        view (side by side → overlay, a wider window) shows more around the skeleton instead of zooming in."""
        x0, y0, w, h = viewport
        dist = self.opts["distance"]
        near, far = dist * 0.001, dist * 1000.0
        t = near * math.tan(0.5 * math.radians(self.opts["fov"]))
        r = t * w / h
        left = r * ((region[0] - x0) * (2.0 / w) - 1)
        right = r * ((region[0] + region[2] - x0) * (2.0 / w) - 1)
        bottom = t * ((region[1] - y0) * (2.0 / h) - 1)
        top = t * ((region[1] + region[3] - y0) * (2.0 / h) - 1)
        tr = QtGui.QMatrix4x4()
        tr.frustum(left, right, bottom, top, near, far)
        return tr

    def camera_state(self) -> dict:
        return {k: (QtGui.QVector3D(v) if isinstance(v, QtGui.QVector3D) else v) for k, v in self.cameraParams().items()}

    def set_camera_state(self, state: dict) -> None:
        """Adopt another view's camera without echoing :attr:`cameraChanged`."""
        self.setCameraParams(**{k: v for k, v in state.items() if k != "fov"})
        if "fov" in state:
            self.opts["fov"] = state["fov"]
        self.update()

    def set_grid_visible(self, on: bool) -> None:
        self.grid.setVisible(bool(on))

    # -- camera interaction: emit cameraChanged after pyqtgraph's own handling ----------------------------
    def orbit(self, azim, elev):
        super().orbit(azim, elev)
        self.cameraChanged.emit()

    def pan(self, dx, dy, dz, relative="global"):
        super().pan(dx, dy, dz, relative)
        self.cameraChanged.emit()

    def wheelEvent(self, ev):  # noqa: N802
        super().wheelEvent(ev)
        self.cameraChanged.emit()

    def keyPressEvent(self, ev):  # noqa: N802
        # Arrow keys belong to playback (frame stepping); let the window handle them.
        ev.ignore()

    def keyReleaseEvent(self, ev):  # noqa: N802
        ev.ignore()

    # -- projection and picking ---------------------------------------------------------------------------
    def project(self, points: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
        """(N, 3) GL points → (N, 2) pixel coordinates (x right, y down) in a viewport of ``size``.

        ``size`` defaults to the widget's size; offscreen renders pass their own.
        """
        w, h = size or (self.width(), self.height())
        proj = self.projectionMatrix((0, 0, w, h), (0, 0, w, h))
        mvp = np.array((proj * self.viewMatrix()).data(), np.float64).reshape(4, 4).T
        pts = np.asarray(points, np.float64)
        hom = np.concatenate([pts, np.ones((len(pts), 1))], axis=1) @ mvp.T
        ndc = hom[:, :3] / hom[:, 3:4]
        return np.stack([(ndc[:, 0] + 1) * 0.5 * w, (1 - ndc[:, 1]) * 0.5 * h], axis=1)

    def joint_at(self, x: float, y: float) -> int:
        """Index of the primary skeleton's joint nearest to pixel (x, y) within the pick radius, else −1."""
        joints = self.primary.joint_positions()
        if joints is None:
            return -1
        px = self.project(joints)
        d = np.hypot(px[:, 0] - x, px[:, 1] - y)
        i = int(np.argmin(d))
        return i if d[i] <= PICK_RADIUS_PX else -1

    def mousePressEvent(self, ev):  # noqa: N802
        super().mousePressEvent(ev)
        self._press_pos = ev.position()

    def mouseReleaseEvent(self, ev):  # noqa: N802
        super().mouseReleaseEvent(ev)
        pos = ev.position()
        if self._press_pos is not None and (pos - self._press_pos).manhattanLength() < 4:
            joint = self.joint_at(pos.x(), pos.y())
            self.jointClicked.emit(joint)
        self._press_pos = None

    def mouseMoveEvent(self, ev):  # noqa: N802
        super().mouseMoveEvent(ev)
        if ev.buttons() == QtCore.Qt.MouseButton.NoButton:
            pos = ev.position()
            joint = self.joint_at(pos.x(), pos.y())
            if joint != self._hovered:
                self._hovered = joint
                self.jointHovered.emit(joint)

    def leaveEvent(self, ev):  # noqa: N802
        super().leaveEvent(ev)
        if self._hovered != -1:
            self._hovered = -1
            self.jointHovered.emit(-1)
