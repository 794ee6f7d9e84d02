"""CTR-GCN: Chen, Zhang, Yuan, Li, Deng and Hu, "Channel-wise Topology Refinement Graph Convolution for
Skeleton-Based Action Recognition", ICCV 2021.

Each spatial layer holds one CTR-GC per subset of the identity/inward/outward partition
(:func:`engine.models.graph.inward_outward_partition`): a shared topology ``A`` (the learnable ``PA``,
initialised from the partition) refined per channel by ``α · conv4(tanh(conv1(x)ᵢ − conv2(x)ⱼ))`` (temporal
means of two 1×1 embeddings), aggregating ``conv3(x)`` channel by channel. The temporal part is the
multi-scale temporal convolution (kernel 5, dilations 1 and 2, plus max-pool and 1×1 branches).

Defaults are the paper's network: 10 units (``l1`` … ``l10``), 64-64-64-64-128-128-128-256-256-256 channels
with stride 2 at units 5 and 8, adaptive topology on, no dropout (about 1.4 M parameters for 60 classes). The
``small`` preset (24 base channels, 6 units) has about 0.15 M parameters and trains on a CPU in minutes.

Parameter names follow the official code (``data_bn``, ``l{i}.gcn1.convs.{k}.conv1..4``, ``l{i}.gcn1.PA``,
``l{i}.gcn1.alpha``, ``l{i}.gcn1.down``, ``l{i}.tcn1.branches``, ``l{i}.residual``, ``fc``). With
``num_person`` set (2 in the official NTU setting; imported checkpoints set it) ``data_bn`` spans M·V·C
channels as there and inputs are padded with zero bodies or cut to that many; by default it spans V·C and is
shared by all bodies, so any M works.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from engine.models.base import SkeletonNet, average_bodies, register_model
from engine.models.blocks import MultiScaleTemporalConv, TemporalConv, data_bn_fold, residual_path, stage_schedule
from engine.models.graph import graph_skeleton, inward_outward_partition
from engine.skeletons import Skeleton


def _conv_init(conv: nn.Conv2d) -> None:
    nn.init.kaiming_normal_(conv.weight, mode="fan_out")
    if conv.bias is not None:
        nn.init.constant_(conv.bias, 0)


def _bn_init(bn: nn.BatchNorm2d | nn.BatchNorm1d, scale: float) -> None:
    nn.init.constant_(bn.weight, scale)
    nn.init.constant_(bn.bias, 0)


class CTRGC(nn.Module):
    """Channel-wise topology refinement graph convolution for one subset of the partition."""

    def __init__(self, in_channels: int, out_channels: int, rel_reduction: int = 8):
        super().__init__()
        # The official code fixes the relation width for raw 3-D (or 9-channel) input.
        rel = 8 if in_channels in (3, 9) else max(1, in_channels // rel_reduction)
        self.conv1 = nn.Conv2d(in_channels, rel, 1)
        self.conv2 = nn.Conv2d(in_channels, rel, 1)
        self.conv3 = nn.Conv2d(in_channels, out_channels, 1)
        self.conv4 = nn.Conv2d(rel, out_channels, 1)
        self.tanh = nn.Tanh()
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            _conv_init(conv)

    def forward(self, x: torch.Tensor, a: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        x1, x2, x3 = self.conv1(x).mean(-2), self.conv2(x).mean(-2), self.conv3(x)
        rel = self.tanh(x1.unsqueeze(-1) - x2.unsqueeze(-2))  # N, R, V, V
        topology = self.conv4(rel) * alpha + a[None, None]  # N, C, V, V
        return torch.einsum("ncuv,nctv->nctu", topology, x3)


class UnitGCN(nn.Module):
    """Sum of the CTR-GCs over the subsets, BN, plus a (projected) residual, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, a: torch.Tensor, adaptive: bool = True):
        super().__init__()
        self.convs = nn.ModuleList(CTRGC(in_channels, out_channels) for _ in range(a.shape[0]))
        if in_channels != out_channels:
            self.down = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))
            _conv_init(self.down[0])
            _bn_init(self.down[1], 1)
        else:
            self.down = nn.Identity()
        self.adaptive = adaptive
        if adaptive:
            self.PA = nn.Parameter(a.clone())
        else:
            self.register_buffer("A", a.clone())
        self.alpha = nn.Parameter(torch.zeros(1))
        self.bn = nn.BatchNorm2d(out_channels)
        _bn_init(self.bn, 1e-6)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.PA if self.adaptive else self.A
        y = sum(conv(x, a[i], self.alpha) for i, conv in enumerate(self.convs))
        return self.relu(self.bn(y) + self.down(x))


class TCNGCNUnit(nn.Module):
    def __init__(self, in_channels, out_channels, a, stride=1, residual=True, adaptive=True, kernel_size=5,
                 dilations=(1, 2)):
        super().__init__()
        self.gcn1 = UnitGCN(in_channels, out_channels, a, adaptive=adaptive)
        self.tcn1 = MultiScaleTemporalConv(
            out_channels, out_channels, kernel_size, stride, dilations, residual=False, activation=False
        )
        self.relu = nn.ReLU(inplace=True)
        self.residual = residual_path(in_channels, out_channels, stride, residual)
        if isinstance(self.residual, TemporalConv):
            _conv_init(self.residual.conv)
            _bn_init(self.residual.bn, 1)

    def forward(self, x):
        return self.relu(self.tcn1(self.gcn1(x)) + self.residual(x))


@register_model("ctrgcn")
class CTRGCN(SkeletonNet):
    """CTR-GCN (Chen et al., ICCV 2021). See the module docstring for the layout and the defaults.

    Args:
        base_channels: width of the first stage (64); later stages double it.
        num_blocks: number of TCN-GCN units (10).
        num_person: bodies that ``data_bn`` normalises separately (None: one shared per-body BN; the official
            code uses 2).
        adaptive: learn the shared topology ``PA`` (True) or keep the partition fixed.
        kernel_size, dilations: the multi-scale temporal convolution (5; 1, 2).
        dropout: before the classifier (0).
        centre, graph_parents: see :class:`engine.models.stgcn.STGCN`.
    """

    PRESETS = {
        "paper": {},
        "small": {"base_channels": 24, "num_blocks": 6},
    }

    def __init__(
        self,
        skeleton: Skeleton,
        num_classes: int,
        in_channels: int = 3,
        *,
        base_channels: int = 64,
        num_blocks: int = 10,
        num_person: int | None = None,
        adaptive: bool = True,
        kernel_size: int = 5,
        dilations: tuple[int, ...] = (1, 2),
        dropout: float = 0.0,
        centre: str | int | None = None,
        graph_parents: list[int] | None = None,
    ) -> None:
        super().__init__(skeleton, num_classes, in_channels)
        a = torch.from_numpy(inward_outward_partition(graph_skeleton(skeleton, graph_parents), centre))
        v = a.shape[-1]
        self.num_person = num_person
        self.data_bn = nn.BatchNorm1d((num_person or 1) * in_channels * v)
        _bn_init(self.data_bn, 1)
        self.block_names = []
        for i, (c_in, c_out, stride) in enumerate(stage_schedule(in_channels, base_channels, num_blocks)):
            unit = TCNGCNUnit(c_in, c_out, a, stride, residual=i > 0, adaptive=adaptive, kernel_size=kernel_size,
                              dilations=tuple(dilations))
            setattr(self, f"l{i + 1}", unit)
            self.block_names.append(f"l{i + 1}")
        self.feature_dim = c_out
        self.fc = nn.Linear(c_out, num_classes)
        nn.init.normal_(self.fc.weight, 0, math.sqrt(2.0 / num_classes))
        self.drop_out = nn.Dropout(dropout) if dropout else nn.Identity()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x, n, m = data_bn_fold(self.data_bn, x, self.num_person)
        for name in self.block_names:
            x = getattr(self, name)(x)
        x = x.mean(dim=(2, 3))
        return self.drop_out(average_bodies(x, n, m))

