"""2s-AGCN: Shi, Zhang, Cheng and Lu, "Two-Stream Adaptive Graph Convolutional Networks for Skeleton-Based
Action Recognition", CVPR 2019.

Adaptive graph convolution: for each subset k of the identity/inward/outward partition the aggregation
matrix is ``A_k + B_k + C_k``: ``A_k`` the fixed normalised partition, ``B_k`` a learned matrix
(``PA``, initialised near zero) and ``C_k`` a data-dependent similarity ``softmax(θ(x)ᵀ φ(x))`` from two
1×1 embeddings. Units are graph conv → temporal conv (kernel 9) with residuals, in the same ten-unit
64-64-64-64-128-128-128-256-256-256 backbone as ST-GCN.

Two streams: the joint stream takes joint positions; the bone stream takes bone vectors, each joint's
``position − parent position`` (zero at the root) from the Skeleton. ``stream="joint"`` or ``"bone"`` builds
one stream; ``stream="both"`` (the paper's 2s-AGCN) holds both and sums their softmax scores. As the head of
a two-stream model is not one linear layer, ``features`` returns the concatenated stream features and ``fc``
maps them to the log of the summed softmax scores (so ``softmax(fc(features))`` is the two-stream score
average and ``argmax`` the paper's prediction).

Defaults are the paper's: base 64 channels, 10 units, joint stream (about 3.5 M parameters for 60 classes);
``small``: base 16 channels, 6 units. Parameter names follow the official code (``data_bn``,
``l{i}.gcn1.conv_a/conv_b/conv_d.{k}``, ``PA``, ``down``, ``l{i}.tcn1``, ``fc``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from engine.errors import ParameterError
from engine.models.base import SkeletonNet, average_bodies, register_model
from engine.models.blocks import TemporalConv, data_bn_fold, residual_path, stage_schedule
from engine.models.graph import graph_skeleton, inward_outward_partition
from engine.skeletons import Skeleton


class AdaptiveGraphConv(nn.Module):
    """The official ``unit_gcn`` of 2s-AGCN: A + B (``PA``) + C (data-dependent), summed over the subsets."""

    def __init__(self, in_channels: int, out_channels: int, a: torch.Tensor, coff_embedding: int = 4):
        super().__init__()
        inter = max(1, out_channels // coff_embedding)
        self.inter_c = inter
        self.register_buffer("A", a.clone())
        self.PA = nn.Parameter(torch.full_like(a, 1e-6))
        k = a.shape[0]
        self.conv_a = nn.ModuleList(nn.Conv2d(in_channels, inter, 1) for _ in range(k))
        self.conv_b = nn.ModuleList(nn.Conv2d(in_channels, inter, 1) for _ in range(k))
        self.conv_d = nn.ModuleList(nn.Conv2d(in_channels, out_channels, 1) for _ in range(k))
        if in_channels != out_channels:
            self.down = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))
        else:
            self.down = nn.Identity()
        self.bn = nn.BatchNorm2d(out_channels)
        self.soft = nn.Softmax(-2)
        self.relu = nn.ReLU()
        nn.init.constant_(self.bn.weight, 1e-6)
        nn.init.constant_(self.bn.bias, 0)
        for conv in self.conv_d:  # conv_branch_init
            n, kin = conv.weight.shape[0], conv.weight.shape[1]
            nn.init.normal_(conv.weight, 0, math.sqrt(2.0 / (n * kin * k)))
            nn.init.constant_(conv.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v = x.shape
        a = self.A + self.PA
        y = 0
        for i in range(a.shape[0]):
            a1 = self.conv_a[i](x).permute(0, 3, 1, 2).reshape(n, v, self.inter_c * t)
            a2 = self.conv_b[i](x).reshape(n, self.inter_c * t, v)
            attention = self.soft(torch.matmul(a1, a2) / a1.shape[-1]) + a[i]  # N, V, V
            y = y + self.conv_d[i](torch.matmul(x.reshape(n, c * t, v), attention).view(n, c, t, v))
        return self.relu(self.bn(y) + self.down(x))


class AGCNUnit(nn.Module):
    def __init__(self, in_channels, out_channels, a, stride=1, residual=True):
        super().__init__()
        self.gcn1 = AdaptiveGraphConv(in_channels, out_channels, a)
        self.tcn1 = TemporalConv(out_channels, out_channels, kernel_size=9, stride=stride)
        self.relu = nn.ReLU()
        self.residual = residual_path(in_channels, out_channels, stride, residual)

    def forward(self, x):
        return self.relu(self.tcn1(self.gcn1(x)) + self.residual(x))


class AGCNStream(nn.Module):
    """One stream: data BN, the unit stack ``l1`` … ``lN``, global pooling; ``fc`` the stream's classifier."""

    def __init__(self, a, num_classes, in_channels, base_channels, num_blocks, num_person, dropout):
        super().__init__()
        v = a.shape[-1]
        self.num_person = num_person
        self.data_bn = nn.BatchNorm1d((num_person or 1) * in_channels * v)
        self.block_names = []
        for i, (c_in, c_out, stride) in enumerate(stage_schedule(in_channels, base_channels, num_blocks)):
            setattr(self, f"l{i + 1}", AGCNUnit(c_in, c_out, a, stride, residual=i > 0))
            self.block_names.append(f"l{i + 1}")
        self.feature_dim = c_out
        self.fc = nn.Linear(c_out, num_classes)
        nn.init.normal_(self.fc.weight, 0, math.sqrt(2.0 / num_classes))
        self.drop_out = nn.Dropout(dropout) if dropout else nn.Identity()

    def features(self, x):
        x, n, m = data_bn_fold(self.data_bn, x, self.num_person)
        for name in self.block_names:
            x = getattr(self, name)(x)
        return self.drop_out(average_bodies(x.mean(dim=(2, 3)), n, m))


class TwoStreamHead(nn.Module):
    """Maps concatenated (joint, bone) features to log(½(softmax(joint logits) + softmax(bone logits)))."""

    def __init__(self, joint_fc: nn.Linear, bone_fc: nn.Linear):
        super().__init__()
        self.joint_fc = joint_fc
        self.bone_fc = bone_fc
        self.split = joint_fc.in_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        fj, fb = features[:, : self.split], features[:, self.split:]
        scores = torch.stack([torch.log_softmax(self.joint_fc(fj), -1), torch.log_softmax(self.bone_fc(fb), -1)])
        return torch.logsumexp(scores, dim=0) - math.log(2.0)


def bone_vectors(x: torch.Tensor, skeleton: Skeleton) -> torch.Tensor:
    """(N, C, T, V, M) joint positions → bone vectors: each joint minus its parent (zero at the root)."""
    parents = torch.tensor([p if p >= 0 else i for i, p in enumerate(skeleton.parents)], device=x.device)
    return x - x[:, :, :, parents]


@register_model("agcn2s")
class AGCN2s(SkeletonNet):
    """2s-AGCN (Shi et al., CVPR 2019). See the module docstring.

    Args:
        stream: ``"joint"``, ``"bone"`` or ``"both"`` (the two-stream ensemble).
        base_channels, num_blocks: backbone width and depth (64, 10).
        num_person: as for :class:`engine.models.ctrgcn.CTRGCN` (None; official 2).
        dropout: before each stream's classifier (0).
        centre, graph_parents: see :class:`engine.models.stgcn.STGCN`.
    """

    PRESETS = {
        "paper": {},
        "small": {"base_channels": 16, "num_blocks": 6},
    }

    def __init__(
        self,
        skeleton: Skeleton,
        num_classes: int,
        in_channels: int = 3,
        *,
        stream: str = "joint",
        base_channels: int = 64,
        num_blocks: int = 10,
        num_person: int | None = None,
        dropout: float = 0.0,
        centre: str | int | None = None,
        graph_parents: list[int] | None = None,
    ) -> None:
        super().__init__(skeleton, num_classes, in_channels)
        if stream not in ("joint", "bone", "both"):
            raise ParameterError(f"stream must be 'joint', 'bone' or 'both', not {stream!r}")
        self.stream = stream
        self._graph = graph_skeleton(skeleton, graph_parents)
        a = torch.from_numpy(inward_outward_partition(self._graph, centre))
        args = (a, num_classes, in_channels, base_channels, num_blocks, num_person, dropout)
        self.joint = AGCNStream(*args) if stream in ("joint", "both") else None
        self.bone = AGCNStream(*args) if stream in ("bone", "both") else None
        if stream == "both":
            self.feature_dim = self.joint.feature_dim + self.bone.feature_dim
            self.fc = TwoStreamHead(self.joint.fc, self.bone.fc)
        else:
            single = self.joint or self.bone
            self.feature_dim = single.feature_dim
            self.fc = single.fc

    def features(self, x: torch.Tensor) -> torch.Tensor:
        feats = []
        if self.joint is not None:
            feats.append(self.joint.features(x))
        if self.bone is not None:
            feats.append(self.bone.features(bone_vectors(x, self._graph)))
        return torch.cat(feats, dim=1) if len(feats) > 1 else feats[0]
