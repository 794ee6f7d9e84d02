"""Model panel: load a classifier, choose its device, compare class probabilities of the two shown clips."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from engine import api
from engine.devices import model_device
from skelviz.render.colors import SLOT_COLOURS, swatch


def _brush(slot: str, alpha: float = 0.85):
    r, g, b, _ = SLOT_COLOURS[slot]
    return pg.mkBrush(int(r * 255), int(g * 255), int(b * 255), int(alpha * 255))


class ProbabilityChart(pg.PlotWidget):
    """Horizontal bars: one row per class, one bar for each view's clip."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(160)
        self.setMenuEnabled(False)
        self.setMouseEnabled(False, False)
        self.hideButtons()
        self.showGrid(x=True, y=False, alpha=0.2)
        self.setLabel("bottom", "probability")
        self.getPlotItem().setXRange(0, 1, padding=0.02)
        self.getViewBox().invertY(True)
        self._bars = {s: pg.BarGraphItem(x0=[], y=[], height=0.38, width=[], brush=_brush(s)) for s in "AB"}
        for bar in self._bars.values():
            self.addItem(bar)
        self._names: list[str] = []
        self.values: dict[str, np.ndarray | None] = {"A": None, "B": None}

    def set_classes(self, names: list[str]) -> None:
        self._names = list(names)
        ticks = [(i, n) for i, n in enumerate(self._names)]
        self.getAxis("left").setTicks([ticks])
        self.getPlotItem().setYRange(-0.6, max(len(names), 1) - 0.4, padding=0)
        for s in "AB":
            self.set_probs(s, None)

    def set_probs(self, slot: str, probs: np.ndarray | None) -> None:
        self.values[slot] = probs
        bar = self._bars[slot]
        if probs is None or len(probs) != len(self._names):
            bar.setOpts(x0=[], y=[], width=[], height=0.38)
            return
        offset = -0.2 if slot == "A" else 0.2
        y = np.arange(len(probs)) + offset
        bar.setOpts(x0=np.zeros(len(probs)), y=y, width=np.asarray(probs), height=0.38)


#: (demo, architecture, menu title) of the demo checkpoints offered (engine.assets.DEMOS).
DEMO_MODELS = (
    ("cmu", "stgcn", "ST-GCN (CMU demo)"),
    ("cmu", "ctrgcn", "CTR-GCN (CMU demo)"),
    ("cmu", "mlp", "MLP (CMU demo)"),
    ("synthetic", "stgcn", "ST-GCN (synthetic demo)"),
    ("synthetic", "ctrgcn", "CTR-GCN (synthetic demo)"),
)


class ModelPanel(QtWidgets.QWidget):
    def __init__(self, ctx, parent=None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.session = ctx.session

        self.load_button = QtWidgets.QPushButton("Load checkpoint…", self)
        self.load_button.clicked.connect(ctx.load_checkpoint_dialog)
        self.demo_box = QtWidgets.QComboBox(self)
        self.demo_box.setToolTip("Demo classifiers: trained on the CMU demo (real motion) or on the synthetic demo")
        self.demo_box.addItem("Demo model…", None)
        for demo, arch, title in DEMO_MODELS:
            self.demo_box.addItem(title, (demo, arch))
        self.demo_box.activated.connect(self._on_demo)
        self.device_box = QtWidgets.QComboBox(self)
        self.device_box.setObjectName("deviceBox")
        for d in api.available_devices():
            self.device_box.addItem(d, d)
        i = self.device_box.findData(self.session.settings.device)
        self.device_box.setCurrentIndex(max(i, 0))
        self.device_box.activated.connect(lambda _i: ctx.set_device(self.device_box.currentData()))
        self.info = QtWidgets.QLabel("No classifier loaded.", self)
        self.info.setObjectName("modelInfo")
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.chart = ProbabilityChart(self)
        self.legend = QtWidgets.QLabel(self)
        self.legend.setTextFormat(QtCore.Qt.TextFormat.RichText)

        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.load_button)
        row.addWidget(self.demo_box)
        dev = QtWidgets.QHBoxLayout()
        dev.addWidget(QtWidgets.QLabel("Device", self))
        dev.addWidget(self.device_box, 1)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addLayout(row)
        lay.addLayout(dev)
        lay.addWidget(self.info)
        lay.addWidget(QtWidgets.QLabel("<b>Class probabilities</b>", self))
        lay.addWidget(self.legend)
        lay.addWidget(self.chart, 1)

        self.session.classifier_changed.connect(self._on_classifier)
        self.session.scene.prediction_changed.connect(self._on_prediction)
        self.session.scene.clip_changed.connect(lambda _s: self._update_legend())
        self._on_classifier(self.session.classifier)

    def _on_demo(self, index: int) -> None:
        choice = self.demo_box.itemData(index)
        self.demo_box.setCurrentIndex(0)
        if choice:
            demo, arch = choice
            self.ctx.load_demo_classifier(arch, demo=demo)

    def _on_classifier(self, clf) -> None:
        if clf is None:
            self.info.setText("No classifier loaded: load a checkpoint to see predictions and run attacks.")
            self.chart.set_classes([])
            return
        pre = getattr(clf, "preprocessing", None)
        pre_text = ", ".join(f"{k} {v}" for k, v in pre.to_dict().items()) if pre is not None else ""
        device = model_device(clf)
        self.info.setText(
            f"<b>{getattr(clf, 'arch', type(clf).__name__)}</b> on <b>{clf.skeleton.name}</b>, "
            f"{len(clf.class_names)} classes, device {device}<br>"
            f"<small>{pre_text}</small><br><small>{self.session.classifier_source}</small>"
        )
        self.info.setToolTip(", ".join(clf.class_names))
        self.chart.set_classes(clf.class_names)
        for s in "AB":
            self._on_prediction(s)

    def _on_prediction(self, slot: str) -> None:
        self.chart.set_probs(slot, self.session.scene.probs(slot))
        self._update_legend()

    def _update_legend(self) -> None:
        scene = self.session.scene
        parts = []
        for s in "AB":
            pred = scene.prediction(s)
            clip = scene.clip(s)
            what = "—" if clip is None else (f"{pred[0]} ({pred[1]:.0%})" if pred else "no prediction")
            parts.append(f"{swatch(s)} {s}: {what}")
        self.legend.setText(" &nbsp; ".join(parts))
