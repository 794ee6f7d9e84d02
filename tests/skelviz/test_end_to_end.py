"""End to end: launch the app as `skelviz` does, run a short SMART attack from the Attack panel with qtbot,
and check that the adversarial view and the predicted class change. Also the real launch in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from skelviz.model.settings import MemoryStore  # noqa: E402
from skelviz.render.skeleton_visual import to_gl  # noqa: E402

pytestmark = [pytest.mark.gui, pytest.mark.gl]


@pytest.mark.slow
def test_smart_attack_from_the_attack_panel_changes_the_view_and_the_prediction(qtbot, errors, classifier):
    from engine.attacks import ATTACKS
    from skelviz.app import create_window

    assert "smart" in ATTACKS or __import__("engine.attacks.smart")
    w = create_window(store=MemoryStore(), error_reporter=errors)  # demo data, demo classifier when shipped
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    qtbot.waitUntil(lambda: w.loading == 0, timeout=30000)
    scene = w.session.scene
    # The app opens on the real CMU demo with its ST-GCN (File → Open demo has the synthetic one).
    assert scene.clip("A") is not None and w.session.collections[0].name == "cmu demo"
    assert scene.clip("A").provenance.details.get("cmu8_clip")
    if w.session.classifier is None:  # the demo checkpoint is not installed: use the fixture's
        w.session.set_classifier(classifier, "test classifier")
    qtbot.waitUntil(lambda: scene.probs("A") is not None, timeout=20000)
    # Attack a clip the classifier gets right (with an untrained stand-in classifier, an unlabelled clip:
    # then the attack moves it away from the predicted class).
    from dataclasses import replace

    from engine import api

    clf = w.session.classifier
    right = [c for c in w.session.collections[0] if api.class_index(clf, c.label) == np.argmax(api.predict(clf, c))]
    clip = right[0] if right else replace(scene.clip("A"), label=None)
    w.show_clip("A", clip)
    qtbot.waitUntil(lambda: scene.probs("A") is not None, timeout=20000)
    panel = w.attack_panel
    assert panel.method_box.currentText() == "smart"  # SMART is the default method
    panel.set_method("smart", "ab")
    panel.form.set_value("iterations", 60)
    panel.run_button.click()
    qtbot.waitUntil(lambda: not panel.running, timeout=180000)
    assert not errors, errors
    outcome = w.session.outcome
    assert outcome is not None and outcome.success, panel.summary.text()
    clean_class, _ = scene.prediction("A")
    adv_class, _ = scene.prediction("B")
    assert adv_class != clean_class
    assert adv_class in w.views.panes["B"].plain_title() and "adversarial" in w.views.panes["B"].plain_title()
    # The right view draws the adversarial motion, not the clean one.
    pb = w.session.playback
    pb.seek(pb.num_frames // 2)
    f = scene.frame_for("B", pb.frame)
    np.testing.assert_allclose(
        w.views.view("B").primary.joint_positions(), to_gl(outcome.adversarial.positions[f], "y"), atol=1e-6
    )
    assert not np.allclose(w.views.view("B").primary.joint_positions(), w.views.view("A").primary.joint_positions())
    assert "succeeded" in panel.summary.text()
    assert f"{outcome.metrics['mean_bone_length_rel_dev']:.2%}" in panel.summary.text()
    assert w.inspect_panel.heat_image.image is not None


@pytest.mark.slow
def test_the_skelviz_command_opens_the_demo_and_saves_a_screenshot(tmp_path):
    shot = tmp_path / "window.png"
    env = dict(os.environ, SKELVIZ_SCREENSHOT=str(shot), HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "skelviz"], env=env, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    from PySide6 import QtGui

    image = QtGui.QImage(str(shot))
    assert image.width() > 800 and image.height() > 500


def test_skelviz_file_opens_that_file(qtbot, errors, formats_dir):
    from skelviz.app import create_window

    path = formats_dir / "bvh" / "131_01.bvh"
    w = create_window([str(path)], store=MemoryStore(), error_reporter=errors)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.loading == 0 and w.session.scene.clip("A") is not None, timeout=30000)
    assert not errors, errors
    assert w.session.scene.clip("A").title == "131_01" and w.session.collections[0].name == "131_01"
    assert w.settings.recent_files == [str(path.resolve())]


def test_study_menu_reports_a_bad_protocol(qtbot, errors, tmp_path):
    from skelviz.widgets.main_window import MainWindow

    w = MainWindow(store=MemoryStore(), error_reporter=errors)
    qtbot.addWidget(w)
    assert w.study_action.text() == "&Run study…"
    (tmp_path / "p.toml").write_text("[study]\nkind = 'nonsense'\n")
    assert w.start_study(str(tmp_path / "p.toml"), str(tmp_path / "missing.h5"), fullscreen=False) is None
    assert errors and errors[-1][0] == "Cannot start the study"


@pytest.mark.slow
def test_targeted_basar_from_the_attack_panel_reaches_the_chosen_class(window, qtbot, errors, dataset):
    """Targeted BASAR (SA) from the app, end to end: strategy and target come from BASAR's typed parameters, the
    open dataset supplies a start clip of the target class, and the adversarial clip is classified as the
    target (re-checked on the saved motion)."""
    from engine import api
    from engine.assets import ASSETS_DIR

    clf = api.load_classifier(ASSETS_DIR / "models" / "demo_stgcn.pt")  # trained on the synthetic set
    assert list(clf.class_names) == list(dataset.class_names)
    window.session.set_classifier(clf, "synthetic demo ST-GCN")
    preds = [int(np.argmax(api.predict(clf, c))) for c in dataset]
    right = [i for i, c in enumerate(dataset) if api.class_index(clf, c.label) == preds[i]]
    assert len(right) >= 2, "the fixture classifier gets fewer than two clips right"
    source, other = dataset[right[0]], dataset[right[1]]
    target = api.class_index(clf, other.label)
    window.show_clip("A", source)
    qtbot.waitUntil(lambda: window.session.scene.probs("A") is not None, timeout=20000)
    panel = window.attack_panel
    panel.refresh_methods()
    panel.set_method("basar", "sa")
    assert panel.strategy_box.currentData() == "sa" and panel.target_box.isEnabled()
    panel.target_box.setCurrentIndex(panel.target_box.findData(target))
    panel.form.set_value("queries", 400)
    panel.form.set_value("projection_interval", 0)
    panel.run_button.click()
    qtbot.waitUntil(lambda: not panel.running, timeout=240000)
    assert not errors, errors
    outcome = window.session.outcome
    assert outcome is not None and outcome.method == "basar"
    assert outcome.params["strategy"] == "sa"
    assert outcome.success, panel.summary.text()
    assert outcome.adversarial_pred == target == int(np.argmax(api.predict(clf, outcome.adversarial)))
    assert outcome.queries is not None and outcome.queries <= 400
    assert "succeeded" in panel.summary.text() and "Validity" in panel.summary.text()
