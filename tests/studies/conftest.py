"""Fixtures for the study tests: small synthetic stimulus files written with the real writer."""

from __future__ import annotations

import numpy as np
import pytest

from engine.skeletons import get as get_skeleton
from studies.stimuli import Stimulus, stimulus_id, write_stimuli

CLASSES = ["walking", "running", "jumping"]


def make_stimulus_file(path, methods=("clean", "smart", "jitter"), n_clips=6, frames=20, seed=0, classes=CLASSES):
    """A stimulus file with ``n_clips`` clips (labels cycling over CLASSES), one stimulus per method."""
    skeleton = get_skeleton("hdm05_25")
    rng = np.random.default_rng(seed)
    stimuli = []
    for c in range(n_clips):
        clip = f"test/{classes[c % len(classes)]}_{c}"
        base = np.cumsum(rng.normal(0, 0.01, (frames, skeleton.num_joints, 3)), axis=0).astype(np.float32)
        base += rng.normal(0, 0.3, (1, skeleton.num_joints, 3)).astype(np.float32)
        for m in methods:
            pos = base if m == "clean" else base + rng.normal(0, 0.02, base.shape).astype(np.float32)
            stimuli.append(
                Stimulus(stimulus_id(clip, m), clip, m, classes[c % len(classes)], pos, true_class=c % len(classes),
                         attack="" if m in ("clean", "jitter") else m, params={"iterations": 3})
            )
    return write_stimuli(path, stimuli, skeleton=skeleton, fps=30.0, class_names=list(classes))


@pytest.fixture
def stimulus_file(tmp_path):
    return make_stimulus_file(tmp_path / "stimuli.h5")
