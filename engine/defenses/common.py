"""What every defence shares: the registry, the :class:`Defence` base class and the conversion of training data.

A defence is built with the classifier to harden and its hyper-parameters, then fitted on labelled data; ``fit``
returns the defended classifier (a :class:`~engine.models.base.Classifier` or a subclass: same ``skeleton``,
``class_names``, ``preprocessing``, ``forward(x)`` on clips in metres → class scores, ``features``,
``forward_passes_per_prediction``)::

    defence = engine.defenses.build("beat", classifier, preset="published", seed=0, progress=cb)
    defended = defence.fit(train_windows)     # WindowSet, ClipDataset or (x, y) arrays
    save_classifier(defended, "beat.pt")      # loads back with load_classifier, like any checkpoint

Hyper-parameters are one frozen dataclass per defence (``Defence.Params``, :mod:`engine.params`); the defended
model's ``meta["defence"]`` records the method, ``asdict(params)`` and the training time. The device is the
classifier's (move it first), unless ``device=`` is given.
Defences never change the classifier they are given: they work on a copy (BEAT keeps the base network's
weights, frozen, inside the defended model).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
import torch

from engine.devices import model_device
from engine.errors import CancelledError, DefenceError
from engine.modes import eval_mode
from engine.params import make_params, param, to_dict
from engine.plain import to_plain
from engine.progress import CancelFn, ProgressFn
from engine.registry import Registry

#: Minibatches between two reads of the training loss for the progress line (a read waits for the device).
LOSS_READ_EVERY = 10

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DefenceParams:
    """What every defence has: the seed of its randomness."""

    seed: int = param(0, "seed of the initialisation, noise and minibatch order")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"`` → CUDA when available, else the CPU; ``"cuda"`` without a GPU is a clear error."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DefenceError("CUDA was requested but no GPU is available; use device 'cpu' or 'auto'")
    return dev


def windows_for(dataset, classifier):
    """Cut a :class:`~engine.data.ClipDataset` into windows as ``classifier`` takes them (its
    :class:`~engine.preprocessing.Preprocessing`: fps, window, stride, bodies; world coordinates)."""
    from engine.models.checkpoint import check_compatible

    check_compatible(classifier, skeleton=dataset.skeleton, class_names=dataset.class_names)
    return classifier.preprocessing.window_set(dataset)


def training_windows(data: Any, classifier) -> tuple[torch.Tensor, torch.Tensor]:
    """Labelled training windows ``(x (N, 3, T, V, M) metres, y (N,))`` for ``classifier`` from ``data``.

    ``data`` is a :class:`~engine.data.WindowSet`, a :class:`~engine.data.ClipDataset` (cut into windows with the
    classifier's preprocessing) or a pair ``(x, y)`` of arrays.
    Unlabelled windows are dropped; skeleton and class set must match the classifier.
    """
    from engine.data import ClipDataset, WindowSet
    from engine.models.checkpoint import check_compatible

    if isinstance(data, ClipDataset):
        data = windows_for(data, classifier)
    if isinstance(data, WindowSet):
        check_compatible(classifier, skeleton=data.skeleton, class_names=data.class_names)
        keep = data.y >= 0
        x, y = data.x[keep], data.y[keep]
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = np.asarray(data[0], np.float32), np.asarray(data[1], np.int64)
    else:
        raise DefenceError(
            f"cannot train a defence on a {type(data).__name__}: pass a WindowSet, a ClipDataset or (x, y) arrays"
        )
    if len(x) == 0:
        raise DefenceError("no labelled training windows: the defence needs labelled clips of the classifier's classes")
    x_t = torch.as_tensor(np.asarray(x, np.float32))
    y_t = torch.as_tensor(np.asarray(y, np.int64))
    if x_t.ndim != 5 or x_t.shape[1] != 3:
        raise DefenceError(f"training windows must be (N, 3, T, V, M), got {tuple(x_t.shape)}")
    if x_t.shape[3] != classifier.skeleton.num_joints:
        raise DefenceError(
            f"windows have {x_t.shape[3]} joints but the classifier's skeleton {classifier.skeleton.name!r} has "
            f"{classifier.skeleton.num_joints}"
        )
    if int(y_t.max()) >= classifier.num_classes or int(y_t.min()) < 0:
        raise DefenceError(f"labels must lie in 0..{classifier.num_classes - 1}")
    return x_t, y_t


def minibatches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Shuffled index batches; a trailing one-sample batch is merged into the previous one (batch norm)."""
    order = torch.randperm(n, generator=generator)
    batches = list(order.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2:] = [torch.cat(batches[-2:])]
    return iter(batches)


def num_batches(n: int, batch_size: int) -> int:
    k = max(1, -(-n // batch_size))
    return k - 1 if k > 1 and n % batch_size == 1 else k


def clean_accuracy(model, x: torch.Tensor, y: torch.Tensor, batch_size: int = 128) -> float:
    """Accuracy of ``model`` (eval mode, restored afterwards) on windows ``x`` with labels ``y``."""
    if len(x) == 0:
        return float("nan")
    correct = 0
    with eval_mode(model), torch.no_grad():
        dev = model_device(model)
        for lo in range(0, len(x), batch_size):
            pred = model(x[lo:lo + batch_size].to(dev)).argmax(1).cpu()
            correct += int((pred == y[lo:lo + batch_size]).sum())
    return correct / len(x)


class Defence:
    """Base class: holds the classifier (copied, never changed in place), the seed, device and callbacks.

    Subclasses implement :meth:`train` (``x``, ``y`` on the CPU → the defended model) and say their cost
    per prediction through the model they return.
    """

    name: str = "defence"
    Params: ClassVar[type] = DefenceParams

    def __init__(
        self,
        classifier,
        params: Any = None,
        *,
        preset: str | None = None,
        device: str | torch.device | None = None,
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
        **overrides: Any,
    ) -> None:
        """``params``: a ``Params`` instance (None: the defaults or ``preset``); ``overrides`` replace single
        fields and are validated. ``device``: where to train (default: the classifier's device)."""
        if not hasattr(classifier, "skeleton") or not hasattr(classifier, "class_names"):
            raise DefenceError("defences harden a skelviz Classifier (load one with load_classifier)")
        if params is not None and preset is not None:
            raise DefenceError("give either params or a preset, not both")
        self.classifier = classifier
        base = to_dict(params) if params is not None else {}
        self.hp = make_params(self.Params, {**base, **overrides}, preset=None if params is not None else preset,
                              where=f"defence {self.name!r}")
        for f in fields(self.hp):
            setattr(self, f.name, getattr(self.hp, f.name))
        if device is None:  # the classifier's own device
            device = model_device(classifier)
        self.device = resolve_device(device)
        self.progress = progress
        self.cancel = cancel
        self.model = None
        self.seconds = 0.0
        self.history: list[dict[str, float]] = []
        self._shown_loss: float | None = None

    @property
    def params(self) -> dict[str, Any]:
        """The hyper-parameters (recorded in the defended model's ``meta``): ``asdict(params)``."""
        return to_dict(self.hp)

    def tick(self, done: int, total: int, info: dict | None = None) -> None:
        if self.cancel is not None and self.cancel():
            raise CancelledError(f"{self.name} cancelled after {done} of {total} steps")
        if self.progress is not None:
            self.progress(done, total, info or {})

    def tick_loss(self, done: int, total: int, epoch: int, loss: torch.Tensor) -> None:
        """:meth:`tick` after a minibatch, with ``epoch`` and the loss for a progress line. The loss is read from
        the device only when a progress callback is attached, every :data:`LOSS_READ_EVERY` minibatches and at
        the last one (in between the line shows the latest read; none before the first)."""
        info: dict[str, Any] = {"epoch": epoch}
        if self.progress is not None and (done % LOSS_READ_EVERY == 0 or done == total):
            self._shown_loss = float(loss.detach())
        if self._shown_loss is not None:
            info["loss"] = self._shown_loss
        self.tick(done, total, info)

    def base_copy(self):
        """A deep copy of the classifier on the defence's device (the caller's model stays untouched)."""
        return copy.deepcopy(self.classifier).to(self.device)

    def fit(self, data: Any):
        """Train the defence on labelled ``data`` (see :func:`training_windows`); returns the defended model."""
        x, y = training_windows(data, self.classifier)
        torch.manual_seed(self.seed)
        t0 = time.perf_counter()
        model = self.train(x, y)
        self.seconds = time.perf_counter() - t0
        model = model.cpu().eval()
        model.meta = to_plain(dict(getattr(model, "meta", {}) or {}), tensors="keep", unknown=lambda v: v)
        model.meta["defence"] = {
            "method": self.name,
            "params": {k: v for k, v in self.params.items()},
            "seed": self.seed,
            "train_seconds": round(self.seconds, 3),
            "train_windows": int(len(x)),
            "device": str(self.device),
            "base_arch": getattr(self.classifier, "arch", None),
        }
        log.info("%s trained in %.1f s on %d windows", self.name, self.seconds, len(x))
        self.model = model
        return model

    def train(self, x: torch.Tensor, y: torch.Tensor):
        raise NotImplementedError


DEFENCES: Registry[type[Defence]] = Registry("defence", DefenceError)


def register_defence(name: str) -> Callable[[type[Defence]], type[Defence]]:
    return DEFENCES.register(name)


def get_defence(name: str) -> type[Defence]:
    import engine.defenses  # noqa: F401  (registers the built-in defences)

    return DEFENCES.lookup(name)


def build(name: str, classifier, *, preset: str | None = None, device: str | torch.device | None = None,
          progress: ProgressFn | None = None, cancel: CancelFn | None = None, **overrides: Any) -> Defence:
    """The one way to build a defence: by registered name, from its defaults or a named ``preset``, with
    ``overrides`` (validated: :class:`~engine.errors.ParameterError` names a bad parameter)."""
    return get_defence(name)(classifier, preset=preset, device=device, progress=progress, cancel=cancel,
                             **overrides)
