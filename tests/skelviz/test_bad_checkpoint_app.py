"""A bad checkpoint opened in the app: a clear message naming the file, the app alive, the classifier kept."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

import torch  # noqa: E402

from engine import skeletons  # noqa: E402
from engine.models import Classifier, build_model  # noqa: E402
from engine.models.checkpoint import save_classifier  # noqa: E402

pytestmark = [pytest.mark.gui, pytest.mark.gl]


def _checkpoint(path: Path, class_names, how: str) -> Path:
    if how == "not-a-checkpoint":
        path.write_text("root:x:0:0:root:/root:/bin/bash\n")
        return path
    torch.manual_seed(0)
    net = build_model("stgcn", skeletons.get("hdm05_25"), len(class_names), base_channels=8, num_blocks=3)
    mean, std = torch.zeros(1, 3, 1, 1, 1), torch.ones(1, 3, 1, 1, 1)
    if how == "nan-weight":
        with torch.no_grad():
            next(net.parameters()).view(-1)[0] = float("nan")
    elif how == "infinite-outputs":  # finite, positive normalisation that overflows: only a forward pass shows it
        mean, std = torch.full((1, 3, 1, 1, 1), 3e38), torch.full((1, 3, 1, 1, 1), 1e-30)
    clf = Classifier(net, list(class_names), mean=mean, std=std, preprocessing={"fps": 30.0, "window": 60},
                     arch="stgcn", arch_kwargs={"base_channels": 8, "num_blocks": 3})
    path = save_classifier(clf, path)
    if how == "huge-architecture":
        raw = torch.load(path, weights_only=True)
        raw["arch_kwargs"]["base_channels"] = 10**9
        torch.save(raw, path)
    return path


@pytest.mark.parametrize("how", ["not-a-checkpoint", "nan-weight", "infinite-outputs", "huge-architecture"])
def test_bad_checkpoint_is_a_message_naming_the_file_and_the_old_classifier_stays(window, qtbot, errors, dataset,
                                                                                  tmp_path, how):
    before = window.session.classifier
    path = _checkpoint(tmp_path / f"{how}.pt", before.class_names, how)
    window.load_checkpoint(str(path))
    qtbot.waitUntil(lambda: bool(errors) and window.loading == 0, timeout=30000)
    title, message = errors[-1]
    assert path.name in title
    assert str(path) in message and "kept" in message
    assert "Traceback" not in message
    assert window.session.classifier is before
    # the app is alive and still predicts with the old classifier
    window.show_clip("B", dataset[1])
    qtbot.waitUntil(lambda: window.session.scene.probs("B") is not None, timeout=30000)
    assert window.isVisible()
