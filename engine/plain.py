"""Plain data for files: the one conversion of parameters, metadata and provenance to lists, numbers and text.

Checkpoints (read back with ``torch.load(weights_only=True)``), ``results.json``/``job.json`` and HDF5 attributes
can only hold plain values: tuples and numpy arrays become lists, numpy scalars and subclasses of the builtins
(torch's ``TorchVersion``, ``IntEnum`` …) plain numbers and text, paths text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch


def to_plain(value: Any, *, tensors: str = "list", unknown: Callable[[Any], Any] = repr) -> Any:
    """``value`` as plain data. ``tensors``: ``"list"`` (JSON) or ``"keep"`` (checkpoints store tensors);
    ``unknown(value)`` handles anything else (default: its ``repr``; raise to refuse it)."""
    if isinstance(value, Mapping):
        return {str(k): to_plain(v, tensors=tensors, unknown=unknown) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v, tensors=tensors, unknown=unknown) for v in value]
    if isinstance(value, torch.Tensor):
        return value if tensors == "keep" else value.tolist()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if value is None:
        return None
    for kind in (bool, int, float, str):  # subclasses (TorchVersion, IntEnum …) are not loadable: the base type
        if isinstance(value, kind):
            return kind(value)
    return unknown(value)
