"""Export panel: a clip to HDF5/BVH/npz, the views to MP4/GIF (rendered offscreen at a chosen size), PNG."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from engine import api
from engine.errors import SkelvizError
from skelviz.render.capture import VideoExportJob, compose, save_png

log = logging.getLogger(__name__)

RESOLUTIONS = [(1280, 720), (1920, 1080), (960, 540), (640, 360), (800, 800)]


class ExportPanel(QtWidgets.QWidget):
    videoFinished = QtCore.Signal(str)

    def __init__(self, ctx, views, parent=None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.session = ctx.session
        self.views = views
        self.job: VideoExportJob | None = None
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._export_step)

        # clip
        self.slot_box = QtWidgets.QComboBox(self)
        self.slot_box.addItem("right view (B, adversarial)", "B")
        self.slot_box.addItem("left view (A, original)", "A")
        self.clip_format = QtWidgets.QComboBox(self)
        for suffix, text in api.export_formats().items():
            self.clip_format.addItem(f"{text} ({suffix})", suffix)
        self.save_clip_button = QtWidgets.QPushButton("Save clip…", self)
        self.save_clip_button.clicked.connect(self._save_clip_dialog)
        clip_box = QtWidgets.QGroupBox("Motion clip", self)
        f = QtWidgets.QFormLayout(clip_box)
        f.addRow("Clip", self.slot_box)
        f.addRow("Format", self.clip_format)
        f.addRow(self.save_clip_button)

        # video / image
        self.width_box = QtWidgets.QSpinBox(self)
        self.width_box.setRange(64, 7680)
        self.width_box.setSingleStep(2)
        self.height_box = QtWidgets.QSpinBox(self)
        self.height_box.setRange(64, 4320)
        self.height_box.setSingleStep(2)
        self.width_box.setValue(1280)
        self.height_box.setValue(720)
        self.preset_box = QtWidgets.QComboBox(self)
        self.preset_box.addItem("Preset size…", None)
        for w, h in RESOLUTIONS:
            self.preset_box.addItem(f"{w}×{h}", (w, h))
        self.preset_box.activated.connect(self._on_preset)
        self.fps_box = QtWidgets.QDoubleSpinBox(self)
        self.fps_box.setRange(1, 240)
        self.fps_box.setDecimals(1)
        self.fps_box.setSpecialValueText("clip rate")
        self.fps_box.setValue(1)
        self.fps_box.setToolTip("Frames per second of the video (lowest value = the clip's own rate)")
        self.video_format = QtWidgets.QComboBox(self)
        self.video_format.addItem("MP4 (H.264)", ".mp4")
        self.video_format.addItem("GIF", ".gif")
        self.video_button = QtWidgets.QPushButton("Export video…", self)
        self.video_button.clicked.connect(self._video_dialog)
        self.video_cancel = QtWidgets.QPushButton("Cancel", self)
        self.video_cancel.setEnabled(False)
        self.video_cancel.clicked.connect(self.cancel_video)
        self.png_button = QtWidgets.QPushButton("Save PNG of this frame…", self)
        self.png_button.clicked.connect(self._png_dialog)
        self.progress = QtWidgets.QProgressBar(self)
        self.progress.setFormat("%v / %m frames")
        self.progress.setValue(0)
        size_row = QtWidgets.QHBoxLayout()
        size_row.addWidget(self.width_box)
        size_row.addWidget(QtWidgets.QLabel("×", self))
        size_row.addWidget(self.height_box)
        size_row.addWidget(self.preset_box)
        video_box = QtWidgets.QGroupBox("Views (rendered offscreen at this size)", self)
        g = QtWidgets.QFormLayout(video_box)
        g.addRow("Size", size_row)
        g.addRow("Frame rate", self.fps_box)
        g.addRow("Format", self.video_format)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.video_button)
        buttons.addWidget(self.video_cancel)
        g.addRow(buttons)
        g.addRow(self.progress)
        g.addRow(self.png_button)
        self.result = QtWidgets.QLabel(self)
        self.result.setWordWrap(True)
        self.result.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)

        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(clip_box)
        lay.addWidget(video_box)
        lay.addWidget(self.result)
        lay.addStretch(1)

    # -- dialogs ------------------------------------------------------------------------------------------
    def _ask_path(self, title: str, suffix: str, stem: str) -> str:
        start = str(Path(self.session.settings.last_dir or Path.home()) / f"{stem}{suffix}")
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, title, start, f"*{suffix}")
        if path:
            if not path.lower().endswith(suffix):
                path += suffix
            self.session.settings.last_dir = str(Path(path).parent)
        return path

    def _on_preset(self, i: int) -> None:
        size = self.preset_box.itemData(i)
        self.preset_box.setCurrentIndex(0)
        if size:
            self.width_box.setValue(size[0])
            self.height_box.setValue(size[1])

    def _save_clip_dialog(self) -> None:
        clip = self.session.scene.clip(self.slot_box.currentData())
        if clip is None:
            self.ctx.report_error("Nothing to save", "That view shows no clip.")
            return
        suffix = self.clip_format.currentData()
        path = self._ask_path("Save clip", suffix, clip.title.replace(" ", "_").replace("(", "").replace(")", ""))
        if path:
            self.save_clip(path)

    def _video_dialog(self) -> None:
        path = self._ask_path("Export video", self.video_format.currentData(), "skelviz")
        if path:
            self.export_video(path)

    def _png_dialog(self) -> None:
        path = self._ask_path("Save image", ".png", "skelviz")
        if path:
            self.save_png(path)

    # -- actions (also called directly by tests and scripts) ---------------------------------------------
    def save_clip(self, path: str | Path, slot: str | None = None) -> Path | None:
        clip = self.session.scene.clip(slot or self.slot_box.currentData())
        if clip is None:
            self.ctx.report_error("Nothing to save", "That view shows no clip.")
            return None
        try:
            out = api.export_clip(clip, path)
        except (SkelvizError, ImportError, OSError) as exc:
            self.ctx.report_error("Cannot save the clip", str(exc))
            return None
        self.result.setText(f"Saved {out}")
        self.ctx.show_status(f"saved {out}")
        return out

    def render_frame(self, frame: int, width: int, height: int):
        """The visible views at ``frame`` rendered offscreen, side by side, as an (H, W, 3) RGB array."""
        self.session.playback.seek(frame)
        return compose(self.views.visible_views(), self.views.titles(), width, height)

    def save_png(self, path: str | Path) -> Path | None:
        try:
            rgb = self.render_frame(self.session.playback.frame, self.width_box.value(), self.height_box.value())
            out = save_png(rgb, path)
        except (SkelvizError, OSError) as exc:
            self.ctx.report_error("Cannot save the image", str(exc))
            return None
        self.result.setText(f"Saved {out}")
        return out

    def export_video(self, path: str | Path, frames: list[int] | None = None) -> bool:
        """Start writing a video; frames are rendered a few per event-loop turn (the UI stays live)."""
        if self.job is not None:
            return False
        pb = self.session.playback
        frames = list(range(pb.num_frames)) if frames is None else list(frames)
        fps = pb.fps if self.fps_box.value() <= self.fps_box.minimum() else self.fps_box.value()
        w, h = self.width_box.value(), self.height_box.value()
        self._resume_playing = pb.playing
        pb.pause()
        self._start_frame = pb.frame
        job = VideoExportJob(lambda i: self.render_frame(i, w, h), frames, path, fps, w, h)
        try:
            job.start()
        except SkelvizError as exc:
            self.ctx.report_error("Cannot export the video", str(exc))
            return False
        self.job = job
        self.progress.setRange(0, len(frames))
        self.progress.setValue(0)
        self.video_button.setEnabled(False)
        self.video_cancel.setEnabled(True)
        self._timer.start()
        return True

    def _export_step(self) -> None:
        job = self.job
        if job is None:
            self._timer.stop()
            return
        try:
            job.step()
        except (SkelvizError, OSError, RuntimeError) as exc:
            job.cancel()
            self._end_video()
            self.ctx.report_error("Video export failed", str(exc))
            return
        self.progress.setValue(job.written)
        if job.done:
            self._end_video()
            self.result.setText(f"Saved {job.path} ({job.written} frames, {job.width}×{job.height})")
            self.ctx.show_status(f"saved {job.path}")
            self.videoFinished.emit(str(job.path))

    def cancel_video(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self._end_video()
            self.result.setText("Video export cancelled")

    def _end_video(self) -> None:
        self._timer.stop()
        self.job = None
        self.video_button.setEnabled(True)
        self.video_cancel.setEnabled(False)
        self.session.playback.seek(self._start_frame)
        if self._resume_playing:
            self.session.playback.play()
