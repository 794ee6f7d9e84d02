"""One skeleton drawn in a GL view: bones, joints and optional joint trails.

The GL items are created once per visual; a new frame only calls ``setData(pos=..., color=...)``
(pyqtgraph's fast path: one vertex buffer upload), never rebuilds items.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph.opengl as gl

from engine.data import Clip
from skelviz.render.colors import JOINT_COLOUR, SELECTED_COLOUR

TRAIL_FRAMES = 20


def to_gl(positions: np.ndarray, up_axis: str = "y") -> np.ndarray:
    """(..., 3) coordinates with ``up_axis`` up → pyqtgraph's z-up frame, by a proper rotation."""
    p = np.asarray(positions, np.float32)
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    if up_axis == "y":  # rotate +90° about x: y → z, z → −y
        return np.stack([x, -z, y], axis=-1)
    if up_axis == "x":  # rotate −90° about y: x → z, z → −x
        return np.stack([-z, y, x], axis=-1)
    return p.copy()


class SkeletonVisual:
    """Bones (``GLLinePlotItem(mode='lines')``), joints (``GLScatterPlotItem``) and trails of one clip."""

    def __init__(self, view: gl.GLViewWidget, colour=(1.0, 1.0, 1.0, 1.0), *, width: float = 3.0) -> None:
        self.colour = np.asarray(colour, np.float32)
        self.bones = gl.GLLinePlotItem(mode="lines", width=width, antialias=True, glOptions="translucent")
        self.joints = gl.GLScatterPlotItem(size=6.0, pxMode=True, glOptions="translucent")
        self.trails = gl.GLLinePlotItem(mode="lines", width=1.5, antialias=True, glOptions="translucent")
        for item in (self.trails, self.bones, self.joints):
            view.addItem(item)
        self._frames: np.ndarray | None = None  # (M, T, V, 3) GL coordinates of every frame
        self._parents = np.zeros(0, np.int64)
        self._children = np.zeros(0, np.int64)
        self._frame = 0
        self._visible = True
        self._show_trails = False
        self._trail_joints = np.zeros(0, np.int64)
        self._bone_rgba: np.ndarray | None = None  # (M*B*2, 4) per-vertex colours
        self._joint_rgba: np.ndarray | None = None
        self._highlight: int | None = None
        self.set_clip(None)

    # -- data ---------------------------------------------------------------------------------------------
    def set_clip(self, clip: Clip | None) -> None:
        if clip is None:
            self._frames = None
            self._set_items_visible(False)
            return
        sk = clip.skeleton
        self._frames = to_gl(clip.bodies, sk.up_axis)
        self._parents, self._children = sk.bone_parents, sk.bone_children
        self._trail_joints = np.asarray(sk.leaves, np.int64)
        m, b, v = self._frames.shape[0], len(self._parents), sk.num_joints
        self._bone_rgba = np.tile(self.colour, (m * b * 2, 1))
        self._joint_rgba = np.tile(np.asarray(JOINT_COLOUR, np.float32), (m * v, 1))
        self._frame = min(self._frame, self._frames.shape[1] - 1)
        self._set_items_visible(self._visible)
        self._apply_joint_colours()
        self.set_frame(self._frame, force=True)

    def update_positions(self, clip: Clip) -> None:
        """New positions for the same skeleton (live attack progress): keeps colours and items."""
        if self._frames is None or clip.bodies.shape != self._frames.shape:
            self.set_clip(clip)
            return
        self._frames = to_gl(clip.bodies, clip.skeleton.up_axis)
        self.set_frame(self._frame, force=True)

    @property
    def frames(self) -> np.ndarray | None:
        return self._frames

    def joint_positions(self, frame: int | None = None) -> np.ndarray | None:
        """(V, 3) GL coordinates of the main performer's joints at ``frame`` (default: the shown frame)."""
        if self._frames is None:
            return None
        f = self._frame if frame is None else min(frame, self._frames.shape[1] - 1)
        return self._frames[0, f]

    # -- per-frame update ---------------------------------------------------------------------------------
    def set_frame(self, frame: int, *, force: bool = False) -> None:
        if self._frames is None:
            return
        frame = min(max(int(frame), 0), self._frames.shape[1] - 1)
        if frame == self._frame and not force:
            return
        self._frame = frame
        pose = self._frames[:, frame]  # (M, V, 3)
        seg = np.empty((pose.shape[0], len(self._parents), 2, 3), np.float32)
        seg[:, :, 0] = pose[:, self._parents]
        seg[:, :, 1] = pose[:, self._children]
        self.bones.setData(pos=seg.reshape(-1, 3), color=self._bone_rgba)
        self.joints.setData(pos=pose.reshape(-1, 3))
        if self._show_trails:
            self._update_trails()

    def set_bone_colours(self, rgba: np.ndarray | None) -> None:
        """(B, 4) colours for the main performer's bones, or None for the plain colour."""
        if self._frames is None:
            return
        m, b = self._frames.shape[0], len(self._parents)
        colours = np.tile(self.colour, (m, b, 1))
        if rgba is not None:
            colours[0] = np.asarray(rgba, np.float32)[:b]
        self._bone_rgba = np.ascontiguousarray(np.repeat(colours.reshape(-1, 4), 2, axis=0))
        self.bones.setData(color=self._bone_rgba)

    def set_colour(self, colour) -> None:
        self.colour = np.asarray(colour, np.float32)
        self.set_bone_colours(None)

    def set_highlight(self, joint: int | None) -> None:
        if joint != self._highlight:
            self._highlight = joint
            self._apply_joint_colours()

    def _apply_joint_colours(self) -> None:
        if self._frames is None or self._joint_rgba is None:
            return
        v = self._frames.shape[2]
        colours = self._joint_rgba.copy()
        sizes = np.full(len(colours), 6.0, np.float32)
        if self._highlight is not None and 0 <= self._highlight < v:
            colours[self._highlight] = SELECTED_COLOUR
            sizes[self._highlight] = 13.0
        self.joints.setData(color=colours, size=sizes)

    # -- trails -------------------------------------------------------------------------------------------
    def set_trails(self, on: bool) -> None:
        self._show_trails = bool(on)
        self.trails.setVisible(self._show_trails and self._visible and self._frames is not None)
        if self._show_trails:
            self._update_trails()

    def _update_trails(self) -> None:
        if self._frames is None or not len(self._trail_joints):
            return
        start = max(0, self._frame - TRAIL_FRAMES)
        path = self._frames[0, start : self._frame + 1][:, self._trail_joints]  # (K, J, 3)
        if path.shape[0] < 2:
            self.trails.setData(pos=np.zeros((2, 3), np.float32), color=np.zeros((2, 4), np.float32))
            return
        seg = np.stack([path[:-1], path[1:]], axis=2)  # (K-1, J, 2, 3)
        fade = np.linspace(0.05, 0.8, seg.shape[0], dtype=np.float32)
        rgba = np.empty(seg.shape[:3] + (4,), np.float32)
        rgba[..., :3] = self.colour[:3]
        rgba[..., 3] = fade[:, None, None]
        self.trails.setData(pos=seg.reshape(-1, 3), color=rgba.reshape(-1, 4))

    # -- visibility ---------------------------------------------------------------------------------------
    def set_visible(self, on: bool) -> None:
        self._visible = bool(on)
        self._set_items_visible(self._visible and self._frames is not None)

    def _set_items_visible(self, on: bool) -> None:
        self.bones.setVisible(on)
        self.joints.setVisible(on)
        self.trails.setVisible(on and self._show_trails)
