"""Stimulus preparation: attacks run through the engine's protocol; provenance stored; the file validates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from engine.attacks.base import ATTACKS, Attack, AttackParams, AttackResult
from engine.data import Clip
from engine.errors import StudyError
from engine.models.base import Classifier, SkeletonNet
from engine.params import param
from engine.skeletons import get as get_skeleton
from studies.prepare import prepare_stimuli, select_clips
from studies.protocol import load_protocol, parse_protocol
from studies.stimuli import open_stimuli, positions_hash

CLASSES = ["walk", "jump"]


class MeanPoseNet(SkeletonNet):
    """Tiny classifier on the mean height of the joints: enough for an attack to push across a boundary."""

    def __init__(self, skeleton, num_classes):
        super().__init__(skeleton, num_classes)
        self.feature_dim = 3
        self.fc = nn.Linear(3, num_classes)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[0.0, -10.0, 0.0], [0.0, 10.0, 0.0]]))
            self.fc.bias.zero_()

    def features(self, x):
        return x.mean(dim=(2, 3, 4))


@dataclass(frozen=True)
class LiftParams(AttackParams):
    height: float = param(0.5, "how far every joint but the root is lifted", unit="m")


class Lift(Attack):
    """Test attack: lifts every joint but the root by ``height`` metres (a fixed, visible perturbation; lifting
    the whole clip would be a translation, which the classifier's own root centring erases)."""

    Params = LiftParams

    def run(self, x, y, target):
        adv = x.clone()
        adv[:, 1] += self.height
        root = self.model.skeleton.root
        adv[:, 1, :, root] -= self.height
        pred = self.model(adv).argmax(-1)
        n = x.shape[0]
        return AttackResult(adv.cpu(), (pred != y).cpu(), torch.ones(n, dtype=torch.long), pred.cpu(),
                            params={"height": self.height})


@pytest.fixture
def lift_attack(monkeypatch):
    monkeypatch.setitem(ATTACKS, "lift", Lift)


def _classifier():
    sk = get_skeleton("hdm05_25")
    return Classifier(MeanPoseNet(sk, 2), CLASSES, preprocessing={"fps": 30.0, "window": 16, "centre": "frame"})


def _clips(n=6):
    sk = get_skeleton("hdm05_25")
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        pos = rng.normal(0, 0.2, (40, sk.num_joints, 3)).astype(np.float32)
        pos[:, :, 0] += np.linspace(0, 2, 40)[:, None]  # moves forward
        pos[:, :, 1] -= 0.3  # below the root on average → "walk"
        out.append(Clip(pos, sk, 60.0, label=CLASSES[i % 2], name=f"clip{i}"))
    return out


PROTOCOL = load_protocol("naturalness").text.replace('attack = "smart"', 'attack = "lift"\nparams = { height = 0.7 }')


def test_prepare_runs_attacks_and_stores_provenance(tmp_path, lift_attack):
    protocol = parse_protocol(PROTOCOL.replace("clips = 12", "clips = 4"))
    out = tmp_path / "stim.h5"
    seen = []
    stim = prepare_stimuli(protocol, _classifier(), _clips(), out, meta={"model": "m.pt", "model_sha256": "abc"},
                           progress=lambda d, t, s: seen.append((d, t)))
    assert seen[-1] == (8, 8)
    assert {s.method for s in stim.stimuli.values()} == {"clean", "smart", "jitter"}
    assert len({s.clip for s in stim.stimuli.values()}) == 4
    assert sorted(s.label for s in stim.stimuli.values() if s.method == "clean") == ["jump", "jump", "walk", "walk"]
    smart = [s for s in stim.stimuli.values() if s.method == "smart"]
    for s in smart:
        clean = stim[f"{s.clip}~clean"]
        assert s.attack == "lift" and s.params["height"] == 0.7
        assert s.positions.shape == (16, 25, 3)  # 60 fps resampled to 30, the first 16-frame window
        lift = s.positions[..., 1] - clean.positions[..., 1]
        root = clean_root = 10  # hdm05_25 Hips
        np.testing.assert_allclose(np.delete(lift, root, axis=1), 0.7, atol=1e-5)
        np.testing.assert_allclose(lift[:, clean_root], 0.0, atol=1e-5)
        assert s.prediction == "jump" and s.success == (s.label == "walk")
        assert clean.prediction == "walk"
    # stimuli are the world-coordinate motions the classifier judged: the clips move forward along x
    clean = next(s for s in stim.stimuli.values() if s.method == "clean")
    assert np.ptp(clean.positions[:, 10, 0]) > 0.2
    assert stim.meta["protocol_sha256"] == protocol.sha256 and stim.meta["model_sha256"] == "abc"
    assert all(s.sha256 == positions_hash(s.positions) for s in stim.stimuli.values())
    open_stimuli(out, protocol)  # a participant could start now


def test_prepare_refuses_a_protocol_it_cannot_fill(tmp_path, lift_attack):
    bad = parse_protocol(PROTOCOL.replace('stimuli = ["clean", "smart"]', 'stimuli = ["clean", "basar"]'))
    with pytest.raises(StudyError, match=r"shows method\(s\) \['basar'\]"):
        prepare_stimuli(bad, _classifier(), _clips(), tmp_path / "x.h5")
    # a misspelt attack parameter is refused when the protocol is read (typed parameters, engine.params)
    with pytest.raises(StudyError, match=r"attack 'lift': unknown parameter\(s\) 'heigth'; the parameters are height"):
        parse_protocol(PROTOCOL.replace("height = 0.7", "heigth = 0.7"))
    with pytest.raises(StudyError, match="parameter 'height' must be a number"):
        parse_protocol(PROTOCOL.replace("height = 0.7", 'height = "high"'))
    assert not (tmp_path / "x.h5").exists()


def test_select_clips_spreads_over_classes():
    clips = _clips(10)
    chosen = select_clips(clips, CLASSES, 4, seed=1)
    assert sorted(c.label for c in chosen) == ["jump", "jump", "walk", "walk"]
    assert [c.name for c in chosen] == [c.name for c in select_clips(clips, CLASSES, 4, seed=1)]
    assert [c.label for c in select_clips(clips, CLASSES, 3, seed=1, classes=["walk"])] == ["walk"] * 3
    with pytest.raises(StudyError, match="not classes of the model"):
        select_clips(clips, CLASSES, 3, seed=1, classes=["swim"])
