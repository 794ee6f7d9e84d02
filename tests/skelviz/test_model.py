"""Headless tests of the app's Qt-free state: playback clock, scene, settings."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from skelviz.model.playback import Playback
from skelviz.model.scene import Scene
from skelviz.model.session import Session
from skelviz.model.settings import MAX_RECENT, MemoryStore, Settings
from tests.skelviz.conftest import random_walk_clip


def test_model_package_imports_no_qt():
    import subprocess

    code = "import sys, skelviz.model; assert not [m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph'))]"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- playback ------------------------------------------------------------------------------------------------
def test_playback_advances_by_real_time_at_clip_rate_and_speed():
    pb = Playback(60, 30.0)
    frames = []
    pb.frame_changed.connect(frames.append)
    pb.advance(1.0)  # not playing: nothing happens
    assert pb.frame == 0
    pb.play()
    pb.advance(0.5)
    assert pb.frame == 15
    pb.set_speed(2.0)
    pb.advance(0.25)
    assert pb.frame == 30
    # Fractions of a frame accumulate instead of being lost at a 60 Hz timer.
    for _ in range(10):
        pb.advance(1 / 60)
    assert pb.frame == 40
    assert frames[-1] == 40


def test_playback_loops_or_stops_at_the_end():
    pb = Playback(10, 10.0, loop=True)
    pb.play()
    pb.advance(1.25)
    assert pb.frame == 2 and pb.playing
    pb.set_loop(False)
    pb.advance(5.0)
    assert pb.frame == 9 and not pb.playing
    pb.play()  # play at the end without looping starts over
    assert pb.frame == 0


def test_playback_step_seek_home_end():
    pb = Playback(5, 30.0, loop=True)
    pb.step(-1)
    assert pb.frame == 4  # wraps when looping
    pb.set_loop(False)
    pb.step(3)
    assert pb.frame == 4  # clamps otherwise
    pb.seek(-7)
    assert pb.frame == 0
    pb.end()
    assert pb.frame == 4 and pb.time == pytest.approx(4 / 30)
    pb.home()
    assert pb.frame == 0
    pb.set_length(3, 30.0)
    pb.end()
    assert pb.frame == 2
    with pytest.raises(ValueError):
        pb.set_speed(0)


# -- scene ---------------------------------------------------------------------------------------------------
def test_scene_deviation_colouring_of_two_clips():
    a = random_walk_clip(0)
    moved = a.positions.copy()
    moved[:, 17] += [0.05, 0.0, 0.0]  # LeftHand moves 5 cm outwards: the left forearm bone stretches
    b = a.with_positions(moved)
    scene = Scene()
    events = []
    scene.deviations_changed.connect(lambda: events.append("dev"))
    scene.set_clip("A", a)
    assert scene.colour_values() is None  # nothing to compare with
    scene.set_clip("B", b, "adversarial")
    assert scene.comparable and events
    values = scene.colour_values()  # default: bone-length change, per bone
    sk = a.skeleton
    assert values.shape == (a.num_frames, sk.num_bones)
    forearm = int(np.nonzero(sk.bone_children == 17)[0][0])
    assert values[:, forearm].min() > 0.03
    assert np.delete(values, [forearm, *np.nonzero(sk.bone_parents == 17)[0]], axis=1).max() < 1e-6
    scene.set_colour_mode("position")
    values = scene.colour_values()
    assert values.shape == (a.num_frames, sk.num_bones)
    assert values[:, forearm] == pytest.approx(0.05, abs=1e-5)
    assert scene.colour_range()[1] == pytest.approx(0.05, abs=1e-5)
    scene.set_colour_mode("none")
    assert scene.colour_values() is None
    with pytest.raises(ValueError):
        scene.set_colour_mode("nonsense")


def test_scene_titles_predictions_and_joint_report():
    a = random_walk_clip(1)
    scene = Scene()
    assert "no clip" in scene.title("B")
    scene.set_class_names(["walk", "run"])
    scene.set_clip("A", a, "original", probs=[0.2, 0.8])
    assert scene.prediction("A") == ("run", pytest.approx(0.8))
    assert scene.title("A") == "original: walk1 — run (80%)"
    scene.set_clip("B", a.with_positions(a.positions + 0.01))
    report = scene.joint_report("B", 17, 3)
    assert report.startswith("LeftHand (joint 17) frame 3") and "Δpos 17.3 mm" in report


def test_scene_matches_frames_of_clips_at_different_rates():
    scene = Scene()
    scene.set_clip("A", random_walk_clip(0, frames=60, fps=30.0))
    scene.set_clip("B", random_walk_clip(0, frames=240, fps=120.0))
    assert not scene.comparable
    assert scene.frame_for("B", 30) == 120
    assert scene.frame_for("B", 10_000) == 239


def test_session_keeps_playback_length_in_step_with_the_clips():
    session = Session()
    session.scene.set_clip("A", random_walk_clip(0, frames=40))
    assert session.playback.num_frames == 40
    session.scene.set_clip("B", random_walk_clip(0, frames=90))
    assert session.playback.num_frames == 90
    session.playback.set_speed(0.5)
    assert session.settings.speed == 0.5


# -- settings ------------------------------------------------------------------------------------------------
def test_settings_round_trip_and_survive_corrupt_entries(tmp_path):
    store = MemoryStore()
    s = Settings(speed=2.0, loop=False, colormap="viridis", show_trails=True)
    for i in range(MAX_RECENT + 3):
        s.add_recent(tmp_path / f"f{i}.bvh")
    s.add_recent(tmp_path / "f3.bvh")
    s.save(store)
    back = Settings.load(store)
    assert back == s
    assert len(back.recent_files) == MAX_RECENT and back.recent_files[0].endswith("f3.bvh")
    # QSettings' INI backend returns strings; a garbage value falls back to the default.
    strings = MemoryStore(speed="garbage", loop="false", show_grid="true", recent_files="only.bvh")
    loaded = Settings.load(strings)
    assert loaded.speed == 1.0 and loaded.loop is False and loaded.show_grid is True
    assert loaded.recent_files == ["only.bvh"]
