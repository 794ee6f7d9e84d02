"""The Defence panel's standard robustness suite, driven with pytest-qt under Xvfb on a real event loop: the real
suite (APGD-CE, APGD-T, the Square-style black box) runs in a worker on the loaded and the defended classifier,
its result is plotted (robust accuracy vs budget), tabulated with the perceptual cost and its warnings listed;
a run can be cancelled; the report is saved as JSON, Markdown and PNG."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pytestqt")

from engine.defenses.standard_suite import SUITE_VERSION  # noqa: E402
from tests.skelviz.conftest import _small_classifier  # noqa: E402

pytestmark = [pytest.mark.gui, pytest.mark.gl]

# tiny effort so the real suite finishes in seconds; the thresholds of the checks are never touched
TINY = {"budgets": (0.01, 0.05), "iterations": 3, "n_target_classes": 1, "square_queries": 10, "eot_samples": 2}


def _set_suite(panel, windows: int, **values) -> None:
    panel.suite_windows.setValue(windows)
    for name, value in values.items():
        panel.suite_form.set_value(name, value)


def test_suite_runs_in_a_worker_and_plots_robust_accuracy_vs_budget(window, qtbot, dataset, tmp_path):
    panel = window.defence_panel
    window.session.set_defended(_small_classifier(dataset.class_names, seed=7), "test defended model")
    _set_suite(panel, 4, **TINY)
    panel.suite_run_button.click()
    assert panel.suite_task is not None and not panel.suite_run_button.isEnabled()
    assert panel.suite_cancel_button.isEnabled()
    qtbot.waitUntil(lambda: panel.suite_task is None, timeout=120000)
    assert not window.errors, window.errors
    entries = panel.suite_entries
    assert [e["model"] for e in entries] == ["original", "defended"]
    curves = panel.suite_plot_data()
    assert set(curves) == {"original", "defended"}
    assert len(panel.suite_plot.plotItem.legend.items) == 2
    for e in entries:
        assert e["suite_version"] == SUITE_VERSION and e["n"] <= 4
        x, y = curves[e["model"]]
        assert x == pytest.approx([0.0, 1.0, 5.0])
        assert y == pytest.approx([100 * e["clean_accuracy"]] + [100 * b["robust_accuracy"] for b in e["budgets"]])
        for b in e["budgets"]:  # the worst case is never above an attack's own figure
            assert b["robust_accuracy"] <= min(b["attacks"]["apgd-ce"]["robust_accuracy"],
                                               b["attacks"]["apgd-dlr-t"]["robust_accuracy"]) + 1e-9
        assert e["params"]["iterations"] == 3 and e["params"]["budgets"] == [0.01, 0.05]
    table = panel.suite_table
    assert table.rowCount() == 2 and table.horizontalHeaderItem(2).text() == "5 cm"
    assert table.item(0, 0).text() == f"{entries[0]['clean_accuracy']:.0%}"
    warnings = panel.suite_warnings.text()
    fired = [w for e in entries for w in e["warnings"]]
    if fired:
        assert all(w["message"] in warnings for w in fired)
    else:
        assert warnings == "No gradient-masking warnings."
    assert SUITE_VERSION in panel.suite_status.text()
    assert panel.suite_save_button.isEnabled() and panel.suite_run_button.isEnabled()
    paths = panel.save_suite_report(str(tmp_path))
    board = json.loads(paths["json"].read_text())
    assert board["suite_version"] == SUITE_VERSION and board["budgets_m"] == [0.01, 0.05]
    assert {e["model"] for e in board["entries"]} == {"original", "defended"}
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_suite_can_be_cancelled(window, qtbot):
    panel = window.defence_panel
    window.session.set_defended(None, "")
    _set_suite(panel, 8, budgets=(0.01,), iterations=100000, n_target_classes=1, square_queries=10)
    panel.suite_run_button.click()
    qtbot.waitUntil(lambda: panel.suite_progress.maximum() > 0, timeout=60000)  # the worker reports progress
    panel.suite_cancel_button.click()
    qtbot.waitUntil(lambda: panel.suite_task is None, timeout=60000)
    assert not window.errors, window.errors
    assert panel.suite_status.text() == "suite cancelled"
    assert panel.suite_entries == [] and not panel.suite_save_button.isEnabled()
    assert panel.suite_run_button.isEnabled() and not panel.suite_cancel_button.isEnabled()


def test_suite_reports_bad_settings_without_starting(window, qtbot):
    panel = window.defence_panel
    _set_suite(panel, 4, budgets=(0.02, 0.01))
    panel.suite_run_button.click()
    assert panel.suite_task is None
    assert window.errors and window.errors[-1][0] == "Cannot run the suite" and "ascending" in window.errors[-1][1]
