"""Label-only access to a classifier: what a decision-based (black-box) attacker is allowed to see.

A :class:`LabelOracle` wraps any classifier taking ``(N, 3, T, V, M)`` clips and answers a batch of queries
with the predicted labels only (the argmax of the model's output), under ``torch.no_grad``. It counts every
clip it is asked about against the attacked sample that asked (``owners``), so a batched attack can query many
samples' candidates in one forward pass and still report each sample's query count honestly.

While the oracle runs the model, :func:`in_oracle_call` is true. A model can check it to refuse any other
access (the BASAR tests do, to prove that the attack never reads logits or gradients).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import torch
from torch import nn

from engine.errors import AttackError, ParameterError

__all__ = ["LabelOracle", "in_oracle_call"]

_IN_ORACLE = contextvars.ContextVar("skelviz_in_oracle_call", default=False)


def in_oracle_call() -> bool:
    """True while a :class:`LabelOracle` is evaluating its model."""
    return _IN_ORACLE.get()


@contextlib.contextmanager
def _oracle_call() -> Iterator[None]:
    token = _IN_ORACLE.set(True)
    try:
        yield
    finally:
        _IN_ORACLE.reset(token)


def check_cpu_owners(owners: torch.Tensor, n: int) -> None:
    """Raise :class:`AttackError` unless every owner (a CPU tensor) lies in ``0..n-1``. Only ever called on CPU
    tensors, so its reads never wait for a device (``bench/host_syncs.py`` exempts it by name)."""
    if int(owners.min()) < 0 or int(owners.max()) >= n:
        raise AttackError(f"query owners must lie in 0..{n - 1}")


class LabelOracle:
    """Predicted labels of a classifier, with a per-sample query count.

    ``num_samples``: how many attacked samples the queries are attributed to (``owners`` index them).
    ``batch_size``: the largest number of clips sent to the model at once (bigger requests are split).
    """

    def __init__(self, model: nn.Module, num_samples: int = 0, *, batch_size: int = 256,
                 device: torch.device | str | None = None) -> None:
        if batch_size < 1:
            raise ParameterError(f"batch_size must be positive, got {batch_size}")
        self.model = model
        self.batch_size = int(batch_size)
        self.reset(num_samples, device)

    def reset(self, num_samples: int, device: torch.device | str | None = None) -> None:
        """Start counting afresh for ``num_samples`` attacked samples; the counts live on ``device`` (default
        the CPU; an attack keeps them on the model's device so that charging a query never waits for the host)."""
        self._counts = torch.zeros(int(num_samples), dtype=torch.long, device=device)

    @property
    def counts(self) -> torch.Tensor:
        """Queries charged to each attacked sample so far, ``(num_samples,)`` on the CPU."""
        return self._counts.cpu()

    @property
    def device_counts(self) -> torch.Tensor:
        """The same counts where they are kept (no copy; do not modify)."""
        return self._counts

    @property
    def total(self) -> int:
        """All queries answered since the last :meth:`reset`."""
        return int(self._counts.sum())

    def __call__(self, clips: torch.Tensor, owners: torch.Tensor) -> torch.Tensor:
        """Labels ``(K,)`` of ``clips`` ``(K, 3, T, V, M)``; query ``k`` is charged to sample ``owners[k]``.

        All ``K`` clips go to the model together (in chunks of ``batch_size``). Owners given on the CPU are
        range-checked here; owners already on an accelerator (an attack's own bookkeeping) are not, since that
        check would wait for the device on every call.
        """
        owners = torch.as_tensor(owners, dtype=torch.long).reshape(-1)
        if owners.numel() != clips.shape[0]:
            raise AttackError(f"{clips.shape[0]} queries but {owners.numel()} owners")
        if owners.numel() == 0:
            return torch.zeros(0, dtype=torch.long, device=clips.device)
        if owners.device.type == "cpu":
            check_cpu_owners(owners, self._counts.numel())
        with torch.no_grad(), _oracle_call():
            if clips.shape[0] <= self.batch_size:
                labels = self.model(clips).argmax(dim=-1)
            else:
                labels = torch.cat([self.model(chunk).argmax(dim=-1) for chunk in clips.split(self.batch_size)])
        owners = owners.to(self._counts.device)
        self._counts.index_add_(0, owners, torch.ones_like(owners))
        return labels.to(clips.device)
