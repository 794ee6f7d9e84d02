"""Inspect panel: where and when the right clip deviates from the left one.

A bone × frame (or joint × frame) heat map of the chosen deviation, the selected joint's velocity and
acceleration deviation over time, and the perturbation magnitude per joint. Clicking a plot scrubs the
views to that frame (or selects that joint).
"""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from skelviz.model.scene import COLOUR_MODES
from skelviz.render.colors import lookup_table

HEATMAP_QUANTITIES = {k: v for k, v in COLOUR_MODES.items() if k != "none"}
HEATMAP_QUANTITIES["bone_length_rel"] = ("relative bone-length change", True, "")


class _ClickablePlot(pg.PlotWidget):
    clicked = QtCore.Signal(float, float)  # data coordinates

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.scene().sigMouseClicked.connect(self._on_click)

    def _on_click(self, ev) -> None:
        if ev.button() != QtCore.Qt.MouseButton.LeftButton:
            return
        vb = self.getPlotItem().getViewBox()
        if not vb.sceneBoundingRect().contains(ev.scenePos()):
            return
        p = vb.mapSceneToView(ev.scenePos())
        self.clicked.emit(p.x(), p.y())


INTRO = (
    "<p><b>Where and when does the attack change the motion?</b></p>"
    "<p>After an attack (Attack panel → <i>Run attack</i>), or with two clips of the same skeleton and length in "
    "the two views, this area compares the right clip with the left one:</p>"
    "<ul><li><b>heat map</b>: a deviation (bone-length change, joint displacement, velocity or acceleration "
    "difference) for every bone or joint and frame; click it to go to that frame;</li>"
    "<li><b>dynamics of one joint</b>: its velocity and acceleration difference over time (click a joint in a "
    "view or a bar to choose it);</li>"
    "<li><b>perturbation per joint</b>: the mean displacement of every joint in millimetres; hover a bar for "
    "its joint's name.</li></ul>"
    "<p>SMART keeps these small by penalising changes in bone length and in the motion's dynamics.</p>"
)


class InspectPanel(QtWidgets.QWidget):
    def __init__(self, ctx, parent=None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.session = ctx.session
        self.scene = ctx.session.scene
        self._colormap = ctx.session.settings.colormap
        self._last_marker = 0.0

        self.quantity_box = QtWidgets.QComboBox(self)
        self.quantity_box.setObjectName("heatmapQuantity")
        for key in ("bone_length", "bone_length_rel", "position", "velocity", "acceleration"):
            label, _per_bone, unit = HEATMAP_QUANTITIES[key]
            self.quantity_box.addItem(f"{label}{f' ({unit})' if unit else ''}", key)
        self.quantity_box.currentIndexChanged.connect(lambda _i: self.refresh())
        self.message = QtWidgets.QLabel(self)
        self.message.setObjectName("inspectMessage")
        self.intro = QtWidgets.QLabel(INTRO, self)
        self.intro.setObjectName("inspectIntro")
        self.intro.setWordWrap(True)
        self.intro.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.intro.setAlignment(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop)
        self.intro.setContentsMargins(8, 8, 8, 8)

        self.heatmap = _ClickablePlot(self)
        self.heatmap.setObjectName("heatmap")
        self.heatmap.setLabel("bottom", "frame")
        self.heat_image = pg.ImageItem(axisOrder="row-major")
        self.heatmap.addItem(self.heat_image)
        self.heatmap.getViewBox().invertY(True)
        self.heat_bar = pg.ColorBarItem(values=(0, 1), colorMap=self._pg_colormap(), width=12, interactive=False)
        self.heat_bar.setImageItem(self.heat_image, insert_in=self.heatmap.getPlotItem())
        self.heat_line = pg.InfiniteLine(angle=90, pen=pg.mkPen("#7bd88f", width=1.5))
        self.heatmap.addItem(self.heat_line)
        self.heatmap.clicked.connect(lambda x, _y: self._scrub(x))

        self.joint_plot = _ClickablePlot(self)
        self.joint_plot.setObjectName("jointPlot")
        self.joint_plot.setLabel("bottom", "frame")
        self.joint_plot.showGrid(x=True, y=True, alpha=0.2)
        self.joint_plot.addLegend(offset=(-4, 4), labelTextSize="8pt")
        self.vel_curve = self.joint_plot.plot(name="Δ velocity (m/s)", pen=pg.mkPen("#5aa9ff", width=1.5))
        self.acc_curve = self.joint_plot.plot(name="Δ acceleration (m/s², ÷10)", pen=pg.mkPen("#ff7a52", width=1.5))
        self.joint_line = pg.InfiniteLine(angle=90, pen=pg.mkPen("#7bd88f", width=1.5))
        self.joint_plot.addItem(self.joint_line)
        self.joint_plot.clicked.connect(lambda x, _y: self._scrub(x))

        self.bar_plot = _ClickablePlot(self)
        self.bar_plot.setObjectName("perturbationBars")
        self.bar_plot.setTitle("Perturbation per joint (mean displacement, mm)", size="9pt")
        self.bar_plot.showGrid(x=False, y=True, alpha=0.2)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.75, brush=pg.mkBrush("#ff7a52"))
        self.bar_plot.addItem(self.bars)
        self.bar_plot.clicked.connect(lambda x, _y: self._select_joint(x))
        # Every joint's name on hover (25 long names do not fit under the bars as tick labels).
        self.bar_label = pg.TextItem(anchor=(0.5, 1.0), color="#e6e6e6", fill=pg.mkBrush(30, 32, 36, 220))
        self.bar_label.setZValue(10)
        self.bar_label.hide()
        self.bar_plot.addItem(self.bar_label, ignoreBounds=True)
        self.bar_plot.scene().sigMouseMoved.connect(self._on_bar_hover)
        self._bar_heights: np.ndarray | None = None

        top = QtWidgets.QHBoxLayout()
        top.addWidget(QtWidgets.QLabel("Heat map of", self))
        top.addWidget(self.quantity_box)
        top.addWidget(self.message, 1)
        for plot in (self.heatmap, self.joint_plot, self.bar_plot):
            plot.setMinimumSize(220, 90)
        right = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical, self)
        right.addWidget(self.joint_plot)
        right.addWidget(self.bar_plot)
        split = self.plots = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal, self)
        split.addWidget(self.heatmap)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top)
        lay.addWidget(self.intro, 1)
        lay.addWidget(split, 1)
        lay.addStretch(0)

        # Deviations change up to several times a second during an attack: redraw at most 4 times a second,
        # and only while the panel is visible.
        self._refresh_timer = QtCore.QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(250)
        self._refresh_timer.timeout.connect(self.refresh)
        self.scene.deviations_changed.connect(self._schedule_refresh)
        self.scene.selection_changed.connect(lambda _j: self._refresh_joint())
        self.session.playback.frame_changed.connect(self._on_frame)
        self.session.playback.playing_changed.connect(lambda _p: self._on_frame(self.session.playback.frame))
        self.refresh()

    def _schedule_refresh(self) -> None:
        if self.isVisible():
            if not self._refresh_timer.isActive():
                self._refresh_timer.start()
        else:
            self._stale = True

    def showEvent(self, ev) -> None:  # noqa: N802
        super().showEvent(ev)
        if getattr(self, "_stale", False):
            self._stale = False
            self.refresh()

    def _pg_colormap(self):
        lut = (lookup_table(self._colormap) * 255).astype(np.uint8)
        return pg.ColorMap(np.linspace(0, 1, len(lut)), lut)

    def set_colormap(self, name: str) -> None:
        self._colormap = name
        self.heat_bar.setColorMap(self._pg_colormap())

    def current_quantity(self) -> str:
        return self.quantity_box.currentData()

    # -- refresh ------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        dev = self.scene.deviations
        self.plots.setVisible(dev is not None)
        self.intro.setVisible(dev is None)
        if dev is None:
            self.message.setText("")
            self._bar_heights = None
            self.bar_label.hide()
            self.heat_image.clear()
            self.bars.setOpts(x=[], height=[])
            self.vel_curve.setData([], [])
            self.acc_curve.setData([], [])
            return
        self.message.setText("")
        key = self.current_quantity()
        values = getattr(dev, key)  # (T, B) or (T, V)
        per_bone = HEATMAP_QUANTITIES[key][1]
        sk = self.scene.clip("B").skeleton
        names = [sk.joint_names[c] for c in sk.bone_children] if per_bone else list(sk.joint_names)
        image = values.T  # rows: bones/joints, columns: frames
        vmax = float(np.percentile(image, 99.5)) if image.size else 1.0
        vmax = vmax if vmax > 0 else 1.0
        self.heat_image.setImage(image, autoLevels=False)
        self.heat_image.setRect(QtCore.QRectF(-0.5, -0.5, image.shape[1], image.shape[0]))
        self.heat_bar.setLevels((0.0, vmax))
        axis = self.heatmap.getAxis("left")
        # Label as many rows as fit (about 13 px per label); every row has a tick.
        room = max(1, int(self.heatmap.getViewBox().height() // 13))
        step = max(1, int(np.ceil(len(names) / room)))
        axis.setTicks([[(i, n) for i, n in enumerate(names) if i % step == 0], [(i, "") for i in range(len(names))]])
        unit = HEATMAP_QUANTITIES[key][2]
        self.heatmap.setTitle(
            f"{HEATMAP_QUANTITIES[key][0]}{f' ({unit})' if unit else ''}, per {'bone' if per_bone else 'joint'} "
            "and frame — click to scrub",
            size="9pt",
        )
        self.heatmap.getViewBox().setLimits(xMin=-0.5, xMax=image.shape[1] - 0.5)
        self.heatmap.getViewBox().autoRange(padding=0)
        mm = dev.position.mean(axis=0) * 1000.0
        self.bars.setOpts(x=np.arange(len(mm)), height=mm, width=0.75)
        self._bar_heights = mm
        room = max(1, int(self.bar_plot.getViewBox().width() // 70))
        step = max(1, int(np.ceil(len(mm) / room)))
        self.bar_plot.getAxis("bottom").setTicks(
            [[(i, n) for i, n in enumerate(sk.joint_names) if i % step == 0], [(i, "") for i in range(len(mm))]]
        )
        self.bar_plot.setToolTip("Hover a bar for its joint; click it to select that joint")
        self._refresh_joint()
        self._on_frame(self.session.playback.frame)

    def joint_under(self, scene_pos) -> int | None:
        """The joint whose bar is under ``scene_pos`` (a point in the bar plot's scene), or None."""
        vb = self.bar_plot.getViewBox()
        if self._bar_heights is None or not vb.sceneBoundingRect().contains(scene_pos):
            return None
        j = int(round(vb.mapSceneToView(scene_pos).x()))
        return j if 0 <= j < len(self._bar_heights) else None

    def _on_bar_hover(self, scene_pos) -> None:
        j = self.joint_under(scene_pos)
        if j is None:
            self.bar_label.hide()
            return
        name = self.scene.clip("B").skeleton.joint_names[j]
        self.bar_label.setText(f"{name}\n{self._bar_heights[j]:.1f} mm")
        self.bar_label.setPos(j, float(self._bar_heights[j]))
        self.bar_label.show()

    def _refresh_joint(self) -> None:
        dev = self.scene.deviations
        if dev is None:
            return
        joint = self.scene.selected_joint
        sk = self.scene.clip("B").skeleton
        if joint is None:
            vel, acc = dev.velocity.mean(axis=1), dev.acceleration.mean(axis=1)
            what = "all joints (mean) — click a joint in a view or a bar to choose one"
        else:
            vel, acc = dev.velocity[:, joint], dev.acceleration[:, joint]
            what = sk.joint_names[joint]
        t = np.arange(len(vel))
        self.vel_curve.setData(t, vel)
        self.acc_curve.setData(t, acc / 10.0)
        self.joint_plot.setTitle(f"Dynamics deviation: {what}", size="9pt")
        brushes = [pg.mkBrush("#ff7a52")] * sk.num_joints
        if joint is not None and joint < len(brushes):
            brushes = list(brushes)
            brushes[joint] = pg.mkBrush("#7bd88f")
        self.bars.setOpts(brushes=brushes)

    def _on_frame(self, frame: int) -> None:
        # While playing, move the frame markers at most ~8 times a second: each move repaints two plots,
        # which would otherwise cost as much as the 3D views themselves.
        now = time.monotonic()
        if self.session.playback.playing and now - self._last_marker < 0.12:
            return
        self._last_marker = now
        f = self.scene.frame_for("B", frame)
        self.heat_line.setValue(f)
        self.joint_line.setValue(f)

    # -- clicks -------------------------------------------------------------------------------------------
    def _scrub(self, x: float) -> None:
        if self.scene.deviations is None:
            return
        self.session.playback.pause()
        self.session.playback.seek(int(round(x)))

    def _select_joint(self, x: float) -> None:
        clip = self.scene.clip("B")
        if clip is None:
            return
        j = int(round(x))
        if 0 <= j < clip.skeleton.num_joints:
            self.scene.select_joint(j)
