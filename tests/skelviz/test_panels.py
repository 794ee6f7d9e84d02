"""Every panel of the main window, driven with pytest-qt under Xvfb.

Attacks here are small stand-ins registered for one test (monkeypatched into the registry), so these tests
check the panel's plumbing — form, worker, live plots, cancel, failure — independently of the real attacks;
``test_end_to_end.py`` runs the real SMART.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

import torch  # noqa: E402
from PySide6 import QtCore, QtGui, QtWidgets  # noqa: E402

from engine.attacks.base import ATTACKS, Attack, AttackResult, StrategyParams  # noqa: E402
from engine.errors import AttackError  # noqa: E402
from engine.params import param  # noqa: E402
from tests.skelviz.conftest import _small_classifier  # noqa: E402

pytestmark = [pytest.mark.gui, pytest.mark.gl]


@dataclass(frozen=True)
class DriftParams(StrategyParams):
    iterations: int = param(40, "steps", min=1)
    step: float = param(0.002, "drift per step", unit="m")
    delay: float = param(0.01, "sleep per step", unit="s", min=0.0)


class DriftAttack(Attack):
    """Test stand-in: moves every joint a little each iteration, slowly; reports losses like SMART."""

    threat_model = "white-box"
    Params = DriftParams

    gate: threading.Event | None = None  # when set by a test, iteration 10 waits for it (the attack is mid-run)

    def run(self, x, y, target):
        delta = torch.zeros_like(x)
        for it in range(self.iterations):
            if it == 10 and self.gate is not None:
                self.gate.wait(30)
            time.sleep(self.delay)
            delta = delta + self.step
            self.model(x + delta)  # an attack queries its model every iteration
            self._tick(it + 1, self.iterations, {"Lc": torch.tensor([-float(it)]), "Lp": torch.tensor([it * 1e-4])})
        adv = (x + delta).cpu()
        pred = self.model(adv.to(x.device)).argmax(1).cpu()
        return AttackResult(adv, pred != y.cpu(), torch.tensor([self.iterations]), pred,
                            history={"Lc": [[-float(i)] for i in range(self.iterations)]})


class BrokenAttack(Attack):
    def run(self, x, y, target):
        raise AttackError("the attack diverged (test)")


@pytest.fixture
def drift(monkeypatch):
    monkeypatch.setitem(ATTACKS, "drift", DriftAttack)
    monkeypatch.setitem(ATTACKS, "broken", BrokenAttack)


# -- data ----------------------------------------------------------------------------------------------------
def test_data_panel_lists_clips_with_labels_and_chooses_the_views(window, dataset):
    panel = window.data_panel
    top = panel.tree.topLevelItem(0)
    assert top.childCount() == len(dataset)
    assert [top.child(i).text(1) for i in range(len(dataset))] == [c.label or "" for c in dataset]
    panel.tree.setCurrentItem(top.child(2))
    panel.show_b.click()
    assert window.session.scene.clip("B") is dataset[2]
    assert dataset[2].title in panel.shown.text()
    panel.filter.setText(dataset[1].label)
    hidden = [top.child(i).isHidden() for i in range(len(dataset))]
    assert not hidden[1] and sum(hidden) == sum(c.label != dataset[1].label for c in dataset)


def test_open_files_recent_list_and_drag_and_drop(window, qtbot, dataset, tmp_path):
    from engine.io import save_clip

    path = save_clip(dataset[3], tmp_path / "dropped.h5")
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(path))])
    drop = QtGui.QDropEvent(QtCore.QPointF(50, 50), QtCore.Qt.DropAction.CopyAction, mime,
                            QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier)
    window.dropEvent(drop)
    qtbot.waitUntil(lambda: len(window.session.collections) == 2, timeout=30000)
    assert window.session.scene.clip("A").positions.shape == dataset[3].positions.shape
    assert window.settings.recent_files[0] == str(path.resolve())
    assert [a.text() for a in window.recent_menu.actions()] == [str(path.resolve())]


def test_corrupt_file_shows_an_error_and_keeps_the_previous_clip(window, qtbot, errors, tmp_path):
    before = window.session.scene.clip("A")
    bad = tmp_path / "broken.bvh"
    bad.write_text("HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0 zero\n")
    window.open_paths([str(bad)])
    qtbot.waitUntil(lambda: bool(errors), timeout=30000)
    title, message = errors[-1]
    assert "broken.bvh" in title and "kept" in message
    assert window.session.scene.clip("A") is before
    assert len(window.session.collections) == 1


# -- model ---------------------------------------------------------------------------------------------------
def test_model_panel_shows_class_probabilities_of_both_clips(window, qtbot, dataset):
    window.show_clip("B", dataset[1])
    qtbot.waitUntil(lambda: window.session.scene.probs("B") is not None, timeout=30000)
    chart = window.model_panel.chart
    for slot in "AB":
        np.testing.assert_allclose(chart.values[slot], window.session.scene.probs(slot))
        assert chart.values[slot].sum() == pytest.approx(1.0, abs=1e-5)
    info = window.model_panel.info.text()
    assert "hdm05_25" in info and f"{len(dataset.class_names)} classes" in info
    assert window.model_panel.device_box.currentData() == "cpu"
    name, conf = window.session.scene.prediction("A")
    assert f"{name} ({conf:.0%})" in window.views.panes["A"].plain_title()


def test_checkpoint_for_another_skeleton_is_refused_and_the_old_one_kept(window, qtbot, errors, tmp_path):
    from engine import skeletons
    from engine.models import Classifier, build_model

    # Same joint count as hdm05_25, another layout: no mapping exists.
    ntu_net = build_model("mlp", skeletons.get("ntu25"), 2, hidden=8)
    ntu = Classifier(ntu_net, ["a", "b"], preprocessing={"fps": 30.0, "window": 60}, arch="mlp",
                     arch_kwargs={"hidden": 8})
    before = window.session.classifier
    try:
        from engine.models.checkpoint import save_classifier
    except ImportError:
        window._start_classifier_load(lambda: ntu, (), "ntu", False, "ntu.pt")
    else:
        window.load_checkpoint(str(save_classifier(ntu, tmp_path / "ntu.pt")))
    qtbot.waitUntil(lambda: bool(errors), timeout=30000)
    assert "ntu25" in errors[-1][1] and "kept" in errors[-1][1]
    assert window.session.classifier is before


# -- attack --------------------------------------------------------------------------------------------------
def _run_attack(window, qtbot, method="drift", **params):
    panel = window.attack_panel
    panel.refresh_methods()
    panel.set_method(method, "ab")
    for k, v in params.items():
        panel.form.set_value(k, v)
    panel.run_button.click()
    return panel


def test_attack_panel_form_follows_the_method(window, drift):
    panel = window.attack_panel
    panel.refresh_methods()
    panel.set_method("drift", "sa")
    names = [s.name for s in panel.form._specs]
    assert names == ["iterations", "step", "delay"]  # strategy and top N have their own widgets
    assert panel.form.values() == {"iterations": 40, "step": 0.002, "delay": 0.01}
    assert panel.target_box.isEnabled() and not panel.top_n.isEnabled()
    panel.strategy_box.setCurrentIndex(panel.strategy_box.findData("abn"))
    assert panel.top_n.isEnabled() and not panel.target_box.isEnabled()
    panel.form.editor("step").setText("lots")
    panel.run()
    assert "step" in window.errors[-1][1] and panel.task is None
    assert panel.progress.format().endswith("iterations")
    panel.set_method("basar")  # a decision-based attack counts its progress in queries
    assert panel.progress.format().endswith("queries")
    assert "queries" in [s.name for s in panel.form._specs]
    # BASAR's strategies come from its typed parameters: targeted BASAR is offered (it was disabled before)
    assert panel.strategy_box.isEnabled()
    assert [panel.strategy_box.itemData(i) for i in range(panel.strategy_box.count())] == ["ab", "sa"]
    # units in the labels, help and range in the tooltips, presets offered
    panel.set_method("smart")
    assert [panel.preset_box.itemText(i) for i in range(panel.preset_box.count())] == ["default", "published"]
    assert any(lbl.text() == "lr (m)" for lbl in panel.form.findChildren(QtWidgets.QLabel))
    assert "step length" in panel.form.editor("lr").toolTip()
    panel.preset_box.setCurrentIndex(panel.preset_box.findText("published"))
    assert panel.form.values()["iterations"] == 1000 and panel.form.values()["lr"] == pytest.approx(0.0028)


def test_attack_runs_off_the_ui_thread_with_live_plots_and_view(window, qtbot, drift, monkeypatch):
    gate = threading.Event()
    monkeypatch.setattr(DriftAttack, "gate", gate)
    panel = _run_attack(window, qtbot, iterations=40, delay=0.01)
    assert panel.running and not panel.run_button.isEnabled()
    # Mid-run (the attack waits at iteration 10): the plots and the adversarial view already show progress,
    # and the UI thread is free (this test's event loop keeps running).
    # (progress reaches the UI in batches 4 times a second: the first batch is what arrived before the gate)
    qtbot.waitUntil(lambda: len(panel._loss_data.get("Lc", [])) >= 1 and len(panel._prob_rows) >= 1, timeout=30000)
    assert panel.running and "Lc" in panel._loss_curves
    b_live = window.session.scene.clip("B").positions
    assert not np.allclose(b_live, window.session.scene.clip("A").positions)
    assert "running" in window.views.panes["B"].plain_title()
    gate.set()
    qtbot.waitUntil(lambda: not panel.running, timeout=20000)
    assert not window.errors
    outcome = window.session.outcome
    assert outcome is not None and outcome.iterations == 40
    np.testing.assert_allclose(window.session.scene.clip("B").positions, outcome.adversarial.positions)
    np.testing.assert_allclose(window.session.scene.clip("B").positions - window.session.scene.clip("A").positions,
                               0.08, atol=1e-5)
    assert "drift" in panel.summary.text() and "gradient steps" in panel.summary.text()
    assert panel.progress.value() == 40
    assert panel._loss_curves["Lc"].getData()[1][-1] == pytest.approx(-39.0)
    assert "Lp" in panel._loss_curves
    assert window.inspect_panel.scene.deviations is not None


def test_cancel_stops_the_attack_at_its_next_iteration_and_restores_the_views(window, qtbot, drift):
    before = {s: window.session.scene.clip(s) for s in "AB"}
    panel = _run_attack(window, qtbot, iterations=100000, delay=0.01)
    qtbot.waitUntil(lambda: len(panel._prob_rows) >= 1, timeout=30000)
    panel.cancel_button.click()
    assert "Cancelling" in panel.summary.text() and not panel.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not panel.running, timeout=5000)  # bench/ui.py measures how fast
    assert "cancelled" in panel.summary.text()
    assert {s: window.session.scene.clip(s) for s in "AB"} == before
    assert panel.run_button.isEnabled()


def test_failed_attack_shows_a_message_and_keeps_what_was_loaded(window, qtbot, errors, drift):
    before = {s: window.session.scene.clip(s) for s in "AB"}
    panel = _run_attack(window, qtbot, method="broken")
    qtbot.waitUntil(lambda: not panel.running, timeout=30000)
    assert errors and errors[-1][0] == "Attack failed" and "diverged" in errors[-1][1]
    assert {s: window.session.scene.clip(s) for s in "AB"} == before
    assert window.session.outcome is None


# -- defence -------------------------------------------------------------------------------------------------
def test_defence_panel_compares_original_and_defended_predictions(window, qtbot, dataset):
    panel = window.defence_panel
    window.show_clip("B", dataset[1])
    defended = _small_classifier(dataset.class_names, seed=7)
    window.session.set_defended(defended, "test defended model")
    qtbot.waitUntil(lambda: all(panel._defended_probs[s] is not None for s in "AB"), timeout=30000)
    qtbot.waitUntil(lambda: window.session.scene.probs("B") is not None, timeout=30000)
    rows = panel.table_text()
    from engine import api

    for row, slot in zip(rows, "AB"):
        p = api.predict(defended, window.session.scene.clip(slot))
        assert row[1] == f"{dataset.class_names[int(np.argmax(p))]} ({p.max():.0%})"
        name, conf = window.session.scene.prediction(slot)
        assert row[0] == f"{name} ({conf:.0%})"
    assert "test defended model" in panel.info.text()
    # The attack panel can now target the defended model.
    assert window.attack_panel.victim_box.findData("defended") >= 0
    assert panel.data_box.count() == 1  # the dataset is offered as training data


def test_defence_panel_applies_beat_in_a_worker(window, qtbot):
    from engine import api

    if "beat" not in api.defence_methods():
        pytest.skip("BEAT is not available in this build")
    panel = window.defence_panel
    panel.method_box.setCurrentIndex(panel.method_box.findText("beat"))
    for name, value in {"num_samples": 1, "burn_in": 0, "sgld_steps": 1, "batch_size": 8}.items():
        panel.form.set_value(name, value)
    panel.apply_button.click()
    assert panel.task is not None and not panel.apply_button.isEnabled()
    qtbot.waitUntil(lambda: panel.task is None, timeout=120000)
    assert not window.errors, window.errors
    defended = window.session.defended
    assert defended is not None and defended.meta["defence"]["method"] == "beat"
    assert defended is not window.session.classifier
    qtbot.waitUntil(lambda: panel._defended_probs["A"] is not None, timeout=30000)
    assert panel.table_text()[0][1] != "—" and "beat" in panel.info.text()


def test_unlabelled_clip_is_attacked_away_from_the_prediction_and_the_label_box_sets_the_class(window, qtbot, drift):
    """As `skelviz attack` does: without a label the model's own prediction is attacked, and the summary says so;
    the True class box sets the class instead. A white-box attack's summary counts gradient steps."""
    from dataclasses import replace

    scene = window.session.scene
    window.show_clip("A", replace(scene.clip("A"), label=None))
    qtbot.waitUntil(lambda: scene.probs("A") is not None, timeout=20000)
    predicted = int(np.argmax(scene.probs("A")))
    panel = _run_attack(window, qtbot, iterations=3, delay=0.0)
    qtbot.waitUntil(lambda: not panel.running, timeout=20000)
    assert window.session.outcome.true_class == predicted
    text = panel.summary.text()
    assert "model's own prediction" in text and "3 gradient steps" in text and "quer" not in text
    other = (predicted + 1) % len(window.session.classifier.class_names)
    panel.label_box.setCurrentIndex(panel.label_box.findData(other))
    panel.run_button.click()
    qtbot.waitUntil(lambda: not panel.running, timeout=20000)
    assert window.session.outcome.true_class == other and "model's own prediction" not in panel.summary.text()


# -- inspect -------------------------------------------------------------------------------------------------
def test_inspect_panel_heat_map_and_click_to_scrub(window, qtbot):
    scene = window.session.scene
    a = scene.clip("A")
    moved = a.positions.copy()
    moved[20:25, a.skeleton.index("RightHand")] += [0.0, 0.1, 0.0]
    window.show_clip("B", a.with_positions(moved), "modified")
    panel = window.inspect_panel
    panel.quantity_box.setCurrentIndex(panel.quantity_box.findData("position"))
    image = panel.heat_image.image
    assert image.shape == (a.skeleton.num_joints, a.num_frames)
    assert image[a.skeleton.index("RightHand"), 20:25].min() == pytest.approx(0.1, abs=1e-5)
    heights = panel.bars.opts["height"]
    assert int(np.argmax(heights)) == a.skeleton.index("RightHand")
    # Click the heat map at frame 22: the views scrub there.
    qtbot.wait(100)
    vb = panel.heatmap.getPlotItem().getViewBox()
    pos = panel.heatmap.mapFromScene(vb.mapViewToScene(QtCore.QPointF(22, 3)))
    qtbot.mouseClick(panel.heatmap.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=pos)
    qtbot.waitUntil(lambda: window.session.playback.frame == 22, timeout=2000)
    assert panel.heat_line.value() == 22
    # Selecting a joint shows its own velocity/acceleration deviation.
    scene.select_joint(a.skeleton.index("RightHand"))
    assert "RightHand" in panel.joint_plot.plotItem.titleLabel.text
    vel = panel.vel_curve.getData()[1]
    # The hand jumps at frame 20 and back at frame 25: velocity differs there and nowhere else.
    assert vel[20] > 1.0 and vel[25] > 1.0 and vel[:20].max() == 0 and vel[21:25].max() == 0


def test_inspect_panel_explains_itself_and_names_every_joint_on_hover(window, qtbot):
    panel = window.inspect_panel
    window.session.scene.set_clip("B", None, "")
    panel.refresh()
    assert not panel.intro.isHidden() and panel.plots.isHidden()
    assert "Run attack" in panel.intro.text() and "hover a bar" in panel.intro.text()
    a = window.session.scene.clip("A")
    moved = a.positions.copy()
    moved[:, a.skeleton.index("LeftFoot")] += [0.0, 0.02, 0.0]
    window.show_clip("B", a.with_positions(moved), "modified")
    panel.refresh()
    assert panel.intro.isHidden() and not panel.plots.isHidden()
    qtbot.wait(100)
    vb = panel.bar_plot.getViewBox()
    for name in a.skeleton.joint_names:  # every joint, not only those with a tick label
        j = a.skeleton.index(name)
        scene_pos = vb.mapViewToScene(QtCore.QPointF(j, 0.5 * float(panel.bars.opts["height"].max())))
        assert panel.joint_under(scene_pos) == j
        panel._on_bar_hover(scene_pos)
        assert panel.bar_label.isVisible() and panel.bar_label.textItem.toPlainText().startswith(name + "\n")


# -- export --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".h5", ".bvh", ".npz"])
def test_export_clip_in_every_format(window, tmp_path, suffix):
    from engine.io import load_clip

    out = window.export_panel.save_clip(tmp_path / f"clip{suffix}", slot="A")
    assert out is not None and out.exists(), window.errors
    back = load_clip(out)
    assert back.num_frames == window.session.scene.clip("A").num_frames


def test_export_video_is_playable_with_the_requested_size_and_frames(window, qtbot, tmp_path):
    import imageio.v3 as iio

    window.show_clip("B", window.session.scene.clip("A"))
    panel = window.export_panel
    panel.width_box.setValue(640)
    panel.height_box.setValue(360)
    frames = list(range(12))
    with qtbot.waitSignal(panel.videoFinished, timeout=60000):
        assert panel.export_video(tmp_path / "views.mp4", frames)
    video = _read_ffmpeg(tmp_path / "views.mp4")
    assert video.shape[0] == len(frames) and video.shape[1:3] == (360, 640)
    assert video.std() > 5  # not a blank picture
    # GIF too, at another size.
    panel.width_box.setValue(320)
    panel.height_box.setValue(200)
    with qtbot.waitSignal(panel.videoFinished, timeout=60000):
        assert panel.export_video(tmp_path / "views.gif", frames[:5])
    gif = iio.imread(tmp_path / "views.gif")
    assert gif.shape[0] == 5 and gif.shape[1:3] == (200, 320)
    # A PNG at the chosen size.
    png = panel.save_png(tmp_path / "frame.png")
    assert QtGui.QImage(str(png)).size() == QtCore.QSize(320, 200)


def _read_ffmpeg(path: Path) -> np.ndarray:
    """Decode every frame with ffmpeg (the video is playable and its frames countable)."""
    import imageio.v2 as imageio

    with imageio.get_reader(str(path), format="FFMPEG") as reader:
        n = reader.count_frames()
        return np.stack([reader.get_data(i) for i in range(n)])


def test_odd_video_size_is_refused_with_a_message(window, errors, tmp_path):
    panel = window.export_panel
    panel.width_box.setValue(641)
    assert not panel.export_video(tmp_path / "odd.mp4")
    assert "even" in errors[-1][1]


# -- window --------------------------------------------------------------------------------------------------
def test_keyboard_drives_playback(window, qtbot):
    pb = window.session.playback
    window.activateWindow()
    qtbot.waitActive(window)
    view = window.views.view("A")  # keys go to whatever has focus: here the 3D view the user clicked
    view.setFocus()
    qtbot.waitUntil(view.hasFocus, timeout=2000)
    pb.seek(5)
    qtbot.keyClick(view, QtCore.Qt.Key.Key_Right)
    assert pb.frame == 6
    qtbot.keyClick(view, QtCore.Qt.Key.Key_Left)
    qtbot.keyClick(view, QtCore.Qt.Key.Key_Left)
    assert pb.frame == 4
    qtbot.keyClick(view, QtCore.Qt.Key.Key_End)
    assert pb.frame == pb.num_frames - 1
    qtbot.keyClick(view, QtCore.Qt.Key.Key_Home)
    assert pb.frame == 0
    qtbot.keyClick(view, QtCore.Qt.Key.Key_Space)
    assert pb.playing
    qtbot.waitUntil(lambda: pb.frame > 3, timeout=3000)
    qtbot.keyClick(view, QtCore.Qt.Key.Key_Space)
    assert not pb.playing
    assert window.playback_bar.slider.value() == pb.frame
    assert f"{pb.frame + 1:>4}/" in window.playback_bar.counter.text()


def test_settings_persist_between_sessions(qtbot, tmp_path, errors):
    from skelviz.widgets.main_window import MainWindow

    path = str(tmp_path / "settings.ini")
    store = QtCore.QSettings(path, QtCore.QSettings.Format.IniFormat)
    w = MainWindow(store=store, error_reporter=errors)
    qtbot.addWidget(w)
    w.playback_bar.speed_box.setCurrentIndex(w.playback_bar.speed_box.findData(0.5))
    w.trails_action.setChecked(True)
    w.cmap_box.setCurrentText("viridis")
    w.colour_box.setCurrentIndex(w.colour_box.findData("acceleration"))
    w.link_action.setChecked(False)
    w.close()
    store2 = QtCore.QSettings(path, QtCore.QSettings.Format.IniFormat)
    w2 = MainWindow(store=store2, error_reporter=errors)
    qtbot.addWidget(w2)
    assert w2.session.playback.speed == 0.5 and w2.playback_bar.speed_box.currentData() == 0.5
    assert w2.trails_action.isChecked() and not w2.link_action.isChecked()
    assert w2.cmap_box.currentText() == "viridis"
    assert w2.session.scene.colour_mode == "acceleration"


def test_error_messages_do_not_block(window, qtbot):
    """The default reporter opens a message box without a nested event loop."""
    from skelviz.widgets.main_window import MainWindow

    w = MainWindow(store=window.store)
    qtbot.addWidget(w)
    w.report_error("Title", "something went wrong")  # returns at once
    boxes = [b for b in w.findChildren(QtWidgets.QMessageBox) if b.isVisible()]
    assert boxes and "something went wrong" in boxes[0].text()
    for b in boxes:
        b.close()
