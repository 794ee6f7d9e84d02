"""TASAR and the transfer baselines (DIM, ensemble, SVRE): the Bayesian post-training, the motion-dynamics model,
budgets, and the equivalences that pin the implementations down. Tiny models and the cmu8 fixture."""

from __future__ import annotations

import copy

import pytest
import torch

from engine import skeletons
from engine.attacks import build
from engine.attacks.tasar import (
    BayesianSurrogate,
    dynamics_gradient,
    head_logits,
    motion_dynamics,
    post_train_bayesian,
)
from engine.attacks.transfer_baselines import temporal_resample
from engine.errors import AttackError
from engine.models import Classifier, build_model
from engine.models.base import preset_kwargs
from engine.train import evaluate

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SK = skeletons.get("hdm05_25")


def _tiny(seed: int, skeleton=SK, classes: int = 4) -> Classifier:
    torch.manual_seed(seed)
    net = build_model("mlp", skeleton, classes, **preset_kwargs("mlp", "small"))
    return Classifier(net, [f"c{i}" for i in range(classes)], preprocessing={"fps": 30.0}).eval()


def _clips(n: int = 4, t: int = 16, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 3, 1, SK.num_joints, 1, generator=g) * 0.3
    drift = torch.linspace(0, 1, t).view(1, 1, t, 1, 1) * torch.randn(n, 3, 1, 1, 1, generator=g) * 0.2
    return base + drift + 0.01 * torch.randn(n, 3, t, SK.num_joints, 1, generator=g)


def _labels(model, x):
    with torch.no_grad():
        return model(x).argmax(1)


@pytest.fixture(scope="module")
def bayes(cmu8_stgcn, cmu8_benchmark):
    train, _ = cmu8_benchmark
    base = copy.deepcopy(cmu8_stgcn)
    return post_train_bayesian(base, train, n_models=2, epochs=2, seed=0)


# -- the Bayesian post-training ---------------------------------------------------------------------------------
def test_post_training_keeps_clean_accuracy_sane_and_the_base_frozen(bayes, cmu8_stgcn, cmu8_benchmark):
    _, test = cmu8_benchmark
    base_acc = evaluate(cmu8_stgcn, test)["accuracy"]
    bayes_acc = evaluate(bayes, test, device="cpu")["accuracy"]
    assert bayes_acc >= base_acc - 0.10, (bayes_acc, base_acc)
    for (name, p), q in zip(cmu8_stgcn.state_dict().items(), bayes.base.state_dict().values(), strict=True):
        assert torch.equal(p, q), f"post-training changed the pre-trained weight {name}"
    assert bayes.n_heads == 2 and all(h["snapshots"] >= 2 for h in bayes.info["heads"])


def test_the_posterior_has_spread_and_draws_differ(bayes):
    std = bayes.head_std(0)
    assert all(bool((s > 1e-6).any()) for s in std.values()), "SWAG moments gave no weight variance"
    gen = torch.Generator().manual_seed(0)
    drawn = bayes.sample_heads(0, 3, 1.5, gen)
    r = torch.rand(5, bayes.num_classes)
    out = head_logits(r, drawn)
    assert out.shape == (3, 5, bayes.num_classes)
    assert not torch.allclose(out[0], out[1])
    # a draw at scale 0 is the mean head
    zero = bayes.sample_heads(0, 1, 0.0, gen)
    assert torch.allclose(head_logits(r, zero)[0], head_logits(r, bayes.head_mean(0)))


def test_post_training_refuses_unlabelled_data(cmu8_stgcn):
    x = torch.zeros(4, 3, 60, cmu8_stgcn.skeleton.num_joints, 1)
    with pytest.raises(AttackError, match="labelled"):
        post_train_bayesian(cmu8_stgcn, (x, torch.full((4,), -1)))


# -- motion dynamics ---------------------------------------------------------------------------------------------
def test_ar2_fit_recovers_known_coefficients():
    t = 60
    a1_true, a2_true = 1.6, -0.8  # a damped oscillation
    seq = torch.zeros(t, dtype=torch.float64)
    seq[0], seq[1] = 1.0, 1.3
    for i in range(2, t):
        seq[i] = a1_true * seq[i - 1] + a2_true * seq[i - 2]
    x = seq.view(1, 1, t, 1, 1).float()
    a1, a2 = motion_dynamics(x, bandwidth=0.3, ridge=1e-6)
    assert torch.allclose(a1[0, 0, 5:-5, 0, 0], torch.full((t - 10,), a1_true), atol=0.05)
    assert torch.allclose(a2[0, 0, 5:-5, 0, 0], torch.full((t - 10,), a2_true), atol=0.05)


def test_dynamics_gradient_is_the_chain_rule_through_the_ar_model():
    """With constant coefficients, the term equals the gradient of Σ_t g_t·x_t with respect to x_s when every x_s
    also moves the next two frames through the AR recursion (first- and second-order effects only)."""
    t, a1c, a2c = 8, 1.5, -0.6
    g = torch.randn(1, 1, t, 1, 1)
    a1 = torch.full_like(g, a1c)
    a2 = torch.full_like(g, a2c)
    term = dynamics_gradient(g, a1, a2)
    s = 3
    expected = a1c * g[0, 0, s + 1] + (a1c * a1c + a2c) * g[0, 0, s + 2]
    assert torch.allclose(term[0, 0, s], expected)
    assert torch.all(term[0, 0, -1] == 0)


# -- TASAR attack --------------------------------------------------------------------------------------------------
def test_tasar_respects_its_budget_and_fools_its_surrogate(bayes, cmu8_benchmark):
    _, test = cmu8_benchmark
    x = torch.as_tensor(test.x[:6])
    y = _labels(bayes, x)
    eps = 0.01
    result = build("tasar", bayes, eps=eps, iterations=6, samples=3)(x, y)
    assert (result.adversarial - x).abs().max() <= eps + 1e-6
    assert result.success.float().mean() > 0.5
    with torch.no_grad():
        assert torch.equal(bayes(result.adversarial).argmax(1), result.predictions)


def test_tasar_published_preset_is_the_code_converted_to_metres(bayes):
    attack = build("tasar", bayes, preset="published")
    assert attack.eps == pytest.approx(0.0028) and attack.step == pytest.approx(0.0028)
    assert attack.iterations == 200 and attack.samples == 20 and attack.weight_scale == 1.5


def test_bayesian_gradient_is_exact_average_of_per_draw_gradients(bayes, cmu8_benchmark):
    """All draws share one pass of the frozen base: the averaged gradient must equal the per-draw average."""
    from engine.attacks.common import strategy_class_loss

    _, test = cmu8_benchmark
    x = torch.as_tensor(test.x[:2])
    y = _labels(bayes, x)
    attack = build("tasar", bayes, samples=2)
    _, _, g_fast = attack._gradients(x, y, None, torch.Generator().manual_seed(7))
    gen = torch.Generator().manual_seed(7)
    total = torch.zeros_like(x)
    for i in range(bayes.n_heads):
        drawn = bayes.sample_heads(i, 2, attack.weight_scale, gen)
        for s in range(2):
            d = x.clone().requires_grad_(True)
            logits = head_logits(bayes.features(d), {k: v[s] for k, v in drawn.items()})
            (g,) = torch.autograd.grad(strategy_class_loss(logits, y, "ab", 3, None).sum(), d)
            total += g
    assert torch.allclose(g_fast, total / (bayes.n_heads * 2), atol=1e-6, rtol=1e-4)


def test_bayesian_surrogate_is_a_transfer_surrogate(bayes, cmu8_stgcn):
    from engine.attacks.transfer import check_compatible

    check_compatible(bayes, cmu8_stgcn, "victim")
    assert isinstance(bayes, BayesianSurrogate) and bayes.num_classes == cmu8_stgcn.num_classes


# -- baselines -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["dim", "ens", "svre"])
def test_baselines_respect_the_budget_with_an_ensemble(name):
    a, b = _tiny(0), _tiny(1)
    x = _clips()
    y = _labels(a, x)
    eps = 0.02
    result = build(name, a, surrogates=[b], eps=eps, iterations=3)(x, y)
    assert (result.adversarial - x).abs().max() <= eps + 1e-6
    assert (result.adversarial - x).abs().max() > 0
    assert result.params["n_surrogates"] == 2


def test_single_surrogate_ens_is_mifgsm():
    model = _tiny(2)
    x = _clips()
    y = _labels(model, x)
    kw = {"eps": 0.02, "iterations": 5, "early_stop": False}
    ens = build("ens", model, **kw)(x, y)
    mi = build("mifgsm", model, **kw)(x, y)
    assert torch.allclose(ens.adversarial, mi.adversarial, atol=1e-7)


def test_dim_without_diversity_is_the_plain_momentum_attack():
    model = _tiny(3)
    x = _clips()
    y = _labels(model, x)
    kw = {"eps": 0.02, "iterations": 4}
    assert torch.allclose(build("dim", model, diversity_prob=0.0, **kw)(x, y).adversarial,
                          build("ens", model, **kw)(x, y).adversarial)


def test_ensemble_of_identical_surrogates_equals_one():
    model = _tiny(4)
    x = _clips()
    y = _labels(model, x)
    kw = {"eps": 0.02, "iterations": 4}
    one = build("ens", model, **kw)(x, y).adversarial
    two = build("ens", model, surrogates=[copy.deepcopy(model)], **kw)(x, y).adversarial
    assert torch.allclose(one, two, atol=1e-6)


def test_ensemble_refuses_a_surrogate_of_another_skeleton():
    other = _tiny(5, skeleton=skeletons.get("ntu25"))
    with pytest.raises(AttackError, match="skeleton"):
        build("ens", _tiny(0), surrogates=[other])


def test_temporal_resample_is_identity_on_the_whole_window_and_differentiable():
    x = _clips(2, 10).requires_grad_(True)
    assert torch.allclose(temporal_resample(x, 0.0, 9.0), x)
    out = temporal_resample(x, 1.0, 7.5)
    assert out.shape == x.shape
    (g,) = torch.autograd.grad(out.sum(), x)
    assert g.abs().sum() > 0
