"""Bad input on the command line never crashes, never lies, never destroys (issue 17).

The property test runs every headless ``skelviz`` subcommand in-process (``skelviz.cli.main``) with one
option replaced by a generated bad value (out-of-range or non-numeric numbers, unknown choices, hostile
input files, outputs that exist or have the wrong kind) and asserts: exit code 2, exactly one ``error:``
line, no traceback, no file outside the output folder touched and no existing file replaced.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skelviz.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[2]
DEMO_DATA = ROOT / "assets" / "demo" / "demo_actions.h5"
DEMO_MODEL = ROOT / "assets" / "models" / "demo_stgcn.pt"


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def assert_one_error(code: int, err: str, argv) -> None:
    assert "Traceback" not in err, f"{argv}\n{err}"
    errors = [ln for ln in err.splitlines() if "error:" in ln]
    assert code == 2, f"{argv}: exit {code}\n{err}"
    assert len(errors) == 1, f"{argv}: expected one error line\n{err}"


def _snapshot(root: Path, skip: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under ``root`` except under ``skip``: (size, mtime, first bytes)."""
    snap = {}
    for p in root.rglob("*"):
        if p.is_file() and skip not in p.parents:
            st_ = p.stat()
            snap[str(p)] = (st_.st_size, st_.st_mtime_ns, p.read_bytes()[:4096])
    return snap


# -- the workspace each example runs in ---------------------------------------------------------------------
def make_workspace(tmp: Path) -> dict[str, Path]:
    inputs = tmp / "inputs"
    inputs.mkdir()
    shutil.copy(DEMO_DATA, inputs / "data.h5")
    shutil.copy(DEMO_MODEL, inputs / "model.pt")
    (inputs / "classes.txt").write_text("a\nb\n")
    (inputs / "empty.h5").write_bytes(b"")
    (inputs / "text.pt").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (inputs / "noise.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(np.random.default_rng(0).integers(0, 256, 300,
                                                                                                   dtype=np.uint8)))
    (inputs / "noise.npz").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    (inputs / "a_folder").mkdir()
    out = tmp / "out"
    out.mkdir()
    (out / "existing.pt").write_bytes(b"precious")
    (out / "existing_dir").mkdir()
    for name in ("transfer.json", "leaderboard.md", "model.json", "report.md"):
        (out / "existing_dir" / name).write_text("precious")
    return {"inputs": inputs, "out": out}


def base_argv(command: str, ws: dict[str, Path]) -> list[str]:
    i, o = ws["inputs"], ws["out"]
    data, model = str(i / "data.h5"), str(i / "model.pt")
    return {
        "info": ["info", data],
        "train": ["train", "--model", "mlp", "--data", data, "--out", o / "new.pt", "--epochs", "1"],
        "eval": ["eval", "--model", model, "--data", data, "--json", o / "new.json"],
        "import-checkpoint": ["import-checkpoint", i / "text.pt", "--arch", "stgcn", "--skeleton", "hdm05_25",
                              "--classes", i / "classes.txt", "--out", o / "new.pt"],
        "attack": ["attack", "--model", model, "--data", data, "--out", o / "new_dir", "--limit", "1", "--iters", "1"],
        "transfer": ["transfer", "--surrogate", model, "--victims", model, "--data", data, "--out", o / "new_dir",
                     "--limit", "1", "--iters", "1"],
        "report": ["report", o / "existing_dir"],
        "defend": ["defend", "--method", "smoothing", "--model", model, "--data", data, "--out", o / "new.pt"],
        "robustness": ["robustness", "--models", model, "--data", data, "--out", o / "new_dir", "--limit", "1",
                       "--iterations", "1"],
        "study prepare": ["study", "prepare", "generic_2afc", "--model", model, "--data", data, "--out",
                          o / "new.h5", "--clips", "1"],
        "study analyze": ["study", "analyze", i / "noise.h5", "--out", o / "new_dir"],
    }[command]


# -- bad values -----------------------------------------------------------------------------------------------
_NOT_NUMBERS = st.sampled_from(["abc", "", "1,5", "0x", "--", "1e", "NaN%"])
_BAD_POSITIVE_INT = st.one_of(st.integers(max_value=0).map(str), _NOT_NUMBERS)
_BAD_POSITIVE_FLOAT = st.one_of(st.floats(max_value=0, allow_nan=False).map(repr),
                                st.sampled_from(["nan", "inf", "-inf", "1e400"]), _NOT_NUMBERS)
_BAD_FRACTION = st.one_of(st.floats(min_value=1.0).map(repr), st.floats(max_value=0.0).map(repr),
                          st.sampled_from(["nan", "inf"]), _NOT_NUMBERS)


def _hostile_inputs(ws):
    i = ws["inputs"]
    return st.sampled_from([i / "missing.h5", i / "a_folder", i / "empty.h5", i / "text.pt", i / "noise.h5",
                            i / "noise.npz", "/dev/null"])


#: option → strategy of values that must be refused (given the workspace)
def bad_values(ws) -> dict[str, st.SearchStrategy]:
    o = ws["out"]
    hostile = _hostile_inputs(ws)
    positive_int = {k: _BAD_POSITIVE_INT for k in ("--epochs", "--batch-size", "--top-n", "--iters", "--limit",
                                                   "--window", "--stride", "--queries", "--iterations",
                                                   "--eot-samples", "--samples", "--clips")}
    positive_float = {k: _BAD_POSITIVE_FLOAT for k in ("--lr", "--fps", "--eps", "--sigma", "--budget")}
    return {
        **positive_int, **positive_float,
        "--weight-decay": st.sampled_from(["-1", "nan", "inf", "x"]),
        "--accel-weight": st.sampled_from(["-0.5", "nan", "x"]),
        "--projection-interval": st.sampled_from(["-1", "x", "1.5"]),
        "--test-fraction": _BAD_FRACTION,
        "--catch-threshold": st.sampled_from(["2", "-0.1", "nan", "x"]),
        "--seed": st.sampled_from(["-1", str(2**40), "x"]),
        "--index": st.sampled_from(["x", "1.5"]),
        "--device": st.sampled_from(["gpu", "cuda:x", "", "tpu:0"]),
        "--units": st.sampled_from(["furlong", "-1", "nan", "0"]),
        "--arch-arg": st.sampled_from(["nosuch=3", "novalue", "=3"]),
        "--param": st.sampled_from(["novalue", "=3"]),
        "--method": st.sampled_from(["nosuch", "SMART ", ""]),
        "--strategy": st.sampled_from(["xyz", "AB"]),
        "--split": st.sampled_from(["train_and_test", ""]),
        "--norm": st.sampled_from(["l3"]),
        "--width": st.sampled_from(["huge"]),
        "--arch": st.sampled_from(["resnet"]),
        "--skeleton": st.sampled_from(["nosuch_skeleton"]),
        "--data": hostile,
        "--model": hostile,
        "--surrogate": hostile,
        "--victims": hostile,
        "--models": hostile,
        "--classes": st.sampled_from([ws["inputs"] / "missing.txt", ws["inputs"] / "a_folder",
                                      ws["inputs"] / "empty.h5"]),
        "--out": st.sampled_from([o / "existing.pt", o / "existing_dir", o / "existing.pt" / "below"]),
        "--json": st.sampled_from([o / "existing.pt", o / "existing_dir"]),
    }


COMMANDS = ["info", "train", "eval", "import-checkpoint", "attack", "transfer", "report", "defend", "robustness",
            "study prepare", "study analyze"]


def _options_of(command: str, ws) -> list[str]:
    argv = base_argv(command, ws)
    table = bad_values(ws)
    opts = [a for a in argv if isinstance(a, str) and a.startswith("--") and a in table]
    if command == "train":
        opts = [o for o in opts if o != "--model"] + ["--arch-arg", "--batch-size", "--lr", "--test-fraction",
                                                        "--window", "--seed", "--width", "--device"]
    if command == "attack":
        opts += ["--lr", "--eps", "--batch-size", "--top-n", "--device", "--method", "--strategy", "--seed",
                 "--queries", "--accel-weight", "--projection-interval"]
    if command == "transfer":
        opts += ["--lr", "--batch-size", "--method", "--seed"]
    if command == "robustness":
        opts += ["--budget", "--lr", "--eot-samples", "--batch-size", "--device"]
    if command == "defend":
        opts += ["--epochs", "--samples", "--sigma", "--param", "--seed"]
    if command == "eval":
        opts += ["--split", "--device"]
    if command == "info":
        opts += ["--units", "--index", "--skeleton"]
    if command == "import-checkpoint":
        opts += ["--fps", "--window", "--arch"]
    if command == "study analyze":
        opts += ["--catch-threshold"]
    if command == "study prepare":
        opts += ["--device"]
    if command == "report":
        opts = ["DIR"]
    return sorted(set(opts))


def _with(argv: list, option: str, value) -> list:
    argv = list(argv)
    if option in argv:
        argv[argv.index(option) + 1] = value
    else:
        argv += [option, value]
    return argv


@pytest.mark.parametrize("command", COMMANDS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.data())
def test_every_subcommand_refuses_bad_values(command, data):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ws = make_workspace(tmp)
        option = data.draw(st.sampled_from(_options_of(command, ws)), label="option")
        strategy = bad_values(ws).get(option)
        if (command, option) == ("attack", "--out"):
            strategy = st.sampled_from([ws["out"] / "existing.pt", ws["out"] / "existing.pt" / "below"])
        if command in ("transfer", "robustness", "study analyze") and option == "--out":
            strategy = st.sampled_from([ws["out"] / "existing.pt", ws["out"] / "existing_dir"])
        if command in ("train", "defend", "import-checkpoint", "study prepare") and option == "--out":
            strategy = st.sampled_from([ws["out"] / "existing.pt", ws["out"] / "existing_dir",
                                        ws["out"] / "existing.pt" / "below.pt"])
        if (command, option) == ("defend", "--epochs"):  # BEAT's burn-in may be 0 epochs
            strategy = st.one_of(st.integers(max_value=-1).map(str), _NOT_NUMBERS)
        if option == "DIR":  # report's folders: missing, a file, no results.json, a results.json that is not JSON
            (ws["out"] / "bad_json").mkdir()
            (ws["out"] / "bad_json" / "results.json").write_text("{not json")
            strategy = st.sampled_from([ws["out"] / "missing", ws["out"] / "existing.pt", ws["inputs"] / "a_folder",
                                        ws["out"] / "bad_json"])
        value = data.draw(strategy, label="value")
        argv = ["report", value] if option == "DIR" else _with(base_argv(command, ws), option, value)
        out_dir = ws["out"] / "new_dir"
        before = _snapshot(tmp, out_dir)
        code, _, err = run_cli(argv)
        assert_one_error(code, err, argv)
        after = _snapshot(tmp, out_dir)
        assert {k: v for k, v in after.items() if k in before} == before, f"{argv}: an existing file changed"
        assert set(after) <= set(before), f"{argv}: new files outside the output: {set(after) - set(before)}"


# -- the cases of the issue, one by one -----------------------------------------------------------------------
def _broken_checkpoint(tmp_path: Path, how: str) -> Path:
    import torch

    from engine.checkpoints import load_classifier, save_classifier

    clf = load_classifier(DEMO_MODEL)
    with torch.no_grad():
        if how == "nan-weight":
            next(clf.net.parameters()).view(-1)[0] = float("nan")
        elif how == "zero-std":
            clf.std.zero_()
    return save_classifier(clf, tmp_path / f"{how}.pt")


@pytest.mark.parametrize("how", ["nan-weight", "zero-std"])
def test_damaged_checkpoint_is_refused(tmp_path, how):
    path = _broken_checkpoint(tmp_path, how)
    code, out, err = run_cli(["eval", "--model", path, "--data", DEMO_DATA, "--split", "all"])
    assert_one_error(code, err, how)
    assert path.name in err and "accuracy" not in out


def test_existing_output_is_kept_and_force_keeps_a_backup(tmp_path):
    target = tmp_path / "stimuli.h5"
    target.write_bytes(b"sessions depend on me")
    code, _, err = run_cli(["study", "prepare", "generic_2afc", "--model", DEMO_MODEL, "--data", DEMO_DATA,
                            "--out", target, "--clips", "1"])
    assert_one_error(code, err, "prepare over an existing file")
    assert "--force" in err and target.read_bytes() == b"sessions depend on me"

    report = tmp_path / "eval.json"
    report.write_text("old report")
    code, _, err = run_cli(["eval", "--model", DEMO_MODEL, "--data", DEMO_DATA, "--json", report, "--force"])
    assert code == 0, err
    assert (tmp_path / "eval.json.bak").read_text() == "old report"
    assert "accuracy" in report.read_text()


def test_no_display_is_a_message_not_an_abort(tmp_path, monkeypatch):
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    code, _, err = run_cli([DEMO_DATA])
    assert_one_error(code, err, "skelviz FILE")
    assert "xvfb-run" in err


def test_participant_id_that_looks_like_a_name_is_refused():
    from engine.errors import StudyError
    from studies.session import check_participant_code

    for good in ("P-7KQ2MX", "S012", "sub-07", "P-ONE"):
        assert check_participant_code(good) == good
    for name in ("AliceJones", "Alice_Jones", "alice1", "Bob", "Jones-3"):
        with pytest.raises(StudyError, match="looks like a name"):
            check_participant_code(name)
