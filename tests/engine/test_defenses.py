"""Defences: BEAT trains only its appended head and predicts by a seeded Bayesian model average, defended
checkpoints load like plain ones, the baselines fine-tune a copy, the smoothing certificate matches Cohen et al.'s
formula (checked against SciPy), EOT averages over a model's randomness, and — on the real cmu8 benchmark — BEAT
keeps clean accuracy and raises robust accuracy against SMART-AB and EOT-SMART."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from engine.attacks import get_attack
from engine.attacks.eot import EOTModel
from engine.checkpoints import load_classifier, save_classifier
from engine.defenses import DEFENCES, BEATClassifier, SmoothedClassifier, get_defence
from engine.defenses.common import clean_accuracy
from engine.defenses.robustness import evaluate_robustness
from engine.defenses.smoothing import certified_radius, certify, clopper_pearson_lower
from engine.errors import CheckpointError, DefenceError, ParameterError
from engine.models.base import Classifier
from engine.skeletons import get as get_skeleton

T = 12
K = 4


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny():
    """A tiny trained MLP classifier on synthetic hdm05_25 clips whose class sets the mean pose offset."""
    from engine.data import WindowSet
    from engine.train import train_classifier

    skeleton = get_skeleton("hdm05_25")
    gen = torch.Generator().manual_seed(0)
    n = 64
    y = torch.arange(n) % K
    base = torch.randn(1, 3, 1, skeleton.num_joints, 1, generator=gen) * 0.3
    offset = torch.randn(K, 3, 1, skeleton.num_joints, 1, generator=gen) * 0.05
    x = base + offset[y] + 0.02 * torch.randn(n, 3, T, skeleton.num_joints, 1, generator=gen)
    ws = WindowSet(x=x.numpy(), y=y.numpy(), clip_index=np.arange(n), class_names=tuple(f"c{i}" for i in range(K)),
                   skeleton=skeleton, fps=30.0)
    torch.set_num_threads(1)
    clf = train_classifier("mlp", ws, arch_kwargs={"num_frames": T, "hidden": 32}, epochs=15, seed=0,
                           device="cpu").classifier
    return clf, ws


def _beat(clf, ws, seed=0, **kw):
    params = dict(num_samples=3, burn_in=1, sgld_steps=2, batch_size=16, hidden=16, device="cpu", seed=seed)
    params.update(kw)
    return get_defence("beat")(clf, **params).fit(ws)


def test_registry_names_and_unknown_defence():
    assert {"beat", "smart-at", "trades", "mart", "smoothing"} <= set(DEFENCES)
    with pytest.raises(DefenceError, match="unknown defence"):
        get_defence("nope")


def test_beat_trains_only_the_appended_head(tiny):
    clf, ws = tiny
    before = {k: v.clone() for k, v in clf.state_dict().items()}
    model = _beat(clf, ws)
    assert isinstance(model, BEATClassifier) and isinstance(model, Classifier)
    # g inside the defended model: bitwise the caller's weights, frozen
    for k, v in model.net.state_dict().items():
        assert torch.equal(v, before[f"net.{k}"]), k
    assert all(not p.requires_grad for p in model.net.parameters())
    # the caller's classifier is untouched
    for k, v in clf.state_dict().items():
        assert torch.equal(v, before[k]), k
    # f did train: its last layer starts at zero, the kept samples are not zero and not all equal
    heads = [h.fc2.weight for h in model.heads]
    assert all(h.abs().sum() > 0 for h in heads)
    assert not torch.equal(heads[0], heads[-1])
    assert model.forward_passes_per_prediction == 3
    # g stays in eval mode even when the defended model is put in train mode
    model.train()
    assert not model.net.training
    model.eval()


def test_beat_bma_is_the_mean_of_the_posterior_softmaxes_and_deterministic(tiny):
    clf, ws = tiny
    x = torch.from_numpy(ws.x[:10])
    a, b, c = _beat(clf, ws, seed=3), _beat(clf, ws, seed=3), _beat(clf, ws, seed=4)
    with torch.no_grad():
        out_a, out_b, out_c = a(x), b(x), c(x)
        phi = a.net.features(a.network_input(x))
        per = torch.stack([torch.softmax(h(phi) + a.net.fc(phi), -1) for h in a.heads])
    assert torch.equal(out_a, out_b)
    assert not torch.equal(out_a, out_c)
    torch.testing.assert_close(out_a.exp(), per.mean(0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a.predict_proba(x).sum(-1), torch.ones(10), rtol=1e-5, atol=1e-5)


def test_beat_checkpoint_loads_like_a_plain_one(tiny, tmp_path):
    from engine import api
    from engine.train import evaluate

    clf, ws = tiny
    model = _beat(clf, ws)
    path = save_classifier(model, tmp_path / "beat.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["defence"]["method"] == "beat" and len(raw["defence"]["heads"]) == 3
    assert raw["meta"]["defence"]["method"] == "beat"
    loaded = load_classifier(path)
    assert isinstance(loaded, BEATClassifier) and loaded.num_samples == 3
    x = torch.from_numpy(ws.x[:6])
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    assert api.load_classifier(path).forward_passes_per_prediction == 3
    assert evaluate(loaded, ws)["accuracy"] == pytest.approx(clean_accuracy(model, torch.from_numpy(ws.x),
                                                                            torch.from_numpy(ws.y)))
    # a damaged defence section is a clear error
    raw["defence"]["heads"][0] = {"fc1.weight": torch.zeros(1)}
    torch.save(raw, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="posterior sample 0"):
        load_classifier(tmp_path / "bad.pt")


@pytest.mark.parametrize("method", ["smart-at", "trades", "mart"])
def test_adversarial_training_baselines_fine_tune_a_copy(tiny, tmp_path, method):
    clf, ws = tiny
    before = {k: v.clone() for k, v in clf.state_dict().items()}
    kw = {"attack_iterations": 2} if method == "smart-at" else {"attack_steps": 2}
    model = get_defence(method)(clf, epochs=1, batch_size=32, device="cpu", **kw).fit(ws)
    assert all(torch.equal(v, before[k]) for k, v in clf.state_dict().items())
    assert any(not torch.equal(v, before[k]) for k, v in model.state_dict().items() if v.is_floating_point())
    assert model.meta["defence"]["method"] == method and model.meta["defence"]["train_seconds"] > 0
    loaded = load_classifier(save_classifier(model, tmp_path / f"{method}.pt"))
    assert type(loaded) is Classifier and loaded.meta["defence"]["method"] == method


def test_defence_rejects_data_of_another_class_set(tiny):
    clf, ws = tiny
    other = copy.copy(ws)
    other.class_names = tuple(reversed(ws.class_names))
    with pytest.raises(CheckpointError):
        get_defence("beat")(clf, device="cpu").fit(other)
    with pytest.raises(DefenceError, match="WindowSet"):
        get_defence("beat")(clf, device="cpu").fit("not data")


# -- randomized smoothing ------------------------------------------------------------------------------------
@pytest.mark.parametrize("k,n,alpha", [(1, 10, 0.05), (50, 100, 0.001), (99, 100, 0.01), (100, 100, 0.001),
                                       (970, 1000, 0.001), (0, 20, 0.05)])
def test_clopper_pearson_lower_bound_matches_scipy(k, n, alpha):
    from scipy.stats import beta

    expected = 0.0 if k == 0 else beta.ppf(alpha, k, n - k + 1)
    assert clopper_pearson_lower(k, n, alpha) == pytest.approx(expected, abs=1e-9)


def test_certified_radius_matches_the_formula():
    from scipy.stats import norm

    for p in (0.51, 0.7, 0.9, 0.999):
        assert certified_radius(p, 0.02) == pytest.approx(0.02 * norm.ppf(p), rel=1e-9)
    assert certified_radius(0.5, 0.02) == 0.0 and certified_radius(0.3, 0.02) == 0.0


class _ByMeanHeight(torch.nn.Module):
    """A deterministic 'network': class 1 when the mean coordinate exceeds a threshold, else class 0."""

    def __init__(self, skeleton, threshold):
        super().__init__()
        self.skeleton, self.num_classes, self.feature_dim = skeleton, 2, 1
        self.threshold = threshold
        self.fc = torch.nn.Identity()

    def features(self, x):
        m = x.flatten(1).mean(1, keepdim=True) - self.threshold
        return torch.cat([-m, m], dim=1) * 1e3

    def forward(self, x):
        return self.features(x)


def test_smoothing_certificate_matches_cohen_formula():
    from scipy.stats import beta, norm

    skeleton = get_skeleton("hdm05_25")
    x = torch.zeros(3, 3, 4, skeleton.num_joints, 1)
    x[:, 1] = 1.0  # every joint 1 m up: nonzero (present) performers; mean coordinate 1/3
    x[1] += 0.0005  # sample 1: just above the threshold (the noise moves the mean by σ/√300 ≈ 0.0006)
    x[2] += 0.01  # sample 2: far above the threshold, always class 1
    sigma = 0.01
    # sample 0 sits exactly on the threshold: its votes are a fair coin
    # a toy that reads absolute heights: no centring in its preprocessing
    base = Classifier(_ByMeanHeight(skeleton, threshold=1.0 / 3), ["low", "high"],
                      preprocessing={"window": 4, "centre": "none"})
    smooth = SmoothedClassifier(base, sigma=sigma, num_noise=50)
    cls, radius, p_lower = certify(smooth, x, n0=32, n=400, alpha=0.001, seed=1)
    assert cls[2] == 1
    # the always-right sample: k = n, so p_A = alpha^(1/n) and R = σ Φ⁻¹(p_A)
    assert p_lower[2] == pytest.approx(beta.ppf(0.001, 400, 1), abs=1e-9)
    assert radius[2] == pytest.approx(sigma * norm.ppf(beta.ppf(0.001, 400, 1)), rel=1e-6)
    # the sample on the boundary: no certificate (abstain, radius 0)
    assert cls[0] == -1 and radius[0] == 0.0 and p_lower[0] < 0.5
    # sample 1: certified as class 1 with a smaller radius than sample 2
    assert cls[1] == 1 and 0.0 < radius[1] < radius[2]
    # every certified radius is σ Φ⁻¹ of its bound
    for r, p in zip(radius, p_lower):
        assert float(r) == pytest.approx(sigma * norm.ppf(float(p)) if p > 0.5 else 0.0, rel=1e-6, abs=1e-12)
    # majority-vote prediction: deterministic, the vote frequencies, the same clip alone or in a batch
    with torch.no_grad():
        p1, p2 = smooth(x), smooth(x)
        alone = smooth(x[2:3])
    assert torch.equal(p1, p2) and torch.equal(alone[0], p1[2])
    assert int(p1[2].argmax()) == 1 and p1[2].exp().max() == pytest.approx(1.0)
    assert smooth.forward_passes_per_prediction == 50


def test_smoothing_defence_round_trip(tiny, tmp_path):
    clf, ws = tiny
    model = get_defence("smoothing")(clf, sigma=0.005, num_noise=8, epochs=1, device="cpu").fit(ws)
    assert isinstance(model, SmoothedClassifier)
    loaded = load_classifier(save_classifier(model, tmp_path / "smooth.pt"))
    assert isinstance(loaded, SmoothedClassifier) and loaded.sigma == 0.005 and loaded.num_noise == 8
    x = torch.from_numpy(ws.x[:8])
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


# -- EOT ------------------------------------------------------------------------------------------------------
def test_eot_model_averages_over_the_posterior_and_plain_models_pass_through(tiny):
    clf, ws = tiny
    model = _beat(clf, ws)
    x = torch.from_numpy(ws.x[:5])
    with torch.no_grad():
        eot = EOTModel(model, draws=10)(x)
        phi = model.net.features(model.network_input(x))
        expected = torch.stack([torch.log_softmax(h(phi) + model.net.fc(phi), -1) for h in model.heads]).mean(0)
        torch.testing.assert_close(eot, expected)
        torch.testing.assert_close(EOTModel(clf)(x), torch.log_softmax(clf(x), -1))
        two = EOTModel(model, draws=2, seed=0)
        assert two.model.stochastic_logits(x, 2, two.generator).shape == (2, 5, K)


def test_eot_smart_judges_success_by_the_defended_model(tiny):
    clf, ws = tiny
    smooth = SmoothedClassifier(clf, sigma=0.005, num_noise=8)
    x, y = torch.from_numpy(ws.x[:6]), torch.from_numpy(ws.y[:6])
    result = get_attack("eot-smart")(smooth, iterations=5, lr=0.05, eot_samples=4, record_history=False)(x, y)
    with torch.no_grad():
        pred = smooth(result.adversarial).argmax(1)
    assert torch.equal(result.predictions, pred)
    assert torch.equal(result.success, pred != y)
    assert result.params["method"] == "eot-smart" and result.params["eot_samples"] == 4


# -- evidence on the real cmu8 benchmark -----------------------------------------------------------------------
# The base is the fully connected classifier of the SMART/BEAT papers (registry "mlp", 256 hidden units): its
# BEAT run takes ~1.5 min on one CPU core here, an ST-GCN's several times longer. BEAT runs with its defaults.
ATTACK = {"iterations": 40, "lr": 0.005, "record_history": False}


@pytest.fixture(scope="module")
def cmu8_mlp(cmu8_benchmark):
    from engine.train import train_classifier

    train, _ = cmu8_benchmark
    torch.set_num_threads(1)
    # world-coordinate input centred inside the model, the field's augmentation (yaw, scale, shift, jitter)
    return train_classifier("mlp", train, arch_kwargs={"hidden": 256}, epochs=30, seed=0, device="cpu",
                            preprocessing={"stride": 20}, augment=True).classifier


@pytest.fixture(scope="module")
def cmu8_beat(cmu8_benchmark, cmu8_mlp):
    """BEAT with its defaults on the cmu8 MLP."""
    train, _ = cmu8_benchmark
    return get_defence("beat")(cmu8_mlp, device="cpu", seed=0).fit(train)


@pytest.mark.slow
def test_beat_keeps_clean_accuracy_and_does_not_lower_robust_accuracy_on_cmu8(cmu8_benchmark, cmu8_mlp, cmu8_beat):
    train, test = cmu8_benchmark
    base, beat = cmu8_mlp, cmu8_beat
    x, y = torch.from_numpy(test.x), torch.from_numpy(test.y)
    clean_base, clean_beat = clean_accuracy(base, x, y), clean_accuracy(beat, x, y)
    # BEAT's head overfits the 156 training windows (train accuracy 0.99-1.0), so its held-out clean accuracy
    # swings with the seed: measured 0.74 / 0.90 / 0.87 / 0.82 / 0.84 / 0.86 for seeds 0-5 (base 0.825). A claim
    # about the method is a claim over seeds: the mean over seeds 0-2 must stay within 3 points of the base, and
    # no single seed may lose more than 10.
    seeds = [clean_beat] + [clean_accuracy(get_defence("beat")(base, device="cpu", seed=s).fit(train), x, y)
                            for s in (1, 2)]
    assert sum(seeds) / len(seeds) >= clean_base - 0.03, (clean_base, seeds)
    assert min(seeds) >= clean_base - 0.10, (clean_base, seeds)
    # attack the windows both models get right, so that robust accuracy compares like with like
    with torch.no_grad():
        both = torch.nonzero((base(x).argmax(1) == y) & (beat(x).argmax(1) == y)).squeeze(1)[:24]
    attacks = [("smart", ATTACK), ("eot-smart", {**ATTACK, "eot_samples": 5})]
    r_base = evaluate_robustness(base, x[both], y[both], attacks)
    r_beat = evaluate_robustness(beat, x[both], y[both], attacks)
    print("clean", clean_base, clean_beat, "robust base", {k: v["robust_accuracy"] for k, v in r_base["attacks"].items()},
          "robust beat", {k: v["robust_accuracy"] for k, v in r_beat["attacks"].items()})
    # Measured on world-coordinate input (the model centres it itself; base trained with the field's augmentation),
    # 24 windows, seed 0: clean accuracy base 0.825, BEAT 0.753; robust accuracy base 0.125 / 0.125, BEAT
    # 0.417 / 0.458 (SMART / EOT-SMART, 40 iterations). Before the threat-model fix the attacks moved the root channel of
    # centred input; the honest gain is small (bench/defence.py has the full table, where TRADES and MART do
    # better than BEAT on the MLP-512).
    gains = []
    for name in ("smart", "eot-smart"):
        assert r_base["attacks"][name]["robust_accuracy"] < 1.0, "the attack budget is too small to test anything"
        assert r_beat["attacks"][name]["robust_accuracy"] >= r_base["attacks"][name]["robust_accuracy"], name
        gains.append(r_beat["attacks"][name]["robust_accuracy"] - r_base["attacks"][name]["robust_accuracy"])
    assert max(gains) > 0, gains


@pytest.mark.slow
def test_basar_and_transfer_attack_defended_models_unchanged(cmu8_benchmark, cmu8_mlp, cmu8_beat):
    """Reduced BASAR budget (250 queries). The black-box attacks take a BEAT or smoothed model like any other:
    BASAR through its label oracle, transfer by replaying clips crafted on the undefended base."""
    from engine.attacks.basar import BASAR
    from engine.attacks.manifold import estimate_joint_angle_limits
    from engine.attacks.transfer import transfer_attack

    train, test = cmu8_benchmark
    x, y = torch.from_numpy(test.x), torch.from_numpy(test.y)
    tx, ty = torch.from_numpy(train.x), torch.from_numpy(train.y)
    smooth = SmoothedClassifier(cmu8_mlp, sigma=0.005, num_noise=8)
    limits = estimate_joint_angle_limits(train.x, train.skeleton, source="cmu8 benchmark train")
    victims = {"beat": cmu8_beat, "smoothing": smooth}
    for name, victim in victims.items():
        with torch.no_grad():
            sel = torch.nonzero(victim(x).argmax(1) == y).squeeze(1)[:3]
        attack = BASAR(victim, joint_limits=limits, queries=250, starts=tx, start_labels=ty)
        r = attack(x[sel], y[sel])
        assert torch.equal(r.queries, attack.oracle.counts) and (r.queries <= 250).all(), name
        assert r.success.any(), name
        with torch.no_grad():
            pred = victim(r.adversarial).argmax(1)
        assert torch.equal(pred[r.success], r.predictions[r.success]), name
        assert (pred[r.success] != y[sel][r.success]).all(), name
        assert (r.extras["bone_length_error"][r.success] < 1e-5).all(), name
    sel = torch.arange(24)
    result = transfer_attack(get_attack("smart")(cmu8_mlp, **ATTACK), victims, x[sel], y[sel])
    assert result.surrogate_success.any()
    for name, outcome in result.victims.items():
        with torch.no_grad():
            assert torch.equal(outcome.predictions, victims[name](result.adversarial).argmax(1)), name
        assert outcome.n > 0 and 0.0 <= outcome.success_rate <= 1.0, name


def test_app_facade_lists_and_applies_defences_on_a_clip_collection(tiny):
    from engine import api
    from engine.data import ClipDataset

    clf, ws = tiny
    assert api.defence_methods()[0] == "beat"
    assert {"num_samples", "lam", "adversary_class"} <= {p.name for p in api.defence_params("beat")}
    clips = ClipDataset([ws.clip(i) for i in range(0, len(ws), 2)], ws.class_names, skeleton=ws.skeleton)
    calls = []
    model = api.apply_defence("beat", clf, clips, {"num_samples": 2, "burn_in": 0, "sgld_steps": 1, "hidden": 8},
                              progress=lambda d, t, info: calls.append((d, t)))
    assert isinstance(model, BEATClassifier) and model.num_samples == 2
    assert calls and calls[-1][0] == calls[-1][1]


def test_robust_accuracy_is_judged_by_the_model_and_respects_a_budget(tiny):
    clf, ws = tiny
    x, y = torch.from_numpy(ws.x[:8]), torch.from_numpy(ws.y[:8])
    with pytest.raises(ParameterError, match=r"unknown parameter\(s\) 'no_such_param'"):  # never silently dropped
        evaluate_robustness(clf, x, y, [("smart", {"iterations": 30, "no_such_param": 1})])
    attacks = [("smart", {"iterations": 30, "lr": 0.05, "record_history": False})]
    free = evaluate_robustness(clf, x, y, attacks)
    capped = evaluate_robustness(clf, x, y, attacks, budget=0.0)
    entry = free["attacks"]["smart"]
    assert entry["params"]["iterations"] == 30
    assert entry["robust_accuracy"] < free["clean_accuracy"], "the attack should break something here"
    assert entry["mean_joint_displacement_m"] > 0
    # with a zero displacement budget no attacked window counts as broken
    assert capped["attacks"]["smart"]["robust_accuracy"] == pytest.approx(capped["clean_accuracy"])


@pytest.mark.parametrize("method", ["trades", "mart"])
def test_kl_baselines_stay_finite_on_a_very_confident_model(method):
    """A confident model's softmax has exact zeros; with probabilities as the KL target the gradient holds
    log(0) and the fine-tuning turned NaN (the cmu8 MLP-512 collapsed to one class). The KL is taken in log
    space, so the weights stay finite."""
    from engine.defenses import build
    from engine.models import build_model

    torch.manual_seed(0)
    sk = get_skeleton("hdm05_25")
    net = build_model("mlp", sk, 3, num_frames=8, hidden=16)
    with torch.no_grad():
        net.fc.weight.mul_(1e4)  # logit gaps of thousands: float32 probabilities underflow to 0
    clf = Classifier(net, ["a", "b", "c"], preprocessing={"window": 8}, arch="mlp",
                     arch_kwargs={"num_frames": 8, "hidden": 16})
    x = 0.3 * torch.randn(8, 3, 8, sk.num_joints, 1, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = clf(x).argmax(1)
    defended = build(method, clf, epochs=2, batch_size=4, device="cpu").fit((x, y))
    assert all(torch.isfinite(p).all() for p in defended.parameters())
