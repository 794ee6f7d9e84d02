"""Fixtures for the app tests: Qt configured as the app does it, small clips, a small classifier, a window.

Widget and GL tests run under Xvfb (pytest-xvfb) with Mesa; the classifier is the shipped demo checkpoint
when it is installed, otherwise a small seeded network, so the tests run before and after the assets land.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine import skeletons
from engine.data import Clip, ClipDataset


def pytest_configure(config):
    # Must precede the QApplication (pytest-qt creates it at the first GUI test): shared GL contexts and
    # multisampling, exactly as skelviz.app sets them.
    try:
        from PySide6 import QtWidgets
    except ImportError:  # pragma: no cover - no Qt: the GUI tests are skipped by importorskip
        return
    if QtWidgets.QApplication.instance() is None:
        from skelviz.app import configure_qt

        configure_qt()


def random_walk_clip(seed: int = 0, frames: int = 60, fps: float = 30.0, label: str | None = "walk") -> Clip:
    """A plausible-looking hdm05_25 clip: a rest pose from bone offsets, translated along a smooth path and
    wiggled a little (enough to plumb the app; the synthetic demo dataset is used when it exists)."""
    sk = skeletons.get("hdm05_25")
    rng = np.random.default_rng(seed)
    offsets = np.zeros((sk.num_joints, 3))
    # A crude stick figure: legs down, spine up, arms out, from the joint names.
    for j, name in enumerate(sk.joint_names):
        n = name.lower()
        side = 1.0 if n.startswith("l") else -1.0
        if "hip" in n:
            offsets[j] = [0.1 * side, -0.05, 0]
        elif "upleg" in n or n.endswith("leg"):
            offsets[j] = [0, -0.42, 0]
        elif "foot" in n:
            offsets[j] = [0, -0.4, 0.02]
        elif "toe" in n:
            offsets[j] = [0, -0.05, 0.12]
        elif "spine" in n or n.startswith("neck"):
            offsets[j] = [0, 0.2, 0]
        elif n.endswith("arm") and "fore" not in n:
            offsets[j] = [0.18 * side, -0.02, 0]
        elif "forearm" in n:
            offsets[j] = [0.28 * side, 0, 0]
        elif "hand" in n or "thumb" in n:
            offsets[j] = [0.08 * side, 0, 0.02]
    offsets[sk.root] = [0, 1.0, 0]
    rest = np.zeros_like(offsets)
    for j in sk.topological_order:
        p = sk.parents[j]
        rest[j] = offsets[j] + (rest[p] if p >= 0 else 0)
    t = np.arange(frames)[:, None, None] / fps
    wiggle = 0.03 * np.sin(2 * np.pi * (1.0 + rng.random()) * t + rng.random((1, sk.num_joints, 3)) * 6)
    path = np.concatenate([0.4 * t[..., 0], 0 * t[..., 0], 0.2 * t[..., 0] * rng.random()], axis=-1)[:, :, None]
    pos = rest[None] + wiggle + path.transpose(0, 2, 1)
    return Clip(pos.astype(np.float32), sk, fps, label=label, name=f"walk{seed}")


@pytest.fixture(scope="session")
def dataset() -> ClipDataset:
    try:
        from engine.synth import generate_dataset

        return generate_dataset(n_per_class=1, seed=5)
    except ImportError:
        clips = [random_walk_clip(i, label=c) for i, c in enumerate(["walk", "run", "jump", "wave"])]
        return ClipDataset(clips, name="random walks")


def _small_classifier(class_names, seed: int = 0):
    import torch
    from torch import nn

    from engine.models import Classifier, SkeletonNet

    class TinyNet(SkeletonNet):
        """Mean and spread over time of every joint → 32 features → classes."""

        def __init__(self, skeleton, num_classes):
            super().__init__(skeleton, num_classes)
            self.feature_dim = 32
            self.body = nn.Sequential(nn.Linear(6 * skeleton.num_joints, 32), nn.Tanh())
            self.fc = nn.Linear(32, num_classes)

        def features(self, x):
            x = x[..., 0]  # (N, 3, T, V)
            stats = torch.cat([x.mean(dim=2), x.std(dim=2)], dim=1).flatten(1)
            return self.body(stats * 5.0)

    torch.manual_seed(seed)
    net = TinyNet(skeletons.get("hdm05_25"), len(class_names))
    return Classifier(net, list(class_names), preprocessing={"fps": 30.0, "window": 60}, arch="tiny").eval()


@pytest.fixture(scope="session")
def classifier(dataset):
    """The synthetic demo's ST-GCN when shipped, else a small seeded network over the fixture dataset's classes."""
    from engine import api
    from engine.errors import SkelvizError

    try:
        clf = api.demo_classifier("stgcn", demo="synthetic")
        if list(clf.class_names) == list(dataset.class_names):
            return clf
    except (SkelvizError, ImportError):
        pass
    return _small_classifier(dataset.class_names)


@pytest.fixture
def small_classifier(dataset):
    return _small_classifier(dataset.class_names)


class Errors(list):
    """An error reporter for the window that records instead of opening a dialog."""

    def __call__(self, title: str, message: str) -> None:
        self.append((title, message))


@pytest.fixture
def errors() -> Errors:
    return Errors()


@pytest.fixture
def window(qtbot, errors, dataset, classifier):
    """The main window with the fixture dataset and classifier loaded and clip 0 on the left."""
    from skelviz.model.settings import MemoryStore
    from skelviz.widgets.main_window import MainWindow

    w = MainWindow(store=MemoryStore(), error_reporter=errors)
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    w.session.add_collection(dataset)
    w.session.set_classifier(classifier, "test classifier")
    w.show_clip("A", dataset[0])
    qtbot.waitUntil(lambda: w.session.scene.probs("A") is not None, timeout=30000)
    yield w
    w.workers.cancel_all()
    w.workers.wait(10000)
