"""The real (CMU) demo: its dataset is the shared cmu8 motion in the papers' layout, its classifiers recognise real
files they never saw (a CMU BVH of a person walking), and real files map onto their skeleton by joint names."""

from __future__ import annotations

import numpy as np
import pytest

from engine import skeletons
from engine.assets import ASSETS_DIR, REAL_DEMO_CHECKPOINTS, REAL_DEMO_DATASET

DEMO = ASSETS_DIR / REAL_DEMO_DATASET


@pytest.fixture(scope="module")
def real_demo():
    from engine.io import load_dataset

    if not DEMO.is_file():
        pytest.skip(f"{DEMO} is absent")
    return load_dataset(DEMO)


def test_cmu8_maps_onto_hdm05_25_as_the_smart_layout_copy(cmu8_path, formats_dir):
    """The alias table cmu8_28 → hdm05_25 is the correspondence behind the shared SMART-layout copy of the same
    clips: the first test window of basketball, mapped and root-centred, equals the npz's first clip."""
    from engine.data import map_clip, resample
    from engine.io import load_dataset

    ds = load_dataset(cmu8_path)
    clip = next(c for c in ds if c.name == "test:basketball_1")
    mapped = resample(map_clip(clip, "hdm05_25"), 30).positions[:60]
    mapped = mapped - mapped[:, 10:11]  # root-centred per frame, as the SMART code stores it
    z = np.load(formats_dir / "smart_npz" / "classTest.npz")
    stats = np.load(formats_dir / "smart_npz" / "preprocess_core.npz")
    smart = (z["clips"][0] * stats["Xstd"][0, :, 0] + stats["Xmean"][0, :, 0]).reshape(60, 25, 3)
    np.testing.assert_allclose(mapped, smart, atol=1e-4)


def test_real_demo_is_the_derivation_of_cmu8(real_demo, cmu8_path):
    """The shipped file is what assets/demo/derive_cmu_demo.py makes from the shared data (rerun it after a change)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("derive_cmu_demo", ASSETS_DIR / "demo" / "derive_cmu_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fresh = module.derive(cmu8_path)
    assert [c.name for c in fresh] == [c.name for c in real_demo]
    assert fresh.class_names == real_demo.class_names
    for a, b in zip(fresh, real_demo):
        assert a.label == b.label and a.fps == b.fps == 30.0
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-6)
    assert real_demo.skeleton.name == "hdm05_25"
    assert DEMO.stat().st_size < 4e6


def _walking_windows(clip, pre) -> np.ndarray:
    """Windows in which the performer walks: the root moves at a walking pace (0.6–2 m/s horizontally over the
    window) and stays up (above 0.8 m: subject 131 crouches and reaches before and after its walk)."""
    x = pre.windows(clip)  # (W, 3, T, V, M) world coordinates
    root = x[:, :, :, clip.skeleton.root, 0]  # (W, 3, T)
    speed = np.linalg.norm(root[:, [0, 2], -1] - root[:, [0, 2], 0], axis=1) / (x.shape[2] / pre.fps)
    up = root[:, clip.skeleton.up_index].min(axis=1)
    return x[(speed > 0.6) & (speed < 2.0) & (up > 0.8)]


def _walking_ranks(formats_dir) -> tuple[np.ndarray, list[str]]:
    """Rank of "walking" (1 = first) in the demo ST-GCN's scores of the walking windows of a CMU BVH no one here
    wrote (subject 131, start–walk–stop, 31 joints, 120 fps), mapped onto the model's skeleton by joint names and
    resampled to its fps as every front end does (api.model_input's path)."""
    from engine import api
    from engine.data import map_clip
    from engine.train import predict

    path = ASSETS_DIR / REAL_DEMO_CHECKPOINTS["stgcn"]
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    clf = api.load_classifier(path)
    clip = map_clip(api.open_clip(formats_dir / "bvh" / "131_01.bvh"), clf.skeleton)
    assert clip.skeleton == clf.skeleton and api.model_input(clf, clip).fps == clf.preprocessing.fps
    walking = _walking_windows(clip, clf.preprocessing)
    assert len(walking) >= 4
    scores = predict(clf, walking)
    k = clf.class_names.index("walking")
    ranks = 1 + (scores > scores[:, k : k + 1]).sum(axis=1)
    return ranks, [clf.class_names[i] for i in scores.argmax(1)]


def test_cmu_bvh_walking_windows_rank_walking_near_the_top(formats_dir):
    """Real files get sensible predictions: on the walking windows of 131_01 the demo ST-GCN ranks walking among
    its top three of eight classes on most windows (chance: 3/8). A broken joint mapping, wrong units or a missed
    resampling push it down (checked: swapping the mapped arms and legs gives ranks 4-5 on every window)."""
    ranks, top = _walking_ranks(formats_dir)
    assert np.mean(ranks <= 3) > 0.5, (ranks.tolist(), top)


@pytest.mark.xfail(strict=True, reason=(
    "issue 19's criterion, not met: subject 131 walks with both hands held at hip height and a high right step "
    "(right-foot height std 0.16 m vs 0.04-0.06 m in cmu8's walking takes), which the demo classifiers, trained "
    "on cmu8's few walking takes, call basketball or soccer; walking ranks 2nd-3rd (see assets/models/README.md)"))
def test_cmu_bvh_walking_windows_rank_walking_first(formats_dir):
    ranks, top = _walking_ranks(formats_dir)
    assert np.mean(ranks == 1) > 0.5, (ranks.tolist(), top)


def test_cmu_bvh_maps_with_the_demo_data_bone_lengths(real_demo, formats_dir):
    """End-to-end check of the BVH joint-name mapping: every hdm05_25 bone of the mapped CMU BVH is as long as in
    the demo data (another CMU subject) within 20 %, and the zero-length bones of the layout are zero in both."""
    from engine.data import map_clip
    from engine.io import load_clip

    hdm = skeletons.get("hdm05_25")
    ref = np.median(np.concatenate([hdm.bone_lengths(c.positions) for c in real_demo]), axis=0)
    bvh = map_clip(load_clip(formats_dir / "bvh" / "131_01.bvh"), hdm)
    got = np.median(hdm.bone_lengths(bvh.positions), axis=0)
    zero = ref < 1e-3
    assert zero.sum() == 3 and np.all(got[zero] < 1e-3), dict(zip(hdm.bone_names, got))
    long = ref > 0.08  # hand bones of a few centimetres differ between subjects more than 20 %
    rel = np.abs(got[long] - ref[long]) / ref[long]
    assert rel.max() < 0.2, dict(zip(np.array(hdm.bone_names)[long], np.round(rel, 3)))


@pytest.mark.parametrize("arch", sorted(REAL_DEMO_CHECKPOINTS))
def test_real_demo_checkpoints_are_small_and_score_what_the_readme_says(arch, real_demo):
    """Each shipped checkpoint is under 5 MB, owns the root-centring preprocessing, knows the demo's classes and
    re-scores its recorded held-out accuracy on its own clip-level split (figures in assets/models/README.md)."""
    from engine.checkpoints import load_classifier
    from engine.train import classifier_split, evaluate

    path = ASSETS_DIR / REAL_DEMO_CHECKPOINTS[arch]
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    assert path.stat().st_size < 5e6
    clf = load_classifier(path)
    assert clf.preprocessing.centre == "frame" and clf.meta["augment"]
    assert list(clf.class_names) == list(real_demo.class_names)
    _, test = classifier_split(clf, DEMO)
    accuracy = evaluate(clf, test)["accuracy"]
    assert accuracy == pytest.approx(clf.meta["held_out_accuracy"], abs=1e-6)
    assert accuracy >= {"stgcn": 0.95, "ctrgcn": 0.9, "mlp": 0.7}[arch]
