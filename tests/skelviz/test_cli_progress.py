"""The command line's one progress reporter: a bar on stderr, kept lines, silenced by --quiet."""

from __future__ import annotations

from skelviz.cli._progress import CliProgress
from skelviz.cli.train import _epoch_line


def _run(progress: CliProgress) -> None:
    for done in range(1, 5):
        info = {"epoch": 1 + (done > 2), "loss": 1.0 / done}
        if done in (2, 4):
            info.update(epoch_end=True, train_accuracy=0.5 * done / 2, val_accuracy=0.25)
        progress(done, 4, info)


def test_bar_on_stderr_with_epoch_lines(capsys) -> None:
    _run(CliProgress("train", unit="batch", line=_epoch_line))
    out, err = capsys.readouterr()
    assert out == ""
    assert "train" in err and "4/4" in err
    assert "epoch 1: loss 0.500  train acc 0.500  held-out acc 0.250\n" in err
    assert "epoch 2: loss 0.250  train acc 1.000  held-out acc 0.250\n" in err


def test_quiet_keeps_the_epoch_lines_only(capsys) -> None:
    _run(CliProgress("train", unit="batch", quiet=True, line=_epoch_line))
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == ["epoch 1: loss 0.500  train acc 0.500  held-out acc 0.250",
                                "epoch 2: loss 0.250  train acc 1.000  held-out acc 0.250"]


def test_attack_shows_batch_success_and_resumes(capsys) -> None:
    from skelviz.cli.attack import _progress

    progress = _progress(quiet=False)
    progress(2, 6, {"resumed": True})
    progress(4, 6, {"batch": 2, "batches": 3, "success_rate": 0.75})
    progress(6, 6, {"batch": 3, "batches": 3, "success_rate": 0.5})
    out, err = capsys.readouterr()
    assert out == "" and "6/6" in err and "batch success 0.50" in err
    assert progress.bar is None  # closed at the end, the line left in place


def test_quiet_attack_prints_nothing(capsys) -> None:
    from skelviz.cli.attack import _progress

    progress = _progress(quiet=True)
    progress(6, 6, {"success_rate": 0.5})
    assert capsys.readouterr() == ("", "")
