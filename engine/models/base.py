"""What every classifier shares: the network base class, the model registry and :class:`Classifier`.

Networks take ``(N, C=3, T, V, M)`` tensors and a :class:`~engine.skeletons.Skeleton` from which they build
their graph. A :class:`Classifier` is a network plus everything needed to use it on raw clips: the skeleton,
the class names, the input normalisation and its :class:`~engine.preprocessing.Preprocessing`. Its ``forward``
takes windows in **metres, world coordinates** (resampled and windowed as the preprocessing says, nothing else)
and runs the spatial preprocessing (facing, root centring) and the normalisation itself, differentiably, so
attacks perturb the motion a sensor records and metrics work in metres on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from engine.errors import CheckpointError
from engine.modes import eval_mode
from engine.preprocessing import Preprocessing
from engine.registry import Registry
from engine.skeletons import Skeleton


class SkeletonNet(nn.Module):
    """Base class of the architectures in :mod:`engine.models`.

    Subclasses implement ``features(x) -> (N, D)`` (the penultimate representation, used by BEAT's
    post-train head) and set ``self.feature_dim`` and ``self.fc`` (the final linear layer), so that
    ``forward(x) = fc(features(x))``.
    """

    feature_dim: int
    #: Named keyword presets: ``"paper"`` (the published size, the constructor defaults) and ``"small"``
    #: (narrow and shallow enough to train on a CPU in minutes). See :func:`preset_kwargs`.
    PRESETS: dict[str, dict[str, Any]] = {"paper": {}, "small": {}}

    def __init__(self, skeleton: Skeleton, num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        self.skeleton = skeleton
        self.num_classes = int(num_classes)
        self.in_channels = int(in_channels)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def fold_bodies(x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """(N, C, T, V, M) → ((N·M, C, T, V), N, M): every body becomes a sample of its own."""
    n, c, t, v, m = x.shape
    return x.permute(0, 4, 1, 2, 3).reshape(n * m, c, t, v), n, m


def average_bodies(features: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """(N·M, D) → (N, D): the mean over the bodies of each sample."""
    return features.reshape(n, m, -1).mean(dim=1)


MODELS: Registry[type[SkeletonNet]] = Registry("architecture", CheckpointError, name_attribute="arch_name")


def register_model(name: str) -> Callable[[type[SkeletonNet]], type[SkeletonNet]]:
    return MODELS.register(name)


def build_model(name: str, skeleton: Skeleton, num_classes: int, **kwargs: Any) -> SkeletonNet:
    import engine.models  # noqa: F401  (registers the built-in architectures)

    return MODELS.lookup(name)(skeleton, num_classes, **kwargs)


def preset_kwargs(name: str, width: str = "paper") -> dict[str, Any]:
    """Constructor keywords of architecture ``name`` for a named width preset (``"paper"`` or ``"small"``)."""
    import engine.models  # noqa: F401

    presets = MODELS.lookup(name).PRESETS
    if width not in presets:
        raise CheckpointError(f"architecture {name!r} has no width preset {width!r}; choose one of {sorted(presets)}")
    return dict(presets[width])


class Classifier(nn.Module):
    """A trained network with its skeleton, classes, normalisation and preprocessing.

    ``mean``/``std`` broadcast against ``(N, C, T, V, M)`` (shape ``(1, C, 1, V or 1, 1)``) and apply to the
    spatially preprocessed input. ``preprocessing`` is a :class:`~engine.preprocessing.Preprocessing` (a dict
    is converted, see :meth:`Preprocessing.from_dict`).
    """

    def __init__(
        self,
        net: SkeletonNet,
        class_names: list[str],
        *,
        mean: torch.Tensor | None = None,
        std: torch.Tensor | None = None,
        preprocessing: Preprocessing | dict | None = None,
        arch: str | None = None,
        arch_kwargs: dict | None = None,
        meta: dict | None = None,
    ) -> None:
        super().__init__()
        if len(class_names) != net.num_classes:
            raise CheckpointError(
                f"{len(class_names)} class names for a network with {net.num_classes} outputs"
            )
        self.net = net
        self.skeleton = net.skeleton
        self.class_names = list(class_names)
        self.register_buffer("mean", torch.zeros(1, 3, 1, 1, 1) if mean is None else mean.float().clone())
        self.register_buffer("std", torch.ones(1, 3, 1, 1, 1) if std is None else std.float().clone())
        self.preprocessing = Preprocessing.coerce(preprocessing)
        self.arch = arch or getattr(net, "arch_name", type(net).__name__)
        self.arch_kwargs = dict(arch_kwargs or {})
        self.meta = dict(meta or {})

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def network_input(self, x: torch.Tensor) -> torch.Tensor:
        """World-coordinate windows (N, 3, T, V, M) in metres → what the network takes: the spatial
        preprocessing (facing, root centring) and then the input normalisation. The only such path."""
        return (self.preprocessing.apply(x, self.skeleton) - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.network_input(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(self.network_input(x))

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.net.fc(features)

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        with eval_mode(self):
            return torch.softmax(self(x.to(self.mean.device)), dim=-1)

    @property
    def forward_passes_per_prediction(self) -> int:
        """How many network evaluations one prediction costs (1 here; Bayesian/smoothed models say more)."""
        return 1
