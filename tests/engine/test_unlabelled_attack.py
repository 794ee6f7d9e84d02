"""Unlabelled clips are attacked the same way by the CLI and the app: away from the model's own prediction, said so;
``--label CLASS`` sets the true class; a run whose every window was skipped is an error, never a silent ``n: 0``."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from engine.assets import ASSETS_DIR, REAL_DEMO_CHECKPOINTS
from skelviz.cli import main

MODEL = ASSETS_DIR / REAL_DEMO_CHECKPOINTS["stgcn"]


@pytest.fixture(scope="module")
def bvh(formats_dir):
    if not MODEL.is_file():
        pytest.skip(f"{MODEL} is absent")
    return formats_dir / "bvh" / "131_01.bvh"


def _attack(bvh, out, *extra):
    return main(["attack", "--model", str(MODEL), "--data", str(bvh), "--method", "smart", "--iters", "2",
                 "--limit", "2", "--device", "cpu", "--quiet", "--out", str(out), *extra])


def _predictions(bvh) -> np.ndarray:
    from engine.attacks.runner import load_windows, predict_windows
    from engine.checkpoints import load_classifier

    clf = load_classifier(MODEL)
    return predict_windows(clf, load_windows(clf, bvh).x, "cpu").argmax(1)


def test_unlabelled_bvh_is_attacked_away_from_the_models_prediction(bvh, tmp_path, capsys):
    out = tmp_path / "run"
    assert _attack(bvh, out) == 0
    captured = capsys.readouterr()
    results = json.loads((out / "results.json").read_text())
    assert results["n"] == 2 and results["n_windows"] > 10
    assert results["n_unlabelled"] == results["n_windows"] and results["clean_accuracy"] is None
    assert "model's own prediction" in captured.err
    with h5py.File(out / "adversarial.h5") as f:
        np.testing.assert_array_equal(f["label"][()], f["clean_pred"][()])  # the prediction was the label
        np.testing.assert_array_equal(f["label"][()], _predictions(bvh)[f["window_index"][()]])


def test_label_sets_the_true_class_and_all_skipped_is_an_error(bvh, tmp_path, capsys):
    from engine.checkpoints import load_classifier

    names = load_classifier(MODEL).class_names
    pred = _predictions(bvh)
    right = names[int(np.bincount(pred).argmax())]  # the class most windows are predicted as
    never = next(n for i, n in enumerate(names) if i not in set(pred.tolist()))
    assert _attack(bvh, tmp_path / "right", "--label", right) == 0
    results = json.loads((tmp_path / "right" / "results.json").read_text())
    assert results["n_unlabelled"] == 0 and results["n"] == 2
    assert results["clean_accuracy"] == pytest.approx(float(np.mean(pred == names.index(right))))
    capsys.readouterr()
    # A label the model never predicts: every window is misclassified, nothing to attack -> a message and exit 1.
    assert _attack(bvh, tmp_path / "never", "--label", never) == 1
    err = capsys.readouterr().err
    assert "nothing was attacked" in err and "misclassifies all" in err
    assert json.loads((tmp_path / "never" / "results.json").read_text())["n"] == 0
    # A class the model does not know is a usage error naming the classes.
    assert _attack(bvh, tmp_path / "bad", "--label", "moonwalk") == 2
    assert "walking" in capsys.readouterr().err
