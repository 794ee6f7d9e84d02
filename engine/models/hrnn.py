"""HBRNN: Du, Wang and Wang, "Hierarchical Recurrent Neural Network for Skeleton Based Action Recognition",
CVPR 2015.

The body is split into five parts (trunk, two arms, two legs). Layer bl1 runs one bidirectional RNN per part
on its joint coordinates; fusion fl1 concatenates the trunk's outputs with each limb's (trunk+left arm,
trunk+right arm, trunk+left leg, trunk+right leg); bl2 runs a bidirectional RNN on each; fl2 fuses them into
the upper and the lower body; bl3 runs on each; fl3 fuses the whole body; bl4 is a bidirectional LSTM. A
fully connected layer on bl4's outputs, accumulated over the frames, gives the class scores (the paper's
layers bl1-bl3 use tanh units and bl4 LSTM units).

The parts come from the Skeleton (:func:`body_parts`): walking the trunk from the root, the left/right
twins hanging off it (found by name, else by identical subtree shape) are the limbs, the first pair the legs,
the next the arms; everything else is trunk. A skeleton without such pairs falls back to its kinematic
chains, grouped into at most five parts (the first holding the root plays the trunk).

The paper tunes layer sizes per dataset; defaults here are 32, 64, 96, 128 units per direction for bl1-bl4;
``small``: 16, 32, 48, 64. Bodies are folded into the batch.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.models.base import SkeletonNet, average_bodies, fold_bodies, register_model
from engine.skeletons import Skeleton


def _subtree(skeleton: Skeleton, j: int) -> list[int]:
    out, stack = [], [j]
    while stack:
        k = stack.pop()
        out.append(k)
        stack.extend(skeleton.children[k])
    return sorted(out)


def _shape(skeleton: Skeleton, j: int) -> tuple:
    return tuple(sorted(_shape(skeleton, c) for c in skeleton.children[j]))


def _twin_children(skeleton: Skeleton, j: int) -> list[tuple[int, int]]:
    kids = list(skeleton.children[j])
    named = {tuple(sorted(p)) for p in skeleton.symmetric_pairs}
    pairs = []
    for a in kids:
        for b in kids:
            if a < b and (a, b) in named:
                pairs.append((a, b))
    if not pairs and len(kids) >= 3:  # no names to go by: two children with the same subtree shape
        for a in kids:
            for b in kids:
                if a < b and _shape(skeleton, a) == _shape(skeleton, b) and not any(x in p for p in pairs for x in (a, b)):
                    pairs.append((a, b))
    return pairs


def body_parts(skeleton: Skeleton) -> tuple[list[list[int]], list[list[int]]]:
    """Joint indices of the trunk and the limbs, and how bl2 outputs group in fl2.

    Returns ``(parts, groups)``: ``parts[0]`` is the trunk, ``parts[1:]`` the limbs; ``groups`` lists, for
    each fl2 fusion, the limb indices (into ``parts[1:]``) it joins (for a human: arms, legs).
    """
    trunk, limb_pairs, j = [], [], skeleton.root
    while j is not None:
        trunk.append(j)
        pairs = _twin_children(skeleton, j)
        paired = {x for p in pairs for x in p}
        for a, b in pairs:
            limb_pairs.append((_subtree(skeleton, a), _subtree(skeleton, b)))
        rest = [c for c in skeleton.children[j] if c not in paired]
        if not rest:
            j = None
            continue
        rest.sort(key=lambda c: len(_subtree(skeleton, c)), reverse=True)
        for c in rest[1:]:
            trunk.extend(_subtree(skeleton, c))
        j = rest[0]
    if limb_pairs:
        limbs = [limb for pair in limb_pairs for limb in pair]
        groups = [[2 * i, 2 * i + 1] for i in range(len(limb_pairs))]
        # The paper orders the upper body before the lower: legs are found first from a hip root.
        return [sorted(trunk)] + limbs, groups[::-1] if len(groups) == 2 else groups
    # Fallback: kinematic chains, grouped round-robin into at most five parts.
    chains = sorted(skeleton.chains, key=lambda ch: (skeleton.root not in ch, -len(ch)))
    n_parts = min(5, len(chains))
    parts = [sorted({j for ch in chains[i::n_parts] for j in ch}) for i in range(n_parts)]
    limbs = list(range(n_parts - 1))
    if not limbs:
        return parts, []
    half = (len(limbs) + 1) // 2
    return parts, [g for g in (limbs[:half], limbs[half:]) if g]


class _BiRNN(nn.Module):
    def __init__(self, input_size: int, hidden: int, lstm: bool = False):
        super().__init__()
        cls = nn.LSTM if lstm else nn.RNN
        self.rnn = cls(input_size, hidden, batch_first=True, bidirectional=True)

    def forward(self, x):
        return self.rnn(x)[0]


@register_model("hrnn")
class HRNN(SkeletonNet):
    """Hierarchical bidirectional RNN (Du et al., CVPR 2015). See the module docstring.

    Args:
        hidden: units per direction of bl1, bl2, bl3, bl4 ((32, 64, 96, 128)).
    """

    PRESETS = {
        "paper": {},
        "small": {"hidden": (16, 32, 48, 64)},
    }

    def __init__(self, skeleton, num_classes: int, in_channels: int = 3, *,
                 hidden: tuple[int, int, int, int] = (32, 64, 96, 128)) -> None:
        super().__init__(skeleton, num_classes, in_channels)
        h1, h2, h3, h4 = hidden
        parts, groups = body_parts(skeleton)
        self.groups = groups
        for i, p in enumerate(parts):
            self.register_buffer(f"part{i}", torch.tensor(p, dtype=torch.long), persistent=False)
        self.num_parts = len(parts)
        self.bl1 = nn.ModuleList(_BiRNN(len(p) * in_channels, h1) for p in parts)
        n_limbs = len(parts) - 1
        if n_limbs:
            self.bl2 = nn.ModuleList(_BiRNN(4 * h1, h2) for _ in range(n_limbs))
            self.bl3 = nn.ModuleList(_BiRNN(2 * h2 * len(g), h3) for g in groups)
            self.bl4 = _BiRNN(2 * h3 * len(groups), h4, lstm=True)
        else:  # a single part: one RNN per level
            self.bl2 = nn.ModuleList([_BiRNN(2 * h1, h2)])
            self.bl3 = nn.ModuleList([_BiRNN(2 * h2, h3)])
            self.bl4 = _BiRNN(2 * h3, h4, lstm=True)
        self.feature_dim = 2 * h4
        self.fc = nn.Linear(2 * h4, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x, n, m = fold_bodies(x)  # N·M, C, T, V
        x = x.permute(0, 2, 3, 1)  # N·M, T, V, C
        nm, t = x.shape[:2]
        out1 = [rnn(x[:, :, getattr(self, f"part{i}")].reshape(nm, t, -1)) for i, rnn in enumerate(self.bl1)]
        if self.num_parts > 1:
            out2 = [rnn(torch.cat([out1[0], out1[i + 1]], -1)) for i, rnn in enumerate(self.bl2)]
            out3 = [rnn(torch.cat([out2[k] for k in g], -1)) for g, rnn in zip(self.groups, self.bl3)]
        else:
            out3 = [self.bl3[0](self.bl2[0](out1[0]))]
        out4 = self.bl4(torch.cat(out3, -1))
        # The paper accumulates the per-frame outputs over time before the softmax: fc is linear, so
        # classifying the time-averaged bl4 output is the same up to scale.
        return average_bodies(out4.mean(dim=1), n, m)
