"""The standard robustness suite and its attacks on the real cmu8 split: APGD stays in its budget and follows the
published step-size schedule, the suite's robust accuracy is the per-window worst case (never above any of its
component attacks'), and its gradient-masking checks flag a model that rounds its input to 1 cm while leaving the
plain ST-GCN unflagged."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from engine.attacks import build
from engine.attacks.apgd import checkpoints, dlr_targeted_loss
from engine.defenses.standard_suite import (
    SUITE_VERSION,
    leaderboard_json,
    run_standard_suite,
    suite_params,
    write_reports,
)
from engine.errors import ParameterError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Small settings: the checks must hold for the real suite, so only the effort is reduced, never a threshold.
FAST = {"budgets": (0.005, 0.02), "iterations": 8, "n_target_classes": 2, "square_queries": 60, "noise_draws": 3}


class RoundingModel(nn.Module):
    """A deliberately masked model: rounds every coordinate to 1 cm before the ST-GCN (zero gradient)."""

    def __init__(self, base) -> None:
        super().__init__()
        self.base = base
        for name in ("skeleton", "preprocessing", "class_names", "num_classes"):
            setattr(self, name, getattr(base, name))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(torch.round(x * 100) / 100)


@pytest.fixture(scope="module")
def windows(cmu8_benchmark, cmu8_stgcn):
    from engine.defenses.common import training_windows

    _, test = cmu8_benchmark
    x, y = training_windows(test, cmu8_stgcn)
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:12]
    return x[idx], y[idx]


@pytest.fixture(scope="module")
def plain_report(cmu8_stgcn, windows):
    torch.set_num_threads(1)
    return run_standard_suite(cmu8_stgcn, *windows, suite_params("quick", **FAST))


def test_checkpoint_schedule_is_the_published_one():
    # AutoAttack's code for 100 iterations: first check after 22, intervals shrinking by 3 down to 6
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]


def test_targeted_dlr_loss_formula():
    logits = torch.tensor([[4.0, 1.0, 3.0, 0.0, 2.0]])
    # sorted: 4, 3, 2, 1, 0 -> scale = z_pi1 - (z_pi3 + z_pi4)/2 = 4 - 1.5; -(z_y - z_t) / scale
    value = dlr_targeted_loss(logits, torch.tensor([0]), torch.tensor([2]))
    assert value.item() == pytest.approx(-(4.0 - 3.0) / 2.5)


@pytest.mark.parametrize("norm", ["joint", "linf"])
@pytest.mark.parametrize("name", ["apgd-ce", "apgd-dlr-t", "square"])
def test_attacks_stay_in_budget_and_break_the_plain_model(name, norm, cmu8_stgcn, windows):
    x, y = windows
    x, y = x[:6], y[:6]
    eps = 0.02
    kw = {"queries": 40} if name == "square" else {"iterations": 8, **({"n_target_classes": 2} if "dlr" in name else {})}
    res = build(name, cmu8_stgcn, eps=eps, norm=norm, **kw)(x, y)
    d = res.adversarial - x
    size = d.abs().amax() if norm == "linf" else d.norm(dim=1).amax()
    assert size <= eps + 1e-6
    with torch.no_grad():
        assert torch.equal(cmu8_stgcn(res.adversarial).argmax(1), res.predictions)
    correct = cmu8_stgcn(x).argmax(1) == y
    if name != "square":  # 2 cm per joint breaks every correctly classified window of the small ST-GCN
        assert bool(res.success[correct].all())


def test_square_counts_only_the_queries_of_windows_still_searching(cmu8_stgcn, windows):
    # Square reads the device every 10 queries; a window that succeeds in between rides along in the batch,
    # frozen: its adversary and its query count stop at the query that broke it.
    x, y = windows
    res = build("square", cmu8_stgcn, eps=0.02, queries=40)(x[:8], y[:8])
    broke = res.success
    assert broke.any() and (~broke).any()  # both kinds present, so both rules below are exercised
    assert torch.equal(res.queries[broke], res.iterations[broke] + 1)  # the first query plus one per step
    assert bool((res.queries[~broke] == 40).all())
    again = build("square", cmu8_stgcn, eps=0.02, queries=40)(x[:8], y[:8])
    assert torch.equal(again.adversarial, res.adversarial)  # seeded


def test_apgd_holds_bone_lengths_when_asked(cmu8_stgcn, windows):
    x, y = windows
    x, y = x[:4], y[:4]
    sk = cmu8_stgcn.skeleton

    def bone_change(adv):
        pos = lambda t: t[..., 0].permute(0, 2, 3, 1)  # noqa: E731  (N, T, V, 3) of the first performer
        return (sk.bone_lengths(pos(adv)) - sk.bone_lengths(pos(x))).abs().mean()

    free = build("apgd-ce", cmu8_stgcn, eps=0.02, iterations=6)(x, y).adversarial
    held = build("apgd-ce", cmu8_stgcn, eps=0.02, iterations=6, hold_bones=True)(x, y).adversarial
    assert (held - x).norm(dim=1).amax() <= 0.02 + 1e-6
    assert bone_change(held) < 0.5 * bone_change(free)


def test_suite_is_the_worst_case_of_its_attacks(plain_report):
    r = plain_report
    assert r["suite_version"] == SUITE_VERSION and r["params"]["seed"] == 0
    assert [b["eps"] for b in r["budgets"]] == list(FAST["budgets"])
    for b in r["budgets"]:
        assert b["robust_accuracy"] <= r["clean_accuracy"]
        for name in ("apgd-ce", "apgd-dlr-t"):
            assert b["robust_accuracy"] <= b["attacks"][name]["robust_accuracy"] + 1e-9
        assert b["robust_accuracy"] <= b["white_box_robust_accuracy"] + 1e-9
        assert b["broken"] == round((r["clean_accuracy"] - b["robust_accuracy"]) * r["n"])
    assert r["budgets"][-1]["robust_accuracy"] == 0.0  # 2 cm per joint breaks the undefended ST-GCN
    cost = r["budgets"][-1]["perceptual"]
    assert cost["n"] > 0 and cost["mean_accel_dev"] > 0 and cost["max_linf_m"] <= 0.02 + 1e-6


def test_plain_stgcn_is_not_flagged(plain_report):
    assert plain_report["warnings"] == []
    assert not plain_report["stochastic"] and "apgd-ce-no-eot" not in plain_report["budgets"][0]["attacks"]


def test_a_model_that_rounds_its_input_is_flagged(cmu8_stgcn, windows):
    r = run_standard_suite(RoundingModel(cmu8_stgcn).eval(), *windows, suite_params("quick", **FAST))
    checks = {w["check"] for w in r["warnings"]}
    assert "loss_not_improved" in checks  # rounding has a zero gradient: APGD never leaves its random start
    assert "black_box_beats_white_box" in checks
    for b in r["budgets"]:  # the worst case still counts what the black box found
        assert b["robust_accuracy"] <= b["attacks"]["apgd-ce"]["robust_accuracy"]


def test_stochastic_model_gets_eot_and_the_no_eot_probe(cmu8_stgcn, windows):
    from engine.defenses.smoothing import SmoothedClassifier

    model = SmoothedClassifier(cmu8_stgcn, sigma=0.01, num_noise=4)
    x, y = windows
    r = run_standard_suite(model.eval(), x[:4], y[:4],
                           suite_params("quick", **{**FAST, "budgets": (0.02,), "eot_samples": 2}))
    assert r["stochastic"] and r["eot_samples"] == 2
    attacks = r["budgets"][0]["attacks"]
    assert attacks["apgd-ce"]["params"]["eot_samples"] == 2 and "apgd-ce-no-eot" in attacks
    # the majority vote has no gradient: without EOT APGD-CE breaks nothing it did not break at its random start
    assert attacks["apgd-ce-no-eot"]["robust_accuracy"] >= attacks["apgd-ce"]["robust_accuracy"]


def test_reports_record_version_budgets_and_seed(plain_report, tmp_path):
    params = suite_params("quick", **FAST)
    entry = {"model": "stgcn", "defence": "none", **plain_report}
    paths = write_reports([entry], params, tmp_path)
    board = json.loads(paths["json"].read_text())
    assert board["suite_version"] == SUITE_VERSION and board["budgets_m"] == list(FAST["budgets"])
    assert board["seed"] == 0 and board["params"]["iterations"] == 8
    md = paths["markdown"].read_text()
    assert "| stgcn | none |" in md and SUITE_VERSION in md and "No gradient-masking warnings." in md
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert leaderboard_json([entry], params)["entries"][0]["model"] == "stgcn"


def test_suite_rejects_unsorted_budgets():
    with pytest.raises(ParameterError, match="ascending"):
        suite_params(budgets=[0.02, 0.01])
    with pytest.raises(ParameterError, match="unknown parameter"):
        suite_params(no_such=1)
