"""ST-GCN: Yan, Xiong and Lin, "Spatial Temporal Graph Convolutional Networks for Skeleton-Based Action
Recognition", AAAI 2018.

Data batch norm over the V·C input channels of each body; a stack of ST-GCN blocks, each a spatial graph
convolution over the K = 3 subsets of the spatial-configuration partition (root, centrifugal, centripetal;
:func:`engine.models.graph.stgcn_spatial_partition`) weighted by a learnable edge-importance mask, then
BN-ReLU-temporal conv (kernel 9)-BN-dropout, with a residual; global average pooling over time, joints and
bodies; a linear classifier.

Defaults are the paper's network: 10 blocks, 64-64-64-64-128-128-128-256-256-256 channels with stride 2 at
blocks 5 and 8, temporal kernel 9, dropout 0.5, edge importance on (about 3.1 M parameters for 60 classes).
The ``small`` preset (16 base channels, 6 blocks, dropout 0) has about 0.1 M parameters and trains on a
CPU in minutes.

Module and parameter names follow the official code (``data_bn``, ``st_gcn_networks.{i}.gcn.conv``,
``st_gcn_networks.{i}.tcn.{0,2,3}``, ``st_gcn_networks.{i}.residual.{0,1}``, ``edge_importance.{i}``,
buffer ``A``), so its checkpoints load by name (:mod:`engine.models.checkpoint`); the official 1×1 conv
classifier ``fcn`` is the linear layer ``fc`` here (same weights, reshaped).

The partition follows the paper: distances to the centre are full graph distances. The official code
measures them with a hop table truncated at ``max_hop``, so most of its neighbours land in the first
subset; an imported official checkpoint keeps its own ``A`` buffer and so behaves exactly as it did there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.base import SkeletonNet, average_bodies, register_model
from engine.models.blocks import Zero, data_bn_fold, stage_schedule
from engine.models.graph import graph_skeleton, stgcn_spatial_partition
from engine.skeletons import Skeleton


class ConvTemporalGraphical(nn.Module):
    """Spatial graph convolution: a 1×1 conv producing K·C' channels, aggregated with the K subsets of A."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__()
        self.kernel_size = kernel_size
        self.conv = nn.Conv2d(in_channels, out_channels * kernel_size, kernel_size=1)

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        n, kc, t, v = x.shape
        x = x.view(n, self.kernel_size, kc // self.kernel_size, t, v)
        return torch.einsum("nkctv,kvw->nctw", x, a).contiguous()


class STGCNBlock(nn.Module):
    """One ST-GCN unit: graph conv, then BN-ReLU-temporal conv-BN-dropout, plus the residual, then ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_subsets: int,
        temporal_kernel: int = 9,
        stride: int = 1,
        dropout: float = 0.0,
        residual: bool = True,
    ):
        super().__init__()
        pad = (temporal_kernel - 1) // 2
        self.gcn = ConvTemporalGraphical(in_channels, out_channels, num_subsets)
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, (temporal_kernel, 1), (stride, 1), (pad, 0)),
            nn.BatchNorm2d(out_channels),
            nn.Dropout(dropout, inplace=True),
        )
        if not residual:
            self.residual = Zero()
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=(stride, 1)),
                nn.BatchNorm2d(out_channels),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        res = self.residual(x)
        return self.relu(self.tcn(self.gcn(x, a)) + res)


@register_model("stgcn")
class STGCN(SkeletonNet):
    """ST-GCN (Yan et al., AAAI 2018). See the module docstring for the layout and the defaults.

    Args:
        skeleton, num_classes, in_channels: as for every :class:`SkeletonNet`.
        base_channels: width of the first stage (64 in the paper); later stages double it.
        num_blocks: number of ST-GCN blocks (10 in the paper).
        temporal_kernel: temporal kernel size (9).
        dropout: dropout inside every block but the first (0.5).
        edge_importance: learn a per-block mask on the adjacency (True).
        max_hop: neighbourhood radius of the partition (1).
        centre: the "gravity centre" joint of the partition (default: the spine at the shoulders for NTU, as
            in the official code, otherwise the root).
        graph_parents: wire the graph from these parents instead of the skeleton's (for imported checkpoints).
    """

    PRESETS = {
        "paper": {},
        "small": {"base_channels": 16, "num_blocks": 6, "dropout": 0.0},
    }

    def __init__(
        self,
        skeleton: Skeleton,
        num_classes: int,
        in_channels: int = 3,
        *,
        base_channels: int = 64,
        num_blocks: int = 10,
        temporal_kernel: int = 9,
        dropout: float = 0.5,
        edge_importance: bool = True,
        max_hop: int = 1,
        centre: str | int | None = None,
        graph_parents: list[int] | None = None,
    ) -> None:
        super().__init__(skeleton, num_classes, in_channels)
        a = stgcn_spatial_partition(graph_skeleton(skeleton, graph_parents), centre, max_hop)
        self.register_buffer("A", torch.from_numpy(a))
        k, v = a.shape[0], a.shape[1]
        self.data_bn = nn.BatchNorm1d(in_channels * v)
        blocks = []
        for i, (c_in, c_out, stride) in enumerate(stage_schedule(in_channels, base_channels, num_blocks)):
            blocks.append(
                STGCNBlock(
                    c_in, c_out, k, temporal_kernel, stride, dropout=0.0 if i == 0 else dropout, residual=i > 0
                )
            )
        self.st_gcn_networks = nn.ModuleList(blocks)
        if edge_importance:
            self.edge_importance = nn.ParameterList(nn.Parameter(torch.ones_like(self.A)) for _ in blocks)
        else:
            self.edge_importance = None
        self.feature_dim = blocks[-1].gcn.conv.out_channels // k
        self.fc = nn.Linear(self.feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x, n, m = data_bn_fold(self.data_bn, x, None)
        for i, block in enumerate(self.st_gcn_networks):
            a = self.A if self.edge_importance is None else self.A * self.edge_importance[i]
            x = block(x, a)
        x = F.avg_pool2d(x, x.shape[2:]).flatten(1)
        return average_bodies(x, n, m)
