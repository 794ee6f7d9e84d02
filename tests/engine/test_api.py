"""engine.api, the facade the app and the studies use: files, model input, predictions, attacks, deviations."""

from __future__ import annotations

import numpy as np
import pytest

from engine import api, skeletons
from engine.data import Clip
from engine.errors import AttackError, SkelvizError, UnsupportedFormatError


@pytest.fixture(scope="module")
def tiny_classifier():
    import torch

    from engine.models import Classifier, build_model

    torch.manual_seed(0)
    net = build_model("mlp", skeletons.get("hdm05_25"), 4, hidden=16)
    return Classifier(net, ["walk", "run", "jump", "wave"], preprocessing={"fps": 30.0, "window": 60},
                      arch="mlp", arch_kwargs={"hidden": 16}).eval()


def _clip(frames=90, fps=30.0, label="run", seed=0) -> Clip:
    rng = np.random.default_rng(seed)
    pos = np.cumsum(rng.normal(0, 0.005, (frames, 25, 3)), axis=0) + rng.normal(0, 0.3, (1, 25, 3))
    return Clip(pos.astype(np.float32), skeletons.get("hdm05_25"), fps, label=label, name="c")


def test_open_dataset_names_single_files_and_maps_real_bvh_to_the_classifier(formats_dir, tiny_classifier):
    ds = api.open_dataset(formats_dir / "bvh" / "131_01.bvh")
    assert len(ds) == 1 and ds.name == "131_01"
    clip = ds[0]
    x = api.model_input(tiny_classifier, clip)  # cmu31-like BVH → hdm05_25, 120 → 30 fps, 60-frame window
    assert x.skeleton == tiny_classifier.skeleton and x.fps == 30.0 and x.num_frames == 60
    root = x.skeleton.root
    # world coordinates, as captured: the subject walks (the classifier centres the motion itself)
    assert np.linalg.norm(x.positions[-1, root] - x.positions[0, root]) > 0.3
    p = api.predict(tiny_classifier, clip)
    assert p.shape == (4,) and p.sum() == pytest.approx(1.0)


def test_model_input_refuses_a_clip_it_cannot_map(tiny_classifier):
    ntu = Clip(np.zeros((60, 25, 3), np.float32) + 0.1, skeletons.get("ntu25"), 30.0)
    with pytest.raises(SkelvizError):
        api.model_input(tiny_classifier, ntu)


def test_attack_forms_come_from_constructor_signatures():
    assert api.attack_methods()[0] == "smart"
    info = api.attack_info("smart")
    names = [s.name for s in info["params"]]
    assert "iterations" in names and "lr" in names
    assert not {"model", "skeleton", "progress", "cancel", "strategy", "target", "top_n", "fps"} & set(names)
    assert info["strategies"] == ("ab", "abn", "sa") and info["has_top_n"]
    update = next(s for s in info["params"] if s.name == "update")
    assert update.choices == ("gd", "adam")


def test_run_attack_reports_live_iterates_and_an_outcome(tiny_classifier):
    from dataclasses import replace

    clip = _clip()
    label = tiny_classifier.class_names[int(np.argmax(api.predict(tiny_classifier, clip)))]
    clip = replace(clip, label=label)  # correctly classified: the attack has to move it
    seen = []
    out = api.run_attack(
        "smart", tiny_classifier, clip, {"iterations": 30, "lr": 0.05},
        progress=lambda d, t, info: seen.append((d, t, info)), strategy="ab", live_every=0.0,
    )
    assert seen and seen[-1][1] == 30 and out.iterations <= seen[-1][0] <= 30  # early stop after success
    live = [info for _d, _t, info in seen if "adversarial" in info]
    assert live and live[0]["adversarial"].shape == (60, 25, 3) and live[0]["probs"].shape == (4,)
    assert out.clean.num_frames == 60 and out.adversarial.positions.shape == out.clean.positions.shape
    assert out.true_class == tiny_classifier.class_names.index(label)
    np.testing.assert_allclose(out.adversarial_probs, api.predict(tiny_classifier, out.adversarial), atol=1e-6)
    assert out.success and out.adversarial_pred != out.true_class
    assert set(out.history) >= {"Lc", "Lp"} and out.metrics["mean_l2"] > 0


@pytest.mark.parametrize("method,params", [("smart", {"iterations": 5}), ("basar", {"queries": 60})])
def test_run_attack_leaves_the_classifier_in_eval_mode(method, params):
    """The app shares one classifier between the attack and the predictions beside it: an attack that left it in
    train mode made batch-norm use one clip's statistics (the clean clip once showed 19% for a wrong class)."""
    clf = api.demo_classifier()
    clip = next(iter(api.demo_dataset()))
    before = api.predict(clf, clip)
    assert not clf.training
    api.run_attack(method, clf, clip, params, strategy="ab")
    assert not clf.training and not any(m.training for m in clf.modules())
    np.testing.assert_allclose(api.predict(clf, clip), before, atol=1e-6)


def test_run_attack_rejects_impossible_targets(tiny_classifier):
    with pytest.raises(AttackError, match="true class"):
        api.run_attack("smart", tiny_classifier, _clip(), {"iterations": 1}, strategy="sa", target="run")
    with pytest.raises(AttackError, match="target"):
        api.run_attack("smart", tiny_classifier, _clip(), {"iterations": 1}, strategy="sa")
    with pytest.raises(AttackError, match="unknown target"):
        api.run_attack("smart", tiny_classifier, _clip(), {"iterations": 1}, strategy="sa", target="fly")


def test_deviations_have_one_row_per_frame():
    a = _clip(frames=40)
    moved = a.positions.copy()
    moved[10:, 3] += [0.0, 0.02, 0.0]
    dev = api.deviations(a, a.with_positions(moved))
    assert dev.position.shape == dev.velocity.shape == dev.acceleration.shape == (40, 25)
    assert dev.bone_length.shape == dev.bone_length_rel.shape == (40, 24)
    assert dev.position[10:, 3] == pytest.approx(0.02, abs=1e-6) and dev.position[:10].max() == 0
    assert dev.velocity[10, 3] == pytest.approx(0.02 * 30, rel=1e-4) and dev.velocity[11:].max() == 0
    assert not np.isnan(dev.bone_length_rel).any()
    with pytest.raises(SkelvizError):
        api.deviations(a, _clip(frames=41))


def test_export_clip_by_suffix(tmp_path):
    clip = _clip(frames=20)
    assert api.export_clip(clip, tmp_path / "c.npz").exists()
    with pytest.raises(UnsupportedFormatError):
        api.export_clip(clip, tmp_path / "c.txt")
