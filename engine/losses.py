"""Shared, batched torch building blocks for perceptual losses on skeletal motion.

Every attack and defence that measures how far a motion moved (SMART, BASAR, CIASA, BEAT's skeleton distance)
uses these functions; nothing else in skelviz re-implements them.

Shapes follow the classifiers: ``(N, C=3, T, V, M)`` tensors of joint positions in metres (``C`` the x/y/z
coordinates, ``T`` frames, ``V`` joints, ``M`` performers). Derivatives are finite differences along ``T``
using the clip's real frame interval ``dt = 1 / fps`` seconds, so velocities are in m/s, accelerations in
m/s², and so on.

Reductions (documented once here, used by every loss below): the squared Euclidean norm is taken over the
coordinate axis ``C``; the result is averaged over every remaining axis but the batch (frames, joints,
performers) giving one value per sample, shape ``(N,)``; ``reduction="mean"`` (the default) then averages
over the batch, ``"sum"`` sums over it and ``"none"`` returns the ``(N,)`` values. Per-sample values are what
batched attacks need: every sample stops on its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from engine.skeletons import Skeleton

__all__ = [
    "temporal_derivative",
    "dynamics_loss",
    "bone_lengths",
    "bone_length_loss",
    "reduce",
]

_TIME_DIM = 2
_COORD_DIM = 1


def reduce(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    """Apply ``reduction`` (``"mean"``, ``"sum"`` or ``"none"``) to per-sample values ``(N,)``."""
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    if reduction == "none":
        return per_sample
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def temporal_derivative(x: torch.Tensor, order: int, dt: float, dim: int = _TIME_DIM) -> torch.Tensor:
    """The ``order``-th temporal derivative of ``x`` by backward finite differences along ``dim``.

    ``x`` is ``(N, C, T, V, M)`` (time on ``dim=2``; pass ``dim`` for other layouts, e.g. ``-3`` for
    ``(..., T, V, 3)``). ``order=0`` returns ``x``; order ``n`` returns ``T − n`` frames:
    ``Dⁿx = Δⁿx / dtⁿ`` (velocity in m/s for n=1, acceleration in m/s² for n=2, jerk for n=3).
    Raises ``ValueError`` when the clip has too few frames for the order.
    """
    if order < 0:
        raise ValueError(f"derivative order must be >= 0, got {order}")
    if dt <= 0:
        raise ValueError(f"frame interval dt must be positive (dt = 1 / fps), got {dt}")
    if order == 0:
        return x
    if x.shape[dim] <= order:
        raise ValueError(f"a derivative of order {order} needs more than {order} frames; the clip has {x.shape[dim]}")
    d = x
    for _ in range(order):
        d = d.diff(dim=dim)
    return d / (dt**order)


def _per_sample_sq(diff: torch.Tensor, joint_weights: torch.Tensor | None) -> torch.Tensor:
    """Squared norm over C, optional per-joint weights, mean over (T, V, M): (N, C, T, V, M) → (N,)."""
    sq = diff.square().sum(dim=_COORD_DIM)  # (N, T, V, M)
    if joint_weights is not None:
        sq = sq * joint_weights.reshape(1, 1, -1, 1)
    return sq.flatten(1).mean(dim=1)


def _joint_weights(joint_weights, x: torch.Tensor) -> torch.Tensor | None:
    if joint_weights is None:
        return None
    w = torch.as_tensor(joint_weights, dtype=x.dtype, device=x.device).reshape(-1)
    if w.numel() != x.shape[3]:
        raise ValueError(f"{w.numel()} joint weights for {x.shape[3]} joints")
    return w


def dynamics_loss(
    x: torch.Tensor,
    x_adv: torch.Tensor,
    betas: Sequence[float] | torch.Tensor,
    dt: float,
    joint_weights: Sequence[float] | torch.Tensor | None = None,
    *,
    reduction: str = "mean",
    clean_derivatives: Sequence[torch.Tensor | None] | None = None,
) -> torch.Tensor:
    """SMART's dynamics term ``l_dyn = Σ_n β_n ‖Dⁿx − Dⁿx̂‖²`` over derivative orders ``n = 0..len(betas)-1``.

    ``x``/``x_adv`` are ``(N, C, T, V, M)`` in metres; ``betas[n]`` weighs the ``n``-th derivative
    (position, velocity, acceleration, ...); orders with ``β_n = 0`` are skipped. For each order the squared
    Euclidean norm over coordinates is averaged over frames, joints and performers (see the module docstring
    for the reduction); ``joint_weights`` ``(V,)`` multiply each joint's term before that mean (so weights
    that average 1 keep the scale).

    Because differencing is linear, ``Dⁿx − Dⁿx̂ = Dⁿ(x − x̂)``: only the difference is differenced, so no
    clean-clip derivative is recomputed per call. ``clean_derivatives`` is accepted for callers that
    cache ``Dⁿx`` anyway (``None`` entries are ignored) but is never required.
    """
    beta = [float(b) for b in (betas.tolist() if isinstance(betas, torch.Tensor) else betas)]
    if not beta:
        raise ValueError("betas must name at least one derivative order")
    if x.shape != x_adv.shape:
        raise ValueError(f"clean {tuple(x.shape)} and adversarial {tuple(x_adv.shape)} clips differ in shape")
    w = _joint_weights(joint_weights, x)
    delta = x_adv - x
    total = x_adv.new_zeros(x_adv.shape[0])
    d = delta
    for n, b in enumerate(beta):
        if n > 0:
            if d.shape[_TIME_DIM] <= 1:
                raise ValueError(f"a derivative of order {n} needs more than {n} frames")
            d = d.diff(dim=_TIME_DIM)
        if b == 0.0:
            continue
        total = total + b * _per_sample_sq(d / (dt**n), w)
    return reduce(total, reduction)


def bone_lengths(x: torch.Tensor, skeleton: Skeleton) -> torch.Tensor:
    """Length of every bone in every frame: ``(N, C, T, V, M)`` → ``(N, T, B, M)`` in metres.

    Bones come from ``skeleton.bone_parents`` / ``skeleton.bone_children`` (one per non-root joint).
    """
    if x.shape[3] != skeleton.num_joints:
        raise ValueError(f"clips have {x.shape[3]} joints but skeleton {skeleton.name!r} has {skeleton.num_joints}")
    parents = torch.as_tensor(skeleton.bone_parents, device=x.device)
    children = torch.as_tensor(skeleton.bone_children, device=x.device)
    vec = x.index_select(3, children) - x.index_select(3, parents)  # (N, C, T, B, M)
    # sqrt(sum sq + tiny) keeps the gradient finite for zero-length bones (hdm05_25 hip joints in some data).
    return (vec.square().sum(dim=_COORD_DIM) + 1e-12).sqrt()


def bone_length_loss(
    x: torch.Tensor,
    x_adv: torch.Tensor,
    skeleton: Skeleton,
    *,
    reduction: str = "mean",
    clean_lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """SMART's ``l_bl``: mean squared change (m²) of every bone's length in every frame.

    The mean runs over frames, bones and performers (one value per sample; see the module docstring for
    ``reduction``). Pass ``clean_lengths = bone_lengths(x, skeleton)`` to avoid recomputing the clean clip's
    lengths on every call of an iterative attack (``x`` is then not read).
    """
    ref = bone_lengths(x, skeleton) if clean_lengths is None else clean_lengths
    per = (bone_lengths(x_adv, skeleton) - ref).square().flatten(1).mean(dim=1)
    return reduce(per, reduction)
