"""Defence panel: harden the loaded classifier (BEAT or a baseline) or load a defended checkpoint, and compare
the original and defended predictions on both shown clips."""

from __future__ import annotations

import logging

import numpy as np
from PySide6 import QtCore, QtWidgets

from engine import api
from engine.errors import SkelvizError
from skelviz.widgets.param_form import ParamForm

log = logging.getLogger(__name__)


class DefencePanel(QtWidgets.QWidget):
    def __init__(self, ctx, parent=None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.session = ctx.session
        self.task = None
        self._defended_probs: dict[str, np.ndarray | None] = {"A": None, "B": None}
        self._pending_predictions = 0

        self.method_box = QtWidgets.QComboBox(self)
        self.method_box.setObjectName("defenceMethod")
        self.preset_box = QtWidgets.QComboBox(self)
        self.preset_box.setObjectName("defencePreset")
        self.preset_box.setToolTip("Named parameter presets: default, published (the authors' code), runner-up …")
        self.form = ParamForm(self)
        self.data_box = QtWidgets.QComboBox(self)
        self.data_box.setToolTip("Training data for the defence")
        self.apply_button = QtWidgets.QPushButton("Apply to loaded classifier", self)
        self.apply_button.clicked.connect(self.apply)
        self.cancel_button = QtWidgets.QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QtWidgets.QProgressBar(self)
        self.progress.setValue(0)
        self.load_button = QtWidgets.QPushButton("Load defended checkpoint…", self)
        self.load_button.clicked.connect(ctx.load_defended_dialog)
        self.info = QtWidgets.QLabel("No defended classifier.", self)
        self.info.setObjectName("defenceInfo")
        self.info.setWordWrap(True)
        self.table = QtWidgets.QTableWidget(2, 2, self)
        self.table.setObjectName("defenceTable")
        self.table.setHorizontalHeaderLabels(["original model", "defended model"])
        self.table.setVerticalHeaderLabels(["left (A)", "right (B)"])
        self.table.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setMaximumHeight(110)

        make = QtWidgets.QGroupBox("Harden the loaded classifier", self)
        f = QtWidgets.QFormLayout(make)
        f.addRow("Defence", self.method_box)
        f.addRow("Preset", self.preset_box)
        f.addRow("Data", self.data_box)
        f.addRow(self.form)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.apply_button)
        row.addWidget(self.cancel_button)
        f.addRow(row)
        f.addRow(self.progress)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(make)
        lay.addWidget(self.load_button)
        lay.addWidget(self.info)
        lay.addWidget(QtWidgets.QLabel("<b>Predictions on the shown clips</b>", self))
        lay.addWidget(self.table)
        lay.addStretch(1)

        self.method_box.currentIndexChanged.connect(lambda _i: self._on_method())
        self.preset_box.currentIndexChanged.connect(lambda _i: self._on_preset())
        self.session.collections_changed.connect(self._refresh_data)
        self.session.defended_changed.connect(self._on_defended)
        self.session.scene.prediction_changed.connect(lambda _s: self.refresh_table())
        self.session.scene.clip_changed.connect(lambda _s: self.predict_defended())
        self.refresh_methods()
        self._refresh_data()
        self._on_defended(self.session.defended)

    # -- setup --------------------------------------------------------------------------------------------
    def refresh_methods(self) -> None:
        self.method_box.clear()
        for m in api.defence_methods():
            self.method_box.addItem(m)
        self._on_method()

    def _on_method(self) -> None:
        method = self.method_box.currentText()
        has = bool(method)
        self.apply_button.setEnabled(has and self.task is None)
        if not has:
            self.form.set_specs([])
            self.apply_button.setToolTip("No defences are available in this installation: load a defended checkpoint")
            return
        try:
            self.form.set_specs(api.defence_params(method))
            presets = api.defence_presets(method)
        except SkelvizError as exc:
            self.form.set_specs([])
            self.ctx.show_status(str(exc))
            return
        self.preset_box.blockSignals(True)
        self.preset_box.clear()
        for name in presets:
            self.preset_box.addItem(name)
        self.preset_box.blockSignals(False)

    def _on_preset(self) -> None:
        method, preset = self.method_box.currentText(), self.preset_box.currentText()
        if method and preset:
            for name, value in api.defence_preset_values(method, preset).items():
                if name in self.form.names():
                    self.form.set_value(name, value)

    def _refresh_data(self) -> None:
        self.data_box.clear()
        for i, coll in enumerate(self.session.collections):
            if len(coll) > 1:
                self.data_box.addItem(f"{coll.name} ({len(coll)} clips)", i)

    # -- running ------------------------------------------------------------------------------------------
    def apply(self) -> None:
        clf, method = self.session.classifier, self.method_box.currentText()
        if clf is None:
            self.ctx.report_error("Cannot defend", "Load a classifier first (Model panel).")
            return
        if self.data_box.currentData() is None:
            self.ctx.report_error("Cannot defend", "Open a dataset to train the defence on (Data panel).")
            return
        try:
            params = self.form.values()
        except ValueError as exc:
            self.ctx.report_error("Cannot defend", str(exc))
            return
        coll = self.session.collections[self.data_box.currentData()]
        self.apply_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 0)
        preset = self.preset_box.currentText() or None
        self.task = self.ctx.workers.start(api.apply_defence, method, clf, coll, params, name=f"defence {method}",
                                           preset=None if preset == "default" else preset)
        self.task.progress.connect(self._on_progress)
        self.task.succeeded.connect(lambda model: self.session.set_defended(model, f"{method} (trained here)"))
        self.task.failed.connect(lambda exc: self.ctx.report_error("Defence failed", str(exc)))
        self.task.cancelled.connect(lambda: self.ctx.show_status("defence cancelled"))
        self.task.finished.connect(self._on_finished)

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _on_progress(self, done: int, total: int, _batch) -> None:
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(done)

    def _on_finished(self) -> None:
        self.task = None
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.apply_button.setEnabled(bool(self.method_box.currentText()))
        self.cancel_button.setEnabled(False)

    # -- comparison ---------------------------------------------------------------------------------------
    def _on_defended(self, clf) -> None:
        if clf is None:
            self.info.setText("No defended classifier: apply a defence or load a defended checkpoint.")
        else:
            passes = getattr(clf, "forward_passes_per_prediction", 1)
            self.info.setText(
                f"Defended: <b>{getattr(clf, 'arch', type(clf).__name__)}</b> on {clf.skeleton.name}, "
                f"{passes} forward pass{'es' if passes != 1 else ''} per prediction<br>"
                f"<small>{self.session.defended_source}</small>"
            )
        self.predict_defended()

    def predict_defended(self) -> None:
        clf = self.session.defended
        self._defended_probs = {"A": None, "B": None}
        if clf is not None:
            for slot in "AB":
                clip = self.session.scene.clip(slot)
                if clip is None:
                    continue
                task = self.ctx.workers.start(api.predict, clf, clip, name="defended prediction")
                task.succeeded.connect(lambda p, s=slot: self._set_defended_probs(s, p))
                task.failed.connect(lambda exc: self.ctx.show_status(f"defended model: {exc}"))
        self.refresh_table()

    def _set_defended_probs(self, slot: str, probs) -> None:
        self._defended_probs[slot] = probs
        self.refresh_table()

    def _describe(self, probs, names) -> str:
        if probs is None:
            return "—"
        i = int(np.argmax(probs))
        return f"{names[i] if i < len(names) else i} ({probs[i]:.0%})"

    def refresh_table(self) -> None:
        scene = self.session.scene
        defended = self.session.defended
        for row, slot in enumerate("AB"):
            original = self._describe(scene.probs(slot), scene.class_names)
            names = defended.class_names if defended is not None else []
            protected = self._describe(self._defended_probs[slot], names)
            for col, text in enumerate((original, protected)):
                item = QtWidgets.QTableWidgetItem(text)
                item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
                self.table.setItem(row, col, item)

    def table_text(self) -> list[list[str]]:
        return [[self.table.item(r, c).text() for c in range(2)] for r in range(2)]
