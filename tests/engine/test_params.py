"""Typed hyper-parameters (engine.params): every registered attack and defence is built by name from its defaults
and from each named preset, runs on a tiny model, and its provenance (``asdict(params)``) round-trips."""

from __future__ import annotations

import json

import pytest
import torch

from engine.attacks import ATTACKS, build, get_attack
from engine.defenses import DEFENCES, get_defence
from engine.defenses import build as build_defence
from engine.errors import ParameterError
from engine.models import Classifier, build_model
from engine.params import ParamSpec, make_params, presets, specs, to_dict
from engine.skeletons import HDM05_25 as SK

NUM_CLASSES = 3
# cheap settings per parameter name; each method receives those it has
FAST = {"iterations": 3, "refine_steps": 1, "disc_pretrain_steps": 2, "queries": 60, "epochs": 1,
        "burn_in": 0, "num_samples": 1, "sgld_steps": 1, "attack_iterations": 1, "attack_steps": 1,
        "num_noise": 2, "eot_samples": 2, "projection_steps": 5, "search_steps": 3}
ATTACK_PRESETS = [(a, p) for a in sorted(ATTACKS) for p in presets(get_attack(a).Params)]
DEFENCE_PRESETS = [(d, p) for d in sorted(DEFENCES) for p in presets(get_defence(d).Params)]


def _fast(params_cls) -> dict:
    names = {s.name for s in specs(params_cls)}
    return {k: v for k, v in FAST.items() if k in names}


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    kwargs = {"num_frames": 12, "hidden": 16}
    net = build_model("mlp", SK, NUM_CLASSES, **kwargs)
    clf = Classifier(net, [f"c{i}" for i in range(NUM_CLASSES)], preprocessing={"window": 12}, arch="mlp",
                     arch_kwargs=kwargs).eval()
    g = torch.Generator().manual_seed(1)
    x = 0.3 * torch.randn(6, 3, 12, SK.num_joints, 1, generator=g) + torch.tensor([0.0, 1.0, 0.0]).view(1, 3, 1, 1, 1)
    with torch.no_grad():
        y = clf(x).argmax(1)
    return clf, x, y


def test_every_method_declares_typed_parameters():
    for cls in [*ATTACKS.values(), *DEFENCES.values()]:
        fields = specs(cls.Params)
        assert all(isinstance(s, ParamSpec) for s in fields)
        for s in fields:
            assert s.doc, f"{cls.__name__}.{s.name} has no help text"
            assert "skeleton" != s.name and "fps" != s.name and "device" != s.name  # those come from the model


def test_published_presets_exist_where_the_issue_asks():
    assert "published" in presets(get_attack("smart").Params)
    assert {"published", "runner-up"} <= set(presets(get_defence("beat").Params))
    smart = make_params(get_attack("smart").Params, preset="published")
    assert smart.lr == pytest.approx(0.0028) and smart.iterations == 1000 and smart.refine_steps == 0
    assert smart.joint_weighting == "spine"
    beat = make_params(get_defence("beat").Params, preset="published")
    assert beat.adversary_class == "same" and beat.x_weight > 0 and beat.head_input == "logits"
    assert beat.betas == (0.0, 1.0, 1.0, 1.0)
    assert make_params(get_defence("beat").Params, preset="runner-up") == make_params(get_defence("beat").Params)


@pytest.mark.parametrize(("name", "preset"), ATTACK_PRESETS, ids=[f"{a}-{p}" for a, p in ATTACK_PRESETS])
def test_attack_builds_runs_and_round_trips(name, preset, tiny):
    clf, x, y = tiny
    attack = build(name, clf, preset=preset, **_fast(get_attack(name).Params))
    result = attack(x[:2], y[:2])
    assert result.adversarial.shape == x[:2].shape
    record = attack.params
    assert record["method"] == name
    json.dumps(record)  # provenance is plain data
    fields = {s.name for s in specs(get_attack(name).Params)}
    again = make_params(get_attack(name).Params, {k: v for k, v in record.items() if k in fields})
    assert again == attack.hp  # asdict(params) round-trips to the same parameters
    rebuilt = build(name, clf, **{k: v for k, v in record.items() if k in fields})
    assert rebuilt.hp == attack.hp


@pytest.mark.parametrize(("name", "preset"), DEFENCE_PRESETS, ids=[f"{d}-{p}" for d, p in DEFENCE_PRESETS])
def test_defence_builds_fits_and_round_trips(name, preset, tiny, tmp_path):
    from engine.checkpoints import load_classifier, save_classifier

    clf, x, y = tiny
    defence = build_defence(name, clf, preset=preset, device="cpu", **_fast(get_defence(name).Params))
    defended = defence.fit((x, y))
    stored = defended.meta["defence"]["params"]
    fields = {s.name for s in specs(get_defence(name).Params)}
    assert make_params(get_defence(name).Params, {k: v for k, v in stored.items() if k in fields}) == defence.hp
    back = load_classifier(save_classifier(defended, tmp_path / f"{name}.pt"))
    assert back.meta["defence"]["params"] == json.loads(json.dumps(stored))
    with torch.no_grad():
        torch.testing.assert_close(back(x), defended(x))


def test_bad_parameters_name_the_parameter_and_what_is_allowed(tiny):
    clf, _, _ = tiny
    with pytest.raises(ParameterError, match=r"unknown parameter\(s\) 'iters'; the parameters are .*iterations"):
        build("smart", clf, iters=3)
    with pytest.raises(ParameterError, match="parameter 'iterations' must be a whole number >= 0, got 'many'"):
        build("smart", clf, iterations="many")
    with pytest.raises(ParameterError, match=r"parameter 'lr' must be a number > 0.0 \(m\), got -1"):
        build("smart", clf, lr=-1)
    with pytest.raises(ParameterError, match="parameter 'lr' must be .*got nan"):
        build("smart", clf, lr=float("nan"))
    with pytest.raises(ParameterError, match="parameter 'update' must be one of 'gd', 'adam'"):
        build("smart", clf, update="sgd")
    with pytest.raises(ParameterError, match="no preset 'fast'; choose one of default, published"):
        build("smart", clf, preset="fast")
    with pytest.raises(ParameterError, match="parameter 'adversary_class' must be one of 'other', 'same'"):
        build_defence("beat", clf, adversary_class="both")
    with pytest.raises(ParameterError, match="unknown parameter"):
        build_defence("trades", clf, sigma=0.1)
    # text from a form or the command line is typed by the field
    attack = build("smart", clf, iterations="7", lr="0.01", freeze_root="yes", betas="1, 0, 1")
    assert attack.iterations == 7 and attack.lr == 0.01 and attack.freeze_root is True
    assert attack.hp.betas == (1.0, 0.0, 1.0)


def test_derived_attack_extends_its_parent_so_it_cannot_drift():
    smart, eot = get_attack("smart").Params, get_attack("eot-smart").Params
    assert issubclass(eot, smart)
    parent = {s.name: s.default for s in specs(smart)}
    child = {s.name: s.default for s in specs(eot)}
    assert set(parent) < set(child)
    assert {k: v for k, v in child.items() if k in parent and k != "refine_steps"} == \
        {k: v for k, v in parent.items() if k != "refine_steps"}
    assert "freeze_root" in child  # the field the hand-written copy had lost


def test_to_dict_is_asdict_with_lists():
    p = make_params(get_attack("smart").Params)
    d = to_dict(p)
    assert d["betas"] == list(p.betas) and d["iterations"] == p.iterations
