"""Size limits checked before a reader allocates what a file declares.

A file can declare far more data than it holds: an 8 KB HDF5 file may declare a 50-million-frame clip (its
chunks were never written), an NTU text file may name a new body in every frame (each body is filled to the
whole clip's length). Readers call :func:`check_size` with the bytes they are about to allocate, and the
bytes the file really stores, before allocating.

Two rules:

* no single array above ``SKELVIZ_MAX_ARRAY_MB`` megabytes (default 4096);
* above 64 MB, no array more than 200 times larger than the bytes that back it in the file (real motion
  compresses 2–10 times). Setting ``SKELVIZ_MAX_ARRAY_MB`` explicitly lifts this rule: it is the override for
  genuinely huge or highly compressible data.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.errors import DataFormatError

__all__ = ["ENV_VAR", "check_size", "max_array_bytes"]

ENV_VAR = "SKELVIZ_MAX_ARRAY_MB"
DEFAULT_MAX_MB = 4096
#: declared bytes per stored byte above which a large array is refused (without an explicit override)
MAX_EXPANSION = 200
#: arrays up to this size are never refused for their expansion
SMALL_BYTES = 64 << 20


def _override() -> int | None:
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return None
    try:
        mb = float(raw)
    except ValueError:
        raise DataFormatError(None, f"{ENV_VAR}={raw!r} is not a number of megabytes") from None
    if not mb > 0:
        raise DataFormatError(None, f"{ENV_VAR}={raw!r} must be a positive number of megabytes")
    return int(mb * (1 << 20))


def max_array_bytes() -> int:
    """The largest array a reader allocates, in bytes (``SKELVIZ_MAX_ARRAY_MB``, default 4096 MB)."""
    override = _override()
    return override if override is not None else DEFAULT_MAX_MB << 20


def _mb(n: float) -> str:
    return f"{n / (1 << 20):,.0f} MB" if n >= 1 << 20 else f"{n / 1024:,.1f} KB"


def check_size(path: str | Path | None, what: str, nbytes: int, stored_bytes: int | None = None) -> None:
    """Raise :class:`DataFormatError` when allocating ``nbytes`` for ``what`` of ``path`` breaks a limit.

    ``stored_bytes``: what the file really holds for it (HDF5 storage size, file size of a text file); ``None``
    skips the expansion rule.
    """
    limit = max_array_bytes()
    hint = f"set {ENV_VAR} to a larger number of megabytes if the data is genuinely this large"
    if nbytes > limit:
        raise DataFormatError(path, f"{what} would take {_mb(nbytes)}, more than the {_mb(limit)} limit", hint=hint)
    if stored_bytes is not None and _override() is None and nbytes > SMALL_BYTES \
            and nbytes > MAX_EXPANSION * max(stored_bytes, 1):
        raise DataFormatError(
            path,
            f"{what} declares {_mb(nbytes)} of data but the file holds only {_mb(stored_bytes)} for it",
            hint=f"the file is corrupt or crafted; {hint}",
        )
