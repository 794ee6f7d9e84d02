"""Reading the text motion formats (ASF/AMC, BVH): one place decides how their bytes become lines."""

from __future__ import annotations

from pathlib import Path

from engine.errors import DataFormatError

__all__ = ["read_text_lines"]


def read_text_lines(path: Path) -> list[str]:
    """The file's lines, decoded as Latin-1 (files from Windows tools carry Latin-1 comments, e.g. HDM05's
    "f\\xfcr Bonn"; every byte decodes, so no file fails on its encoding). A binary file is refused."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataFormatError(path, f"cannot read the file: {exc.strerror or exc}") from None
    if b"\x00" in raw[:4096]:
        raise DataFormatError(path, "not a text file (it contains NUL bytes)")
    return raw.decode("latin-1").splitlines()
