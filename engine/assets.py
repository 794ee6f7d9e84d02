"""Where the files the app ships live (demo dataset, demo checkpoints, icons).

``SKELVIZ_ASSETS`` overrides the folder (the desktop bundle sets it); otherwise ``assets/`` beside the
packages is used.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.errors import SkelvizError

ASSETS_DIR = Path(os.environ.get("SKELVIZ_ASSETS", Path(__file__).resolve().parents[1] / "assets"))

DEMO_DATASET = "demo/demo_actions.h5"
DEMO_CHECKPOINTS = {"stgcn": "models/demo_stgcn.pt", "ctrgcn": "models/demo_ctrgcn.pt"}


def asset_path(relative: str) -> Path:
    """Absolute path of a shipped asset; a clear error when the installation lacks it."""
    path = ASSETS_DIR / relative
    if not path.exists():
        raise SkelvizError(
            f"the bundled asset {relative!r} is missing from {ASSETS_DIR}; reinstall skelviz or set SKELVIZ_ASSETS"
        )
    return path
