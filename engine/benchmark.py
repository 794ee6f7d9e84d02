"""The project's real-data benchmark: the shared CMU 8-action set (``../shared/data/cmu8``) and its split.

A benchmark, not the data model: it reads a positions HDF5 file (:mod:`engine.io.h5`) and splits it with the
generic clip and time splits of :mod:`engine.data`, so :mod:`engine.data` itself never imports a reader.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.data import ClipDataset, WindowSet, split_by_clip_with_time_fallback
from engine.errors import DataFormatError


def default_cmu8_path() -> Path:
    """``$SKELVIZ_SHARED_DATA/cmu8/cmu8_positions.h5``, else ``../shared/data/cmu8/...`` beside the checkout."""
    import os

    root = os.environ.get("SKELVIZ_SHARED_DATA")
    base = Path(root) if root else Path(__file__).resolve().parents[2] / "shared" / "data"
    return base / "cmu8" / "cmu8_positions.h5"


def cmu8_benchmark_split(
    path: str | Path | None = None, *, seed: int = 0, test_fraction: float = 0.25, min_clips: int = 3,
    gap_s: float = 1.0,
) -> tuple[ClipDataset, ClipDataset]:
    """The cmu8 clips split into ``(train, test)`` clip datasets, as :func:`load_cmu8_benchmark` uses them.

    A class with clips in both of the file's ``train/`` and ``test/`` groups keeps that split. Any other class
    (in the shared file: basketball_signal and directing_traffic, train only; washwindow, test only) is
    re-split by :func:`split_by_clip_with_time_fallback`: basketball_signal (5 clips) by clip, the others in
    time inside each clip.
    """
    from engine.io.h5 import read_positions_h5

    path = Path(path) if path is not None else default_cmu8_path()
    if not path.is_file():
        raise DataFormatError(path, "the cmu8 dataset is missing", hint="set SKELVIZ_SHARED_DATA or pass its path")
    ds = read_positions_h5(path)
    splits = np.array([c.provenance.details.get("split", "") for c in ds])
    labels = ds.labels
    train_idx: list[int] = []
    test_idx: list[int] = []
    resplit: list[int] = []
    for k in range(ds.num_classes):
        members = np.flatnonzero(labels == k)
        tr = members[splits[members] == "train"]
        te = members[splits[members] == "test"]
        if len(tr) and len(te):
            train_idx.extend(tr.tolist())
            test_idx.extend(te.tolist())
        else:
            resplit.extend(members.tolist())
    extra_train, extra_test = split_by_clip_with_time_fallback(
        ds.subset(sorted(resplit)), test_fraction, seed, min_clips, gap_s
    )
    train = ClipDataset([*ds.subset(sorted(train_idx)), *extra_train], ds.class_names, skeleton=ds.skeleton,
                        name="cmu8-train", source=str(path))
    test = ClipDataset([*ds.subset(sorted(test_idx)), *extra_test], ds.class_names, skeleton=ds.skeleton,
                       name="cmu8-test", source=str(path))
    return train, test


def load_cmu8_benchmark(
    path: str | Path | None = None,
    fps: float = 30,
    window: int = 60,
    stride: int = 20,
    seed: int = 0,
    *,
    test_fraction: float = 0.25,
    min_clips: int = 3,
    gap_s: float = 1.0,
) -> tuple[WindowSet, WindowSet]:
    """The project's benchmark on the shared cmu8 data: ``(train, test)`` :class:`WindowSet` s.

    Clips split by :func:`cmu8_benchmark_split`, resampled to ``fps``, cut into ``window``-frame windows every
    ``stride`` frames, in metres, world coordinates (a classifier centres them itself, see
    :mod:`engine.preprocessing`). Clips shorter than a window (the running clips: ~40 frames at 30 fps) give one window padded
    by repeating their last frame (``padded`` marks them). Deterministic; nothing is cached on disk.
    """
    train, test = cmu8_benchmark_split(path, seed=seed, test_fraction=test_fraction, min_clips=min_clips, gap_s=gap_s)
    kw = dict(fps=fps, window=window, stride=stride)
    return train.to_windows(**kw), test.to_windows(**kw)
