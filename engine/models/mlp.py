"""The 3-layer MLP victim of the SMART and BEAT code (Wang et al., "Understanding the Robustness of Skeleton-based
Action Recognition under Adversarial Attack", CVPR 2021; its ``ThreeLayerMLP``, also BEAT's first victim).

The clip, flattened to T·V·C values (bodies folded into the batch, features averaged over them), goes
through two hidden ReLU layers and a linear classifier. It needs a fixed number of frames (``num_frames``,
60 as in the SMART HDM05 setting); clips of another length are resampled to it
(:func:`engine.models.blocks.resample_frames`).

Defaults (``paper`` width): 60 frames, 512 hidden units per layer, as the SMART/BEAT code's ``ThreeLayerMLP``
(about 2.6 M parameters for 25 joints; earlier skelviz releases used 1024 here); ``small``: 256 (about 1.2 M).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.base import SkeletonNet, average_bodies, fold_bodies, register_model
from engine.models.blocks import resample_frames


@register_model("mlp")
class MLP(SkeletonNet):
    """Three fully connected layers on the flattened clip.

    Args:
        num_frames: frames the input layer expects (60).
        hidden: units of both hidden layers (512, the SMART/BEAT code's).
        dropout: after each hidden layer (0).
    """

    PRESETS = {
        "paper": {},
        "small": {"hidden": 256},
    }

    def __init__(self, skeleton, num_classes: int, in_channels: int = 3, *, num_frames: int = 60,
                 hidden: int = 512, dropout: float = 0.0) -> None:
        super().__init__(skeleton, num_classes, in_channels)
        self.num_frames = num_frames
        self.layer1 = nn.Linear(num_frames * skeleton.num_joints * in_channels, hidden)
        self.layer2 = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.feature_dim = hidden
        self.fc = nn.Linear(hidden, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x, n, m = fold_bodies(x)  # N·M, C, T, V
        x = resample_frames(x, self.num_frames)
        x = x.permute(0, 2, 3, 1).flatten(1)  # T, V, C order: frames of interleaved x y z per joint
        x = self.dropout(F.relu(self.layer1(x)))
        x = self.dropout(F.relu(self.layer2(x)))
        return average_bodies(x, n, m)
