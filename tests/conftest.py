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
