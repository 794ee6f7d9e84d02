"""Defence panel: harden the loaded classifier (BEAT or a baseline) or load a defended checkpoint, compare the
original and defended predictions on both shown clips, and run the standard robustness suite
(:mod:`engine.defenses.standard_suite`) on both models in a worker: robust accuracy vs budget as a plot, the
perceptual cost of the adversaries beside it, the gradient-masking warnings, and the leaderboard saved on request."""

from __future__ import annotations

import logging

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from engine import api
from engine.defenses import standard_suite
from engine.errors import SkelvizError
from engine.params import specs
from skelviz.widgets.param_form import ParamForm

log = logging.getLogger(__name__)

_PEN_COLOURS = ["#5aa9ff", "#ff7a52", "#7bd88f", "#f5c542", "#c792ea", "#4dd0e1"]
# The suite's settings the panel offers: budgets and effort. The masking checks' thresholds stay at the suite's
# defaults (a standard is only comparable when nobody tunes them).
_SUITE_FIELDS = ("budgets", "norm", "hold_bones", "iterations", "n_target_classes", "square_queries", "eot_samples",
                 "seed")


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
        lay.addWidget(self._build_suite_box())
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

    def _build_suite_box(self) -> QtWidgets.QGroupBox:
        self.suite_task = None
        self.suite_entries: list[dict] = []
        self.suite_params = None  # the SuiteParams of the last finished run
        box = QtWidgets.QGroupBox("Standard robustness suite", self)
        box.setToolTip(standard_suite.__doc__.split("\n\n")[0])
        self.suite_preset = QtWidgets.QComboBox(box)
        self.suite_preset.setObjectName("suitePreset")
        for name in standard_suite.SuiteParams.PRESETS:
            self.suite_preset.addItem(name)
        self.suite_preset.setCurrentText("quick")
        self.suite_preset.setToolTip("standard: AutoAttack's published settings (100 iterations, 5000 black-box "
                                     "queries, 20 EOT draws); quick: fewer iterations and queries (upper bounds)")
        self.suite_form = ParamForm(box)
        self.suite_form.set_specs([s for s in specs(standard_suite.SuiteParams) if s.name in _SUITE_FIELDS])
        self.suite_windows = QtWidgets.QSpinBox(box)
        self.suite_windows.setObjectName("suiteWindows")
        self.suite_windows.setRange(1, 100000)
        self.suite_windows.setValue(24)
        self.suite_windows.setToolTip("labelled windows evaluated: a seeded sample of the chosen dataset's windows")
        self.suite_run_button = QtWidgets.QPushButton("Run standard suite", self)
        self.suite_run_button.setObjectName("suiteRun")
        self.suite_run_button.setToolTip("APGD-CE, APGD-T and a Square-style black box at every budget on the "
                                         "loaded classifier and, when there is one, the defended classifier")
        self.suite_run_button.clicked.connect(self.run_suite)
        self.suite_cancel_button = QtWidgets.QPushButton("Cancel", self)
        self.suite_cancel_button.setEnabled(False)
        self.suite_cancel_button.clicked.connect(self.cancel_suite)
        self.suite_save_button = QtWidgets.QPushButton("Save report…", self)
        self.suite_save_button.setEnabled(False)
        self.suite_save_button.setToolTip("leaderboard.json, leaderboard.md and robust_accuracy.png in a folder")
        self.suite_save_button.clicked.connect(self._save_suite_dialog)
        self.suite_progress = QtWidgets.QProgressBar(box)
        self.suite_progress.setValue(0)
        self.suite_status = QtWidgets.QLabel("", box)
        self.suite_status.setObjectName("suiteStatus")
        self.suite_status.setWordWrap(True)
        self.suite_plot = pg.PlotWidget()
        self.suite_plot.setObjectName("suitePlot")
        self.suite_plot.setMinimumHeight(190)
        self.suite_plot.setTitle("robust accuracy vs budget (per-window worst case)", size="9pt")
        self.suite_plot.setLabel("bottom", "budget: per-joint displacement (cm)")
        self.suite_plot.setLabel("left", "robust accuracy (%)")
        self.suite_plot.setYRange(0, 100)
        self.suite_plot.showGrid(x=True, y=True, alpha=0.2)
        self.suite_plot.addLegend(offset=(-4, 4), labelTextSize="8pt")
        self.suite_curves: dict[str, pg.PlotDataItem] = {}
        self.suite_table = QtWidgets.QTableWidget(0, 0, box)
        self.suite_table.setObjectName("suiteTable")
        self.suite_table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.suite_table.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self.suite_table.setMaximumHeight(110)
        self.suite_warnings = QtWidgets.QLabel("", box)
        self.suite_warnings.setObjectName("suiteWarnings")
        self.suite_warnings.setWordWrap(True)
        self.suite_warnings.setTextFormat(QtCore.Qt.TextFormat.RichText)

        f = QtWidgets.QFormLayout(box)
        f.addRow("Preset", self.suite_preset)
        f.addRow("Windows", self.suite_windows)
        f.addRow(self.suite_form)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.suite_run_button)
        row.addWidget(self.suite_cancel_button)
        row.addWidget(self.suite_save_button)
        f.addRow(row)
        f.addRow(self.suite_progress)
        f.addRow(self.suite_status)
        f.addRow(self.suite_plot)
        f.addRow(self.suite_table)
        f.addRow(self.suite_warnings)
        self.suite_preset.currentIndexChanged.connect(lambda _i: self._on_suite_preset())
        self._on_suite_preset()
        return box

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

    # -- standard suite -----------------------------------------------------------------------------------
    def _on_suite_preset(self) -> None:
        values = standard_suite.suite_params(self.suite_preset.currentText())
        for name in self.suite_form.names():
            self.suite_form.set_value(name, getattr(values, name))

    def suite_models(self) -> dict:
        """What the suite evaluates: the loaded classifier and, when there is one, the defended classifier."""
        models = {}
        if self.session.classifier is not None:
            models["original"] = self.session.classifier
        if self.session.defended is not None:
            method = (dict(getattr(self.session.defended, "meta", {}) or {}).get("defence") or {}).get("method")
            models[f"defended ({method})" if method else "defended"] = self.session.defended
        return models

    def run_suite(self) -> None:
        models = self.suite_models()
        if not models:
            self.ctx.report_error("Cannot run the suite", "Load a classifier first (Model panel).")
            return
        if self.data_box.currentData() is None:
            self.ctx.report_error("Cannot run the suite", "Open a labelled dataset to evaluate on (Data panel).")
            return
        try:
            params = standard_suite.suite_params(self.suite_preset.currentText(), **self.suite_form.values())
        except (ValueError, SkelvizError) as exc:
            self.ctx.report_error("Cannot run the suite", str(exc))
            return
        coll = self.session.collections[self.data_box.currentData()]
        self.suite_run_button.setEnabled(False)
        self.suite_cancel_button.setEnabled(True)
        self.suite_save_button.setEnabled(False)
        self.suite_progress.setRange(0, 0)
        self.suite_status.setText(f"running the suite on {', '.join(models)} …")
        self.suite_task = self.ctx.workers.start(standard_suite.evaluate_models, models, coll, params,
                                                 limit=self.suite_windows.value(), name="standard suite")
        self.suite_task.progress.connect(self._on_suite_progress)
        self.suite_task.succeeded.connect(lambda entries: self.show_suite(entries, params))
        self.suite_task.failed.connect(self._on_suite_failed)
        self.suite_task.cancelled.connect(lambda: self.suite_status.setText("suite cancelled"))
        self.suite_task.finished.connect(self._on_suite_finished)

    def cancel_suite(self) -> None:
        if self.suite_task is not None:
            self.suite_task.cancel()

    def _on_suite_progress(self, done: int, total: int, infos) -> None:
        if total:
            self.suite_progress.setRange(0, total)
            self.suite_progress.setValue(done)
        if infos:
            last = infos[-1]
            self.suite_status.setText(f"{last.get('model', '')}: {last.get('attack', '')} at "
                                      f"{last.get('eps', 0) * 100:g} cm")

    def _on_suite_failed(self, exc) -> None:
        self.suite_status.setText(f"suite failed: {exc}")
        self.ctx.report_error("Standard suite failed", str(exc))

    def _on_suite_finished(self) -> None:
        self.suite_task = None
        self.suite_progress.setRange(0, 1)
        self.suite_progress.setValue(0)
        self.suite_run_button.setEnabled(True)
        self.suite_cancel_button.setEnabled(False)
        self.suite_save_button.setEnabled(bool(self.suite_entries))

    def show_suite(self, entries: list[dict], params) -> None:
        """Plot robust accuracy vs budget, fill the table and list the gradient-masking warnings."""
        self.suite_entries, self.suite_params = list(entries), params
        self.suite_plot.clear()
        legend = self.suite_plot.plotItem.legend
        if legend is not None:
            legend.clear()
        self.suite_curves = {}
        for i, e in enumerate(entries):
            x = [0.0] + [b["eps"] * 100 for b in e["budgets"]]
            y = [e["clean_accuracy"] * 100] + [b["robust_accuracy"] * 100 for b in e["budgets"]]
            colour = _PEN_COLOURS[i % len(_PEN_COLOURS)]
            label = e["model"] + (" ⚠ masking?" if e["warnings"] else "")
            self.suite_curves[e["model"]] = self.suite_plot.plot(
                x, y, name=label, pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=7,
                symbolBrush=pg.mkBrush(colour))
        self.suite_plot.setYRange(-3, 105, padding=0)
        budgets = [b["eps"] for b in entries[0]["budgets"]] if entries else []
        head = ["clean"] + [f"{b * 100:g} cm" for b in budgets] + ["bone-length Δ", "accel. Δ (m/s²)", "warnings"]
        self.suite_table.clear()
        self.suite_table.setColumnCount(len(head))
        self.suite_table.setRowCount(len(entries))
        self.suite_table.setHorizontalHeaderLabels(head)
        self.suite_table.setVerticalHeaderLabels([e["model"] for e in entries])
        for r, e in enumerate(entries):
            cost = e["budgets"][-1]["perceptual"]
            bone, acc = cost.get("mean_bone_length_rel_dev"), cost.get("mean_accel_dev")
            cells = [f"{e['clean_accuracy']:.0%}"] + [f"{b['robust_accuracy']:.0%}" for b in e["budgets"]]
            cells += ["—" if bone is None else f"{bone:.2%}", "—" if acc is None else f"{acc:.2f}",
                      str(len({w['check'] for w in e['warnings']}))]
            for c, text in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(text)
                item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
                self.suite_table.setItem(r, c, item)
        lines = [f"<b>{e['model']}</b> ({w['check']}): {w['message']}" for e in entries for w in e["warnings"]]
        self.suite_warnings.setText(
            ("<b style='color:#f5c542'>Gradient-masking warnings</b><br>" + "<br>".join(lines)) if lines else
            "No gradient-masking warnings.")
        n = entries[0]["n"] if entries else 0
        self.suite_status.setText(f"suite {standard_suite.SUITE_VERSION}: {n} windows, seed "
                                  f"{entries[0]['params']['seed'] if entries else '—'}; robust accuracy at the "
                                  f"largest budget: " + ", ".join(
                                      f"{e['model']} {e['budgets'][-1]['robust_accuracy']:.0%}" for e in entries))
        self.suite_save_button.setEnabled(bool(entries) and self.suite_task is None)

    def suite_plot_data(self) -> dict[str, tuple[list[float], list[float]]]:
        """The plotted curves: model → (budgets in cm with 0 for clean, robust accuracy in %)."""
        out = {}
        for name, curve in self.suite_curves.items():
            x, y = curve.getData()
            out[name] = ([float(v) for v in x], [float(v) for v in y])
        return out

    def save_suite_report(self, folder: str) -> dict:
        """Write the last suite's leaderboard (JSON, Markdown, PNG) to ``folder``."""
        paths = standard_suite.write_reports(self.suite_entries, self.suite_params, folder)
        self.ctx.show_status(f"wrote {paths['markdown']}")
        return paths

    def _save_suite_dialog(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Folder for the suite's report")
        if folder:
            try:
                self.save_suite_report(folder)
            except (OSError, SkelvizError) as exc:
                self.ctx.report_error("Cannot save the report", str(exc))

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
