"""SkateFormer: Do and Kim, "SkateFormer: Skeletal-Temporal Transformer for Human Action Recognition",
ECCV 2024 (official code: github.com/KAIST-VICLab/SkateFormer, ``model/SkateFormer.py``).

Stem (three 1×1 convolutions with GELU, 3 → 6 → 9 → ``embed_dim``), then **Skate-Embedding**: the outer
product of fixed sinusoidal features of each frame's temporal index (``index_t = 2 t / T − 1``) with a learnable
``embed_dim × joints`` skeletal embedding, added to the stem output. Four stages of SkateFormer blocks; the
first block of every stage but the first halves time with a strided temporal convolution (kernel 7) and BN.
A block is pre-norm: LayerNorm, a linear map to 2C channels, split into

- C/4 channels of **G-Conv**: one learnable joint × joint matrix per group (``num_heads/4`` groups);
- C/4 channels of **T-Conv**: a grouped temporal convolution (kernel 7);
- 3C/2 channels of **Skate-MSA**: four equal shares, each the q, k, v of self-attention inside one of the four
  partition types (``num_heads/8`` heads each): neighbouring joints × local frames (type 1), distant joints ×
  local frames (type 2), neighbouring joints × global frames (type 3), distant joints × global frames
  (type 4), with a learnable relative bias over the frame offset (types 1, 3) or over frame offset and joint
  pair (types 2, 4);

concatenated (C channels), projected, added to the input (stochastic depth), then a pre-norm MLP (ratio 4).
Global average pool over frames and joints, linear classifier. As in the official code the attention scale is
``heads^-½`` (not ``head_dim^-½``) and queries, keys and values are the mapped features themselves.

**Partitions.** "Local frames" are ``frame_window`` consecutive frames; "global frames" are ``frame_window``
frames spaced ``T / frame_window`` apart. Joints are arranged in *parts*: a window of neighbouring joints holds
``parts_per_window`` whole parts, a window of distant joints holds the i-th joint of every part.

- ``partition="official"`` (the default on ``ntu25``): the official NTU feeder's six four-joint groups (wrist,
  hand, hand tip and thumb of each arm; hip, knee, ankle, foot of each leg; both shoulders and elbows; spine
  base, spine middle, neck, head), two groups per neighbour window (8 joints, the official ``type_1_size``).
  The official layout leaves out the spine at the shoulders (joint 21), so it does here: that joint does not
  reach the network.
- ``partition="derived"`` (any other skeleton, and available on ``ntu25``): the parts are the trunk and the
  limbs found from the topology (:func:`engine.models.hrnn.body_parts`: the chain from the root with its
  short side branches, and each pair of twin subtrees such as arms and legs; skeletons without twins fall back
  to kinematic chains), one part per neighbour window. Every joint is used. Parts of unequal length are padded
  to the longest; padding slots are masked out of the attention (never attended to) and dropped afterwards.

**Bodies.** By default (``num_person=None``) every body is a sample of its own and the features are averaged
over bodies (any M, body order irrelevant). ``num_person=2`` is the official layout: the bodies (padded with
zero bodies or cut to that many) are laid side by side on the joint axis, so one skeletal embedding and one
G-Conv matrix span both and distant-joint windows take the i-th joint of every part of both bodies.

**Frames.** The network needs a fixed number of frames (``num_frames``, 64 in the paper, where the feeder
samples 64 frames of each clip): other lengths are resampled (:func:`engine.models.blocks.resample_frames`:
segment means or linear interpolation, so every input frame gets a gradient). Every stage's length must be a
multiple of ``frame_window``.

**Defaults and sizes.** The constructor defaults are the official NTU-60 joint config
(``config/train/ntu_cs/SkateFormer_j.yaml`` with ``SkateFormer_``): depths (2, 2, 2, 2), channels
(96, 192, 192, 192), ``embed_dim`` 96, 32 heads, kernel 7, 8-frame windows, 64 frames, MLP ratio 4, attention
dropout 0.5, stochastic depth 0.2. The ``paper`` preset adds ``num_person=2`` (the official two-body layout).
Measured with ``sum(p.numel() for p in net.parameters())`` on NTU-60 (60 classes, ``ntu25``): **3,616,083**
parameters for ``paper``, which is exactly the count of the official code's layers for that config (written out
layer by layer in ``tests/engine/test_transformer_models.py``; 3.62 M), and 3,399,507 with the default folded
bodies (the G-Conv matrices and the embedding then span 24 joints instead of 48). The paper's complexity table
reports **2.03 M** parameters (and 3.62 GFLOPs); the released code and config do not give that figure (the
transformer blocks' linear layers alone hold 2.6 M at widths 96/192), and no published config that we found
does, so this port follows the released code and states the difference. ``small`` (depths 1, 1, 1; channels
32, 64, 64; 16 heads; 4-frame windows; 32 frames; no dropout) has about 0.16 M parameters and trains on a CPU
in minutes.

Parameter names follow the official code (``stem``, ``joint_person_embedding``,
``stages.{i}.blocks.{j}.downsample.{reduction,bn}``, ``….transformer.{norm_1,mapping,gconv,tconv,attention,
proj,norm_2,mlp.fc1,mlp.fc2}``, ``relative_position_bias_table``); the official ``head`` is ``fc`` here.
Only the temporal-index Skate-Embedding (the official ``index_t=True``, used by every published config) is
implemented, not the learnable joint × frame embedding of ``index_t=False``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from engine.errors import ParameterError
from engine.models.base import SkeletonNet, average_bodies, fold_bodies, register_model
from engine.models.blocks import resample_frames
from engine.skeletons import Skeleton

#: The official NTU feeder's joint groups (``feeders/feeder_ntu.py``, ``partition=True``), by joint name, in its
#: order: the groups it calls right arm, left arm, right leg, left leg, h-torso and w-torso.
NTU_PARTS: tuple[tuple[str, ...], ...] = (
    ("WristLeft", "HandLeft", "HandTipLeft", "ThumbLeft"),
    ("WristRight", "HandRight", "HandTipRight", "ThumbRight"),
    ("HipLeft", "KneeLeft", "AnkleLeft", "FootLeft"),
    ("HipRight", "KneeRight", "AnkleRight", "FootRight"),
    ("ShoulderLeft", "ShoulderRight", "ElbowLeft", "ElbowRight"),
    ("SpineMid", "Neck", "SpineBase", "Head"),
)
PARTITIONS = ("auto", "official", "derived")


def skate_parts(skeleton: Skeleton, partition: str = "auto") -> tuple[list[list[int]], int]:
    """``(parts, parts_per_window)``: the joint groups of the Skate-MSA partitions and how many whole groups
    a neighbouring-joints window holds (see the module docstring)."""
    if partition not in PARTITIONS:
        raise ParameterError(f"SkateFormer partition must be one of {PARTITIONS}, got {partition!r}")
    official = skeleton.name == "ntu25" and all(n in skeleton.joint_names for p in NTU_PARTS for n in p)
    if partition == "official" and not official:
        raise ParameterError(
            f"the official SkateFormer partition is defined on ntu25, not on {skeleton.name!r}; "
            "use partition='derived' (parts found from the topology)"
        )
    if partition == "official" or (partition == "auto" and official):
        return [[skeleton.index(n) for n in part] for part in NTU_PARTS], 2
    from engine.models.hrnn import body_parts

    parts, _ = body_parts(skeleton)
    return [list(p) for p in parts if p], 1


class SkateLayout:
    """Index tables of the four partition types for ``bodies`` bodies of the given parts.

    Tokens are the used joints of every body in part order (``joints``: input joint per token, body-major).
    ``neighbour`` and ``distant`` are (windows, size) token indices, ``-1`` for padding slots; ``slot_of`` gives
    each token's flat position in the (windows × size) grid of each type, to put the outputs back.
    """

    def __init__(self, parts: list[list[int]], parts_per_window: int, bodies: int, num_joints: int) -> None:
        length = max(len(p) for p in parts)
        k = len(parts)
        if k % parts_per_window:
            raise ParameterError(f"{k} parts cannot be grouped {parts_per_window} per neighbouring-joints window")
        # index tables are built on the CPU even when the network is built on the meta device (checkpoint checks)
        slots = torch.full((bodies, k, length), -1, dtype=torch.long, device="cpu")
        joints, token = [], 0
        for b in range(bodies):
            for i, part in enumerate(parts):
                for j, joint in enumerate(part):
                    slots[b, i, j] = token
                    joints.append(b * num_joints + joint)
                    token += 1
        self.num_tokens = token
        self.joints = torch.tensor(joints, dtype=torch.long, device="cpu")
        self.neighbour = slots.reshape(-1, parts_per_window * length)
        self.distant = slots.permute(2, 0, 1).reshape(length, bodies * k)
        self.slot_of = {}
        for name, table in (("neighbour", self.neighbour), ("distant", self.distant)):
            flat = table.flatten()
            where = torch.empty(token, dtype=torch.long, device="cpu")
            where[flat[flat >= 0]] = torch.nonzero(flat >= 0).flatten()
            self.slot_of[name] = where


class PartitionAttention(nn.Module):
    """Multi-head self-attention inside the windows of one partition type.

    ``temporal``: ``"local"`` (``window`` consecutive frames) or ``"global"`` (``window`` frames spaced
    ``T / window`` apart); ``spatial``: ``"neighbour"`` or ``"distant"`` (the layout's index table).
    """

    def __init__(self, channels: int, num_heads: int, window: int, temporal: str, spatial: str,
                 layout: SkateLayout, attn_drop: float = 0.0, rel: bool = True):
        super().__init__()
        self.num_heads, self.window, self.temporal, self.spatial = num_heads, window, temporal, spatial
        self.scale = num_heads ** -0.5  # the official scale (heads, not head width)
        table = layout.neighbour if spatial == "neighbour" else layout.distant
        self.register_buffer("joint_index", table.clamp(min=0), persistent=False)
        # keys to ignore, per window, in the window's (frame, slot) token order
        self.register_buffer("key_pad", (table < 0).repeat(1, window), persistent=False)
        self.register_buffer("slot_of", layout.slot_of[spatial], persistent=False)
        self.masked = bool((table < 0).any())
        size = table.shape[1]
        self.rel = rel
        if rel:
            shape = (2 * window - 1, num_heads) if spatial == "neighbour" else (2 * window - 1, size, size, num_heads)
            self.relative_position_bias_table = nn.Parameter(torch.zeros(shape))
            nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
            offsets = torch.arange(window)[:, None] - torch.arange(window)[None, :] + window - 1
            self.register_buffer("relative_position_index", offsets, persistent=False)
        self.attn_drop = nn.Dropout(attn_drop)

    def _bias(self) -> torch.Tensor:
        b = self.relative_position_bias_table[self.relative_position_index]  # (w, w, h) or (w, w, s, s, h)
        w = self.window
        if b.dim() == 3:
            s = self.joint_index.shape[1]
            b = b[:, None, :, None, :].expand(w, s, w, s, -1)
        else:
            b = b.permute(0, 2, 1, 3, 4)  # (w, s, w, s, h)
        n = b.shape[0] * b.shape[1]
        return b.reshape(n, n, -1).permute(2, 0, 1)  # (h, n, n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3·C', T, P) → (B, C', T, P) with C' = heads × head width."""
        bsz, c3, t, _ = x.shape
        w = self.window
        groups, size = self.joint_index.shape
        x = x[..., self.joint_index.flatten()].reshape(bsz, c3, t, groups, size)
        if self.temporal == "local":  # frames (T/w, w): a window is w consecutive frames
            x = x.reshape(bsz, c3, t // w, w, groups, size).permute(0, 2, 4, 3, 5, 1)
        else:  # frames (w, T/w): a window is w frames T/w apart
            x = x.reshape(bsz, c3, w, t // w, groups, size).permute(0, 3, 4, 2, 5, 1)
        tw = x.shape[1]
        tokens = w * size
        qkv = x.reshape(-1, tokens, 3, self.num_heads, c3 // (3 * self.num_heads)).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q * self.scale) @ k.transpose(-2, -1)  # (B·tw·groups, h, tokens, tokens)
        if self.rel:
            attn = attn + self._bias()[None]
        if self.masked:
            mask = self.key_pad.repeat(bsz * tw, 1)[:, None, None, :]  # rows ordered (b, t, window)
            attn = attn.masked_fill(mask, float("-inf"))
        attn = self.attn_drop(torch.softmax(attn, dim=-1))
        out = (attn @ v).transpose(1, 2).reshape(bsz, tw, groups, w, size, -1)
        if self.temporal == "local":
            out = out.permute(0, 5, 1, 3, 2, 4)  # (B, C', T/w, w, groups, size)
        else:
            out = out.permute(0, 5, 3, 1, 2, 4)  # (B, C', w, T/w, groups, size)
        out = out.reshape(bsz, out.shape[1], t, groups * size)
        return out[..., self.slot_of]


class Mlp(nn.Module):
    """Linear, GELU, dropout, linear, dropout (timm's ``Mlp``, whose parameter names it keeps)."""

    def __init__(self, channels: int, hidden: int, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(channels, hidden)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden, channels)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x):
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


class DropPath(nn.Module):
    """Stochastic depth: in training, zero a sample's residual branch with probability ``p`` (rescaling the rest)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1.0 - self.p)
        return x * keep / (1.0 - self.p)


class SkateFormerBlock(nn.Module):
    """G-Conv, T-Conv and the four Skate-MSA branches on a shared mapping, projection, residual; then the MLP."""

    def __init__(self, channels: int, num_tokens: int, layout: SkateLayout, kernel_size: int, num_heads: int,
                 frame_window: int, attn_drop: float, drop: float, rel: bool, drop_path: float, mlp_ratio: float):
        super().__init__()
        groups = num_heads // 4
        self.norm_1 = nn.LayerNorm(channels)
        self.mapping = nn.Linear(channels, 2 * channels)
        self.gconv = nn.Parameter(torch.zeros(groups, num_tokens, num_tokens))
        nn.init.trunc_normal_(self.gconv, std=0.02)
        self.tconv = nn.Conv2d(channels // 4, channels // 4, (kernel_size, 1), padding=((kernel_size - 1) // 2, 0),
                               groups=groups)
        types = (("local", "neighbour"), ("local", "distant"), ("global", "neighbour"), ("global", "distant"))
        self.attention = nn.ModuleList(
            PartitionAttention(channels // 8, num_heads // 8, frame_window, temporal, spatial, layout, attn_drop, rel)
            for temporal, spatial in types
        )
        self.proj = nn.Linear(channels, channels)
        self.proj_drop = nn.Dropout(drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm_2 = nn.LayerNorm(channels)
        self.mlp = Mlp(channels, int(mlp_ratio * channels), drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        x = x.permute(0, 2, 3, 1)  # B, T, P, C
        f = self.mapping(self.norm_1(x)).permute(0, 3, 1, 2)  # B, 2C, T, P
        f_g, f_t, f_attn = torch.split(f, [c // 4, c // 4, 3 * c // 2], dim=1)
        groups = self.gconv.shape[0]
        f_g = f_g.reshape(f_g.shape[0], groups, c // (4 * groups), *f_g.shape[2:])
        y = [torch.einsum("bgctu,gvu->bgctv", f_g, self.gconv).flatten(1, 2), self.tconv(f_t)]
        y += [att(part) for att, part in zip(self.attention, torch.chunk(f_attn, 4, dim=1))]
        out = self.proj_drop(self.proj(torch.cat(y, dim=1).permute(0, 2, 3, 1)))
        x = x + self.drop_path(out)
        x = x + self.drop_path(self.mlp(self.norm_2(x)))
        return x.permute(0, 3, 1, 2)


class PatchMergingTconv(nn.Module):
    """Temporal down-sampling between stages: a strided temporal convolution and BN."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 7, stride: int = 2):
        super().__init__()
        self.reduction = nn.Conv2d(in_channels, out_channels, (kernel_size, 1), padding=((kernel_size - 1) // 2, 0),
                                   stride=(stride, 1))
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return self.bn(self.reduction(x))


class SkateFormerBlockDS(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, downscale: bool, kernel_size: int, **block):
        super().__init__()
        self.downsample = PatchMergingTconv(in_channels, out_channels, kernel_size) if downscale else None
        self.transformer = SkateFormerBlock(out_channels, kernel_size=kernel_size, **block)

    def forward(self, x):
        return self.transformer(x if self.downsample is None else self.downsample(x))


class SkateFormerStage(nn.Module):
    def __init__(self, blocks: list[nn.Module]):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x


def _stage_lengths(num_frames: int, num_stages: int) -> list[int]:
    """Frames per stage: the stride-2 convolution (kernel 7, padding 3) gives ⌈T/2⌉."""
    lengths = [num_frames]
    for _ in range(num_stages - 1):
        lengths.append((lengths[-1] + 1) // 2)
    return lengths


@register_model("skateformer")
class SkateFormer(SkeletonNet):
    """SkateFormer (Do & Kim, ECCV 2024). See the module docstring for the layout, partitions and sizes.

    Args:
        depths, channels: blocks and width per stage ((2, 2, 2, 2); (96, 192, 192, 192)).
        embed_dim: stem / Skate-Embedding width (96; must equal ``channels[0]``).
        num_heads: heads of a block (32): ``num_heads/4`` G-Conv and T-Conv groups, ``num_heads/8`` heads per
            partition type; a multiple of 8 dividing every stage width.
        kernel_size: T-Conv and down-sampling kernel (7).
        frame_window: frames per local window and number of frames per global window (8, the official
            ``type_*_size[0]``).
        num_frames: frames the network sees (64); clips are resampled to it.
        partition: ``"auto"`` (official on ``ntu25``, derived otherwise), ``"official"`` or ``"derived"``.
        num_person: ``None`` (bodies folded into the batch and averaged) or the official joint layout of this
            many bodies side by side (2).
        attn_drop, drop, drop_path, head_drop: attention dropout (0.5), projection/MLP dropout (0), the last
            block's stochastic-depth rate (0.2, rising linearly from 0), dropout before the classifier (0).
        rel: relative position biases (True). mlp_ratio: MLP hidden width / channels (4).
    """

    PRESETS = {
        "paper": {"num_person": 2},
        "small": {"depths": (1, 1, 1), "channels": (32, 64, 64), "embed_dim": 32, "num_heads": 16,
                  "frame_window": 4, "num_frames": 32, "attn_drop": 0.0, "drop_path": 0.0},
    }

    def __init__(
        self,
        skeleton: Skeleton,
        num_classes: int,
        in_channels: int = 3,
        *,
        depths: tuple[int, ...] = (2, 2, 2, 2),
        channels: tuple[int, ...] = (96, 192, 192, 192),
        embed_dim: int = 96,
        num_heads: int = 32,
        kernel_size: int = 7,
        frame_window: int = 8,
        num_frames: int = 64,
        partition: str = "auto",
        num_person: int | None = None,
        attn_drop: float = 0.5,
        drop: float = 0.0,
        drop_path: float = 0.2,
        head_drop: float = 0.0,
        rel: bool = True,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__(skeleton, num_classes, in_channels)
        depths, channels = tuple(int(d) for d in depths), tuple(int(c) for c in channels)
        if len(depths) != len(channels) or not depths or min(depths) < 1:
            raise ParameterError(f"SkateFormer needs one depth (≥ 1) per stage width; got {depths} and {channels}")
        if embed_dim != channels[0]:
            raise ParameterError(f"embed_dim ({embed_dim}) must equal the first stage width ({channels[0]})")
        if num_heads % 8 or any(c % num_heads for c in channels) or embed_dim % 2:
            raise ParameterError(
                f"num_heads ({num_heads}) must be a multiple of 8 dividing every stage width {channels} "
                "(and embed_dim must be even)"
            )
        lengths = _stage_lengths(int(num_frames), len(depths))
        if any(t % frame_window for t in lengths):
            raise ParameterError(
                f"num_frames={num_frames} gives {lengths} frames per stage; each must be a multiple of "
                f"frame_window={frame_window} (e.g. num_frames = frame_window · 2^(stages-1))"
            )
        if num_person is not None and num_person < 1:
            raise ParameterError(f"num_person must be None or at least 1, got {num_person}")
        parts, per_window = skate_parts(skeleton, partition)
        self.num_person, self.num_frames, self.embed_dim = num_person, int(num_frames), int(embed_dim)
        layout = SkateLayout(parts, per_window, num_person or 1, skeleton.num_joints)
        self.register_buffer("joint_order", layout.joints, persistent=False)
        p = layout.num_tokens
        stem = [nn.Conv2d(in_channels, 2 * in_channels, 1), nn.GELU(), nn.Conv2d(2 * in_channels, 3 * in_channels, 1),
                nn.GELU(), nn.Conv2d(3 * in_channels, embed_dim, 1)]
        self.stem = nn.ModuleList(stem)
        self.joint_person_embedding = nn.Parameter(torch.zeros(embed_dim, p))
        nn.init.trunc_normal_(self.joint_person_embedding, std=0.02)
        index_t = 2 * torch.arange(num_frames, dtype=torch.float32) / num_frames - 1
        freq = torch.exp(torch.arange(0, embed_dim, 2, dtype=torch.float32) * -(math.log(10000.0) / embed_dim))
        te = torch.zeros(num_frames, embed_dim)
        te[:, 0::2] = torch.sin(index_t[:, None] * freq)
        te[:, 1::2] = torch.cos(index_t[:, None] * freq)
        self.register_buffer("temporal_index_features", te, persistent=False)
        rates = torch.linspace(0.0, drop_path, sum(depths), device="cpu").tolist()
        stages, c_in, i = [], embed_dim, 0
        for s, (depth, width) in enumerate(zip(depths, channels)):
            blocks = []
            for b in range(depth):
                blocks.append(SkateFormerBlockDS(
                    c_in if b == 0 else width, width, downscale=(b == 0 and s > 0), kernel_size=kernel_size,
                    num_tokens=p, layout=layout, num_heads=num_heads, frame_window=frame_window,
                    attn_drop=attn_drop, drop=drop, rel=rel, drop_path=rates[i], mlp_ratio=mlp_ratio,
                ))
                i += 1
            stages.append(SkateFormerStage(blocks))
            c_in = width
        self.stages = nn.ModuleList(stages)
        self.dropout = nn.Dropout(head_drop) if head_drop else nn.Identity()
        self.feature_dim = channels[-1]
        self.fc = nn.Linear(channels[-1], num_classes)

    def _tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        """(N, C, T, V, M) → ((N', C, T, P) in partition order, N, bodies averaged afterwards)."""
        if self.num_person is None:
            x, n, m = fold_bodies(x)
        else:
            n, c, t, v, m = x.shape
            if m > self.num_person:
                x = x[..., : self.num_person]
            elif m < self.num_person:
                x = torch.cat([x, x.new_zeros(n, c, t, v, self.num_person - m)], dim=-1)
            x, m = x.permute(0, 1, 2, 4, 3).reshape(n, c, t, self.num_person * v), 1  # body-major joint axis
        return x[..., self.joint_order], n, m

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x, n, m = self._tokens(x)
        x = resample_frames(x, self.num_frames)
        for layer in self.stem:
            x = layer(x)
        x = x + torch.einsum("tc,cv->ctv", self.temporal_index_features, self.joint_person_embedding)[None]
        for stage in self.stages:
            x = stage(x)
        return self.dropout(average_bodies(x.mean(dim=(2, 3)), n, m))

