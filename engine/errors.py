"""The exceptions the engine raises for bad input.

Every error a user can cause is one of these, with a message that says what was wrong (naming the file,
line or frame where possible) and what to do about it. The app and the CLI catch :class:`SkelvizError`
and show the message; anything else is a bug.
"""

from __future__ import annotations

from pathlib import Path


class SkelvizError(Exception):
    """Base class of every user-facing error in skelviz."""


class UnknownSkeletonError(SkelvizError, KeyError):
    """A skeleton name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SkeletonMismatchError(SkelvizError, ValueError):
    """Data or a model made for one skeleton was used with another (joint count or layout differ)."""


class MappingError(SkelvizError, ValueError):
    """No joint correspondence is defined between two skeleton layouts."""


class DataFormatError(SkelvizError, ValueError):
    """A motion file is malformed: truncated, non-numeric, NaN/Inf, empty, or inconsistent.

    ``path``, ``line`` and ``frame`` locate the problem when known; they are part of the message.
    """

    def __init__(
        self,
        path: str | Path | None,
        problem: str,
        *,
        line: int | None = None,
        frame: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = None if path is None else Path(path)
        self.problem = problem
        self.line = line
        self.frame = frame
        self.hint = hint
        where = []
        if self.path is not None:
            where.append(str(self.path))
        if line is not None:
            where.append(f"line {line}")
        if frame is not None:
            where.append(f"frame {frame}")
        msg = (", ".join(where) + ": " if where else "") + problem
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


class UnsupportedFormatError(SkelvizError, ValueError):
    """A file whose format skelviz cannot detect or read."""


class MissingCompanionFileError(DataFormatError):
    """A file that needs another one to be read (an AMC motion without its ASF skeleton)."""


class CheckpointError(SkelvizError, ValueError):
    """A checkpoint that cannot be loaded, or does not fit the data or skeleton it is used with."""


class ParameterError(SkelvizError, ValueError):
    """An option out of range (window, stride, fps, split fraction, model width...): the message names it."""


class AttackError(SkelvizError, ValueError):
    """An attack asked for something impossible (a target equal to the true class, an unknown class...)."""


class DefenceError(SkelvizError, ValueError):
    """A defence that cannot be applied to the given model or data."""


class StudyError(SkelvizError, ValueError):
    """A study protocol, stimulus file or session file that is invalid or inconsistent."""


class CancelledError(SkelvizError):
    """Long work stopped because the user cancelled it."""
