"""Native motion formats on the real files in ../shared/data/formats: NTU .skeleton, Acclaim ASF/AMC, BVH.

What a person would check: frame counts, frame rates, a human-sized figure standing y-up with its feet on the
ground, rigid bones for rotation-based formats, the layout mapping to cmu31/hdm05_25, a BVH round trip, and
a clear error (file, line, frame) for every kind of broken file, made by cutting or corrupting the real files.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from engine import skeletons
from engine.errors import DataFormatError, MissingCompanionFileError
from engine.io.acclaim import AsfSkeleton, find_asf, read_amc, read_asf
from engine.io.bvh import UNIT_SCALES, detect_units, read_bvh, write_bvh
from engine.io.ntu import read_ntu
from engine.kinematics import best_fit_rotation

NTU_NAME = "S001C001P001R001A001.skeleton"
AMC_NAME = "HDM_dg_06-03_03_120.amc"
ASF_NAME = "HDM_dg.asf"
BVH_NAME = "131_01.bvh"


@pytest.fixture(scope="module")
def ntu_path(formats_dir) -> Path:
    return formats_dir / "ntu" / NTU_NAME


@pytest.fixture(scope="module")
def amc_path(formats_dir) -> Path:
    return formats_dir / "hdm05" / AMC_NAME


@pytest.fixture(scope="module")
def asf_path(formats_dir) -> Path:
    return formats_dir / "hdm05" / ASF_NAME


@pytest.fixture(scope="module")
def bvh_path(formats_dir) -> Path:
    return formats_dir / "bvh" / BVH_NAME


@pytest.fixture(scope="module")
def ntu_clip(ntu_path):
    return read_ntu(ntu_path)


@pytest.fixture(scope="module")
def amc_clip(amc_path, asf_path):
    return read_amc(amc_path, asf_path)


@pytest.fixture(scope="module")
def bvh_clip(bvh_path):
    return read_bvh(bvh_path)


def _idx(clip, *names):
    return [clip.skeleton.index(n) for n in names]


def _standing_height(positions: np.ndarray) -> float:
    """95th percentile over frames of the joints' vertical extent (the clip may crouch or sit at times)."""
    extent = positions[..., 1].max(axis=1) - positions[..., 1].min(axis=1)
    return float(np.percentile(extent, 95))


def _assert_feet_on_ground(clip, feet: list[str], spread: float) -> None:
    """Feet are the lowest joints, and the lowest foot joint stays near one floor height all clip long."""
    p = clip.positions
    lowest_foot = p[:, _idx(clip, *feet), 1].min(axis=1)
    lowest_joint = p[..., 1].min(axis=1)
    assert np.all(lowest_foot - lowest_joint < 0.05), "a non-foot joint is more than 5 cm below the feet"
    assert np.ptp(lowest_foot) < spread, f"the supporting foot moves {np.ptp(lowest_foot):.3f} m up and down"


def _copy(src: Path, tmp_path: Path, name: str | None = None) -> Path:
    dst = tmp_path / (name or src.name)
    shutil.copyfile(src, dst)
    dst.chmod(0o644)
    return dst


def _edit_line(path: Path, lineno: int, fn) -> None:
    lines = path.read_text(encoding="latin-1").splitlines()
    lines[lineno - 1] = fn(lines[lineno - 1])
    path.write_text("\n".join(lines) + "\n", encoding="latin-1")


def _replace_field(line: str, k: int, new: str) -> str:
    fields = line.split()
    fields[k] = new
    return " ".join(fields)


# -- NTU RGB+D ------------------------------------------------------------------------------------------------
def test_ntu_real_file(ntu_clip):
    c = ntu_clip
    assert (c.num_frames, c.num_bodies, c.skeleton.name, c.fps) == (103, 1, "ntu25", 30.0)
    assert c.positions.dtype == np.float32 and c.positions.shape == (103, 25, 3)
    assert c.label == "A001"
    d = c.provenance.details
    assert c.provenance.format == "ntu-skeleton" and c.provenance.source.endswith(NTU_NAME)
    assert (d["setup"], d["camera"], d["performer"], d["replication"], d["action"]) == (1, 1, 1, 1, 1)
    assert d["empty_frames"] == [] and d["bodies"][0]["frames_present"] == 103
    # First joint of the first frame, straight from the file (camera space, metres).
    np.testing.assert_allclose(c.positions[0, 0], [0.2181153, 0.1725972, 3.785547], rtol=1e-6)


def test_ntu_figure_is_human_sized_upright_and_standing(ntu_clip):
    c = ntu_clip
    p = c.positions.astype(np.float64)
    head, lfoot, rfoot = _idx(c, "Head", "FootLeft", "FootRight")
    # The Kinect is tilted, so measure head-to-feet as a distance rather than along y.
    height = np.median(np.linalg.norm(p[:, head] - (p[:, lfoot] + p[:, rfoot]) / 2, axis=-1))
    assert 1.3 <= height <= 2.1, height
    assert np.all(p[:, head, 1] > p[:, [lfoot, rfoot], 1].max(axis=1) + 1.0)  # y is up
    _assert_feet_on_ground(c, ["FootLeft", "FootRight", "AnkleLeft", "AnkleRight"], spread=0.1)


def _ntu_blocks(path: Path):
    """The real file's frames as lists of body blocks (body line, joint count line, 25 joint lines)."""
    lines = path.read_text().splitlines()
    n, k, frames = int(lines[0]), 1, []
    for _ in range(n):
        nb = int(lines[k])
        k += 1
        bodies = []
        for _ in range(nb):
            bodies.append(lines[k : k + 27])
            k += 27
        frames.append(bodies)
    return frames


def _shifted_body(block: list[str], new_id: str, dx: float) -> list[str]:
    info = block[0].split()
    info[0] = new_id
    joints = []
    for ln in block[2:]:
        f = ln.split()
        f[0] = repr(float(f[0]) + dx)
        joints.append(" ".join(f))
    return [" ".join(info), block[1], *joints]


def _write_ntu(path: Path, layout: list[list[list[str]]]) -> Path:
    out = [str(len(layout))]
    for bodies in layout:
        out.append(str(len(bodies)))
        for block in bodies:
            out.extend(block)
    path.write_text("\n".join(out) + "\n")
    return path


def test_ntu_several_bodies_and_empty_frames(ntu_path, tmp_path):
    frames = _ntu_blocks(ntu_path)[:6]
    a = [f[0] for f in frames]
    b = [_shifted_body(f[0], "999", 1.0) for f in frames]
    # Body B comes first in the file but is tracked in 3 frames, body A in 4; frame 1 has nobody.
    layout = [[b[0]], [], [b[2], a[2]], [a[3], b[3]], [a[4]], [a[5]]]
    c = read_ntu(_write_ntu(tmp_path / "S002C003P004R002A050.skeleton", layout))
    assert (c.num_frames, c.num_bodies, c.label) == (6, 2, "A050")
    d = c.provenance.details
    assert (d["setup"], d["camera"], d["performer"], d["replication"], d["action"]) == (2, 3, 4, 2, 50)
    assert d["empty_frames"] == [1]
    main, other = d["bodies"]
    assert (main["id"], main["frames_present"], other["id"], other["frames_present"]) == (
        a[0][0].split()[0],
        4,
        "999",
        3,
    )
    assert main["filled_frames"] == [0, 1] and other["filled_frames"] == [1, 4, 5]
    body_a, body_b = c.bodies
    np.testing.assert_array_equal(c.positions, body_a)
    # Each performer keeps its identity whatever its place in the frame.
    np.testing.assert_allclose(body_b[2] - [1.0, 0, 0], body_a[2], atol=1e-5)
    np.testing.assert_allclose(body_b[3] - [1.0, 0, 0], body_a[3], atol=1e-5)
    # Absent frames repeat the body's previous pose (its first pose before it appears).
    np.testing.assert_array_equal(body_a[0], body_a[2])
    np.testing.assert_array_equal(body_a[1], body_a[2])
    np.testing.assert_array_equal(body_b[1], body_b[0])
    np.testing.assert_array_equal(body_b[5], body_b[3])
    assert read_ntu(tmp_path / "S002C003P004R002A050.skeleton", max_bodies=1).num_bodies == 1


def test_ntu_main_performer_is_the_one_that_moves_more(ntu_path, tmp_path):
    frames = _ntu_blocks(ntu_path)[:5]
    still = [_shifted_body(frames[0][0], "111", 0.0) for _ in frames]  # the same pose in every frame
    moving = [_shifted_body(f[0], "222", 0.2 * k) for k, f in enumerate(frames)]
    c = read_ntu(_write_ntu(tmp_path / "two.skeleton", [[s, m] for s, m in zip(still, moving)]))
    assert [body["id"] for body in c.provenance.details["bodies"]] == ["222", "111"]
    assert c.label is None
    assert np.ptp(c.positions[:, 0, 0]) > 0.7 and np.ptp(c.bodies[1][:, 0, 0]) == 0


def test_ntu_truncated(ntu_path, tmp_path):
    path = _copy(ntu_path, tmp_path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    with pytest.raises(DataFormatError, match="ends early") as err:
        read_ntu(path)
    assert err.value.path == path and err.value.frame == 51 and "truncated" in str(err.value)


@pytest.mark.parametrize(
    "bad, message", [("abc", "non-numeric value 'abc'"), ("nan", "NaN or Inf"), ("-inf", "NaN or Inf")]
)
def test_ntu_bad_number(ntu_path, tmp_path, bad, message):
    path = _copy(ntu_path, tmp_path)
    # Line 1 frame count, 2 body count, 3 body info, 4 joint count, 5.. joints of frame 0; frame 1 starts at 30.
    _edit_line(path, 35, lambda ln: _replace_field(ln, 1, bad))
    with pytest.raises(DataFormatError, match=message) as err:
        read_ntu(path)
    assert (err.value.line, err.value.frame) == (35, 1)
    assert "line 35" in str(err.value) and NTU_NAME in str(err.value)


def test_ntu_wrong_joint_count(ntu_path, tmp_path):
    path = _copy(ntu_path, tmp_path)
    _edit_line(path, 32, lambda ln: "24")  # joint count of frame 1's body
    with pytest.raises(DataFormatError, match="has 24 joints; NTU RGB\\+D .* have 25") as err:
        read_ntu(path)
    assert (err.value.line, err.value.frame) == (32, 1)


def test_ntu_joint_line_with_missing_values(ntu_path, tmp_path):
    path = _copy(ntu_path, tmp_path)
    _edit_line(path, 40, lambda ln: " ".join(ln.split()[:11]))
    with pytest.raises(DataFormatError, match="has 11 values") as err:
        read_ntu(path)
    assert err.value.line == 40


@pytest.mark.parametrize(
    "text, message", [("0\n", "0 frames"), ("3\n0\n0\n0\n", "none of the 3 frames contains a body")]
)
def test_ntu_empty(tmp_path, text, message):
    path = tmp_path / "S001C001P001R001A001.skeleton"
    path.write_text(text)
    with pytest.raises(DataFormatError, match=message):
        read_ntu(path)


# -- Acclaim ASF/AMC ------------------------------------------------------------------------------------------
def test_asf_parses_units_bones_and_hierarchy(asf_path):
    asf = read_asf(asf_path)
    assert isinstance(asf, AsfSkeleton)
    assert len(asf.bones) == 30 and asf.length_unit == 0.45 and asf.angle_unit == "deg"
    assert asf.metres_per_unit == pytest.approx(0.056444, abs=1e-6)
    assert asf.root_order == ("TX", "TY", "TZ", "RX", "RY", "RZ") and asf.root_axis == "XYZ"
    femur = asf.bone["lfemur"]
    assert femur.dof == ("rx", "ry", "rz") and femur.length == pytest.approx(6.69088)
    np.testing.assert_allclose(femur.axis, np.deg2rad([0, 0, 20]))
    np.testing.assert_allclose(femur.limits[0], np.deg2rad([-160, 20]))
    assert asf.bone["lhipjoint"].dof == () and asf.bone["lclavicle"].dof == ("ry", "rz")
    sk = asf.skeleton
    assert sk.name == "acclaim:HDM_dg" and sk.num_joints == 31 and sk.joint_names[0] == "root"
    assert all(n == n.lower() for n in sk.joint_names)
    assert sk.joint_names[sk.parents[sk.index("ltibia")]] == "lfemur"
    assert sk.joint_names[sk.parents[sk.index("lclavicle")]] == "thorax"
    assert sorted(sk.joint_names[c] for c in sk.children[0]) == ["lhipjoint", "lowerback", "rhipjoint"]


def test_amc_real_file(amc_clip, asf_path):
    c = amc_clip
    assert (c.num_frames, c.fps, c.num_bodies) == (202, 120.0, 1)
    assert c.positions.dtype == np.float32 and c.positions.shape == (202, 31, 3)
    assert c.skeleton == read_asf(asf_path).skeleton
    assert c.provenance.format == "acclaim-amc" and c.provenance.details["fps_source"] == "file name"
    # Root translation of frame 1, straight from the file, in metres.
    np.testing.assert_allclose(c.positions[0, 0], np.array([22.6974, 17.5849, 23.9645]) * 0.0254 / 0.45, rtol=1e-6)


def test_amc_figure_is_rigid_human_sized_and_on_the_floor(amc_clip, asf_path):
    c = amc_clip
    p = c.positions.astype(np.float64)
    assert 1.3 <= _standing_height(p) <= 2.1
    lengths = c.skeleton.bone_lengths(p)
    assert lengths.std(axis=0).max() < 1e-5
    asf = read_asf(asf_path)
    expected = [
        asf.bone[c.skeleton.joint_names[child]].length * asf.metres_per_unit for child in c.skeleton.bone_children
    ]
    np.testing.assert_allclose(lengths.mean(axis=0), expected, rtol=1e-5)
    head, ltoes, rtoes = _idx(c, "head", "ltoes", "rtoes")
    assert np.all(p[:, head, 1] > p[:, [ltoes, rtoes], 1].max(axis=1) + 1.0)  # y is up
    assert -0.02 < p[..., 1].min() < 0.05  # HDM05's floor is y = 0
    # The take is a jog (over 4 m in 1.7 s): the lowest foot leaves the floor by up to 10 cm in flight phases.
    _assert_feet_on_ground(c, ["ltoes", "rtoes", "lfoot", "rfoot"], spread=0.15)


def test_amc_zero_motion_is_the_asf_rest_pose(amc_path, asf_path, tmp_path):
    asf = read_asf(asf_path)
    lines = amc_path.read_text(encoding="latin-1").splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.strip() == "1")
    end = next(i for i, ln in enumerate(lines) if ln.strip() == "2")
    frame = [lines[start]] + [
        " ".join([ln.split()[0]] + ["0"] * (len(ln.split()) - 1)) for ln in lines[start + 1 : end]
    ]
    path = tmp_path / "rest.amc"
    path.write_text("\n".join(lines[:start] + frame) + "\n", encoding="latin-1")
    c = read_amc(path, asf)
    np.testing.assert_allclose(c.positions[0], asf.rest_positions(), atol=1e-6)
    assert c.fps == 120.0 and c.provenance.details["fps_source"].startswith("default")
    assert read_amc(path, asf, fps=60).fps == 60.0


def _read_c3d_points(path: Path) -> tuple[list[str], np.ndarray]:
    """Just enough C3D (Intel, float data) to get the marker labels and (T, N, 3) positions in metres."""
    raw = path.read_bytes()
    words = struct.unpack("<256h", raw[:512])
    n_points, first, last, data_block = words[1], words[3], words[4], words[8]
    (scale,) = struct.unpack("<f", raw[12:16])
    assert scale < 0, "integer C3D data is not handled by this test helper"
    p = (raw[0] - 1) * 512 + 4
    labels: list[str] = []
    groups: dict[int, str] = {}
    while True:
        name_len, gid = struct.unpack("bb", raw[p : p + 2])
        if name_len == 0:
            break
        name = raw[p + 2 : p + 2 + abs(name_len)].decode("latin-1")
        q = p + 2 + abs(name_len)
        (step,) = struct.unpack("<h", raw[q : q + 2])
        if gid < 0:
            groups[-gid] = name
        elif groups.get(gid) == "POINT" and name == "LABELS":
            ndim = raw[q + 3]
            width, count = raw[q + 4], raw[q + 5]
            text = raw[q + 4 + ndim : q + 4 + ndim + width * count].decode("latin-1")
            labels = [text[k * width : (k + 1) * width].strip().split(":")[-1] for k in range(count)]
        if step == 0:
            break
        p = q + step
    n_frames = last - first + 1
    data = np.frombuffer(raw, dtype="<f4", count=n_frames * n_points * 4, offset=(data_block - 1) * 512)
    return labels, data.reshape(n_frames, n_points, 4)[..., :3] / 1000.0


def test_amc_forward_kinematics_agree_with_the_optical_markers(amc_clip, formats_dir):
    """The same HDM05 take as raw optical markers (.c3d, mm): after one rigid alignment, joint centres from
    our forward kinematics lie a skin-marker offset (a few cm) from their markers. A wrong Euler convention
    puts elbows and fingers 30+ cm off; a wrong unit scale leaves residuals of decimetres everywhere."""
    labels, markers = _read_c3d_points(formats_dir / "hdm05" / "HDM_dg_06-03_03_120.c3d")
    assert markers.shape[:2] == (amc_clip.num_frames, 44)
    m = {n: markers[:, k] for k, n in enumerate(labels)}
    p = amc_clip.positions.astype(np.float64)
    j = {n: p[:, k] for k, n in enumerate(amc_clip.skeleton.joint_names)}
    pairs = {
        "head": ((m["LFHD"] + m["RFHD"] + m["LBHD"] + m["RBHD"]) / 4, (j["upperneck"] + j["head"]) / 2),
        "left knee": (m["LKNE"], j["lfemur"]),
        "right knee": (m["RKNE"], j["rfemur"]),
        "left ankle": (m["LANK"], j["ltibia"]),
        "right ankle": (m["RANK"], j["rtibia"]),
        "left elbow": (m["LELB"], j["lhumerus"]),
        "right elbow": (m["RELB"], j["rhumerus"]),
        "left wrist": ((m["LWRA"] + m["LWRB"]) / 2, j["lradius"]),
        "right wrist": ((m["RWRA"] + m["RWRB"]) / 2, j["rradius"]),
        "left hand": (m["LFIN"], j["lhand"]),
        "right hand": (m["RFIN"], j["rhand"]),
        "left toe": (m["LTOE"], j["lfoot"]),
        "right toe": (m["RTOE"], j["rfoot"]),
    }
    src = np.concatenate([a for a, _ in pairs.values()])
    dst = np.concatenate([b for _, b in pairs.values()])
    assert np.isfinite(src).all() and (np.abs(src).sum(axis=1) > 0).all()
    R = best_fit_rotation((src - src.mean(0))[None], (dst - dst.mean(0))[None])[0]
    assert np.linalg.det(R) == pytest.approx(1.0)  # a proper rotation: no mirror between the two
    for name, (a, b) in pairs.items():
        residual = np.linalg.norm((a - src.mean(0)) @ R.T + dst.mean(0) - b, axis=-1)
        assert np.median(residual) < 0.11, f"{name}: {np.median(residual):.3f} m from its marker"
    all_res = np.linalg.norm((src - src.mean(0)) @ R.T + dst.mean(0) - dst, axis=-1)
    assert np.median(all_res) < 0.08


def test_acclaim_maps_to_cmu31_and_hdm05_25(amc_clip):
    c = amc_clip
    for layout in ("cmu31", "hdm05_25"):
        dst = skeletons.get(layout)
        mapped = skeletons.map_positions(c.positions, c.skeleton, layout)
        assert mapped.shape == (202, dst.num_joints, 3)
        # Still a rigid figure in the new layout. Where hdm05_25 drops a joint (the finger bases), its bone
        # spans two Acclaim bones that rotate independently: only those may change length (by < 2 mm here).
        std = dst.bone_lengths(mapped.astype(np.float64)).std(axis=0)
        moving = [dst.joint_names[dst.bones[b][1]] for b in np.flatnonzero(std > 1e-5)]
        assert moving == ([] if layout == "cmu31" else ["LeftHandIndex1", "RightHandIndex1"])
        assert std.max() < 0.002
    hdm = skeletons.map_positions(c.positions, c.skeleton, "hdm05_25")
    h = skeletons.HDM05_25
    np.testing.assert_array_equal(hdm[:, h.index("Hips")], c.positions[:, c.skeleton.index("root")])
    np.testing.assert_array_equal(hdm[:, h.index("LeftLeg")], c.positions[:, c.skeleton.index("lfemur")])  # knee
    np.testing.assert_array_equal(hdm[:, h.index("RightFoot")], c.positions[:, c.skeleton.index("rtibia")])  # ankle
    assert np.all(hdm[:, h.index("Neck1"), 1] > hdm[:, h.index("LeftToeBase"), 1] + 1.0)


def test_amc_finds_its_asf(amc_path, asf_path, tmp_path):
    amc = _copy(amc_path, tmp_path)
    _copy(asf_path, tmp_path)
    assert find_asf(amc) == tmp_path / ASF_NAME
    np.testing.assert_array_equal(read_amc(amc).positions, read_amc(amc_path, asf_path).positions)
    _copy(asf_path, tmp_path, "HDM_bd.asf")  # a second skeleton: the name prefix decides
    assert find_asf(amc) == tmp_path / ASF_NAME
    assert read_amc(amc).num_frames == 202


def test_amc_without_its_asf(amc_path, asf_path, tmp_path):
    amc = _copy(amc_path, tmp_path)
    with pytest.raises(MissingCompanionFileError, match="--asf"):
        read_amc(amc)
    _copy(asf_path, tmp_path, "other.asf")
    _copy(asf_path, tmp_path, "another.asf")
    with pytest.raises(MissingCompanionFileError, match="ASF skeleton"):
        read_amc(amc)
    with pytest.raises(MissingCompanionFileError, match="does not exist"):
        read_amc(amc, tmp_path / "missing.asf")


def _amc_line(path: Path, frame: int, bone: str) -> int:
    """1-based line number of ``bone``'s line in AMC frame number ``frame``."""
    lines = path.read_text(encoding="latin-1").splitlines()
    k = next(i for i, ln in enumerate(lines) if ln.strip() == str(frame))
    return next(i for i in range(k + 1, len(lines)) if lines[i].split()[0] == bone) + 1


@pytest.mark.parametrize(
    "bad, message", [("abc", "non-numeric value 'abc'"), ("nan", "NaN or Inf"), ("inf", "NaN or Inf")]
)
def test_amc_bad_number(amc_path, asf_path, tmp_path, bad, message):
    amc = _copy(amc_path, tmp_path)
    line = _amc_line(amc, 50, "lfemur")
    _edit_line(amc, line, lambda ln: _replace_field(ln, 2, bad))
    with pytest.raises(DataFormatError, match=message) as err:
        read_amc(amc, asf_path)
    assert (err.value.line, err.value.frame) == (line, 49)


def test_amc_truncated_mid_frame(amc_path, asf_path, tmp_path):
    amc = _copy(amc_path, tmp_path)
    lines = amc.read_text(encoding="latin-1").splitlines()
    cut = _amc_line(amc, 202, "rhumerus")
    amc.write_text("\n".join(lines[:cut]) + "\n", encoding="latin-1")
    with pytest.raises(DataFormatError, match="frame 202 lacks") as err:
        read_amc(amc, asf_path)
    assert err.value.frame == 201 and "truncated" in str(err.value)
    # A line cut in the middle: the bone has too few values.
    amc.write_text("\n".join(lines[: cut - 1] + [lines[cut - 1].rsplit(" ", 1)[0]]) + "\n", encoding="latin-1")
    with pytest.raises(DataFormatError, match="rhumerus has 2 values but the ASF gives it 3") as err:
        read_amc(amc, asf_path)
    assert err.value.line == cut


def test_amc_bone_not_in_asf(amc_path, asf_path, tmp_path):
    amc = _copy(amc_path, tmp_path)
    line = _amc_line(amc, 3, "lfemur")
    _edit_line(amc, line, lambda ln: _replace_field(ln, 0, "ltail"))
    with pytest.raises(DataFormatError, match="bone 'ltail' is not in the ASF skeleton HDM_dg") as err:
        read_amc(amc, asf_path)
    assert (err.value.line, err.value.frame) == (line, 2)


def test_amc_without_frames(amc_path, asf_path, tmp_path):
    amc = tmp_path / "empty.amc"
    amc.write_text(":FULLY-SPECIFIED\n:DEGREES\n")
    with pytest.raises(DataFormatError, match="no frames"):
        read_amc(amc, asf_path)


def test_asf_errors(asf_path, tmp_path):
    asf = _copy(asf_path, tmp_path)
    text = asf.read_text(encoding="latin-1")
    lines = text.splitlines()
    length_line = next(i for i, ln in enumerate(lines) if ln.split()[:1] == ["length"] and "2.59943" in ln) + 1
    _edit_line(asf, length_line, lambda ln: "     length 2.5x9943")
    with pytest.raises(DataFormatError, match="non-numeric value '2.5x9943'") as err:
        read_asf(asf)
    assert err.value.line == length_line
    cut = next(i for i, ln in enumerate(lines) if "name lhumerus" in ln)
    asf.write_text("\n".join(lines[:cut]) + "\n", encoding="latin-1")
    with pytest.raises(DataFormatError, match="ends inside the bone block"):
        read_asf(asf)
    asf.write_text(text.replace("lhand lthumb", "lhand lthumb lpinky"), encoding="latin-1")
    with pytest.raises(DataFormatError, match="undefined bone 'lpinky'"):
        read_asf(asf)


# -- BVH ------------------------------------------------------------------------------------------------------
def test_bvh_real_file(bvh_clip):
    c = bvh_clip
    assert (c.num_frames, c.skeleton.num_joints, c.fps) == (994, 31, 120.0)
    assert c.skeleton.name == "bvh:131_01" and c.skeleton.joint_names[0] == "Hips"
    assert c.positions.dtype == np.float32
    d = c.provenance.details
    assert c.provenance.format == "bvh"
    assert (d["units"], d["units_source"]) == ("acclaim", "detected")
    assert len(d["end_sites"]) == 7 and "Head" in d["end_sites"]
    assert d["channels"]["Hips"][:3] == ["Xposition", "Yposition", "Zposition"]
    assert d["channels"]["LeftShoulder"] == ["Zrotation", "Xrotation", "Yrotation"]
    # Frame 1's root position, straight from the file.
    np.testing.assert_allclose(c.positions[0, 0], np.array([5.2300, 16.9002, -33.8986]) * 0.0254 / 0.45, rtol=1e-6)


def test_bvh_figure_is_rigid_human_sized_and_walks_on_the_floor(bvh_clip):
    c = bvh_clip
    p = c.positions.astype(np.float64)
    assert 1.3 <= _standing_height(p) <= 2.1
    assert c.skeleton.bone_lengths(p).std(axis=0).max() < 1e-5
    head, ltoe, rtoe = _idx(c, "Head", "LeftToe", "RightToe")
    assert np.all(p[:, head, 1] > p[:, [ltoe, rtoe], 1].max(axis=1) + 0.5)  # y is up (the take starts crouched)
    _assert_feet_on_ground(c, ["LeftToe", "RightToe", "LeftAnkle", "RightAnkle"], spread=0.1)
    assert np.ptp(p[:, 0, [0, 2]], axis=0).max() > 1.0  # the walk covers ground


def test_bvh_units_override(bvh_path, bvh_clip):
    file_units = read_bvh(bvh_path, units="m")
    np.testing.assert_allclose(file_units.positions * UNIT_SCALES["acclaim"], bvh_clip.positions, rtol=1e-5, atol=1e-6)
    assert file_units.provenance.details["units_source"] == "given"
    np.testing.assert_allclose(read_bvh(bvh_path, units=0.01).positions, file_units.positions * 0.01, rtol=1e-5)
    np.testing.assert_allclose(read_bvh(bvh_path, units="cm").positions, file_units.positions * 0.01, rtol=1e-5)
    with pytest.raises(ValueError, match="unknown units"):
        read_bvh(bvh_path, units="furlong")


@pytest.mark.parametrize(
    "height, unit", [(1.75, "m"), (31.0, "acclaim"), (69.0, "inch"), (175.0, "cm"), (1750.0, "mm"), (0.17, "m")]
)
def test_bvh_unit_heuristic(height, unit):
    name, scale, in_range = detect_units(height)
    assert name == unit
    assert in_range == (height != 0.17)


@pytest.mark.parametrize("name, fn", [("ntu", "ntu_clip"), ("hdm05", "amc_clip"), ("cmu bvh", "bvh_clip")])
def test_bvh_round_trip(name, fn, request, tmp_path):
    clip = request.getfixturevalue(fn)
    path = write_bvh(clip, tmp_path / "out.bvh")
    back = read_bvh(path)
    assert back.provenance.details["units"] == "m"
    assert (back.num_frames, back.fps, back.skeleton.num_joints) == (
        clip.num_frames,
        clip.fps,
        clip.skeleton.num_joints,
    )
    # BVH lists joints depth first; compare by name.
    order = [back.skeleton.index(n) for n in clip.skeleton.joint_names]
    assert [back.skeleton.joint_names[k] for k in order] == list(clip.skeleton.joint_names)
    assert [back.skeleton.parents[k] for k in order] == [-1 if p < 0 else order[p] for p in clip.skeleton.parents]
    err = np.linalg.norm(back.positions[:, order] - clip.positions, axis=-1)
    assert err.max() < 1e-5, f"{name}: {err.max():.2e} m"


def test_bvh_rotation_only_rig(amc_clip, bvh_clip, tmp_path):
    """Without position channels: bones whose parent has a single child are reproduced exactly (direction and
    mean length); a branching joint gets one best-fit rotation for all its children."""
    path = write_bvh(amc_clip, tmp_path / "rig.bvh", translations="none")
    text = path.read_text()
    assert text.count("CHANNELS 6") == 1 and text.count("CHANNELS 3") == 30
    back = read_bvh(path)
    sk = amc_clip.skeleton
    order = [back.skeleton.index(n) for n in sk.joint_names]
    src = sk.bone_vectors(amc_clip.positions.astype(np.float64))
    got = sk.bone_vectors(back.positions[:, order].astype(np.float64))
    single = [b for b, (p, _) in enumerate(sk.bones) if len(sk.children[p]) == 1]
    assert np.linalg.norm(got[:, single] - src[:, single], axis=-1).max() < 1e-5
    # Bone lengths are preserved everywhere; positions drift by the branch fits (a few cm at most here).
    np.testing.assert_allclose(np.linalg.norm(got, axis=-1), np.linalg.norm(src, axis=-1), atol=1e-5)
    assert np.linalg.norm(back.positions[:, order] - amc_clip.positions, axis=-1).max() < 0.05
    # A hierarchy whose branches are rigid (the CMU BVH) needs no position channels at all.
    auto = write_bvh(bvh_clip, tmp_path / "cmu.bvh").read_text()
    assert auto.count("CHANNELS 6") == 1


@pytest.mark.parametrize("order", ["XYZ", "ZXY", "YZX"])
def test_bvh_channel_orders_and_six_channel_joints(amc_clip, tmp_path, order):
    path = write_bvh(amc_clip, tmp_path / "o.bvh", rotation_order=order, translations="all")
    text = path.read_text()
    assert text.count("CHANNELS 6") == 31
    assert f"{order[0]}rotation {order[1]}rotation {order[2]}rotation" in text
    back = read_bvh(path)
    idx = [back.skeleton.index(n) for n in amc_clip.skeleton.joint_names]
    assert np.abs(back.positions[:, idx] - amc_clip.positions).max() < 1e-5


def _hinge_axis_spread(local: np.ndarray) -> float:
    """Mean angle (degrees) between each frame's rotation axis and the mean axis, over frames bent > 15°."""
    from scipy.spatial.transform import Rotation

    rv = Rotation.from_matrix(local).as_rotvec()
    angle = np.linalg.norm(rv, axis=1)
    axis = rv[angle > 0.25] / angle[angle > 0.25, None]
    axis *= np.sign(axis @ axis[0])[:, None]
    mean = axis.mean(axis=0) / np.linalg.norm(axis.mean(axis=0))
    return float(np.degrees(np.arccos(np.clip(axis @ mean, -1.0, 1.0))).mean())


def test_bvh_each_joint_is_composed_in_its_own_channel_order(bvh_path):
    """131_01 lists its arms' rotations as Zrotation Xrotation Yrotation and its legs' as Zrotation Yrotation
    Xrotation. Its elbows and knees come from one-degree-of-freedom joints of the CMU source, so with each joint's
    channels composed in its own listed order (R = R_first R_second R_third) their local rotations turn about one
    fixed axis; composing the elbows in the legs' order instead spreads that axis by several degrees (the check
    can fail)."""
    from engine.io import bvh as B
    from engine.io.text import read_text_lines

    lines = read_text_lines(bvh_path)
    motion_at = next(i for i, ln in enumerate(lines) if ln.strip().upper().startswith("MOTION"))
    joints = B._parse_hierarchy(B._Tokens(bvh_path, lines, motion_at))
    n_frames, _, first = B._read_motion_header(bvh_path, lines, motion_at)
    starts = list(np.cumsum([0] + [len(j.channels) for j in joints[:-1]]))
    motion = B._read_motion_rows(bvh_path, lines, first, n_frames, joints, starts)
    local, _ = B._local_rotations(joints, motion, starts)
    names = [j.name for j in joints]
    assert joints[names.index("LeftElbow")].channels == ["Zrotation", "Xrotation", "Yrotation"]
    assert joints[names.index("LeftKnee")].channels == ["Zrotation", "Yrotation", "Xrotation"]
    for name in ("LeftElbow", "RightElbow", "LeftKnee", "RightKnee"):
        assert _hinge_axis_spread(local[:, names.index(name)]) < 0.5, name
    for name in ("LeftElbow", "RightElbow"):  # the same numbers composed in the legs' order: no longer a hinge
        joints[names.index(name)].channels = ["Zrotation", "Yrotation", "Xrotation"]
    wrong, _ = B._local_rotations(joints, motion[:, _swap_columns(joints, starts, names)], starts)
    for name in ("LeftElbow", "RightElbow"):
        assert _hinge_axis_spread(wrong[:, names.index(name)]) > 2.0, name


def _swap_columns(joints, starts, names) -> list[int]:
    """Column order that keeps each elbow's X and Y angles on their axes after relabelling ZXY as ZYX."""
    cols = list(range(sum(len(j.channels) for j in joints)))
    for name in ("LeftElbow", "RightElbow"):
        s = starts[names.index(name)]
        cols[s + 1], cols[s + 2] = cols[s + 2], cols[s + 1]
    return cols


def _motion_start(path: Path) -> int:
    """1-based line number of the first frame."""
    lines = path.read_text().splitlines()
    return next(i for i, ln in enumerate(lines) if ln.startswith("Frame Time")) + 2


def test_bvh_truncated_motion(bvh_path, tmp_path):
    path = _copy(bvh_path, tmp_path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-10]) + "\n")
    with pytest.raises(DataFormatError, match="declares 994 frames but the file holds 984") as err:
        read_bvh(path)
    assert "truncated" in str(err.value)
    # Cut inside the last line: that frame has too few values.
    path.write_text("\n".join(lines[:-1] + [lines[-1][: len(lines[-1]) // 2].rsplit(" ", 1)[0]]) + "\n")
    with pytest.raises(DataFormatError, match="a frame needs 96 values") as err:
        read_bvh(path)
    assert (err.value.line, err.value.frame) == (len(lines), 993)


def test_bvh_truncated_hierarchy(bvh_path, tmp_path):
    path = _copy(bvh_path, tmp_path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:100]) + "\n")
    with pytest.raises(DataFormatError, match="hierarchy ends early") as err:
        read_bvh(path)
    assert "truncated" in str(err.value) and err.value.line == 100


@pytest.mark.parametrize(
    "bad, message", [("abc", "non-numeric value 'abc'"), ("nan", "NaN or Inf"), ("-inf", "NaN or Inf")]
)
def test_bvh_bad_number(bvh_path, tmp_path, bad, message):
    path = _copy(bvh_path, tmp_path)
    line = _motion_start(path) + 500
    _edit_line(path, line, lambda ln: _replace_field(ln, 40, bad))
    with pytest.raises(DataFormatError, match=message) as err:
        read_bvh(path)
    assert (err.value.line, err.value.frame) == (line, 500)


def test_bvh_bad_headers(bvh_path, tmp_path):
    path = _copy(bvh_path, tmp_path)
    text = path.read_text()
    path.write_text(text.replace("Frames: 994", "Frames: 0"))
    with pytest.raises(DataFormatError, match="declares 0 frames"):
        read_bvh(path)
    path.write_text(text.replace("Frame Time: .0083333", "Frame Time: 0"))
    with pytest.raises(DataFormatError, match="frame time must be a positive"):
        read_bvh(path)
    path.write_text(text.replace("OFFSET 2.49329 -6.85026", "OFFSET 2.49329 -6.8x5026"))
    with pytest.raises(DataFormatError, match="OFFSET of LeftKnee: non-numeric"):
        read_bvh(path)
    path.write_text(
        text.replace("CHANNELS 3 Zrotation Yrotation Xrotation", "CHANNELS 3 Zrotation Yrotation Wrotation", 1)
    )
    with pytest.raises(DataFormatError, match="unknown channel 'Wrotation' of LHipJoint"):
        read_bvh(path)
    path.write_text(text.split("MOTION")[0])
    with pytest.raises(DataFormatError, match="no MOTION section"):
        read_bvh(path)
