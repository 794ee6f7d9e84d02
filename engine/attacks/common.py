"""What the white-box attacks share: strategies (AB, ABN, SA), their class losses and success tests,
budgets by projection, per-frame gradient normalisation, and the model's skeleton and frame rate.

Strategies (used by SMART, I-FGSM/PGD, MI-FGSM and CIASA alike):

``"ab"`` anything but the true class; ``Lc = −CE(logits, y)``.
``"abn"`` the true class leaves the top N (at least N classes score strictly higher);
    ``Lc = z_y − z_(N)``, the margin to the N-th highest other logit.
``"sa"`` a specified target class; ``Lc = CE(logits, target)``.

``Lc`` is always to be minimised and is per sample ``(N,)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.errors import AttackError
from engine.skeletons import Skeleton

STRATEGIES = ("ab", "abn", "sa")


def model_skeleton(model, skeleton: Skeleton | None) -> Skeleton:
    """The skeleton to use: the one given, else the model's (a :class:`Classifier` carries it)."""
    if skeleton is not None:
        return skeleton
    found = getattr(model, "skeleton", None)
    if found is None:
        raise AttackError("this model does not say its skeleton; pass skeleton= to the attack")
    return found


def model_fps(model, fps: float | None) -> float:
    """The frame rate clips reach the model at: the one given, else the model's preprocessing, else 30."""
    if fps is not None:
        return float(fps)
    pre = getattr(model, "preprocessing", None) or {}
    return float(pre.get("fps", 30.0))


def strategy_success(logits: torch.Tensor, y: torch.Tensor, strategy: str, top_n: int, target) -> torch.Tensor:
    """Per-sample success of ``strategy`` given logits ``(N, K)`` (see the module docstring)."""
    if strategy == "ab":
        return logits.argmax(dim=1) != y
    if strategy == "abn":
        true_logit = logits.gather(1, y[:, None])
        return (logits > true_logit).sum(dim=1) >= top_n
    if strategy == "sa":
        return logits.argmax(dim=1) == target
    raise AttackError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")


def strategy_class_loss(logits: torch.Tensor, y: torch.Tensor, strategy: str, top_n: int, target) -> torch.Tensor:
    """Per-sample class loss ``Lc`` ``(N,)`` of ``strategy``, to be minimised."""
    if strategy == "ab":
        return -F.cross_entropy(logits, y, reduction="none")
    if strategy == "sa":
        return F.cross_entropy(logits, target, reduction="none")
    if strategy == "abn":
        true_logit = logits.gather(1, y[:, None]).squeeze(1)
        others = logits.scatter(1, y[:, None], float("-inf"))
        nth = others.topk(top_n, dim=1).values[:, -1]
        return true_logit - nth
    raise AttackError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")


def check_strategy(strategy: str, top_n: int, num_classes: int | None, target) -> None:
    if strategy not in STRATEGIES:
        raise AttackError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if strategy == "sa" and target is None:
        raise AttackError("the SA strategy needs a target class (target=...)")
    if strategy != "sa" and target is not None:
        raise AttackError(f"strategy {strategy!r} takes no target; use strategy='sa' for a targeted attack")
    if strategy == "abn" and num_classes is not None and not 1 <= top_n < num_classes:
        raise AttackError(f"top_n must be between 1 and {num_classes - 1} for {num_classes} classes, got {top_n}")
    if target is not None and num_classes is not None and ((target < 0) | (target >= num_classes)).any():
        raise AttackError(f"target classes must lie in 0..{num_classes - 1}")


def present_performers(x: torch.Tensor) -> torch.Tensor:
    """(N, 1, 1, 1, M) float mask: 1 for performers with any non-zero coordinate, 0 for all-zero padding."""
    return (x.abs().amax(dim=(1, 2, 3), keepdim=True) > 0).to(x.dtype)


def per_frame_normalise(g: torch.Tensor) -> torch.Tensor:
    """Scale each performer's frame of ``g`` (N, C, T, V, M) to unit L2 norm over (C, V) (zeros stay zero)."""
    norm = g.square().sum(dim=(1, 3), keepdim=True).sqrt()
    return g / (norm + 1e-18)


class Budget:
    """Optional per-joint and per-frame L2 displacement caps (metres), applied by projection."""

    def __init__(self, joint_budget=None, frame_budget=None) -> None:
        self.joint = joint_budget
        self.frame = frame_budget

    def __bool__(self) -> bool:
        return self.joint is not None or self.frame is not None

    def as_dict(self) -> dict:
        def plain(b):
            return b.tolist() if isinstance(b, torch.Tensor) else b

        return {"joint_budget": plain(self.joint), "frame_budget": plain(self.frame)}

    def project(self, delta: torch.Tensor) -> torch.Tensor:
        if self.joint is not None:
            eps = torch.as_tensor(self.joint, dtype=delta.dtype, device=delta.device)
            eps = eps.reshape(1, 1, 1, -1, 1) if eps.ndim else eps
            norm = delta.norm(dim=1, keepdim=True)
            delta = delta * torch.clamp(eps / (norm + 1e-12), max=1.0)
        if self.frame is not None:
            eps = torch.as_tensor(self.frame, dtype=delta.dtype, device=delta.device)
            eps = eps.reshape(1, 1, -1, 1, 1) if eps.ndim else eps
            norm = delta.square().sum(dim=(1, 3), keepdim=True).sqrt()
            delta = delta * torch.clamp(eps / (norm + 1e-12), max=1.0)
        return delta
