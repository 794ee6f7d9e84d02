"""What every ``bench/`` script shares: the ``--quick`` and ``--json OUT`` options, the record of the machine a
figure was measured on, and the JSON file :mod:`bench.run` collects.

A script's JSON is ``{"script", "quick", "argv", "environment", "summary", "results"}``: ``summary`` holds the
script's headline figures under stable keys (the ratios the README's performance table shows; :mod:`bench.run`
lifts them to the top level of its combined file), ``results`` whatever detail the script wants to keep.
Figures are ratios measured side by side in the same run (a machine's load and speed cancel out of them); absolute
times, where a script keeps them, are context, not the claim.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # scripts run as ``python bench/x.py`` from anywhere
    sys.path.insert(0, str(ROOT))


def add_arguments(parser: argparse.ArgumentParser, quick: str) -> None:
    """Add ``--quick`` (``quick`` says what it cuts) and ``--json OUT``."""
    parser.add_argument("--quick", action="store_true", help=f"a run of a minute or two on a laptop CPU: {quick}")
    parser.add_argument("--json", metavar="OUT", default=None,
                        help="also write the headline figures and the details as JSON to OUT")


def environment(device: Any = None) -> dict[str, Any]:
    """Where a figure was measured: host, CPU count, torch and its thread count, the device, the date (UTC)."""
    info: dict[str, Any] = {
        "date_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    try:
        import torch

        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads(),
                    cuda=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    except ImportError:  # the study benchmark needs no torch
        pass
    if device is not None:
        info["device"] = str(device)
    return info


def write_json(path: str | os.PathLike | None, script: str, args: argparse.Namespace, summary: dict[str, Any],
               results: Any = None, device: Any = None) -> None:
    """Write the script's JSON to ``path`` (nothing when ``path`` is None)."""
    if not path:
        return
    record = {"script": Path(script).name, "quick": bool(getattr(args, "quick", False)), "argv": sys.argv[1:],
              "environment": environment(device), "summary": summary, "results": results}
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, default=_plain) + "\n")
    print(f"wrote {out}", file=sys.stderr)


def _plain(value: Any) -> Any:
    """numpy / torch scalars and arrays as plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)
