"""Where the files the app ships live (demo datasets, demo checkpoints, icons).

``SKELVIZ_ASSETS`` overrides the folder (the desktop bundle sets it); otherwise ``assets/`` beside the
packages is used.

Two demos ship (:data:`DEMOS`): ``"cmu"``, real motion capture from the CMU database in the ``hdm05_25`` layout
(``assets/demo/cmu_actions.h5``, derived by ``assets/demo/derive_cmu_demo.py``) with classifiers trained on it,
which the app opens by default (:data:`DEFAULT_DEMO`); and ``"synthetic"``, the procedurally generated set of
:mod:`engine.synth` with its own classifiers, kept for comparison and for the tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import SkelvizError

ASSETS_DIR = Path(os.environ.get("SKELVIZ_ASSETS", Path(__file__).resolve().parents[1] / "assets"))


@dataclass(frozen=True)
class Demo:
    """One shipped demo: a dataset and the classifiers trained on it (architecture → checkpoint), relative to
    :data:`ASSETS_DIR`."""

    title: str
    dataset: str
    checkpoints: dict[str, str] = field(default_factory=dict)


DEMOS: dict[str, Demo] = {
    "cmu": Demo(
        "CMU demo (real motion capture)",
        "demo/cmu_actions.h5",
        {"stgcn": "models/cmu_stgcn.pt", "ctrgcn": "models/cmu_ctrgcn.pt", "mlp": "models/cmu_mlp.pt"},
    ),
    "synthetic": Demo(
        "synthetic demo",
        "demo/demo_actions.h5",
        {"stgcn": "models/demo_stgcn.pt", "ctrgcn": "models/demo_ctrgcn.pt"},
    ),
}
DEFAULT_DEMO = "cmu"

#: The synthetic demo (kept under these names: tests and scripts pair them).
DEMO_DATASET = DEMOS["synthetic"].dataset
DEMO_CHECKPOINTS = DEMOS["synthetic"].checkpoints
#: The real (CMU) demo the app opens by default.
REAL_DEMO_DATASET = DEMOS["cmu"].dataset
REAL_DEMO_CHECKPOINTS = DEMOS["cmu"].checkpoints


def demo(name: str | None = None) -> Demo:
    """The demo called ``name`` (default :data:`DEFAULT_DEMO`); a clear error for an unknown name."""
    key = DEFAULT_DEMO if name is None else name
    if key not in DEMOS:
        raise SkelvizError(f"no demo called {key!r}; the demos are {', '.join(DEMOS)}")
    return DEMOS[key]


def asset_path(relative: str) -> Path:
    """Absolute path of a shipped asset; a clear error when the installation lacks it."""
    path = ASSETS_DIR / relative
    if not path.exists():
        raise SkelvizError(
            f"the bundled asset {relative!r} is missing from {ASSETS_DIR}; reinstall skelviz or set SKELVIZ_ASSETS"
        )
    return path
