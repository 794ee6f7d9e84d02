"""Offscreen rendering: a view drawn into its own framebuffer at any size, composed side by side, and
written as PNG, MP4 or GIF. Nothing here grabs the screen, so the output size is independent of the window.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from OpenGL import GL
from PySide6 import QtCore, QtGui
from PySide6.QtOpenGL import QOpenGLFramebufferObject, QOpenGLFramebufferObjectFormat

from engine.errors import SkelvizError
from skelviz.render.colors import BACKGROUND

log = logging.getLogger(__name__)

TITLE_HEIGHT_FRACTION = 0.06
VIDEO_SUFFIXES = (".mp4", ".gif")


class ExportError(SkelvizError):
    """An image or video could not be written."""


def render_view(view, width: int, height: int, samples: int = 4) -> np.ndarray:
    """Draw ``view`` (a GLViewWidget) offscreen at ``width``×``height``; returns (H, W, 3) uint8 RGB."""
    width, height = int(width), int(height)
    if width < 2 or height < 2:
        raise ExportError(f"image size {width}×{height} is too small")
    view.makeCurrent()
    fmt = QOpenGLFramebufferObjectFormat()
    fmt.setAttachment(QOpenGLFramebufferObject.Attachment.CombinedDepthStencil)
    fmt.setSamples(samples)
    fbo = QOpenGLFramebufferObject(width, height, fmt)
    if not fbo.isValid():
        view.doneCurrent()
        raise ExportError(f"cannot create a {width}×{height} offscreen framebuffer")
    # Lines are sized in pixels: thicken them for large renders so the picture looks like the view.
    scale = max(1.0, height / max(view.height(), 1))
    widths = []
    for item in view.items:
        if hasattr(item, "width") and isinstance(getattr(item, "width", None), (int, float)):
            widths.append((item, item.width))
            item.width = item.width * scale
    try:
        fbo.bind()
        GL.glViewport(0, 0, width, height)
        view.paint(region=(0, 0, width, height), viewport=(0, 0, width, height))
        GL.glFinish()
        image = fbo.toImage().convertToFormat(QtGui.QImage.Format.Format_RGB888)
    finally:
        for item, w in widths:
            item.width = w
        fbo.release()
        view.doneCurrent()
    return qimage_to_array(image)


def qimage_to_array(image: QtGui.QImage) -> np.ndarray:
    image = image.convertToFormat(QtGui.QImage.Format.Format_RGB888)
    w, h = image.width(), image.height()
    buf = np.frombuffer(image.constBits(), np.uint8, count=image.sizeInBytes())
    return buf.reshape(h, image.bytesPerLine())[:, : w * 3].reshape(h, w, 3).copy()


def array_to_qimage(rgb: np.ndarray) -> QtGui.QImage:
    rgb = np.ascontiguousarray(rgb, np.uint8)
    h, w, _ = rgb.shape
    return QtGui.QImage(rgb.data, w, h, 3 * w, QtGui.QImage.Format.Format_RGB888).copy()


def compose(views: Sequence, titles: Sequence[str], width: int, height: int) -> np.ndarray:
    """The views rendered side by side into one ``width``×``height`` RGB image, each under its title."""
    n = len(views)
    if n == 0:
        raise ExportError("nothing to render")
    title_h = max(14, int(round(height * TITLE_HEIGHT_FRACTION))) if any(titles) else 0
    canvas = QtGui.QImage(width, height, QtGui.QImage.Format.Format_RGB888)
    canvas.fill(QtGui.QColor(*BACKGROUND))
    painter = QtGui.QPainter(canvas)
    try:
        edges = np.linspace(0, width, n + 1).round().astype(int)
        for i, view in enumerate(views):
            x0, x1 = int(edges[i]), int(edges[i + 1])
            img = render_view(view, x1 - x0, height - title_h)
            painter.drawImage(x0, title_h, array_to_qimage(img))
            if title_h and titles[i]:
                font = painter.font()
                font.setPixelSize(max(9, int(title_h * 0.55)))
                painter.setFont(font)
                painter.setPen(QtGui.QColor(230, 230, 230))
                painter.drawText(
                    QtCore.QRect(x0 + 6, 0, x1 - x0 - 12, title_h),
                    int(QtCore.Qt.AlignmentFlag.AlignVCenter | QtCore.Qt.AlignmentFlag.AlignLeft),
                    titles[i],
                )
            if i:
                painter.setPen(QtGui.QColor(70, 70, 70))
                painter.drawLine(x0, 0, x0, height)
    finally:
        painter.end()
    return qimage_to_array(canvas)


def save_png(rgb: np.ndarray, path: str | Path) -> Path:
    path = Path(path)
    if not array_to_qimage(rgb).save(str(path), "PNG"):
        raise ExportError(f"cannot write {path}: check that the folder exists and is writable")
    return path


def open_video_writer(path: str | Path, fps: float, width: int, height: int):
    """An imageio writer for ``path`` (.mp4 via ffmpeg/H.264, or .gif) that keeps the exact frame size."""
    import imageio.v2 as imageio

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ExportError(f"cannot write {path.name}: choose .mp4 or .gif")
    if suffix == ".mp4" and (width % 2 or height % 2):
        raise ExportError(f"MP4 (H.264) needs an even width and height, got {width}×{height}")
    try:
        if suffix == ".mp4":
            return imageio.get_writer(
                str(path),
                format="FFMPEG",
                mode="I",
                fps=fps,
                codec="libx264",
                pixelformat="yuv420p",
                macro_block_size=1,
                quality=8,
                ffmpeg_log_level="error",
            )
        return imageio.get_writer(str(path), format="GIF", mode="I", duration=1000.0 / fps, loop=0)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ExportError(f"cannot write {path}: {exc}") from None


class VideoExportJob:
    """Video export one frame at a time: :meth:`step` renders and writes the next frame, so the UI can run
    its event loop between frames (the export panel drives it from a zero-interval timer)."""

    def __init__(self, render_frame, frames, path, fps, width, height) -> None:
        self.render_frame = render_frame
        self.frames = list(frames)
        self.path = Path(path)
        self.fps, self.width, self.height = float(fps), int(width), int(height)
        self.written = 0
        self._writer = None
        self.done = False

    def start(self) -> None:
        if not self.frames:
            raise ExportError("no frames to export")
        self._writer = open_video_writer(self.path, self.fps, self.width, self.height)

    def step(self) -> None:
        if self.done:
            return
        rgb = self.render_frame(self.frames[self.written])
        if rgb.shape[:2] != (self.height, self.width):
            raise ExportError(f"rendered {rgb.shape[1]}×{rgb.shape[0]}, expected {self.width}×{self.height}")
        self._writer.append_data(rgb)
        self.written += 1
        if self.written == len(self.frames):
            self._writer.close()
            self.done = True

    def cancel(self) -> None:
        if self._writer is not None and not self.done:
            self._writer.close()
            self.path.unlink(missing_ok=True)
        self.done = True
