"""Structurally hostile but well-formed files: every one is a project error naming the file, never a builtin
exception, a hang or a huge allocation (issue 17, item 3 and 5).

Each case builds its file in ``tmp_path``; the loaders are called in-process, and ``skelviz info`` is run on
every case too (exit code 2, one ``error:`` line naming the file, no traceback).
"""

from __future__ import annotations

import contextlib
import io
import resource
import zipfile

import h5py
import numpy as np
import pytest

from engine import skeletons
from engine.data import Clip
from engine.errors import SkelvizError
from engine.io import load_clip, load_dataset, save_clip
from engine.io.h5 import write_clips


def _clip(T=8, name="c", label="walk"):
    sk = skeletons.get("hdm05_25")
    x = np.random.default_rng(0).normal(size=(1, T, sk.num_joints, 3)).astype(np.float32)
    return Clip.from_bodies(x, sk, 30.0, label=label, name=name)


def _project(path, mutate):
    write_clips([_clip()], path)
    with h5py.File(path, "r+") as f:
        mutate(f, f["clips"][next(iter(f["clips"]))])
    return path


def _positions(path, fill=None, **attrs):
    with h5py.File(path, "w") as f:
        f.attrs["joint_names"] = np.array(["a", "b", "c"], dtype=h5py.string_dtype())
        f.attrs["parents"] = np.array([-1, 0, 1])
        f.attrs["fps"] = 30.0
        for k, v in attrs.items():
            f.attrs[k] = v
        if fill is not None:
            fill(f)
    return path


def _set(key, value):
    def mutate(f, g):
        (f if key in ("schema_version", "parents", "joint_names", "num_clips", "up_axis") else g).attrs[key] = value
    return mutate


def _replace_bodies(make):
    def mutate(f, g):
        del g["bodies"]
        make(g)
    return mutate


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def _bvh_deep(path, depth=3000, closed=True):
    lines = ["HIERARCHY", "ROOT r", "{", "OFFSET 0 0 0", "CHANNELS 3 Xposition Yposition Zposition"]
    for i in range(depth):
        lines += [f"JOINT j{i}", "{", "OFFSET 0 1 0", "CHANNELS 3 Zrotation Xrotation Yrotation"]
    lines += ["End Site", "{", "OFFSET 0 1 0", "}"] + ["}"] * (depth + 1 if closed else depth // 2)
    n = 3 + 3 * depth
    lines += ["MOTION", "Frames: 1", "Frame Time: 0.0333", " ".join(["0"] * n)]
    path.write_text("\n".join(lines))
    return path


def _ntu_many_bodies(path, frames=1000):
    joint = " ".join(["0.1"] * 12)
    out = [str(frames)]
    for f in range(frames):
        out += ["1", f"{f} 0 0 0 0 0 0 0 0 2", "25"] + [joint] * 25
    path.write_text("\n".join(out))
    return path


def _bvh_huge_frames(path):
    path.write_text("HIERARCHY\nROOT r\n{\nOFFSET 0 0 0\nCHANNELS 3 Xposition Yposition Zposition\n"
                    "End Site\n{\nOFFSET 0 1 0\n}\n}\nMOTION\nFrames: 1000000000\nFrame Time: 0.01\n0 0 0\n")
    return path


def _npz_as_zip_of_text(path):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("clips.npy", "not an array")
    return path


CASES = {
    # project HDF5: attributes of the wrong type
    "h5-fps-string": lambda p: _project(p / "a.h5", _set("fps", "fast")),
    "h5-fps-array": lambda p: _project(p / "a.h5", _set("fps", np.array([30.0, 60.0]))),
    "h5-schema-version-string": lambda p: _project(p / "a.h5", _set("schema_version", "one")),
    "h5-parents-strings": lambda p: _project(p / "a.h5", _set("parents", np.array(["x"] * 25, dtype="S1"))),
    "h5-parents-floats": lambda p: _project(p / "a.h5", _set("parents", np.full(25, 0.5))),
    "h5-parents-scalar": lambda p: _project(p / "a.h5", _set("parents", 3)),
    "h5-joint-names-ints": lambda p: _project(p / "a.h5", _set("joint_names", np.arange(25))),
    "h5-index-string": lambda p: _project(p / "a.h5", _set("index", "first")),
    "h5-label-not-utf8": lambda p: _project(p / "a.h5", _set("label", np.void(b"\xff\xfe\xfa"))),
    "h5-label-bytes-not-utf8": lambda p: _project(p / "a.h5", _set("label", np.bytes_(b"\xff\xfe"))),
    "h5-details-int": lambda p: _project(p / "a.h5", _set("details", 7)),
    # project HDF5: structure
    "h5-bodies-compound": lambda p: _project(p / "a.h5", _replace_bodies(lambda g: g.create_dataset(
        "bodies", data=np.zeros((1, 4, 25, 3), dtype=[("x", "f4"), ("y", "i4")])))),
    "h5-bodies-strings": lambda p: _project(p / "a.h5", _replace_bodies(lambda g: g.create_dataset(
        "bodies", data=np.full((1, 4, 25, 3), "a", dtype="S1")))),
    "h5-bodies-group": lambda p: _project(p / "a.h5", _replace_bodies(lambda g: g.create_group("bodies"))),
    "h5-bodies-soft-link": lambda p: _project(p / "a.h5", _replace_bodies(
        lambda g: g.__setitem__("bodies", h5py.SoftLink("/nowhere")))),
    "h5-bodies-external-link": lambda p: _project(p / "a.h5", _replace_bodies(
        lambda g: g.__setitem__("bodies", h5py.ExternalLink("/etc/passwd", "/x")))),
    "h5-bodies-scalar": lambda p: _project(p / "a.h5", _replace_bodies(lambda g: g.create_dataset("bodies", data=1.0))),
    "h5-clips-dataset": lambda p: _project(p / "a.h5", lambda f, g: (f.__delitem__("clips"),
                                                                     f.create_dataset("clips", data=[1, 2]))),
    "h5-no-clips": lambda p: _project(p / "a.h5", lambda f, g: f["clips"].__delitem__(g.name.split("/")[-1])),
    "h5-huge-declared-clip": lambda p: _project(p / "a.h5", _replace_bodies(lambda g: g.create_dataset(
        "bodies", shape=(1, 50_000_000, 25, 3), dtype="f4", chunks=(1, 1000, 25, 3), compression="gzip"))),
    "h5-billion-frames": lambda p: _project(p / "a.h5", _replace_bodies(lambda g: g.create_dataset(
        "bodies", shape=(1, 1_000_000_000, 25, 3), dtype="f4", chunks=(1, 1000, 25, 3)))),
    # positions-layout HDF5
    "pos-no-clips": lambda p: _positions(p / "a.h5"),
    "pos-fps-string": lambda p: _positions(p / "a.h5", lambda f: f.create_dataset("c", data=np.zeros((4, 3, 3))),
                                           fps="fast"),
    "pos-parents-strings": lambda p: _positions(p / "a.h5", lambda f: f.create_dataset("c", data=np.zeros((4, 3, 3))),
                                                parents=np.array([b"a", b"b", b"c"])),
    "pos-compound": lambda p: _positions(p / "a.h5", lambda f: f.create_dataset(
        "c", data=np.zeros((4, 3, 3), dtype=[("x", "f4")]))),
    "pos-label-not-utf8": lambda p: _positions(p / "a.h5", lambda f: f.create_dataset(
        "c", data=np.zeros((4, 3, 3))).attrs.__setitem__("label", np.bytes_(b"\xff\xfe"))),
    "pos-huge-declared": lambda p: _positions(p / "a.h5", lambda f: f.create_dataset(
        "c", shape=(200_000_000, 3, 3), dtype="f4", chunks=(1000, 3, 3))),
    # SMART .npz
    "npz-clips-strings": lambda p: _npz(p / "a.npz", clips=np.full((2, 4, 75), "x"), classes=np.array([0, 1])),
    "npz-classes-strings": lambda p: _npz(p / "a.npz", clips=np.zeros((2, 4, 75), "f4"), classes=np.array(["a", "b"]),
                                          normalised=np.array([0])),
    "npz-fps-string": lambda p: _npz(p / "a.npz", clips=np.zeros((2, 4, 75), "f4"), classes=np.array([0, 1]),
                                     normalised=np.array([0]), fps=np.array("fast")),
    "npz-normalised-string": lambda p: _npz(p / "a.npz", clips=np.zeros((2, 4, 75), "f4"), classes=np.array([0, 1]),
                                            normalised=np.array(["yes"])),
    "npz-skeleton-bytes": lambda p: _npz(p / "a.npz", clips=np.zeros((2, 4, 75), "f4"), classes=np.array([0, 1]),
                                         normalised=np.array([0]), skeleton=np.zeros(3)),
    "npz-compound": lambda p: _npz(p / "a.npz", clips=np.zeros((2, 4, 75), dtype=[("x", "f4")]),
                                   classes=np.array([0, 1]), normalised=np.array([0])),
    "npz-member-not-npy": lambda p: _npz_as_zip_of_text(p / "a.npz"),
    # ST-GCN .npy
    "npy-strings": lambda p: (np.save(p / "a.npy", np.full((1, 3, 4, 25, 1), "x")), p / "a.npy")[1],
    "npy-compound": lambda p: (np.save(p / "a.npy", np.zeros((1, 3, 4, 25, 1), dtype=[("x", "f4")])), p / "a.npy")[1],
    # text formats
    "bvh-deep-unclosed-hierarchy": lambda p: _bvh_deep(p / "a.bvh", closed=False),
    "bvh-billion-frames": lambda p: _bvh_huge_frames(p / "a.bvh"),
    "ntu-new-body-every-frame": lambda p: _ntu_many_bodies(p / "S001C001P001R001A001.skeleton"),
}

@pytest.fixture
def memory_cap():
    """Cap the address space at 3 GiB more than now so that a huge allocation fails fast instead of swapping."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as fh:
        used = int(fh.read().split()[0]) * resource.getpagesize()
    limit = used + (3 << 30)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_file_is_a_project_error_naming_the_file(tmp_path, case, memory_cap):
    path = CASES[case](tmp_path)
    for load in (load_clip, load_dataset):
        with pytest.raises(SkelvizError) as info:
            load(path)
        assert path.name in str(info.value), f"{load.__name__}: the message does not name the file: {info.value}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_info_reports_hostile_file_in_one_line(tmp_path, case, memory_cap):
    from skelviz.cli import main

    path = CASES[case](tmp_path)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["info", str(path)])
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip() and not ln.startswith(("WARNING", "INFO"))]
    assert code == 2, err.getvalue()
    assert len(lines) == 1 and lines[0].startswith("error: ") and path.name in lines[0], err.getvalue()
    assert "Traceback" not in err.getvalue()


def test_deep_bvh_loads_when_well_formed(tmp_path):
    """A deep hierarchy is not an error by itself: the parser is iterative."""
    clip = load_clip(_bvh_deep(tmp_path / "deep.bvh", depth=1500), units="m")
    assert clip.skeleton.num_joints == 1501
    assert clip.positions[0, -1, 1] == pytest.approx(1500.0)


def test_size_limit_can_be_raised(tmp_path, monkeypatch):
    """A genuinely long clip passes when the user raises the limit (SKELVIZ_MAX_ARRAY_MB)."""
    from engine.io import limits

    path = save_clip(_clip(T=4000), tmp_path / "long.h5")
    monkeypatch.setenv("SKELVIZ_MAX_ARRAY_MB", "1")
    with pytest.raises(SkelvizError, match="SKELVIZ_MAX_ARRAY_MB"):
        load_clip(path)
    monkeypatch.setenv("SKELVIZ_MAX_ARRAY_MB", "100")
    assert load_clip(path).num_frames == 4000
    assert limits.max_array_bytes() == 100 << 20
