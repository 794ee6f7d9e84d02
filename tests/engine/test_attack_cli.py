"""``skelviz attack``, ``skelviz transfer`` and ``skelviz report`` end to end on the cmu8 model and data."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from skelviz.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def checkpoint(cmu8_stgcn, tmp_path_factory):
    from engine.models.checkpoint import save_classifier

    return str(save_classifier(cmu8_stgcn, tmp_path_factory.mktemp("ckpt") / "cmu8_stgcn.pt"))


def _attack(checkpoint, data, out, *extra):
    argv = ["attack", "--model", checkpoint, "--data", str(data), "--limit", "3", "--iters", "3",
            "--batch-size", "2", "--device", "cpu", "--quiet", "--out", str(out), *extra]
    return main(argv)


def test_attack_writes_results_and_h5_and_resumes(checkpoint, cmu8_path, tmp_path, capsys):
    out = tmp_path / "smart_ab"
    assert _attack(checkpoint, cmu8_path, out) == 0
    results = json.loads((out / "results.json").read_text())
    for key in ("method", "strategy", "n", "success_rate", "mean_iterations", "mean_l2",
                "mean_bone_length_rel_dev", "mean_accel_dev", "clean_accuracy"):
        assert key in results, key
    assert results["method"] == "smart" and results["strategy"] == "ab" and results["n"] == 3
    assert 0.5 < results["clean_accuracy"] <= 1.0
    printed = json.loads(capsys.readouterr().out)
    assert printed["success_rate"] == results["success_rate"]
    with h5py.File(out / "adversarial.h5") as f:
        assert f["clean"].shape == f["adversarial"].shape == (3, 3, 60, 28, 1)
        assert f["label"].shape == f["adv_pred"].shape == f["success"].shape == (3,)
        assert (f["clean_pred"][()] == f["label"][()]).all()  # only correctly classified windows are attacked
        params = json.loads(f.attrs["params"])
        assert params["attack_kwargs"] == {"iterations": 3} and params["limit"] == 3
        # provenance: every value of the attack's typed parameters (asdict), in the file and in results.json
        full = json.loads(f.attrs["attack_params"])
        assert full["iterations"] == 3 and full["lr"] == 0.005 and full["method"] == "smart"
        assert results["attack_params"] == full
        assert set(f["metrics"]) >= {"l2", "bone_length_rel_dev", "accel_dev"}
        success = f["success"][()]
        # perceptual metrics are means over the (re-checked) successes; failures are counted separately
        assert results["n_success"] == int(success.sum()) and results["n_failed"] == 3 - int(success.sum())
        if success.any():
            assert np.allclose(f["metrics/l2"][()][success].mean(), results["mean_l2"])
        else:
            assert results["mean_l2"] is None
        assert f["success_reported"].shape == f["success_recentred"].shape == (3,)
        diag = results["diagnostics"]
        assert set(diag) >= {"success_rate_reported", "success_rate_recentred", "mean_top_joint_share", "warnings"}
        adversarial = f["adversarial"][()]

    # an interrupted run: the last batch and the assembled files are missing
    first = out / "parts" / "batch_00000.npz"
    stamp = first.stat().st_mtime_ns
    (out / "parts" / "batch_00001.npz").unlink()
    (out / "adversarial.h5").unlink()
    (out / "results.json").unlink()
    assert _attack(checkpoint, cmu8_path, out) == 0
    assert first.stat().st_mtime_ns == stamp  # finished batches are not redone
    with h5py.File(out / "adversarial.h5") as f:
        assert np.allclose(f["adversarial"][()], adversarial, atol=1e-6)  # the redone batch is reproducible
    # a different job into the same folder is refused with a clear message
    assert _attack(checkpoint, cmu8_path, out, "--method", "ifgsm") == 2
    assert "different parameters" in capsys.readouterr().err


def test_sa_target_by_name_and_report_table(checkpoint, cmu8_path, tmp_path, capsys):
    ab, sa = tmp_path / "ab", tmp_path / "sa"
    assert _attack(checkpoint, cmu8_path, ab) == 0
    assert _attack(checkpoint, cmu8_path, sa, "--strategy", "sa", "--target", "walking") == 0
    with h5py.File(sa / "adversarial.h5") as f:
        names = json.loads(f.attrs["class_names"])
        assert (f["target"][()] == names.index("walking")).all()
        assert (f["label"][()] != names.index("walking")).all()
    capsys.readouterr()
    assert main(["report", str(ab), str(sa)]) == 0
    table = capsys.readouterr().out.strip().splitlines()
    assert table[0].startswith("| model | AB | SA")
    assert table[2].startswith("| cmu8_stgcn |") and "%" in table[2]
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert _attack(checkpoint, cmu8_path, tmp_path / "bad", "--strategy", "sa", "--target", "nonesuch") == 2


def test_transfer_matrix(checkpoint, cmu8_path, tmp_path, capsys):
    out = tmp_path / "transfer"
    argv = ["transfer", "--surrogate", checkpoint, "--victims", checkpoint, checkpoint, "--data", str(cmu8_path),
            "--limit", "3", "--iters", "5", "--method", "mifgsm", "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    report = json.loads((out / "transfer.json").read_text())
    row = report["matrix"]["cmu8_stgcn"]
    assert set(row) == {"cmu8_stgcn", "cmu8_stgcn_2", "cmu8_stgcn_3"}
    # a victim identical to the surrogate is fooled exactly as often as the surrogate (over the same clips)
    assert row["cmu8_stgcn_2"] == pytest.approx(row["cmu8_stgcn"]) or report["victims"]["cmu8_stgcn_2"]["n"] < 3
    md = (out / "transfer.md").read_text()
    assert md.startswith("| MIFGSM-AB") and "cmu8_stgcn_3" in md


def test_transfer_ensemble_and_tasar_rows(checkpoint, cmu8_path, tmp_path, capsys):
    """``--method ens`` with two surrogates gives one row named after both; ``--method tasar`` post-trains a
    Bayesian surrogate first and records it; both keep the per-joint budget on the replayed clips."""
    import numpy as np

    ens_out, tasar_out = tmp_path / "ens", tmp_path / "tasar"
    common = ["--data", str(cmu8_path), "--limit", "2", "--iters", "2", "--eps", "0.01", "--device", "cpu"]
    argv = ["transfer", "--surrogates", checkpoint, checkpoint, "--victims", checkpoint, "--method", "ens",
            *common, "--out", str(ens_out)]
    assert main(argv) == 0
    report = json.loads((ens_out / "transfer.json").read_text())
    assert list(report["matrix"]) == ["cmu8_stgcn+cmu8_stgcn_2"] and report["method"] == "ens"
    argv = ["transfer", "--surrogate", checkpoint, "--victims", checkpoint, "--method", "tasar", "--samples", "2",
            "--post-epochs", "1", *common, "--out", str(tasar_out)]
    assert main(argv) == 0
    report = json.loads((tasar_out / "transfer.json").read_text())
    assert report["method"] == "tasar" and report["params"]["post_training"]["cmu8_stgcn"]
    for folder in (ens_out, tasar_out):
        clips = np.load(folder / "transfer_clips.npz")
        assert np.abs(clips["adversarial"] - clips["clean"]).max() <= 0.01 + 1e-6
