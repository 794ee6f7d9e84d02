"""The victim classifiers, parametrised over the registry: shapes, gradients, determinism, graphs, sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.models import MODELS, build_model, preset_kwargs
from engine.models.graph import (
    inward_outward_partition,
    k_adjacency,
    multiscale_adjacency,
    stgcn_spatial_partition,
)
from engine.models.hrnn import body_parts
from engine.skeletons import CMU31, HDM05_25, NTU25, Skeleton

# Tiny widths so the whole file runs in seconds; every registered architecture must appear here.
TINY = {
    "stgcn": {"base_channels": 8, "num_blocks": 3},
    "ctrgcn": {"base_channels": 8, "num_blocks": 3},
    "sgn": {"dim": 32, "seg": 8},
    "msg3d": {"base_channels": 6, "num_gcn_scales": 2, "num_g3d_scales": 1, "window_sizes": (3,)},
    "agcn2s": {"stream": "both", "base_channels": 8, "num_blocks": 3},
    "hrnn": {"hidden": (4, 8, 8, 8)},
    "mlp": {"num_frames": 16, "hidden": 32},
    "skateformer": {"depths": (1, 1), "channels": (16, 16), "embed_dim": 16, "num_heads": 8, "frame_window": 4,
                    "num_frames": 8},
    "sttformer": {"config": ((8, 8, 4), (8, 16, 4)), "num_heads": 2, "num_frames": None},
}
ARCHS = sorted(MODELS)
K = 5


def _net(arch, skeleton=HDM05_25, **kw):
    torch.manual_seed(0)
    return build_model(arch, skeleton, K, **{**TINY[arch], **kw})


def _x(v=25, m=1, n=3, t=16, seed=1):
    return torch.randn(n, 3, t, v, m, generator=torch.Generator().manual_seed(seed)) * 0.3


def test_registry_holds_the_nine_architectures():
    assert set(ARCHS) == {"stgcn", "ctrgcn", "sgn", "msg3d", "agcn2s", "hrnn", "mlp", "skateformer", "sttformer"}
    assert set(TINY) == set(ARCHS)
    for arch in ARCHS:
        assert MODELS[arch].__doc__ and MODELS[arch].__module__.startswith("engine.models.")
        assert set(MODELS[arch].PRESETS) >= {"paper", "small"}


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("skeleton", [HDM05_25, NTU25], ids=lambda s: s.name)
@pytest.mark.parametrize("m", [1, 2])
def test_forward_shapes_and_head(arch, skeleton, m):
    net = _net(arch, skeleton).eval()
    x = _x(skeleton.num_joints, m)
    logits = net(x)
    assert logits.shape == (3, K) and torch.isfinite(logits).all()
    feats = net.features(x)
    assert feats.shape == (3, net.feature_dim)
    torch.testing.assert_close(net.fc(feats), logits)


@pytest.mark.parametrize("arch", ARCHS)
def test_gradients_reach_every_frame_of_the_input(arch):
    net = _net(arch).train()
    x = _x().requires_grad_(True)
    (grad,) = torch.autograd.grad(net(x).logsumexp(1).sum(), x)
    assert torch.isfinite(grad).all()
    per_frame = grad.abs().sum(dim=(0, 1, 3, 4))
    assert (per_frame > 0).all(), f"{arch}: frames without gradient: {torch.nonzero(per_frame == 0).flatten()}"
    assert all(p.grad is None for p in net.parameters())  # autograd.grad leaves parameter grads alone


@pytest.mark.parametrize("arch", ARCHS)
def test_eval_is_deterministic_and_batch_independent(arch):
    net = _net(arch)
    net.train()
    for _ in range(2):  # move batch-norm statistics away from their initial values
        net(_x(n=8, seed=5))
    net.eval()
    x = _x(n=4)
    a, b = net(x), net(x)
    assert torch.equal(a, b)
    torch.testing.assert_close(net(x[1:2]), a[1:2], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_bodies_are_averaged_in_any_order(arch):
    net = _net(arch).eval()
    x = _x(m=2)
    torch.testing.assert_close(net(x.flip(-1)), net(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_other_skeletons_and_lengths(arch):
    """Any joint count (cmu31, a 28-joint file skeleton) and clip lengths other than the usual."""
    for skeleton in (CMU31, _chain_skeleton(7)):
        net = _net(arch, skeleton).eval()
        assert net(_x(skeleton.num_joints, t=20)).shape == (3, K)


def test_parameter_counts_report_and_paper_sizes(capsys):
    """Published sizes (NTU-60, 25 joints) of the paper presets: ST-GCN 3.1 M, CTR-GCN 1.46 M, SGN 0.69 M,
    MS-G3D 3.2 M, 2s-AGCN 3.47 M per stream, STTFormer 6.2 M. (SkateFormer's paper figure, 2.03 M, is not what
    its released code builds; tests/engine/test_transformer_models.py checks it against the official layers.)"""
    published = {"stgcn": 3.1e6, "ctrgcn": 1.46e6, "sgn": 0.69e6, "msg3d": 3.2e6, "agcn2s": 3.47e6, "sttformer": 6.2e6}
    rows = []
    for arch in ARCHS:
        paper = sum(p.numel() for p in build_model(arch, NTU25, 60, **preset_kwargs(arch, "paper")).parameters())
        small = sum(p.numel() for p in build_model(arch, NTU25, 60, **preset_kwargs(arch, "small")).parameters())
        rows.append(f"{arch:8s} paper {paper / 1e6:6.2f} M   small {small / 1e6:6.3f} M")
        if arch in published:
            assert abs(paper - published[arch]) / published[arch] < 0.03, (arch, paper)
        assert small < paper
    print("\n".join(rows))


def test_two_stream_agcn_sums_softmax_scores():
    net = _net("agcn2s").eval()
    x = _x()
    joint = torch.softmax(net.joint.fc(net.joint.features(x)), -1)
    from engine.models.agcn2s import bone_vectors

    bone = torch.softmax(net.bone.fc(net.bone.features(bone_vectors(x, HDM05_25))), -1)
    torch.testing.assert_close(torch.softmax(net(x), -1), (joint + bone) / 2, rtol=1e-5, atol=1e-6)
    single = _net("agcn2s", stream="bone")
    assert single.joint is None and single.bone is not None


# -- graphs ---------------------------------------------------------------------------------------------------
def _chain_skeleton(v: int) -> Skeleton:
    return Skeleton(f"chain{v}", tuple(f"j{i}" for i in range(v)), (-1,) + tuple(range(v - 1)))


def test_stgcn_partition_root_centripetal_centrifugal():
    a = stgcn_spatial_partition(HDM05_25)
    assert a.shape == (3, 25, 25)
    np.testing.assert_allclose(a.sum(axis=(0, 1)), 1.0, atol=1e-6)  # each joint's column sums to one
    hips, spine, neck = (HDM05_25.index(n) for n in ("Hips", "Spine", "Neck"))
    assert a[0, spine, spine] > 0 and a[1, spine, spine] == 0  # self-loop in the root subset
    # entry [j, i]: how joint i gathers from neighbour j. Subset 1: neighbours further from the centre
    # (centrifugal), subset 2: nearer (centripetal), in the official code's order.
    assert a[1, neck, spine] == 0 and a[1, spine, hips] > 0
    assert a[2, hips, spine] > 0 and a[2, spine, hips] == 0
    ntu = stgcn_spatial_partition(NTU25)  # NTU's centre is the spine at the shoulders, as in the official code
    centre, mid, base = (NTU25.index(n) for n in ("SpineShoulder", "SpineMid", "SpineBase"))
    assert ntu[2, centre, mid] > 0 and ntu[2, mid, base] > 0 and ntu[1, base, mid] > 0


def test_inward_outward_partition_follows_the_bones():
    a = inward_outward_partition(HDM05_25)
    np.testing.assert_array_equal(a[0], np.eye(25))
    assert ((a[1] > 0) == (a[2] > 0).T).all()
    assert (a[1] > 0).sum() == HDM05_25.num_bones


def test_k_hop_adjacency():
    chain = _chain_skeleton(5).adjacency()
    a2 = k_adjacency(chain, 2)
    assert a2[0, 2] == 1 and a2[0, 1] == 0 and a2[0, 3] == 0 and a2[0, 0] == 0
    ms = multiscale_adjacency(chain, 3)
    assert ms.shape == (15, 5)
    np.testing.assert_allclose(ms[:5], np.eye(5))


def test_hrnn_body_parts_from_names_and_structure():
    for skeleton in (HDM05_25, NTU25, CMU31):
        parts, groups = body_parts(skeleton)
        assert len(parts) == 5 and groups == [[2, 3], [0, 1]]
        assert sorted(j for p in parts for j in p) == list(range(skeleton.num_joints))
        names = [[skeleton.joint_names[j].lower() for j in p] for p in parts]
        assert any("spine" in n for n in names[0])
        assert all(any(w in n for n in names[i] for w in ("leg", "hip", "knee")) for i in (1, 2))
        assert all(any(w in n for n in names[i] for w in ("arm", "shoulder", "elbow")) for i in (3, 4))
    # unnamed humanoid: twins found by identical subtree shape
    anon = Skeleton("anon", tuple(f"j{i}" for i in range(HDM05_25.num_joints)), HDM05_25.parents)
    parts, _ = body_parts(anon)
    assert [len(p) for p in parts] == [5, 5, 5, 5, 5]
    # no twins at all: kinematic chains
    parts, groups = body_parts(_chain_skeleton(6))
    assert parts == [list(range(6))] and groups == []


# -- the classifier owns its preprocessing: world-coordinate input, translation (and with facing, yaw) invariance --
def _world_windows(t=16):
    """Two real-shaped windows in world coordinates: demo clips, far from the origin and facing different ways."""
    from engine.assets import DEMO_DATASET, asset_path
    from engine.io import load_dataset

    ds = load_dataset(asset_path(DEMO_DATASET))
    x = np.concatenate([ds[i].positions[None, :t] for i in (0, 5)])  # (2, t, V, 3)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)[..., None]))  # (2, 3, t, V, 1)


def _yaw(x: torch.Tensor, angle: float, pivot=(0.7, 0.0, -1.3)) -> torch.Tensor:
    c, s = np.cos(angle), np.sin(angle)
    rot = torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=x.dtype)  # about y (up)
    p = torch.tensor(pivot, dtype=x.dtype)[None, :, None, None, None]
    return torch.einsum("ij,njtvm->nitvm", rot, x - p) + p


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("face", [False, True], ids=["centre", "centre+face"])
def test_classifier_prediction_ignores_where_the_clip_is(arch, face):
    """A clip and the same clip translated by a random offset (and, with facing on, turned about the vertical
    axis) get the same class scores: the model's own preprocessing erases those channels, so no attack can use
    them."""
    from engine.models.base import Classifier

    net = _net(arch).eval()
    clf = Classifier(net, [f"c{i}" for i in range(K)], preprocessing={"window": 16, "centre": "frame", "face": face},
                     mean=torch.randn(1, 3, 1, 25, 1) * 0.05, std=torch.full((1, 1, 1, 1, 1), 0.4)).eval()
    x = _world_windows()
    rng = np.random.default_rng(3)
    moved = x + torch.tensor(rng.uniform(-3, 3, 3), dtype=x.dtype)[None, :, None, None, None]
    if face:
        moved = _yaw(moved, float(rng.uniform(0.5, 2.5)))
    with torch.no_grad():
        ref, out = clf(x), clf(moved)
    torch.testing.assert_close(out, ref, atol=2e-4, rtol=1e-4)
    # and it is not invariant to a change of the motion itself (the test can fail)
    bent = x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (clf(bent) - ref).abs().max() > 20 * (out - ref).abs().max()
