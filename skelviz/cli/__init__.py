"""The ``skelviz`` command.

``skelviz`` alone opens the app on the embedded demo; ``skelviz FILE`` opens the app on a file; ``skelviz
COMMAND ...`` runs a headless command. Each command is one module in this package defining ``HELP`` (one
line), ``add_arguments(parser)`` and ``run(args) -> int``; modules are found by listing the package, so a new
command needs no edit here. Commands import their heavy dependencies inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
from pathlib import Path

from engine.errors import SkelvizError
from skelviz.cli._checks import FORCE_COMMANDS, check_checkpoints, check_options, check_outputs

log = logging.getLogger("skelviz")


def _command_modules() -> dict[str, object]:
    modules = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "run") and hasattr(module, "add_arguments"):
            modules[getattr(module, "COMMAND", info.name.replace("_", "-"))] = module
    return modules


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skelviz",
        description="Adversarial robustness of skeleton-based action recognition. "
        "Run without a command to open the app on the real CMU demo; `skelviz FILE` opens a file.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in sorted(_command_modules().items()):
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        if name in FORCE_COMMANDS:
            p.add_argument("--force", action="store_true",
                           help="replace existing output files (each old file is kept as NAME.bak)")
        p.set_defaults(_run=module.run)
    return parser


def require_display(what: str) -> None:
    """Raise a SkelvizError when no display is available for ``what`` (Qt would abort the process)."""
    if sys.platform != "linux" or os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] in ("offscreen", "minimal",
                                                                                           "vnc", "eglfs"):
        return
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    raise SkelvizError(f"{what} needs a display, and none is available (DISPLAY is not set); on a headless machine "
                       f"run it under a virtual one: xvfb-run -a skelviz ...")


def _launch_app(files: list[str]) -> int:
    try:
        require_display("the skelviz app")
    except SkelvizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        from skelviz.app import run_app
    except ImportError as exc:  # the GUI needs PySide6/pyqtgraph/PyOpenGL and a display
        print(f"error: the skelviz app cannot start: {exc}", file=sys.stderr)
        return 1
    return run_app(files)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.DEBUG if ("-v" in argv or "--verbose" in argv) else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    positional = [a for a in argv if not a.startswith("-")]
    commands = _command_modules()
    if not positional or (positional[0] not in commands and Path(positional[0]).exists()):
        if any(a in ("-h", "--help") for a in argv):
            build_parser().print_help()
            return 0
        return _launch_app(positional)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse printed usage and the error (or the help)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        check_options(args)
        check_outputs(args)
        check_checkpoints(args)
        return int(args._run(args) or 0)
    except SkelvizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
