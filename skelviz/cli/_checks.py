"""Checks every command's options and outputs before it runs (issue 17: never crash, never lie, never destroy).

* :func:`check_options`: numbers in range (by option name, for every command), BVH units, devices, and
  every checkpoint given is loadable and gives finite predictions (:func:`engine.validation.check_checkpoint`).
* :func:`check_outputs`: an output file or the files an output folder would receive are never replaced
  silently. Without ``--force`` an existing one is refused; with ``--force`` it is first copied to
  ``NAME.bak`` (``NAME.bak2``, ... when that exists too). An output file path that is a folder, or an output
  folder path that is a file, is refused.

Both raise :class:`~engine.errors.SkelvizError` subclasses, which the CLI prints as one ``error:`` line.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from engine.errors import ParameterError

log = logging.getLogger("skelviz")

# -- options ------------------------------------------------------------------------------------------------
_POSITIVE_INT = ("epochs", "batch_size", "top_n", "iters", "limit", "window", "stride", "queries", "iterations",
                 "eot_samples", "samples", "clips")
_NON_NEGATIVE_INT = ("projection_interval",)
_POSITIVE_FLOAT = ("lr", "fps", "eps", "sigma", "budget")
_NON_NEGATIVE_FLOAT = ("weight_decay", "accel_weight")
_OPEN_FRACTION = ("test_fraction",)
_CLOSED_FRACTION = ("catch_threshold",)
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
#: (command, option dest) → checkpoint path(s) the command loads
_CHECKPOINTS = {
    "eval": ("model",), "attack": ("model",), "defend": ("model",), "transfer": ("surrogate", "victims"),
    "robustness": ("models",), "study prepare": ("model",),
}


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def command_name(args: argparse.Namespace) -> str:
    """``train``, ``study prepare``, ... (``analyse`` spelled ``analyze``)."""
    verb = getattr(args, "verb", None)
    name = args.command
    if verb:
        name += " " + ("analyze" if verb == "analyse" else verb)
    return name


def _check_number(dest: str, value, command: str = "") -> None:
    flag = _flag(dest)
    if isinstance(value, float) and not math.isfinite(value):
        raise ParameterError(f"{flag} must be a finite number, got {value}")
    if dest == "epochs" and command == "defend":  # BEAT's burn-in epochs may be 0
        if value < 0:
            raise ParameterError(f"{flag} must be 0 or more, got {value}")
    elif dest in _POSITIVE_INT and value < 1:
        raise ParameterError(f"{flag} must be at least 1, got {value}")
    if dest in _NON_NEGATIVE_INT and value < 0:
        raise ParameterError(f"{flag} must be 0 or more, got {value}")
    if dest in _POSITIVE_FLOAT and not value > 0:
        raise ParameterError(f"{flag} must be a positive number, got {value}")
    if dest in _NON_NEGATIVE_FLOAT and not value >= 0:
        raise ParameterError(f"{flag} must be 0 or more, got {value}")
    if dest in _OPEN_FRACTION and not 0 < value < 1:
        raise ParameterError(f"{flag} must be a fraction between 0 and 1 (exclusive), got {value}")
    if dest in _CLOSED_FRACTION and not 0 <= value <= 1:
        raise ParameterError(f"{flag} must be a proportion between 0 and 1, got {value}")
    if dest == "seed" and not 0 <= value < 2**32:
        raise ParameterError(f"--seed must be between 0 and 2**32 - 1, got {value}")


def check_options(args: argparse.Namespace) -> None:
    """Raise a :class:`SkelvizError` naming the first option out of range (see the module docstring)."""
    for dest, value in vars(args).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        _check_number(dest, value, command_name(args))
    if getattr(args, "window", None) and getattr(args, "stride", None) and args.stride > args.window * 100:
        raise ParameterError(f"--stride {args.stride} is far longer than --window {args.window}")
    units = getattr(args, "units", None)
    if units is not None:
        from engine.io.bvh import resolve_units

        resolve_units(units)
    skeleton = getattr(args, "skeleton", None)
    if isinstance(skeleton, str):
        from engine import skeletons

        skeletons.get(skeleton)  # UnknownSkeletonError listing the registered names
    device = getattr(args, "device", None)
    if isinstance(device, str) and not _DEVICE.match(device):
        raise ParameterError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
    _check_arch_args(args)


def _check_arch_args(args: argparse.Namespace) -> None:
    if args.command != "train" or not getattr(args, "arch_arg", None):
        return
    import inspect

    from engine.models.base import preset_kwargs
    from skelviz.cli.train import parse_arch_args

    items = []
    for item in args.arch_arg:
        key, sep, _ = item.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"--arch-arg expects KEY=VALUE, got {item!r}")
        items.append(item)
    given = parse_arch_args(items)
    from engine.models.base import MODELS

    preset_kwargs(args.model, getattr(args, "width", "small"))  # an unknown architecture is a CheckpointError
    params = inspect.signature(MODELS.lookup(args.model)).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(given) - set(params))
    if unknown:
        known = sorted(k for k in params if k not in ("skeleton", "num_classes", "self"))
        raise ParameterError(f"--arch-arg {', '.join(unknown)}: {args.model} takes no such argument; "
                             f"its arguments are {', '.join(known)}")


def check_checkpoints(args: argparse.Namespace) -> None:
    """Load every checkpoint the command names and refuse an unusable one (before any work or output)."""
    dests = _CHECKPOINTS.get(command_name(args), ())
    if not dests:
        return
    from engine.validation import check_checkpoint

    for dest in dests:
        value = getattr(args, dest, None)
        for path in ([value] if isinstance(value, str) else list(value or [])):
            check_checkpoint(path)


# -- outputs ------------------------------------------------------------------------------------------------
def _robustness_files(args: argparse.Namespace) -> list[str]:
    names = [(re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(p).stem) or "model") + ".json" for p in args.models]
    return ["leaderboard.md", *names]


_REPORT_FILES = ["report.md", "conditions.csv", "participants.csv", "trials.csv", "exclusions.csv",
                 "conditions.png", "participants.png"]

#: command → [(option dest, what it names)]: "file"; "folder" (new files only, or a resumable run);
#: or a list of the file names written into the folder (a callable of the arguments when they depend on them)
OUTPUTS: dict[str, list[tuple[str, str | list[str] | Callable[[argparse.Namespace], list[str]]]]] = {
    "train": [("out", "file")],
    "defend": [("out", "file")],
    "import-checkpoint": [("out", "file")],
    "eval": [("json", "file")],
    "study prepare": [("out", "file")],
    "attack": [("out", "folder")],  # the runner resumes the same run and refuses a different one in DIR
    "study run": [("out", "folder")],  # a new session file with a generated name
    "study serve": [("out", "folder")],  # one new session file per participant; existing ones resume
    "transfer": [("out", ["transfer.json", "transfer.md", "transfer_clips.npz"])],
    "robustness": [("out", _robustness_files)],
    "study analyze": [("out", _REPORT_FILES)],
}
#: commands that accept --force (they may replace earlier outputs)
FORCE_COMMANDS = ("train", "defend", "import-checkpoint", "eval", "transfer", "robustness")


def backup_path(path: Path) -> Path:
    """``NAME.bak``, or ``NAME.bak2``, ``NAME.bak3``... when taken."""
    candidate, k = path.with_name(path.name + ".bak"), 2
    while candidate.exists():
        candidate, k = path.with_name(f"{path.name}.bak{k}"), k + 1
    return candidate


def _is_main_rank() -> bool:
    try:
        return int(os.environ.get("RANK", "0")) == 0
    except ValueError:
        return True


def _existing(path: Path, force: bool, flag: str) -> Path | None:
    if not path.exists():
        return None
    if path.is_dir():
        raise ParameterError(f"{flag} {path} is a folder; give a file name")
    if not force:
        raise ParameterError(f"{path} already exists; pass --force to replace it (the old file is kept as "
                             f"{backup_path(path).name}), or choose another name")
    return path


def _parent_is_folder(path: Path, flag: str) -> None:
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ParameterError(f"{flag} {path}: {parent} is a file, not a folder")
            return


def check_outputs(args: argparse.Namespace) -> list[tuple[Path, Path]]:
    """Refuse outputs that would replace existing files (module docstring); with ``--force`` copy each to its
    backup first. Returns the (file, backup) pairs made."""
    force = bool(getattr(args, "force", False))
    replaced: list[Path] = []
    for dest, what in OUTPUTS.get(command_name(args), []):
        value = getattr(args, dest, None)
        if value is None:
            continue
        path, flag = Path(value), _flag(dest)
        _parent_is_folder(path, flag)
        if what == "file":
            found = _existing(path, force, flag)
            replaced += [found] if found else []
            continue
        if path.exists() and not path.is_dir():
            raise ParameterError(f"{flag} {path} is a file; give a folder")
        if what == "folder":
            continue
        names = what(args) if callable(what) else what
        for name in names:
            found = _existing(path / name, force, flag)
            replaced += [found] if found else []
    made = []
    if replaced and _is_main_rank():
        for path in replaced:
            backup = backup_path(path)
            shutil.copy2(path, backup)
            log.warning("%s exists: kept the old file as %s (--force)", path, backup)
            made.append((path, backup))
    return made
