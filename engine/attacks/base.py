"""The call protocol shared by every attack (after torchattacks, without its image assumptions).

An attack is built by name with its model and hyper-parameter overrides, then called on a batch::

    attack = engine.attacks.build("smart", model, iterations=300)      # or preset="published"
    result = attack(x, y)                 # untargeted
    result = attack(x, y, target=t)       # targeted strategies

Its hyper-parameters are one frozen dataclass (``Attack.Params``, see :mod:`engine.params`): forms, CLI
options, protocols and provenance (``attack.params``) all derive from it. Skeleton, frame rate and device
come from the model. Inputs that are not hyper-parameters (BASAR's joint limits and starting clips, CIASA's
discriminator data) are keyword arguments of the class, listed in ``Attack.resources``.

``x`` is a float tensor (N, C=3, T, V, M) of joint positions in metres, as the classifiers take it; ``y``
the true labels (N,). The attack

* restores the model's train/eval mode when it returns, and never fills parameter ``.grad``
  (gradients are taken with ``torch.autograd.grad`` on the input only);
* runs on whatever device the model is on (inputs are moved there);
* is batched: every sample has its own state and stops on its own;
* does not clamp to [0, 1]: coordinates are metres, budgets are per joint or per frame;
* reports progress through ``progress(done, total, info)`` and checks ``cancel()`` once per iteration,
  raising :class:`~engine.errors.CancelledError` when it returns True. ``info`` is built only when a progress
  callback is attached, and its numbers are 0-dim tensors on the model's device: only a callback that reads them
  waits for the device (an attack never copies to the host per iteration on its own).

It returns an :class:`AttackResult`. Attacks are registered by name in :data:`ATTACKS` with
:func:`register_attack`; look them up with :func:`get_attack` (no eval, no dotted-string imports).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from engine.devices import model_device
from engine.errors import AttackError, CancelledError
from engine.modes import eval_mode
from engine.params import make_params, param, to_dict
from engine.progress import CancelFn, ProgressFn
from engine.registry import Registry


@dataclass(frozen=True)
class AttackParams:
    """Hyper-parameters every attack has: none (subclasses add theirs)."""


@dataclass(frozen=True)
class StrategyParams(AttackParams):
    """The strategies of the SMART paper, shared by the white-box attacks (:mod:`engine.attacks.common`)."""

    strategy: Literal["ab", "abn", "sa"] = param("ab", "ab: any wrong class; abn: true class out of the top N; "
                                                   "sa: a specified target class")
    top_n: int = param(3, "N of the ABN strategy", min=1)


@dataclass
class AttackResult:
    """What an attack returns.

    ``adversarial``: (N, C, T, V, M) tensor on the CPU. ``success``: (N,) bool. ``iterations``: (N,) int,
    the iteration at which each sample first succeeded (or the total when it never did). ``queries``: (N,) int
    model queries (black-box attacks; for white-box attacks the forward passes). ``history``: per-iteration
    lists keyed by term (``"Lc"``, ``"Lp"``, ``"l_dyn"``, ``"l_bl"``, ``"pred"`` ...), each entry a list of
    N floats/ints. ``predictions``: (N,) final predicted class. ``params``: the hyper-parameters used.
    """

    adversarial: torch.Tensor
    success: torch.Tensor
    iterations: torch.Tensor
    predictions: torch.Tensor
    queries: torch.Tensor | None = None
    history: dict[str, list] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def success_rate(self) -> float:
        return float(self.success.float().mean()) if self.success.numel() else 0.0


class Attack:
    """Base class: holds the model, moves data to its device, keeps its mode, runs callbacks."""

    name: str = "attack"
    threat_model: str = "white-box"
    progress_unit: str = "iterations"  # what the progress callback's (done, total) count; the budget's parameter
    Params: ClassVar[type] = AttackParams
    #: keyword inputs of the class that are not hyper-parameters (tensors, limit records ...)
    resources: ClassVar[tuple[str, ...]] = ()
    #: True leaves the result's tensors on the model's device instead of the CPU (callers that feed them straight
    #: back to the model, e.g. adversarial training); honoured by the attacks built on ``IterativeState``
    keep_on_device: bool = False

    def __init__(
        self,
        model: nn.Module,
        params: Any = None,
        *,
        preset: str | None = None,
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
        **overrides: Any,
    ) -> None:
        """``params``: a ``Params`` instance (or None for the defaults / ``preset``); ``overrides`` replace single
        fields and are validated (:func:`engine.params.make_params`)."""
        self.model = model
        self.progress = progress
        self.cancel = cancel
        base = to_dict(params) if params is not None else {}
        if params is not None and preset is not None:
            raise AttackError("give either params or a preset, not both")
        self.hp = make_params(self.Params, {**base, **overrides}, preset=None if params is not None else preset,
                              where=f"attack {self.name!r}")
        for f in fields(self.hp):  # attacks read their settings as attributes
            setattr(self, f.name, getattr(self.hp, f.name))

    @property
    def params(self) -> dict[str, Any]:
        """Provenance: the method name and ``asdict(params)``."""
        return {"method": self.name, **to_dict(self.hp)}

    @property
    def check_every(self) -> int:
        """Iterations between reads of an iterative attack's stop condition (:data:`engine.attacks.common.CHECK_EVERY`;
        every iteration while a progress callback is attached: it reads the iteration's values anyway, and a live
        view should end with the attack, not a few frozen iterations later)."""
        from engine.attacks.common import CHECK_EVERY

        return 1 if self.progress is not None else CHECK_EVERY

    @property
    def device(self) -> torch.device:
        return model_device(self.model)

    def _tick(self, done: int, total: int, info: dict | Callable[[], dict] | None = None) -> None:
        """Poll ``cancel`` and report progress; ``info`` may be a function building the dict, called only when a
        progress callback is attached."""
        if self.cancel is not None and self.cancel():
            raise CancelledError(f"{self.name} cancelled after {done} of {total} {self.progress_unit}")
        if self.progress is not None:
            self.progress(done, total, (info() if callable(info) else info) or {})

    def __call__(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None) -> AttackResult:
        if x.ndim != 5 or x.shape[1] != 3:
            raise AttackError(f"attacks take (N, 3, T, V, M) clips, got shape {tuple(x.shape)}")
        y = torch.as_tensor(y, dtype=torch.long).reshape(-1)
        if y.shape[0] != x.shape[0]:
            raise AttackError(f"{x.shape[0]} clips but {y.shape[0]} labels")
        if target is not None:
            target = torch.as_tensor(target, dtype=torch.long).reshape(-1)
            if target.numel() == 1 and y.numel() > 1:
                target = target.expand_as(y).clone()
            if (target == y).any():
                bad = int(torch.nonzero(target == y)[0])
                raise AttackError(
                    f"sample {bad}: the target class {int(target[bad])} equals its true class; "
                    "choose a different target"
                )
        device = self.device
        with eval_mode(self.model, freeze=True):
            result = self.run(
                x.detach().to(device, torch.float32),
                y.to(device),
                None if target is None else target.to(device),
            )
        return result

    def run(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> AttackResult:
        raise NotImplementedError


ATTACKS: Registry[type[Attack]] = Registry("attack", AttackError)


def register_attack(name: str) -> Callable[[type[Attack]], type[Attack]]:
    return ATTACKS.register(name)


def get_attack(name: str) -> type[Attack]:
    import engine.attacks  # noqa: F401  (registers the built-in attacks)

    return ATTACKS.lookup(name)


def build(name: str, model: nn.Module, *, preset: str | None = None, progress: ProgressFn | None = None,
          cancel: CancelFn | None = None, **overrides: Any) -> Attack:
    """The one way to build an attack: by registered name, on ``model``, from its defaults or a named
    ``preset`` with ``overrides``. Unknown or ill-typed parameters raise
    :class:`~engine.errors.ParameterError` naming the parameter and what it accepts."""
    return get_attack(name)(model, preset=preset, progress=progress, cancel=cancel, **overrides)
