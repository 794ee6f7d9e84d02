"""Layers shared by several architectures, named as in the official code bases so checkpoints map by key."""

from __future__ import annotations

import torch
from torch import nn

from engine.errors import ParameterError


def stage_schedule(in_channels: int, base_channels: int, num_blocks: int) -> list[tuple[int, int, int]]:
    """``(in, out, stride)`` per block of the ST-GCN / 2s-AGCN / CTR-GCN backbone.

    The published ten-block backbone doubles the width and halves the time at blocks 5 and 8
    (64, 64, 64, 64, 128↓, 128, 128, 256↓, 256, 256); shallower backbones keep those stages at the same
    relative depths (40 % and 70 %).
    """
    if num_blocks < 1:
        raise ParameterError("num_blocks must be at least 1")
    steps = {int(0.4 * num_blocks), int(0.7 * num_blocks)} - {0}
    schedule, c_in, width = [], in_channels, base_channels
    for i in range(num_blocks):
        stride = 1
        if i in steps:
            width, stride = width * 2, 2
        schedule.append((c_in, width, stride))
        c_in = width
    return schedule


class TemporalConv(nn.Module):
    """Temporal convolution (kernel × 1) followed by batch norm (``unit_tcn`` / ``TemporalConv``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 9, stride: int = 1, dilation: int = 1):
        super().__init__()
        pad = (kernel_size + (kernel_size - 1) * (dilation - 1) - 1) // 2
        self.conv = nn.Conv2d(
            in_channels, out_channels, (kernel_size, 1), padding=(pad, 0), stride=(stride, 1), dilation=(dilation, 1)
        )
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return self.bn(self.conv(x))


class Zero(nn.Module):
    """A residual path that contributes nothing (the official ``lambda x: 0``)."""

    def forward(self, x):
        return 0


def residual_path(in_channels: int, out_channels: int, stride: int, enabled: bool = True) -> nn.Module:
    """Identity when shapes match, else a strided 1×1 temporal conv + BN; :class:`Zero` when disabled."""
    if not enabled:
        return Zero()
    if in_channels == out_channels and stride == 1:
        return nn.Identity()
    return TemporalConv(in_channels, out_channels, kernel_size=1, stride=stride)


class MultiScaleTemporalConv(nn.Module):
    """Multi-scale temporal convolution (MS-G3D, Liu et al. CVPR 2020; reused by CTR-GCN).

    ``len(dilations)`` dilated branches (1×1 conv, BN, ReLU, temporal conv), a max-pool branch and a 1×1
    branch, each ``out_channels / (len(dilations) + 2)`` wide, concatenated, plus a residual. MS-G3D ends with
    a ReLU (``activation=True``); CTR-GCN's version has none.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilations: tuple[int, ...] = (1, 2, 3, 4),
        residual: bool = True,
        activation: bool = True,
    ):
        super().__init__()
        n_branches = len(dilations) + 2
        if out_channels % n_branches:
            raise ParameterError(f"out_channels ({out_channels}) must be a multiple of the {n_branches} branches")
        bc = out_channels // n_branches
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(in_channels, bc, 1),
                nn.BatchNorm2d(bc),
                nn.ReLU(inplace=True),
                TemporalConv(bc, bc, kernel_size=kernel_size, stride=stride, dilation=d),
            )
            for d in dilations
        )
        self.branches.append(
            nn.Sequential(
                nn.Conv2d(in_channels, bc, 1),
                nn.BatchNorm2d(bc),
                nn.ReLU(inplace=True),
                nn.MaxPool2d((3, 1), stride=(stride, 1), padding=(1, 0)),
                nn.BatchNorm2d(bc),
            )
        )
        self.branches.append(nn.Sequential(nn.Conv2d(in_channels, bc, 1, stride=(stride, 1)), nn.BatchNorm2d(bc)))
        self.residual = residual_path(in_channels, out_channels, stride, residual)
        self.act = nn.ReLU(inplace=True) if activation else nn.Identity()

    def forward(self, x):
        res = self.residual(x)
        out = torch.cat([branch(x) for branch in self.branches], dim=1)
        return self.act(out + res)



def data_bn_fold(bn: nn.BatchNorm1d, x: torch.Tensor, num_person: int | None) -> tuple[torch.Tensor, int, int]:
    """Input batch norm of the NTU-era code bases, then bodies folded into the batch: ((N·M, C, T, V), N, M).

    ``num_person=None``: ``bn`` has V·C channels shared by all bodies (ST-GCN's layout). Otherwise ``bn`` has
    M·V·C channels (2s-AGCN, CTR-GCN, MS-G3D) and the input is padded with zero bodies, as their NTU feeders
    do for one-person clips, or cut to ``num_person`` bodies.
    """
    n, c, t, v, m = x.shape
    if num_person is None:
        x = bn(x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t))
    else:
        if m > num_person:
            x = x[..., :num_person]
        elif m < num_person:
            x = torch.cat([x, x.new_zeros(n, c, t, v, num_person - m)], dim=-1)
        m = num_person
        x = bn(x.permute(0, 4, 3, 1, 2).reshape(n, m * v * c, t))
    return x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v), n, m


def resample_frames(x: torch.Tensor, frames: int) -> torch.Tensor:
    """(N, C, T, V) → (N, C, frames, V) for networks with a fixed number of frames.

    Longer clips are averaged over ``frames`` equal segments (the deterministic counterpart of SGN's one frame
    per segment), shorter ones linearly interpolated; either way every input frame contributes (attacks see a
    gradient on every frame).
    """
    t, v = x.shape[2], x.shape[3]
    if t == frames:
        return x
    if t > frames:
        return torch.nn.functional.adaptive_avg_pool2d(x, (frames, v))
    return torch.nn.functional.interpolate(x, size=(frames, v), mode="bilinear", align_corners=True)
