"""Attack panel: choose an attack, its strategy and parameters; run it off the UI thread with live plots."""

from __future__ import annotations

import logging
import time

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from engine import api
from engine.errors import SkelvizError
from skelviz.widgets.param_form import ParamForm

log = logging.getLogger(__name__)

STRATEGY_TEXT = {
    "ab": "AB — anything but the true class",
    "abn": "ABN — true class out of the top N",
    "sa": "SA — a specified target class",
}
# Per-iteration entries that are not loss terms.
_NOT_LOSSES = {"pred", "_done", "success", "iteration", "step", "target", "queries", "total", "active"}
_PEN_COLOURS = ["#5aa9ff", "#ff7a52", "#7bd88f", "#f5c542", "#c792ea", "#4dd0e1", "#ef5350", "#bdbdbd"]


def _is_class_loss(key: str) -> bool:
    k = key.lower()
    return k.startswith("lc") or "class" in k or k in ("ce", "margin", "logit")


def _plot(title: str, ylabel: str) -> pg.PlotWidget:
    w = pg.PlotWidget()
    w.setMinimumHeight(80)
    w.setTitle(title, size="9pt")
    w.setLabel("bottom", "iteration")
    w.setLabel("left", ylabel)
    w.showGrid(x=True, y=True, alpha=0.2)
    w.addLegend(offset=(-4, 4), labelTextSize="8pt")
    return w


class AttackPanel(QtWidgets.QWidget):
    def __init__(self, ctx, parent=None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.session = ctx.session
        self.task = None
        self._saved_slots = None
        self._loss_data: dict[str, list[tuple[int, float]]] = {}
        self._prob_iters: list[int] = []
        self._prob_rows: list[np.ndarray] = []
        self._loss_curves: dict[str, pg.PlotDataItem] = {}
        self._prob_curves: list[pg.PlotDataItem] = []
        self._class_names: list[str] = []
        self._last_bar = 0.0
        self._last_progress: tuple[int, int] | None = None  # the newest (done, total), shown or not

        self.method_box = QtWidgets.QComboBox(self)
        self.method_box.setObjectName("methodBox")
        self.method_doc = QtWidgets.QLabel(self)
        self.method_doc.setWordWrap(True)
        self.strategy_box = QtWidgets.QComboBox(self)
        self.strategy_box.setObjectName("strategyBox")
        self.top_n = QtWidgets.QSpinBox(self)
        self.top_n.setRange(1, 100)
        self.top_n.setValue(3)
        self.top_n.setToolTip("ABN: the attack succeeds when the true class leaves the top N")
        self.target_box = QtWidgets.QComboBox(self)
        self.target_box.setObjectName("targetBox")
        self.target_box.setToolTip("SA: the class the attack must reach")
        self.label_box = QtWidgets.QComboBox(self)
        self.label_box.setObjectName("labelBox")
        self.label_box.setToolTip(
            "The clip's true class. Default: its own label when the classifier knows it; an unlabelled clip (a BVH "
            "file...) is attacked away from the model's own prediction, as `skelviz attack` does without --label"
        )
        self.victim_box = QtWidgets.QComboBox(self)
        self.victim_box.setToolTip("Attack the loaded classifier or the defended one (Defence panel)")
        self.victim_box.addItem("loaded classifier", "original")
        self.preset_box = QtWidgets.QComboBox(self)
        self.preset_box.setObjectName("presetBox")
        self.preset_box.setToolTip("Named parameter presets: default (skelviz's), published (the authors' code)")
        self.form = ParamForm(self)
        self.run_button = QtWidgets.QPushButton("Run attack", self)
        self.run_button.setObjectName("runAttack")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QtWidgets.QPushButton("Cancel", self)
        self.cancel_button.setObjectName("cancelAttack")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QtWidgets.QProgressBar(self)
        self._unit = "iterations"  # what the progress counts; the method's own unit once one is chosen
        self.progress.setFormat(f"%v / %m {self._unit}")
        self.progress.setValue(0)
        self.class_plot = _plot("Class loss", "Lc")
        self.loss_plot = _plot("Perceptual loss terms", "loss")
        self.prob_plot = _plot("Class probabilities (adversarial)", "probability")
        self.prob_plot.setYRange(0, 1, padding=0.02)
        self.summary = QtWidgets.QLabel("Choose an attack and press Run: it attacks the clip in the left view.", self)
        self.summary.setObjectName("attackSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)

        setup = QtWidgets.QFormLayout()
        setup.addRow("Method", self.method_box)
        setup.addRow(self.method_doc)
        setup.addRow("Strategy", self.strategy_box)
        setup.addRow("Top N", self.top_n)
        setup.addRow("Target", self.target_box)
        setup.addRow("True class", self.label_box)
        setup.addRow("Model", self.victim_box)
        setup.addRow("Preset", self.preset_box)
        params = QtWidgets.QScrollArea(self)
        params.setWidgetResizable(True)
        params.setWidget(self.form)
        params.setMinimumHeight(70)
        params.setMaximumHeight(200)
        params.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addLayout(setup)
        lay.addWidget(QtWidgets.QLabel("<b>Parameters</b> (defaults from the method)", self))
        lay.addWidget(params)
        lay.addLayout(buttons)
        lay.addWidget(self.progress)
        losses = QtWidgets.QHBoxLayout()
        losses.setSpacing(2)
        losses.addWidget(self.class_plot)
        losses.addWidget(self.loss_plot)
        lay.addLayout(losses, 1)
        lay.addWidget(self.prob_plot, 1)
        lay.addWidget(self.summary)

        self.method_box.currentIndexChanged.connect(lambda _i: self._on_method())
        self.strategy_box.currentIndexChanged.connect(lambda _i: self._on_strategy())
        self.preset_box.currentIndexChanged.connect(lambda _i: self._on_preset())
        self.session.classifier_changed.connect(lambda _c: self._on_classes())
        self.session.defended_changed.connect(self._on_defended)
        self.refresh_methods()
        self._on_classes()

    # -- form ---------------------------------------------------------------------------------------------
    def refresh_methods(self) -> None:
        current = self.method_box.currentText()
        self.method_box.blockSignals(True)
        self.method_box.clear()
        try:
            methods = api.attack_methods()
        except (SkelvizError, ImportError) as exc:
            log.warning("no attacks available: %s", exc)
            methods = []
        for m in methods:
            self.method_box.addItem(m)
        self.method_box.blockSignals(False)
        if current and self.method_box.findText(current) >= 0:
            self.method_box.setCurrentIndex(self.method_box.findText(current))
        self._on_method()

    def _on_method(self) -> None:
        method = self.method_box.currentText()
        self.run_button.setEnabled(bool(method) and self.task is None)
        if not method:
            self.method_doc.setText("No attacks are available in this installation.")
            self.form.set_specs([])
            self.strategy_box.clear()
            return
        info = api.attack_info(method)
        self._unit = info["progress_unit"]
        if self.task is None:
            self.progress.setFormat(f"%v / %m {self._unit}")
        self.method_doc.setText(f"<small>{info['threat_model']} attack</small>")
        self.method_box.setToolTip(info["doc"])
        self.form.set_specs(info["params"])
        self.preset_box.blockSignals(True)
        self.preset_box.clear()
        for name in info["presets"]:
            self.preset_box.addItem(name)
        self.preset_box.blockSignals(False)
        self.strategy_box.blockSignals(True)
        self.strategy_box.clear()
        for s in info["strategies"]:
            self.strategy_box.addItem(STRATEGY_TEXT.get(s, s), s)
        self.strategy_box.blockSignals(False)
        self.strategy_box.setEnabled(bool(info["strategies"]))
        self._on_strategy()

    def _on_preset(self) -> None:
        """Fill the form with the chosen preset's values (the typed parameters of the method)."""
        method, preset = self.method_box.currentText(), self.preset_box.currentText()
        if not method or not preset:
            return
        for name, value in api.attack_preset_values(method, preset).items():
            if name in self.form.names():
                self.form.set_value(name, value)

    def _on_strategy(self) -> None:
        s = self.strategy_box.currentData()
        self.top_n.setEnabled(s == "abn")
        self.target_box.setEnabled(s == "sa")

    def _on_classes(self) -> None:
        self.target_box.clear()
        self.label_box.clear()
        self.label_box.addItem("clip's label, else the prediction", None)
        clf = self.session.classifier
        for i, name in enumerate(clf.class_names if clf is not None else []):
            self.target_box.addItem(name, i)
            self.label_box.addItem(name, i)

    def _on_defended(self, clf) -> None:
        i = self.victim_box.findData("defended")
        if clf is None and i >= 0:
            self.victim_box.removeItem(i)
        elif clf is not None and i < 0:
            self.victim_box.addItem("defended classifier", "defended")

    def set_method(self, method: str, strategy: str | None = None) -> None:
        self.method_box.setCurrentIndex(self.method_box.findText(method))
        if strategy is not None:
            self.strategy_box.setCurrentIndex(self.strategy_box.findData(strategy))

    # -- running ------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.task is not None

    def run(self) -> None:
        if self.task is not None:
            return
        session, scene = self.session, self.session.scene
        victim_kind = self.victim_box.currentData()
        clf = session.defended if victim_kind == "defended" else session.classifier
        clip = scene.clip("A")
        method = self.method_box.currentText()
        if clf is None:
            self.ctx.report_error("Cannot attack", "Load a classifier first (Model panel).")
            return
        if clip is None:
            self.ctx.report_error("Cannot attack", "Show a clip in the left view first (Data panel).")
            return
        try:
            params = self.form.values()
            clean = api.model_input(clf, clip)
        except (ValueError, SkelvizError) as exc:
            self.ctx.report_error("Cannot attack", str(exc))
            return
        strategy = self.strategy_box.currentData() if self.strategy_box.isEnabled() else None
        kwargs = {"strategy": strategy}
        if strategy == "abn":
            kwargs["top_n"] = self.top_n.value()
        if strategy == "sa":
            kwargs["target"] = self.target_box.currentData()
        # Where the true class comes from, said in the summary: the box, the clip's label, or (unlabelled clip)
        # the model's own prediction ("anything but the predicted class"), the rule of `skelviz attack` too.
        if self.label_box.currentData() is not None:
            kwargs["true_class"] = self.label_box.currentData()
            self._label_source = "given"
        else:
            self._label_source = "label" if api.class_index(clf, clean.label) is not None else "prediction"

        self._saved_slots = [(s, scene.clip(s), scene.caption(s), scene.probs(s)) for s in "AB"]
        scene.set_clip("A", clean, "original", probs=scene.probs("A") if clean is clip else None)
        scene.set_clip("B", clean, f"adversarial ({method}, running)")
        self._reset_plots(clf.class_names)
        self.progress.setRange(0, int(params.get(self._unit) or 0))  # the unit names the attack's budget
        self.progress.setFormat(f"%v / %m {self._unit}")
        self.progress.setValue(0)
        self._last_progress = None
        # Its points are placed by the progress count (queries for BASAR), the loss plots' by iteration.
        self.prob_plot.setLabel("bottom", {"queries": "query", "iterations": "iteration"}.get(self._unit, self._unit))
        self.summary.setText(f"Running {method}{'-' + strategy.upper() if strategy else ''} …")
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.ctx.show_status(f"{method} attack running")
        # Progress reaches the UI 4 times a second (every iteration's values, batched); the adversarial view
        # as often: enough to watch, and little work for the UI thread while the attack has the CPU.
        preset = self.preset_box.currentText() or None
        # Decision-based attacks start from clips of other classes (the target class for SA): the open datasets.
        pool = [c for coll in session.collections for c in coll]
        self.task = self.ctx.workers.start(
            api.run_attack, method, clf, clean, params, preprocessed=True, live_every=0.25, throttle=0.25,
            name=f"attack {method}", preset=None if preset == "default" else preset, pool=pool, **kwargs,
        )
        self.task.progress.connect(self._on_progress)
        self.task.succeeded.connect(self._on_done)
        self.task.failed.connect(self._on_failed)
        self.task.cancelled.connect(self._on_cancelled)
        self.task.finished.connect(self._on_finished)

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.cancel_button.setEnabled(False)
            self.summary.setText("Cancelling …")

    def _reset_plots(self, class_names: list[str]) -> None:
        self._loss_data.clear()
        self._prob_iters.clear()
        self._prob_rows.clear()
        for plot in (self.class_plot, self.loss_plot, self.prob_plot):
            plot.clear()
            if plot.plotItem.legend is not None:
                plot.plotItem.legend.clear()
        self._loss_curves = {}
        self._prob_curves = []
        self._class_names = list(class_names)

    def _on_progress(self, done: int, total: int, batch: list) -> None:
        if self.task is None or self.task.is_cancelled:
            return
        # QProgressBar repaints synchronously on every new value: at most 5 updates a second (the last one is
        # shown when the attack ends, see _on_done).
        self._last_progress = (done, total)
        now = time.monotonic()
        if now - self._last_bar >= 0.2 or done >= total:
            self._last_bar = now
            self._show_progress(done, total)
        latest_pos, latest_probs = None, None
        for info in batch:
            it = int(info.get("_done", done))
            for key, value in info.items():
                if key in _NOT_LOSSES or not isinstance(value, (int, float)):
                    continue
                self._loss_data.setdefault(key, []).append((it, float(value)))
            if "probs" in info:
                self._prob_iters.append(it)
                self._prob_rows.append(np.asarray(info["probs"], np.float64))
                latest_probs = info["probs"]
            if "adversarial" in info:
                latest_pos = info["adversarial"]
        self._redraw_plots()
        if latest_pos is not None:
            self.session.scene.update_positions("B", latest_pos, probs=latest_probs)

    def _redraw_plots(self) -> None:
        for key, rows in self._loss_data.items():
            curve = self._loss_curves.get(key)
            if curve is None:
                # The class loss (nats, may be negative) and the perceptual terms (m², m²/s⁴ ...) have
                # unrelated scales: they get separate plots.
                plot = self.class_plot if _is_class_loss(key) else self.loss_plot
                pen = pg.mkPen(_PEN_COLOURS[len(self._loss_curves) % len(_PEN_COLOURS)], width=1.5)
                curve = self._loss_curves[key] = plot.plot(name=key, pen=pen)
            arr = np.asarray(rows)
            curve.setData(arr[:, 0], arr[:, 1])
        if self._prob_rows:
            probs = np.stack(self._prob_rows)
            if not self._prob_curves:
                # Show the classes that ever matter: the top ones at the start and now.
                order = np.argsort(-(probs[0] + probs[-1]))
                for rank, c in enumerate(order[: min(6, probs.shape[1])]):
                    name = self._class_names[c] if c < len(self._class_names) else f"class {c}"
                    pen = pg.mkPen(_PEN_COLOURS[rank % len(_PEN_COLOURS)], width=1.5)
                    curve = self.prob_plot.plot(name=name, pen=pen)
                    curve.class_index = int(c)
                    self._prob_curves.append(curve)
            x = np.asarray(self._prob_iters)
            for curve in self._prob_curves:
                curve.setData(x, probs[:, curve.class_index])

    def _show_progress(self, done: int, total: int) -> None:
        if total and self.progress.maximum() != total:
            self.progress.setRange(0, total)
        self.progress.setValue(done)

    def _on_done(self, outcome: api.AttackOutcome) -> None:
        if self._last_progress is not None:
            self._show_progress(*self._last_progress)
        if self.progress.value() < self.progress.maximum():
            self.progress.setFormat(f"stopped after %v of %m {self._unit}")
        if outcome.history:
            self._loss_data = {
                k: list(enumerate(v, start=1)) for k, v in outcome.history.items() if k not in _NOT_LOSSES
            }
            self._redraw_plots()
        self.session.set_outcome(outcome)
        self.summary.setText(self.describe(outcome))
        self.ctx.show_status("attack finished: " + ("success" if outcome.success else "no success"))

    def describe(self, o: api.AttackOutcome) -> str:
        """A short HTML summary of an attack outcome."""

        def cls(i: int) -> str:
            return self._class_names[i] if i < len(self._class_names) else f"class {i}"

        m = o.metrics
        note = ""
        if getattr(self, "_label_source", "label") == "prediction":
            note = (
                f"<br><i>The clip has no label the classifier knows: the attack pushed it away from the model's own "
                f"prediction ({cls(o.true_class)}); choose its true class in the True class box.</i>"
            )
        elif o.clean_pred != o.true_class:
            note = (
                f"<br><i>Note: the classifier already misclassifies the clean clip (label {cls(o.true_class)}), "
                "so the attack had nothing to do.</i>"
            )
        verdict = "<b style='color:#7bd88f'>succeeded</b>" if o.success else "<b style='color:#ef5350'>failed</b>"
        white_box = api.attack_info(o.method).get("threat_model") == "white-box"
        if white_box and o.queries is not None:  # its "queries" are forward-backward passes: gradient steps
            count = (f"{o.queries} gradient step{'s' if o.queries != 1 else ''} (first adversarial at step "
                     f"{o.iterations})")
        elif white_box or o.queries is None:
            count = f"{o.iterations} gradient step{'s' if o.iterations != 1 else ''}"
        else:  # a decision-based attack: label queries are its budget
            count = f"{o.iterations} iteration{'s' if o.iterations != 1 else ''}, "
            count += f"{o.queries} quer{'ies' if o.queries != 1 else 'y'}"
        return (
            f"{o.method} {verdict} after {count} ({o.seconds:.1f} s).<br>"
            f"prediction <b>{cls(o.clean_pred)}</b> ({o.clean_probs[o.clean_pred]:.0%}) → "
            f"<b>{cls(o.adversarial_pred)}</b> ({o.adversarial_probs[o.adversarial_pred]:.0%}); "
            f"true class {cls(o.true_class)}.<br>"
            f"joint displacement mean {m['mean_l2'] * 1000:.1f} mm, max {m['max_linf'] * 1000:.1f} mm; "
            f"bone-length change mean {m['mean_bone_length_rel_dev']:.2%}, max {m['max_bone_length_rel_dev']:.2%}; "
            f"acceleration deviation {m['mean_accel_dev']:.3f} m/s².<br>"
            f"{self.describe_validity(o)}{note}"
        )

    @staticmethod
    def describe_validity(o: api.AttackOutcome) -> str:
        """The validity diagnostics (engine.validity) in one line, warnings in orange."""
        d = o.diagnostics or {}
        if not d:
            return ""

        def mark(ok: bool) -> str:
            return "<span style='color:#7bd88f'>✓</span>" if ok else "<span style='color:#ef5350'>✗</span>"

        parts = [f"re-checked on the saved motion {mark(o.success)}"]
        if o.success:
            parts.append(f"after re-centring on the root {mark(d.get('success_recentred', False))}")
        if d.get("top_joint") is not None:
            parts.append(f"most-perturbed joint {d['top_joint']} carries {d.get('top_joint_share', 0):.0%}, "
                         f"most-perturbed frame {d.get('top_frame_share', 0):.0%}")
        if d.get("success_reported") is not None and d["success_reported"] != o.success:
            parts.append(f"the attack itself reported {'success' if d['success_reported'] else 'failure'}")
        text = "<small>Validity: " + "; ".join(parts) + ".</small>"
        for w in d.get("warnings", []):
            text += f"<br><small style='color:#f5c542'>⚠ {w}</small>"
        return text

    def _restore(self) -> None:
        if self._saved_slots:
            for slot, clip, caption, probs in self._saved_slots:
                self.session.scene.set_clip(slot, clip, caption, probs=probs)
        self._saved_slots = None

    def _on_failed(self, exc: BaseException) -> None:
        self._restore()
        self.summary.setText(f"The attack failed: {exc}")
        kind = "" if isinstance(exc, SkelvizError) else f" ({type(exc).__name__})"
        self.ctx.report_error("Attack failed", f"{exc}{kind}")

    def _on_cancelled(self) -> None:
        self._restore()
        self.summary.setText("Attack cancelled; the views show what was loaded before.")
        self.ctx.show_status("attack cancelled")

    def _on_finished(self) -> None:
        self.task = None
        self._saved_slots = None
        self.run_button.setEnabled(bool(self.method_box.currentText()))
        self.cancel_button.setEnabled(False)
