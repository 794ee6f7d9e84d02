"""STTFormer: Qiu, Hou, Liu, Bai and Song, "Spatio-Temporal Tuples Transformer for Skeleton-Based Action
Recognition", arXiv:2201.02849, 2022 (official code: github.com/heleiqiu/STTFormer, ``model/sttformer.py``,
``model/sta_block.py``, ``model/pos_embed.py``).

The clip is cut into **tuples** of ``len_parts`` consecutive frames (6 in the paper); the joints of a tuple's
frames form one token set (``len_parts · V`` tokens, frame-major), so attention relates joints across
neighbouring frames. After a 1×1 input map (conv, BN, LeakyReLU 0.1), a stack of STA blocks, each:

- **spatio-temporal tuple attention**: a sinusoidal encoding of each token's position in the tuple is added to
  the input; a 1×1 conv gives ``num_heads`` queries and keys of ``qkv_dim`` channels; per head the attention
  ``tanh(qᵀk / (qkv_dim · tuples)) · α + A₀`` (``α`` a learnable per-head scale initialised to 1, ``A₀`` a
  learnable token × token matrix initialised to ``1/tokens``) aggregates the *input features themselves*
  (no value projection); the heads are concatenated and mixed by a (1 × 5) convolution along the token axis
  and BN, plus the (projected) residual, LeakyReLU; then a 1×1 conv + BN with the same residual, LeakyReLU;
- **inter-frame feature aggregation**: a temporal convolution over tuples (kernel 3) + BN, with a residual,
  LeakyReLU.

Global average pooling over tuples, tokens and bodies (bodies are folded into the batch, as in the official
code), dropout, linear classifier. Initialisation as there: convolutions Kaiming-normal (fan out), BN weight 1,
the classifier Xavier-normal.

**Frames.** The official feeder resizes every clip to 120 frames (``num_frames``, 20 tuples); the network itself
works on any number of tuples (its only length-dependent tensor, the position encoding, depends on the position
inside the tuple alone). Here clips are resampled to ``num_frames`` (:func:`engine.models.blocks.resample_frames`,
every input frame gets a gradient); with ``num_frames=None`` they keep their length, rounded up to a multiple of
``len_parts`` by linear interpolation when needed.

**Defaults and sizes.** The constructor defaults are the official NTU-60 config (``config/ntu60_xsub_joint.yaml``):
tuples of 6 frames, 120 frames, 3 heads, kernels (3, 5), eight blocks ``(in, out, qkv_dim)`` = (64, 64, 16) ×2,
(64, 128, 32), (128, 128, 32), (128, 256, 64), (256, 256, 64) ×3, no dropout. Measured with
``sum(p.numel() for p in net.parameters())`` on NTU-60 (60 classes, ``ntu25``): **6,233,588** parameters
(6.23 M), the size quoted for the paper's NTU-60 model (≈ 6.2 M) and exactly the count of the official code's
layers for that config (written out layer by layer in ``tests/engine/test_transformer_models.py``). Parameters
depend on the joint count through the ``A₀`` matrices (3 × (6V)² per block: 0.54 M of the total on NTU).
``small`` (three blocks of 24/48 channels, query/key width 8/16, 2 heads, clip length kept) has about 0.2 M.

Parameter names follow the official code (``input_map``, ``blocks.{i}.{to_qkvs,alphas,attention0s,out_nets,
ff_net,out_nett,ress,rest}``, ``fc``); its position encoding ``pes.pe`` and the all-zero ``atts`` are derived
buffers, not stored.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from engine.errors import ParameterError
from engine.models.base import SkeletonNet, average_bodies, fold_bodies, register_model
from engine.models.blocks import resample_frames
from engine.skeletons import Skeleton

#: The official NTU-60 block configuration: (in channels, out channels, query/key width) per STA block.
PAPER_CONFIG: tuple[tuple[int, int, int], ...] = (
    (64, 64, 16), (64, 64, 16), (64, 128, 32), (128, 128, 32),
    (128, 256, 64), (256, 256, 64), (256, 256, 64), (256, 256, 64),
)


def tuple_position_encoding(channels: int, tokens: int) -> torch.Tensor:
    """(1, channels, 1, tokens) sinusoidal encoding of a token's index inside its tuple (same for every tuple)."""
    position = torch.arange(tokens, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, channels, 2, dtype=torch.float32) * -(math.log(10000.0) / channels))
    pe = torch.zeros(tokens, channels)
    pe[:, 0::2] = torch.sin(position * freq)
    pe[:, 1::2] = torch.cos(position * freq)
    return pe.t()[None, :, None, :]


def _conv_bn(c_in: int, c_out: int, kernel=1, padding=0) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, padding=padding), nn.BatchNorm2d(c_out))


class STABlock(nn.Module):
    """Spatio-temporal tuple attention, then inter-frame feature aggregation (the official ``STA_Block``)."""

    def __init__(self, in_channels: int, out_channels: int, qkv_dim: int, num_tokens: int, num_heads: int,
                 kernel_size: tuple[int, int] = (3, 5), use_pes: bool = True, att_drop: float = 0.0):
        super().__init__()
        self.qkv_dim, self.num_heads, self.in_channels = qkv_dim, num_heads, in_channels
        kt, ks = kernel_size
        self.use_pes = use_pes
        if use_pes:
            self.register_buffer("pe", tuple_position_encoding(in_channels, num_tokens), persistent=False)
        self.to_qkvs = nn.Conv2d(in_channels, 2 * num_heads * qkv_dim, 1)
        self.alphas = nn.Parameter(torch.ones(1, num_heads, 1, 1))
        self.attention0s = nn.Parameter(torch.ones(1, num_heads, num_tokens, num_tokens) / num_tokens)
        self.out_nets = _conv_bn(in_channels * num_heads, out_channels, (1, ks), (0, (ks - 1) // 2))
        self.ff_net = _conv_bn(out_channels, out_channels)
        self.out_nett = _conv_bn(out_channels, out_channels, (kt, 1), ((kt - 1) // 2, 0))
        if in_channels != out_channels:
            self.ress = _conv_bn(in_channels, out_channels)
            self.rest = _conv_bn(out_channels, out_channels)
        else:
            self.ress = nn.Identity()
            self.rest = nn.Identity()
        self.relu = nn.LeakyReLU(0.1)
        self.drop = nn.Dropout(att_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v = x.shape
        xs = x + self.pe if self.use_pes else x
        q, k = torch.chunk(self.to_qkvs(xs).view(n, 2 * self.num_heads, self.qkv_dim, t, v), 2, dim=1)
        scores = torch.tanh(torch.einsum("nsctu,nsctv->nsuv", q, k) / (self.qkv_dim * t))
        attention = self.drop(scores * self.alphas + self.attention0s)
        xs = torch.einsum("nctu,nsuv->nsctv", x, attention).reshape(n, self.num_heads * c, t, v)
        res = self.ress(x)
        xs = self.relu(self.out_nets(xs) + res)
        xs = self.relu(self.ff_net(xs) + res)
        return self.relu(self.out_nett(xs) + self.rest(xs))


@register_model("sttformer")
class STTFormer(SkeletonNet):
    """STTFormer (Qiu et al., 2022). See the module docstring for the layout and the defaults.

    Args:
        config: ``(in, out, qkv_dim)`` per STA block (:data:`PAPER_CONFIG`); the first ``in`` is the input map's
            width, and each block's ``in`` must be the previous ``out``.
        len_parts: frames per tuple (6).
        num_frames: frames the clip is resampled to (120), or None to keep its length (rounded up to a multiple
            of ``len_parts``).
        num_heads: attention heads (3). kernel_size: (temporal over tuples, along tokens) kernels ((3, 5)).
        use_pes: add the tuple position encoding (True).
        att_drop, dropout: dropout of the attention maps and before the classifier (0, 0).
    """

    PRESETS = {
        "paper": {},
        "small": {"config": ((24, 24, 8), (24, 48, 16), (48, 48, 16)), "num_heads": 2, "num_frames": None},
    }

    def __init__(
        self,
        skeleton: Skeleton,
        num_classes: int,
        in_channels: int = 3,
        *,
        config: tuple[tuple[int, int, int], ...] = PAPER_CONFIG,
        len_parts: int = 6,
        num_frames: int | None = 120,
        num_heads: int = 3,
        kernel_size: tuple[int, int] = (3, 5),
        use_pes: bool = True,
        att_drop: float = 0.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(skeleton, num_classes, in_channels)
        config = tuple(tuple(int(c) for c in block) for block in config)
        if not config or any(len(b) != 3 for b in config):
            raise ParameterError(f"STTFormer config must list (in, out, qkv_dim) per block, got {config}")
        for prev, block in zip(config, config[1:]):
            if block[0] != prev[1]:
                raise ParameterError(f"STTFormer block {block} must take the previous block's {prev[1]} channels")
        if any(b[0] % 2 for b in config):
            raise ParameterError("STTFormer block input widths must be even (sinusoidal position encoding)")
        if len_parts < 1 or (num_frames is not None and num_frames % len_parts):
            raise ParameterError(f"num_frames ({num_frames}) must be a multiple of len_parts ({len_parts})")
        kernel_size = tuple(int(k) for k in kernel_size)
        if len(kernel_size) != 2 or any(k < 1 or k % 2 == 0 for k in kernel_size):
            raise ParameterError(f"kernel_size must be two odd sizes (temporal, token), got {kernel_size}")
        self.len_parts, self.num_frames = int(len_parts), num_frames
        tokens = skeleton.num_joints * self.len_parts
        self.input_map = nn.Sequential(nn.Conv2d(in_channels, config[0][0], 1), nn.BatchNorm2d(config[0][0]),
                                       nn.LeakyReLU(0.1))
        self.blocks = nn.ModuleList(
            STABlock(c_in, c_out, qkv, tokens, num_heads, kernel_size, use_pes, att_drop) for c_in, c_out, qkv in config
        )
        self.feature_dim = config[-1][1]
        self.fc = nn.Linear(self.feature_dim, num_classes)
        self.drop_out = nn.Dropout(dropout)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        nn.init.xavier_normal_(self.fc.weight)
        nn.init.constant_(self.fc.bias, 0)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x, n, m = fold_bodies(x)  # N·M, C, T, V
        t = self.num_frames or -(-x.shape[2] // self.len_parts) * self.len_parts
        x = resample_frames(x, t) if t != x.shape[2] else x
        nm, c, t, v = x.shape
        x = x.reshape(nm, c, t // self.len_parts, self.len_parts * v)  # tuples × (frame-in-tuple, joint) tokens
        x = self.input_map(x)
        for block in self.blocks:
            x = block(x)
        return self.drop_out(average_bodies(x.mean(dim=(2, 3)), n, m))
