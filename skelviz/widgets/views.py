"""The two 3D views side by side (or one overlay view), their titles and the colour legend.

Binds the :class:`~skelviz.model.scene.Scene` and :class:`~skelviz.model.playback.Playback` models to two
:class:`~skelviz.render.view.SkeletonGLView` widgets: it subscribes to model events and pushes data into the
GL visuals; it owns no state of its own beyond caches derived from the models.
"""

from __future__ import annotations

import html

import numpy as np
from PySide6 import QtCore, QtWidgets

from skelviz.model.playback import Playback
from skelviz.model.scene import COLOUR_MODES, SLOTS, Scene
from skelviz.render.colors import SLOT_COLOURS, map_values, swatch
from skelviz.render.skeleton_visual import to_gl
from skelviz.render.view import SkeletonGLView
from skelviz.widgets.legend import ColourLegend


class ViewPane(QtWidgets.QWidget):
    """A title line above one GL view."""

    def __init__(self, slot: str, parent=None) -> None:
        super().__init__(parent)
        self.slot = slot
        other = "B" if slot == "A" else "A"
        self.view = SkeletonGLView(SLOT_COLOURS[slot], SLOT_COLOURS[other], self)
        self.title = QtWidgets.QLabel(self)
        self.title.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.title.setObjectName(f"title{slot}")
        self.title.setContentsMargins(6, 2, 6, 2)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.title)
        lay.addWidget(self.view, 1)

    def set_title(self, text: str, extra: str = "") -> None:
        rich = f"{swatch(self.slot)} <b>{html.escape(text)}</b>"
        if extra:
            rich += f" &nbsp; {extra}"
        self.title.setText(rich)
        self.title.setToolTip(text)

    def plain_title(self) -> str:
        return self.title.toolTip()


class ViewsWidget(QtWidgets.QWidget):
    jointInfo = QtCore.Signal(str)  # a line about the hovered/selected joint, for the status bar

    def __init__(self, scene: Scene, playback: Playback, parent=None) -> None:
        super().__init__(parent)
        self.scene, self.playback = scene, playback
        self.panes = {s: ViewPane(s, self) for s in SLOTS}
        self.legend = ColourLegend(self)
        self.splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal, self)
        for s in SLOTS:
            self.splitter.addWidget(self.panes[s])
        self.splitter.setChildrenCollapsible(False)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(self.splitter, 1)
        lay.addWidget(self.legend)

        self._linked = True
        self._syncing = False
        self._colormap = "plasma"
        self._colour_values: np.ndarray | None = None  # (T, B) for the current colour mode
        self._colour_range = (0.0, 1.0)
        self._show_trails = False
        self._bounds: tuple[np.ndarray, np.ndarray] | None = None

        for s in SLOTS:
            view = self.panes[s].view
            view.cameraChanged.connect(lambda s=s: self._on_camera_changed(s))
            view.jointHovered.connect(lambda j, s=s: self._on_joint_hovered(s, j))
            view.jointClicked.connect(lambda j, s=s: self._on_joint_clicked(s, j))

        scene.clip_changed.connect(self._on_clip_changed)
        scene.positions_changed.connect(self._on_positions_changed)
        scene.prediction_changed.connect(self._on_prediction_changed)
        scene.deviations_changed.connect(self._on_colouring_changed)
        scene.colour_mode_changed.connect(lambda _m: self._on_colouring_changed())
        scene.overlay_changed.connect(self._on_overlay_changed)
        scene.selection_changed.connect(self._on_selection_changed)
        playback.frame_changed.connect(self._on_frame_changed)
        for s in SLOTS:
            self._on_clip_changed(s)

    # -- accessors ----------------------------------------------------------------------------------------
    def view(self, slot: str) -> SkeletonGLView:
        return self.panes[slot].view

    def visible_views(self) -> list[SkeletonGLView]:
        return [self.view("A")] if self.scene.overlay else [self.view(s) for s in SLOTS]

    def titles(self) -> list[str]:
        if self.scene.overlay:
            return [f"{self.scene.title('A')}  vs  {self.scene.title('B')}"]
        return [self.scene.title(s) for s in SLOTS]

    # -- user options -------------------------------------------------------------------------------------
    def set_linked(self, on: bool) -> None:
        self._linked = bool(on)
        if self._linked:
            self._on_camera_changed("A")

    def set_grid(self, on: bool) -> None:
        for s in SLOTS:
            self.view(s).set_grid_visible(on)

    def set_trails(self, on: bool) -> None:
        self._show_trails = bool(on)
        for s in SLOTS:
            self.view(s).primary.set_trails(on)
            self.view(s).secondary.set_trails(on)

    def set_colormap(self, name: str) -> None:
        self._colormap = name
        self._on_colouring_changed()

    def reset_cameras(self, preset: str = "default") -> None:
        for s in SLOTS:
            self._syncing = True
            try:
                self.view(s).reset_camera(preset, self.scene.frame_for(s, self.playback.frame))
            finally:
                self._syncing = False

    def set_follow(self, on: bool) -> None:
        """Whether the cameras follow the performer's root during playback (the framing stays)."""
        for s in SLOTS:
            self.view(s).follow = bool(on)
        if on:
            self._on_frame_changed(self.playback.frame)

    # -- model events -------------------------------------------------------------------------------------
    def _visuals_of(self, slot: str):
        """The visuals that draw ``slot``: its own view's primary, and view A's secondary for B in overlay."""
        out = [self.view(slot).primary]
        if slot == "B":
            out.append(self.view("A").secondary)
        return out

    def _on_clip_changed(self, slot: str) -> None:
        clip = self.scene.clip(slot)
        for visual in self._visuals_of(slot):
            visual.set_clip(clip)
            visual.set_trails(self._show_trails)
        self.view("A").secondary.set_visible(self.scene.overlay)
        self._fit_views()
        self._on_prediction_changed(slot)
        self._on_frame_changed(self.playback.frame)

    def _on_positions_changed(self, slot: str) -> None:
        clip = self.scene.clip(slot)
        for visual in self._visuals_of(slot):
            visual.update_positions(clip)

    def _fit_views(self) -> None:
        boxes = []
        for s in SLOTS:
            clip = self.scene.clip(s)
            if clip is not None:
                pts = to_gl(clip.bodies, clip.skeleton.up_axis).reshape(-1, 3)
                boxes.append((pts.min(axis=0), pts.max(axis=0)))
        if not boxes:
            return
        lo = np.min([b[0] for b in boxes], axis=0)
        hi = np.max([b[1] for b in boxes], axis=0)
        # Keep the user's camera when the new clips occupy about the same space (e.g. an attack result).
        similar = self._bounds is not None and (
            np.linalg.norm((lo + hi) / 2 - (self._bounds[0] + self._bounds[1]) / 2) < 0.5
            and 0.7 < np.linalg.norm(hi - lo) / max(np.linalg.norm(self._bounds[1] - self._bounds[0]), 1e-6) < 1.4
        )
        self._bounds = (lo, hi)
        framing = self._performer_framing()
        for s in SLOTS:
            self.view(s).set_bounds(lo, hi)
            if framing is not None:
                self.view(s).set_framing(*framing)
        if not similar:
            self.reset_cameras()

    def _on_prediction_changed(self, slot: str) -> None:
        pane = self.panes[slot]
        pane.set_title(self.scene.title(slot))
        if self.scene.overlay and slot == "B":
            self.panes["A"].set_title(self.scene.title("A"), self._overlay_extra())
        elif self.scene.overlay and slot == "A":
            pane.set_title(self.scene.title("A"), self._overlay_extra())

    def _overlay_extra(self) -> str:
        return f"{swatch('B')} <b>{html.escape(self.scene.title('B'))}</b>"

    def _on_overlay_changed(self, on: bool) -> None:
        self.panes["B"].setVisible(not on)
        self.view("A").secondary.set_visible(on)
        self._on_prediction_changed("A")
        self._on_frame_changed(self.playback.frame)

    def _on_colouring_changed(self) -> None:
        mode = self.scene.colour_mode
        label, _per_bone, unit = COLOUR_MODES[mode]
        self._colour_values = self.scene.colour_values()
        if self._colour_values is not None:
            self._colour_range = self.scene.colour_range()
            self.legend.set_state(True, f"bone colour: {label} (B vs A)", unit, self._colour_range, self._colormap)
        else:
            why = "" if mode == "none" else " — needs two clips of the same skeleton and length"
            self.legend.set_state(False, f"bone colour: plain{why}")
            for visual in self._visuals_of("B"):
                visual.set_bone_colours(None)
        self._apply_colours(self.scene.frame_for("B", self.playback.frame))

    def _apply_colours(self, frame_b: int) -> None:
        if self._colour_values is None or frame_b >= len(self._colour_values):
            return
        lo, hi = self._colour_range
        rgba = map_values(self._colour_values[frame_b], lo, hi, self._colormap)
        for visual in self._visuals_of("B"):
            visual.set_bone_colours(rgba)

    def _performer_framing(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The left clip's main performer (else the right one's): its extent around its root over every frame and
        its root's path, in GL space (what the cameras frame and follow)."""
        clip = self.scene.clip("A") or self.scene.clip("B")
        if clip is None:
            return None
        pts = to_gl(clip.positions, clip.skeleton.up_axis)  # (T, V, 3)
        path = pts[:, clip.skeleton.root]
        rel = pts - path[:, None]
        return rel.min(axis=(0, 1)), rel.max(axis=(0, 1)), path

    def _on_frame_changed(self, frame: int) -> None:
        for s in SLOTS:
            f = self.scene.frame_for(s, frame)
            for visual in self._visuals_of(s):
                visual.set_frame(f)
            self.view(s).follow_frame(self.scene.frame_for("A" if self.scene.clip("A") is not None else "B", frame))
        self._apply_colours(self.scene.frame_for("B", frame))

    def _on_selection_changed(self, joint) -> None:
        for s in SLOTS:
            for visual in self._visuals_of(s):
                visual.set_highlight(joint)

    # -- view events --------------------------------------------------------------------------------------
    def _on_camera_changed(self, slot: str) -> None:
        if not self._linked or self._syncing:
            return
        self._syncing = True
        try:
            state = self.view(slot).camera_state()
            for s in SLOTS:
                if s != slot:
                    self.view(s).set_camera_state(state)
        finally:
            self._syncing = False

    def _on_joint_hovered(self, slot: str, joint: int) -> None:
        if joint < 0:
            sel = self.scene.selected_joint
            self.jointInfo.emit(self.scene.joint_report(slot, sel, self.playback.frame) if sel is not None else "")
            return
        self.jointInfo.emit(self.scene.joint_report(slot, joint, self.playback.frame))

    def _on_joint_clicked(self, slot: str, joint: int) -> None:
        self.scene.select_joint(joint if joint >= 0 else None)
        if joint >= 0:
            self.jointInfo.emit(self.scene.joint_report(slot, joint, self.playback.frame))
