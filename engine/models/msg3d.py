"""MS-G3D: Liu, Zhang, Chen, Wang and Ouyang, "Disentangling and Unifying Graph Convolutions for
Skeleton-Based Action Recognition", CVPR 2020.

Two pathways per spatial-temporal block, summed then ReLU:

- ``sgcn``: disentangled multi-scale graph convolution (``MS_GCN``): the input aggregated with each normalised
  k-hop adjacency ``D^-½ (Ã_k + I) D^-½`` for k = 0 … K−1 (:func:`engine.models.graph.multiscale_adjacency`;
  Ã_k holds joints exactly k hops apart) plus a learned residual mask ``A_res``, concatenated over scales and
  mixed by a 1×1 conv; then two multi-scale temporal convolutions (``MS_TCN``: dilations 1-4, max-pool and
  1×1 branches).
- ``gcn3d``: G3D, unified spatial-temporal graph convolution over sliding temporal windows (sizes 3 and 5):
  each window's τ frames form a τ·V-node graph whose k-hop adjacencies (with cross-frame edges) aggregate
  features directly across space and time; a (1, τ, 1) conv collapses the window.

Defaults are the paper's NTU network: 3 blocks of 96, 192, 384 channels (stride 2 in blocks 2 and 3),
13 GCN scales, 6 G3D scales, windows 3 and 5 (about 3.2 M parameters for 60 classes). ``small``: 24 base
channels, 4 GCN scales, 2 G3D scales, one window of 3.

Names follow the official code (``data_bn``, ``gcn3d{1,2,3}.gcn3d.{w}.gcn3d.1.A_res`` / ``.mlp.layers``,
``out_conv``, ``out_bn``, ``sgcn{1,2,3}.{0,1,2}``, ``tcn{1,2,3}``, ``fc``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.models.base import SkeletonNet, average_bodies, register_model
from engine.models.blocks import MultiScaleTemporalConv, data_bn_fold
from engine.models.graph import graph_skeleton, multiscale_adjacency


class MLP(nn.Module):
    """1×1 conv + BN (+ ReLU), stored under ``layers`` as in the official code."""

    def __init__(self, in_channels: int, out_channels: int, activation: bool = True):
        super().__init__()
        self.layers = nn.ModuleList([nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels)])
        self.layers.append(nn.ReLU(inplace=True) if activation else nn.Identity())

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def _aggregate(a: torch.Tensor, x: torch.Tensor, num_scales: int, mlp: MLP) -> torch.Tensor:
    n, c, t, v = x.shape
    agg = torch.einsum("vu,nctu->nctv", a, x).view(n, c, t, num_scales, v)
    return mlp(agg.permute(0, 3, 1, 2, 4).reshape(n, num_scales * c, t, v))


class MultiScaleGraphConv(nn.Module):
    """``MS_GCN``: disentangled multi-scale aggregation with a learned mask, then a 1×1 conv + BN + ReLU."""

    def __init__(self, num_scales: int, in_channels: int, out_channels: int, a_binary: np.ndarray):
        super().__init__()
        self.num_scales = num_scales
        self.register_buffer("A_powers", torch.from_numpy(multiscale_adjacency(a_binary, num_scales)), persistent=False)
        self.A_res = nn.Parameter(torch.empty_like(self.A_powers).uniform_(-1e-6, 1e-6))
        self.mlp = MLP(in_channels * num_scales, out_channels)

    def forward(self, x):
        return _aggregate(self.A_powers + self.A_res, x, self.num_scales, self.mlp)


class UnfoldTemporalWindows(nn.Module):
    """(N, C, T, V) → (N, C, T', τ·V): sliding windows of τ frames laid out along the node axis."""

    def __init__(self, window_size: int, window_stride: int, window_dilation: int = 1):
        super().__init__()
        self.window_size = window_size
        pad = (window_size + (window_size - 1) * (window_dilation - 1) - 1) // 2
        self.unfold = nn.Unfold((window_size, 1), dilation=(window_dilation, 1), stride=(window_stride, 1),
                                padding=(pad, 0))

    def forward(self, x):
        n, c, _, v = x.shape
        x = self.unfold(x).view(n, c, self.window_size, -1, v).permute(0, 1, 3, 2, 4)
        return x.reshape(n, c, -1, self.window_size * v)


class SpatialTemporalMSGCN(nn.Module):
    """Multi-scale graph convolution on the τ·V-node spatial-temporal window graph (no activation after)."""

    def __init__(self, in_channels, out_channels, a_binary, num_scales, window_size):
        super().__init__()
        self.num_scales = num_scales
        v = len(a_binary)
        a_window = np.tile(a_binary + np.eye(v, dtype=a_binary.dtype), (window_size, window_size))
        self.register_buffer("A_scales", torch.from_numpy(multiscale_adjacency(a_window, num_scales)), persistent=False)
        self.A_res = nn.Parameter(torch.empty_like(self.A_scales).uniform_(-1e-6, 1e-6))
        self.mlp = MLP(in_channels * num_scales, out_channels, activation=False)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(_aggregate(self.A_scales + self.A_res, x, self.num_scales, self.mlp))


class G3D(nn.Module):
    """``MS_G3D``: windows → spatial-temporal MS-GCN → collapse the window with a (1, τ, 1) conv → BN."""

    def __init__(self, in_channels, out_channels, a_binary, num_scales, window_size, window_stride, window_dilation=1):
        super().__init__()
        self.window_size = window_size
        # The first block changes the width right away; the others change it when collapsing the window.
        self.embed_out = out_channels if in_channels == 3 else in_channels
        self.gcn3d = nn.Sequential(
            UnfoldTemporalWindows(window_size, window_stride, window_dilation),
            SpatialTemporalMSGCN(in_channels, self.embed_out, a_binary, num_scales, window_size),
        )
        self.out_conv = nn.Conv3d(self.embed_out, out_channels, kernel_size=(1, window_size, 1))
        self.out_bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        n, _, _, v = x.shape
        x = self.gcn3d(x).view(n, self.embed_out, -1, self.window_size, v)
        return self.out_bn(self.out_conv(x).squeeze(3))


class MultiWindowG3D(nn.Module):
    def __init__(self, in_channels, out_channels, a_binary, num_scales, window_sizes, window_stride):
        super().__init__()
        self.gcn3d = nn.ModuleList(
            G3D(in_channels, out_channels, a_binary, num_scales, w, window_stride) for w in window_sizes
        )

    def forward(self, x):
        return sum(g(x) for g in self.gcn3d)


@register_model("msg3d")
class MSG3D(SkeletonNet):
    """MS-G3D (Liu et al., CVPR 2020). See the module docstring.

    Args:
        base_channels: width of block 1 (96); blocks 2 and 3 double it.
        num_gcn_scales: k-hop scales of the spatial pathway (13 on NTU).
        num_g3d_scales: scales of the G3D pathway (6 on NTU).
        window_sizes: G3D temporal windows ((3, 5)).
        num_person: as for :class:`engine.models.ctrgcn.CTRGCN` (None; official 2).
        graph_parents: see :class:`engine.models.stgcn.STGCN`.
    """

    PRESETS = {
        "paper": {},
        "small": {"base_channels": 24, "num_gcn_scales": 4, "num_g3d_scales": 2, "window_sizes": (3,)},
    }

    def __init__(
        self,
        skeleton,
        num_classes: int,
        in_channels: int = 3,
        *,
        base_channels: int = 96,
        num_gcn_scales: int = 13,
        num_g3d_scales: int = 6,
        window_sizes: tuple[int, ...] = (3, 5),
        num_person: int | None = None,
        graph_parents: list[int] | None = None,
    ) -> None:
        super().__init__(skeleton, num_classes, in_channels)
        a = graph_skeleton(skeleton, graph_parents).adjacency()
        v = skeleton.num_joints
        self.num_person = num_person
        self.data_bn = nn.BatchNorm1d((num_person or 1) * in_channels * v)
        c1, c2, c3 = base_channels, base_channels * 2, base_channels * 4
        ws = tuple(window_sizes)
        g, s = num_g3d_scales, num_gcn_scales
        self.gcn3d1 = MultiWindowG3D(in_channels, c1, a, g, ws, 1)
        self.sgcn1 = nn.Sequential(MultiScaleGraphConv(s, in_channels, c1, a), MultiScaleTemporalConv(c1, c1),
                                   MultiScaleTemporalConv(c1, c1, activation=False))
        self.tcn1 = MultiScaleTemporalConv(c1, c1)
        self.gcn3d2 = MultiWindowG3D(c1, c2, a, g, ws, 2)
        self.sgcn2 = nn.Sequential(MultiScaleGraphConv(s, c1, c1, a), MultiScaleTemporalConv(c1, c2, stride=2),
                                   MultiScaleTemporalConv(c2, c2, activation=False))
        self.tcn2 = MultiScaleTemporalConv(c2, c2)
        self.gcn3d3 = MultiWindowG3D(c2, c3, a, g, ws, 2)
        self.sgcn3 = nn.Sequential(MultiScaleGraphConv(s, c2, c2, a), MultiScaleTemporalConv(c2, c3, stride=2),
                                   MultiScaleTemporalConv(c3, c3, activation=False))
        self.tcn3 = MultiScaleTemporalConv(c3, c3)
        self.feature_dim = c3
        self.fc = nn.Linear(c3, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x, n, m = data_bn_fold(self.data_bn, x, self.num_person)
        x = self.tcn1(F.relu(self.sgcn1(x) + self.gcn3d1(x)))
        x = self.tcn2(F.relu(self.sgcn2(x) + self.gcn3d2(x)))
        x = self.tcn3(F.relu(self.sgcn3(x) + self.gcn3d3(x)))
        return average_bodies(x.mean(dim=(2, 3)), n, m)
