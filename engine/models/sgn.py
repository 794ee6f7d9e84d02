"""SGN: Zhang, Lan, Zeng, Xing, Xue and Zheng, "Semantics-Guided Neural Networks for Efficient
Skeleton-Based Human Action Recognition", CVPR 2020.

Dynamics representation: embeddings of joint positions and of their velocities (frame differences), each
``BN over V·C → 1×1 conv → ReLU → 1×1 conv → ReLU``, summed; joint-type semantics (a one-hot joint index
embedded the same way) concatenated. Joint-level module: a data-driven adjacency per frame
``G = softmax(θ(z)ᵀ φ(z))`` and three residual graph convolutions ``ReLU(BN(G z W + z W₁))``. Frame-level
module: frame-index semantics (one-hot frame index, embedded) added, spatial max-pool over joints, two
convolutions (kernel 3 over time, then 1×1), temporal max-pool, linear classifier.

The network works on ``seg`` frames (20 in the paper, which samples one frame per segment); here clips of
another length are resampled to ``seg`` frames (segment means, or linear interpolation for shorter clips),
which keeps the model deterministic
and differentiable with respect to every input frame. Bodies are folded into the batch.

Defaults are the paper's: 64-channel embeddings, 128/256/256-channel GCNs, 512-channel frame CNN, seg = 20
(about 0.7 M parameters for 60 classes). ``small``: half the widths. Names follow the official code
(``joint_embed``, ``dif_embed``, ``spa_embed``, ``tem_embed``, ``compute_g1``, ``gcn1..3``, ``cnn``, ``fc``).
"""

from __future__ import annotations

import torch
from torch import nn

from engine.models.base import SkeletonNet, average_bodies, fold_bodies, register_model
from engine.models.blocks import resample_frames


class NormData(nn.Module):
    """BatchNorm1d over C·V channels of a (N, C, V, T) tensor."""

    def __init__(self, channels: int, num_joints: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(channels * num_joints)

    def forward(self, x):
        n, c, v, t = x.shape
        return self.bn(x.reshape(n, c * v, t)).view(n, c, v, t)


class Embed(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, hidden: int, num_joints: int, norm: bool):
        super().__init__()
        layers = [NormData(in_channels, num_joints)] if norm else []
        layers += [nn.Conv2d(in_channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, out_channels, 1), nn.ReLU()]
        self.cnn = nn.Sequential(*layers)

    def forward(self, x):
        return self.cnn(x)


class ComputeG(nn.Module):
    """Data-driven adjacency per frame: softmax over joints of θ(z)ᵀ φ(z)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.g1 = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.g2 = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x):  # x: N, C, V, T
        g1 = self.g1(x).permute(0, 3, 2, 1)  # N, T, V, C
        g2 = self.g2(x).permute(0, 3, 1, 2)  # N, T, C, V
        return torch.softmax(g1 @ g2, dim=-1)  # N, T, V, V


class GCNSpa(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.w = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.w1 = nn.Conv2d(in_channels, out_channels, 1)
        nn.init.constant_(self.w.weight, 0)  # as in the official initialisation

    def forward(self, x, g):
        y = (g @ x.permute(0, 3, 2, 1)).permute(0, 3, 2, 1)  # aggregate joints per frame
        return self.relu(self.bn(self.w(y) + self.w1(x)))


class FrameCNN(nn.Module):
    """The official ``local`` module: max-pool over joints, temporal conv (3), BN, ReLU, dropout, 1×1, BN, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, seg: int, dropout: float = 0.2):
        super().__init__()
        self.maxpool = nn.AdaptiveMaxPool2d((1, seg))
        self.cnn1 = nn.Conv2d(in_channels, in_channels, (1, 3), padding=(0, 1))
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU()
        self.cnn2 = nn.Conv2d(in_channels, out_channels, 1)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.dropout = nn.Dropout2d(dropout)

    def forward(self, x):
        x = self.relu(self.bn1(self.cnn1(self.maxpool(x))))
        return self.relu(self.bn2(self.cnn2(self.dropout(x))))


@register_model("sgn")
class SGN(SkeletonNet):
    """SGN (Zhang et al., CVPR 2020). See the module docstring.

    Args:
        seg: number of frames the network sees (20).
        dim: joint-level GCN width (256); the position, velocity and joint-type embeddings (and the hidden
            layer of every embedding) are ``dim/4`` wide, the first GCN ``dim/2``, the frame CNN ``2·dim``.
        dropout: inside the frame CNN (0.2).
    """

    PRESETS = {
        "paper": {},
        "small": {"dim": 128},
    }

    def __init__(
        self,
        skeleton,
        num_classes: int,
        in_channels: int = 3,
        *,
        seg: int = 20,
        dim: int = 256,
        dropout: float = 0.2,
    ) -> None:
        super().__init__(skeleton, num_classes, in_channels)
        v, e = skeleton.num_joints, dim // 4
        self.seg = seg
        self.tem_embed = Embed(seg, dim, e, v, norm=False)
        self.spa_embed = Embed(v, e, e, v, norm=False)
        self.joint_embed = Embed(in_channels, e, e, v, norm=True)
        self.dif_embed = Embed(in_channels, e, e, v, norm=True)
        self.compute_g1 = ComputeG(dim // 2, dim)
        self.gcn1 = GCNSpa(dim // 2, dim // 2)
        self.gcn2 = GCNSpa(dim // 2, dim)
        self.gcn3 = GCNSpa(dim, dim)
        self.cnn = FrameCNN(dim, dim * 2, seg, dropout)
        self.feature_dim = dim * 2
        self.fc = nn.Linear(dim * 2, num_classes)
        # One-hot joint and frame indices, laid out (1, V, V, T) and (1, T, V, T) as the embeddings expect.
        self.register_buffer("spa", torch.eye(v)[None, :, :, None].expand(1, v, v, seg).clone(), persistent=False)
        self.register_buffer("tem", torch.eye(seg)[None, :, None, :].expand(1, seg, v, seg).clone(), persistent=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x, n, m = fold_bodies(x)  # N·M, C, T, V
        x = resample_frames(x, self.seg)
        x = x.permute(0, 1, 3, 2)  # N·M, C, V, T
        dif = torch.cat([torch.zeros_like(x[..., :1]), x[..., 1:] - x[..., :-1]], dim=-1)
        dy = self.joint_embed(x) + self.dif_embed(dif)
        z = torch.cat([dy, self.spa_embed(self.spa).expand(x.shape[0], -1, -1, -1)], dim=1)
        g = self.compute_g1(z)
        z = self.gcn3(self.gcn2(self.gcn1(z, g), g), g)
        z = z + self.tem_embed(self.tem)
        z = self.cnn(z)
        return average_bodies(torch.amax(z, dim=(2, 3)), n, m)
