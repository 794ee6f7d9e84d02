"""``skelviz defend`` and ``skelviz robustness`` end to end on the real cmu8 file: a defended checkpoint is
written and loads like a plain one, and the robustness run writes one RobustBench-style JSON per model and a
Markdown leaderboard; bad requests fail with a clear message."""

from __future__ import annotations

import json

import pytest
import torch

from engine.checkpoints import load_classifier, save_classifier
from engine.defenses.standard_suite import SUITE_VERSION
from skelviz.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def mlp_checkpoint(tmp_path_factory, cmu8_benchmark):
    """A small MLP trained briefly on the cmu8 benchmark's train windows, saved as a checkpoint."""
    from engine.train import train_classifier

    train, _ = cmu8_benchmark
    torch.set_num_threads(1)
    clf = train_classifier("mlp", train, arch_kwargs={"hidden": 64}, epochs=8, seed=0, device="cpu",
                           preprocessing={"stride": 20}).classifier
    clf.meta = {k: (str(v) if isinstance(v, str) else v) for k, v in clf.meta.items()}
    return save_classifier(clf, tmp_path_factory.mktemp("models") / "mlp.pt")


def test_defend_then_robustness(mlp_checkpoint, cmu8_path, tmp_path, capsys):
    beat = tmp_path / "beat.pt"
    rc = main(["defend", "--method", "beat", "--model", str(mlp_checkpoint), "--data", str(cmu8_path),
               "--out", str(beat), "--epochs", "1", "--samples", "2", "--param", "sgld_steps=2",
               "--param", "x_weight=0.0", "--device", "cpu", "--quiet"])
    assert rc == 0
    assert "beat: trained in" in capsys.readouterr().out
    model = load_classifier(beat)
    assert model.forward_passes_per_prediction == 2 and model.meta["defence"]["method"] == "beat"

    out = tmp_path / "robust"
    rc = main(["robustness", "--models", str(mlp_checkpoint), str(beat), "--attacks", "smart", "eot-smart",
               "--data", str(cmu8_path), "--out", str(out), "--limit", "6", "--iterations", "3",
               "--eot-samples", "2", "--device", "cpu", "--quiet"])
    assert rc == 0
    reports = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    assert set(reports) == {"mlp", "beat"}
    for r in reports.values():
        assert 0.0 <= r["clean_accuracy"] <= 1.0 and r["dataset"]["n"] == 6
        assert set(r["robust_accuracy"]) == {"smart", "eot-smart"}
        for attack, value in r["robust_accuracy"].items():
            assert 0.0 <= value <= r["clean_accuracy"]
            assert r["attacks"][attack]["params"]["iterations"] == 3
        assert r["attacks"]["eot-smart"]["params"]["eot_samples"] == 2
    assert reports["beat"]["forward_passes_per_prediction"] == 2 and reports["beat"]["defence"] == "beat"
    assert reports["beat"]["training_time_s"] > 0
    assert reports["mlp"]["forward_passes_per_prediction"] == 1 and reports["mlp"]["defence"] == "none"
    board = (out / "leaderboard.md").read_text()
    assert "| mlp |" in board and "| beat |" in board and "robust acc. (eot-smart)" in board


def test_robustness_rejects_an_unknown_attack(mlp_checkpoint, cmu8_path, tmp_path, capsys):
    rc = main(["robustness", "--models", str(mlp_checkpoint), "--attacks", "no-such-attack", "--data",
               str(cmu8_path), "--out", str(tmp_path), "--limit", "2", "--device", "cpu", "--quiet"])
    assert rc == 2
    assert "unknown attack 'no-such-attack'" in capsys.readouterr().err


def test_defend_rejects_an_unknown_parameter(mlp_checkpoint, cmu8_path, tmp_path, capsys):
    rc = main(["defend", "--method", "trades", "--model", str(mlp_checkpoint), "--data", str(cmu8_path),
               "--out", str(tmp_path / "x.pt"), "--param", "no_such=1", "--device", "cpu", "--quiet"])
    assert rc == 2
    assert "unknown parameter(s) 'no_such'; the parameters are" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_robustness_standard_suite_writes_the_leaderboard(mlp_checkpoint, cmu8_path, tmp_path, capsys):
    out = tmp_path / "suite"
    rc = main(["robustness", "--suite", "standard", "--suite-preset", "quick", "--models", str(mlp_checkpoint),
               "--data", str(cmu8_path), "--out", str(out), "--limit", "6", "--budgets", "0.005", "0.02",
               "--iterations", "4", "--param", "suite.square_queries=20", "--param", "suite.n_target_classes=2",
               "--seed", "3", "--device", "cpu", "--quiet"])
    assert rc == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "mlp.json").read_text())
    assert report["suite_version"] == SUITE_VERSION and report["n"] == 6
    assert [b["eps"] for b in report["budgets"]] == [0.005, 0.02]
    assert report["params"]["iterations"] == 4 and report["params"]["square_queries"] == 20
    for b in report["budgets"]:
        own = [a["robust_accuracy"] for k, a in b["attacks"].items() if k != "square"]
        assert 0.0 <= b["robust_accuracy"] <= min(own) <= report["clean_accuracy"]
    board = json.loads((out / "leaderboard.json").read_text())
    assert board["suite_version"] == SUITE_VERSION and board["seed"] == 3 and board["budgets_m"] == [0.005, 0.02]
    assert [e["model"] for e in board["entries"]] == ["mlp"]
    md = (out / "leaderboard.md").read_text()
    assert "| mlp |" in md and "robust acc. 2 cm" in md and SUITE_VERSION in md
    assert (out / "robust_accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "mlp.pt: clean" in printed and "robust (worst case) 0.5 cm" in printed
    # every warning stored in the report is printed
    for w in report["warnings"]:
        assert f"warning ({w['check']})" in printed


def test_robustness_suite_prints_the_masking_warnings(mlp_checkpoint, cmu8_path, tmp_path, capsys, monkeypatch):
    """A model that rounds its input to 1 cm has a zero gradient: the suite's checks fire and the CLI prints them
    and stores them. The checks are the real suite's; only the loader is wrapped so the checkpoint's model rounds
    its input before classifying."""
    import engine.checkpoints
    from tests.engine.test_standard_suite import RoundingModel

    real = engine.checkpoints.load_classifier

    def load_rounding(path):
        base = real(path)
        masked = RoundingModel(base)
        masked.meta = base.meta  # the checkpoint's split and provenance
        return masked

    monkeypatch.setattr(engine.checkpoints, "load_classifier", load_rounding)
    out = tmp_path / "suite"
    rc = main(["robustness", "--suite", "standard", "--suite-preset", "quick", "--models", str(mlp_checkpoint),
               "--data", str(cmu8_path), "--out", str(out), "--limit", "6", "--budgets", "0.02",
               "--iterations", "4", "--param", "suite.square_queries=20", "--param", "suite.n_target_classes=2",
               "--no-plot", "--device", "cpu", "--quiet"])
    assert rc == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "mlp.json").read_text())
    checks = {w["check"] for w in report["warnings"]}
    assert "loss_not_improved" in checks
    for check in checks:
        assert f"warning ({check}):" in printed
    assert "gradient carries no signal" in (out / "leaderboard.md").read_text()
    assert not (out / "robust_accuracy.png").exists()
