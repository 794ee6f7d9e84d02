"""Skeleton topologies: built-ins match the papers' layouts, derived structure is right, mapping works."""

from __future__ import annotations

import numpy as np
import pytest

from engine import skeletons
from engine.errors import MappingError, SkeletonMismatchError, UnknownSkeletonError
from engine.skeletons import Skeleton


def test_builtin_layouts_match_the_published_parent_lists():
    hdm = skeletons.get("hdm05_25")
    # As written in the SMART/BASAR/BEAT code (root stored as its own parent at index 10).
    published = [10, 0, 1, 2, 3, 10, 5, 6, 7, 8, 10, 10, 11, 12, 13, 13, 15, 16, 17, 18, 13, 20, 21, 22, 23]
    assert hdm.root == 10
    assert [p if p >= 0 else i for i, p in enumerate(hdm.parents)] == published
    ntu = skeletons.get("ntu25")
    assert ntu.parents == (-1, 0, 20, 2, 20, 4, 5, 6, 20, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18, 1, 7, 7, 11, 11)
    assert ntu.joint_names[20] == "SpineShoulder"
    assert skeletons.get("cmu31").num_joints == 31


@pytest.mark.parametrize("name", ["ntu25", "hdm05_25", "cmu31"])
def test_derived_structure(name):
    sk = skeletons.get(name)
    assert sk.num_bones == sk.num_joints - 1
    a = sk.adjacency()
    assert (a == a.T).all() and a.sum() == 2 * sk.num_bones
    assert np.allclose(np.diag(sk.adjacency(self_loops=True)), 1)
    order = sk.topological_order
    assert sorted(order) == list(range(sk.num_joints))
    pos = {j: k for k, j in enumerate(order)}
    assert all(pos[p] < pos[c] for p, c in sk.bones)
    # Chains cover every bone exactly once.
    chain_bones = [(c[i], c[i + 1]) for c in sk.chains for i in range(len(c) - 1)]
    assert sorted(chain_bones) == sorted(sk.bones)
    # Left/right pairs: each joint at most once, mirror is an involution.
    flat = [j for pair in sk.symmetric_pairs for j in pair]
    assert len(flat) == len(set(flat)) and len(sk.symmetric_pairs) >= 8
    perm = sk.mirror_permutation()
    assert (perm[perm] == np.arange(sk.num_joints)).all()


def test_bone_lengths_numpy_and_torch_agree():
    torch = pytest.importorskip("torch")
    sk = skeletons.get("ntu25")
    x = np.random.default_rng(0).normal(size=(4, sk.num_joints, 3)).astype(np.float32)
    a = sk.bone_lengths(x)
    b = sk.bone_lengths(torch.from_numpy(x)).numpy()
    assert a.shape == (4, sk.num_bones)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    p, c = sk.bones[3]
    np.testing.assert_allclose(a[0, 3], np.linalg.norm(x[0, c] - x[0, p]), rtol=1e-6)


def test_cmu31_maps_to_hdm05_25_by_name_dropping_six_joints():
    src, dst = skeletons.get("cmu31"), skeletons.get("hdm05_25")
    idx = skeletons.joint_map(src, dst)
    assert [src.joint_names[i] for i in idx] == list(dst.joint_names)
    dropped = set(src.joint_names) - set(dst.joint_names)
    assert dropped == {"LowerBack", "Head", "LeftShoulder", "RightShoulder", "LeftFingerBase", "RightFingerBase"}
    x = np.arange(2 * 31 * 3, dtype=np.float32).reshape(2, 31, 3)
    y = skeletons.map_positions(x, src, dst)
    assert y.shape == (2, 25, 3) and (y[:, 10] == x[:, 0]).all()


def test_unmappable_layouts_raise_a_clear_error():
    with pytest.raises(MappingError, match="no joint mapping from skeleton 'ntu25'"):
        skeletons.joint_map(skeletons.get("ntu25"), "hdm05_25")


def test_unknown_skeleton_and_bad_definitions():
    with pytest.raises(UnknownSkeletonError, match="registered skeletons are"):
        skeletons.get("nope")
    with pytest.raises(SkeletonMismatchError, match="exactly one root"):
        Skeleton("two_roots", ("a", "b"), (-1, -1))
    with pytest.raises(SkeletonMismatchError, match="cycle"):
        Skeleton("cyc", ("a", "b", "c"), (-1, 2, 1))
    with pytest.raises(SkeletonMismatchError, match="parents"):
        Skeleton("short", ("a", "b"), (-1,))


def test_file_skeleton_round_trips_and_registers():
    sk = Skeleton("file:test", ("root", "lleg", "rleg"), (-1, 0, 0))
    again = Skeleton.from_dict(sk.to_dict())
    assert again == sk and hash(again) == hash(sk)
    skeletons.register(sk)
    assert skeletons.get("file:test") is sk
    with pytest.raises(SkeletonMismatchError, match="already registered"):
        skeletons.register(Skeleton("file:test", ("a", "b"), (-1, 0)))


def test_real_cmu_and_hdm05_files_map_to_hdm05_25(formats_dir):
    from engine.io import load_clip

    hdm = skeletons.get("hdm05_25")
    for path in (formats_dir / "bvh" / "131_01.bvh", formats_dir / "hdm05" / "HDM_dg_06-03_03_120.amc"):
        clip = load_clip(path)
        mapped = skeletons.map_positions(clip.positions, clip.skeleton, hdm)
        assert mapped.shape == (clip.num_frames, 25, 3)
        # The mapped figure is a person: hands above feet on average, a sensible size.
        extent = np.ptp(mapped[0], axis=0).max()
        assert 1.0 < extent < 2.5, (path.name, extent)
        # Thigh length (LeftUpLeg→LeftLeg) is a real bone, constant over time for rotation-based formats.
        thigh = np.linalg.norm(mapped[:, 2] - mapped[:, 1], axis=-1)
        assert 0.3 < thigh.mean() < 0.6 and thigh.std() < 1e-4, (path.name, thigh.mean(), thigh.std())
