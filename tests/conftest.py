"""Shared test fixtures: where the real data lives, GPU skipping, headless Qt for non-GL widget tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SKELVIZ_SHARED_DATA", REPO.parent / "shared" / "data"))
FORMATS = SHARED_DATA / "formats"
CMU8 = SHARED_DATA / "cmu8" / "cmu8_positions.h5"


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # torch missing or broken: no GPU tests
        return False


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs CUDA: no GPU on this machine")
    has_cuda = _cuda_available()
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (set SKELVIZ_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def formats_dir(shared_data) -> Path:
    return FORMATS


@pytest.fixture(scope="session")
def cmu8_path(shared_data) -> Path:
    if not CMU8.is_file():
        pytest.skip(f"{CMU8} is absent")
    return CMU8


# -- classifiers and their data (shared by the model, attack, defence and app tests) ------------------------------
# The small ST-GCN trained once per session on the cmu8 benchmark split. Kept tiny so that it trains in well under
# a minute on two CPU cores; tests/engine/test_train.py checks its held-out accuracy.
CMU8_STGCN_RECIPE = {
    "arch": "stgcn",
    "arch_kwargs": {"base_channels": 16, "num_blocks": 4, "dropout": 0.0},
    "epochs": 12,
    "batch_size": 32,
    "lr": 2e-3,
    "seed": 0,
    "augment": True,  # the field's augmentation on world-coordinate windows: yaw ±180°, scale, shift, jitter
}


@pytest.fixture(scope="session")
def cmu8_benchmark(cmu8_path):
    """``(train, test)`` WindowSets of the cmu8 benchmark: 30 fps, 60-frame windows, stride 20, clip-level split."""
    from engine.benchmark import load_cmu8_benchmark

    return load_cmu8_benchmark(cmu8_path, fps=30, window=60, stride=20, seed=0)


@pytest.fixture(scope="session")
def cmu8_stgcn(cmu8_benchmark):
    """A small ST-GCN trained on the cmu8 benchmark's train windows (CPU, seeded), in eval mode.

    Shared by the whole session: do not train or modify it in place (``copy.deepcopy`` it first).
    """
    from engine.train import train_classifier

    train, _ = cmu8_benchmark
    recipe = dict(CMU8_STGCN_RECIPE)
    result = train_classifier(recipe.pop("arch"), train, None, device="cpu", preprocessing={"stride": 20}, **recipe)
    return result.classifier.eval()


@pytest.fixture(scope="session")
def demo_dataset():
    """The shipped synthetic demo dataset (hdm05_25, 8 classes) as a ClipDataset."""
    from engine.assets import DEMO_DATASET, asset_path
    from engine.io import load_dataset

    return load_dataset(asset_path(DEMO_DATASET))


@pytest.fixture(scope="session")
def demo_classifier():
    """The shipped demo ST-GCN (assets/models/demo_stgcn.pt), in eval mode. Do not modify it in place."""
    from engine.assets import ASSETS_DIR, DEMO_CHECKPOINTS
    from engine.checkpoints import load_classifier

    path = ASSETS_DIR / DEMO_CHECKPOINTS["stgcn"]
    if not path.is_file():
        pytest.skip(f"demo checkpoint {path} is absent")
    return load_classifier(path)


@pytest.fixture
def one_torch_thread():
    """One intra-op torch thread for the test, restored afterwards: on two shared CPU cores that is much faster
    than oversubscribing them (modules opt in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
