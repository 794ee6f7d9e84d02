"""A horizontal colour bar: what a bone's colour means (quantity, unit, range)."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from skelviz.render.colors import lookup_table


def format_value(v: float, unit: str) -> str:
    if unit == "m" and abs(v) < 1.0:
        return f"{v * 1000:.3g} mm"
    if unit == "":
        return f"{v:.2%}"
    return f"{v:.3g} {unit}"


class ColourLegend(QtWidgets.QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._cmap = "plasma"
        self._title = ""
        self._unit = ""
        self._range = (0.0, 1.0)
        self._active = False
        self.setMinimumHeight(38)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)

    def set_state(self, active: bool, title: str = "", unit: str = "", vrange=(0.0, 1.0), cmap: str = "") -> None:
        self._active, self._title, self._unit = bool(active), title, unit
        self._range = (float(vrange[0]), float(vrange[1]))
        if cmap:
            self._cmap = cmap
        self.update()

    def text(self) -> str:
        """What the legend says (also used by tests)."""
        if not self._active:
            return self._title
        lo, hi = self._range
        return f"{self._title}: {format_value(lo, self._unit)} … {format_value(hi, self._unit)}"

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802
        return QtCore.QSize(400, 38)

    def paintEvent(self, ev) -> None:  # noqa: N802
        p = QtGui.QPainter(self)
        try:
            p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
            pal = self.palette()
            p.setPen(pal.color(QtGui.QPalette.ColorRole.WindowText))
            fm = p.fontMetrics()
            if not self._active:
                p.drawText(self.rect().adjusted(8, 0, -8, 0), int(QtCore.Qt.AlignmentFlag.AlignVCenter), self._title)
                return
            label = self._title
            label_w = fm.horizontalAdvance(label) + 16
            lo_text = format_value(self._range[0], self._unit)
            hi_text = format_value(self._range[1], self._unit)
            lo_w, hi_w = fm.horizontalAdvance(lo_text) + 8, fm.horizontalAdvance(hi_text) + 8
            p.drawText(QtCore.QRect(8, 0, label_w, self.height()), int(QtCore.Qt.AlignmentFlag.AlignVCenter), label)
            bar = QtCore.QRect(8 + label_w + lo_w, 10, max(40, self.width() - label_w - lo_w - hi_w - 24), 16)
            lut = (lookup_table(self._cmap, 64) * 255).astype(np.uint8)
            grad = QtGui.QLinearGradient(bar.left(), 0, bar.right(), 0)
            for i, c in enumerate(lut):
                grad.setColorAt(i / (len(lut) - 1), QtGui.QColor(int(c[0]), int(c[1]), int(c[2])))
            p.fillRect(bar, grad)
            p.drawRect(bar)
            right = int(QtCore.Qt.AlignmentFlag.AlignVCenter | QtCore.Qt.AlignmentFlag.AlignRight)
            p.drawText(QtCore.QRect(bar.left() - lo_w, 0, lo_w - 4, self.height()), right, lo_text)
            p.drawText(
                QtCore.QRect(bar.right() + 6, 0, hi_w, self.height()),
                int(QtCore.Qt.AlignmentFlag.AlignVCenter),
                hi_text,
            )
        finally:
            p.end()
