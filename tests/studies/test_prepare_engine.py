"""Stimulus preparation with the real engine: the demo data set, an ST-GCN checkpoint and a registered attack."""

from __future__ import annotations

import pytest

from engine.assets import DEMO_DATASET, asset_path
from engine.io import load_dataset
from engine.models import Classifier, build_model
from studies.prepare import prepare_stimuli
from studies.protocol import parse_protocol
from studies.stimuli import open_stimuli

PROTOCOL = """
[study]
title = "engine"
kind = "2afc"
question = "Which motion looks more natural?"
seed = 1
consent = "c"
instructions = "i"

[catch]
count = 1
method = "jitter"

[[conditions]]
name = "smart"
stimuli = ["clean", "smart"]

[prepare]
clips = 2

[[prepare.methods]]
name = "smart"
attack = "smart"
params = { iterations = 2 }
"""


@pytest.mark.slow
def test_prepare_with_the_engine(tmp_path):
    from engine.attacks import ATTACKS  # importing the package registers the built-in attacks

    if "smart" not in ATTACKS:
        pytest.skip("the SMART attack is not registered in this build")
    checkpoint = pytest.importorskip("engine.models.checkpoint")
    data = load_dataset(asset_path(DEMO_DATASET))
    skeleton = data[0].skeleton
    clf = Classifier(build_model("stgcn", skeleton, len(data.class_names)), list(data.class_names),
                     preprocessing={"fps": 30.0, "window": 24}, arch="stgcn")
    checkpoint.save_classifier(clf, tmp_path / "m.pt")
    clf = checkpoint.load_classifier(tmp_path / "m.pt").eval()
    protocol = parse_protocol(PROTOCOL)
    stim = prepare_stimuli(protocol, clf, [data[i] for i in range(len(data))], tmp_path / "stim.h5")
    smart = [s for s in stim.stimuli.values() if s.method == "smart"]
    assert len(smart) == 2
    for s in smart:
        clean = stim[f"{s.clip}~clean"]
        assert s.positions.shape == clean.positions.shape == (24, skeleton.num_joints, 3)
        assert s.attack == "smart" and s.params["iterations"] == 2 and s.success in (0, 1)
        assert s.prediction in data.class_names and clean.prediction in data.class_names
    open_stimuli(tmp_path / "stim.h5", protocol)
