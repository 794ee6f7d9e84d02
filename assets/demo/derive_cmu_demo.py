"""Derive the real demo dataset ``assets/demo/cmu_actions.h5`` from the shared cmu8 motion capture.

Source: ``../shared/data/cmu8/cmu8_positions.h5`` (CMU Graphics Lab Motion Capture Database, mocap.cs.cmu.edu, the
8-action subset of Li et al., CVPR 2018, as 28-joint positions at 120 fps; see ``shared/data/README.md``). The CMU
database is free for all uses; the acknowledgment is in ``assets/demo/README.md`` and the app's About box.

Steps, per clip, in the file's order:

1. map the 28 joints onto the 25-joint ``hdm05_25`` layout of the SMART/BASAR/BEAT code by joint names
   (:func:`engine.data.map_clip`; the alias table is in :mod:`engine.skeletons` and is the one behind the shared
   SMART-layout copy of these clips);
2. resample 120 → 30 fps (:func:`engine.data.resample`: every fourth frame, bones kept rigid);
3. keep at most ``--max-seconds`` (20 s) from the start: the five basketball-signal takes, the two
   directing-traffic takes and the window-washing take run 23–31 s and would otherwise outweigh the others;
4. name it ``<action>_<n>`` (the file's ``train``/``test`` group is kept in the provenance as ``cmu8_split``;
   the demo classifiers use the project's own clip-level split, see ``assets/models/README.md``).

Positions stay in metres, y up, in world coordinates (the floor near y = 0, the walkers' 3–5 m of travel kept).

Run from the repository root::

    .venv/bin/python assets/demo/derive_cmu_demo.py --out assets/demo/cmu_actions.h5
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from engine.benchmark import default_cmu8_path
from engine.data import ClipDataset, Provenance, map_clip, resample
from engine.io import save_dataset
from engine.io.h5 import read_positions_h5

log = logging.getLogger("derive_cmu_demo")

SKELETON = "hdm05_25"
FPS = 30.0
MAX_SECONDS = 20.0
CMU_ACKNOWLEDGMENT = (
    "The data used in this project was obtained from mocap.cs.cmu.edu. "
    "The database was created with funding from NSF EIA-0196217."
)


def derive(source: Path, *, fps: float = FPS, max_seconds: float = MAX_SECONDS) -> ClipDataset:
    """The demo dataset derived from the cmu8 positions file at ``source`` (module docstring)."""
    cmu8 = read_positions_h5(source)
    clips = []
    counts: dict[str, int] = {}
    # train takes first, then test takes, each in name order: the numbering is stable and readable
    order = sorted(range(len(cmu8)), key=lambda i: (cmu8[i].provenance.details.get("split") != "train",
                                                    cmu8[i].name))
    for i in order:
        clip = cmu8[i]
        mapped = resample(map_clip(clip, SKELETON), fps)
        keep = min(mapped.num_frames, int(round(max_seconds * fps)))
        counts[clip.label] = counts.get(clip.label, 0) + 1
        name = f"{clip.label}_{counts[clip.label]}"
        details = {
            "dataset": "CMU Graphics Lab Motion Capture Database (mocap.cs.cmu.edu)",
            "cmu8_clip": clip.provenance.details.get("dataset", clip.name),
            "cmu8_split": clip.provenance.details.get("split", ""),
            "source_fps": clip.fps,
            "source_frames": clip.num_frames,
            "frames_kept": keep,
            "derived_by": "assets/demo/derive_cmu_demo.py",
            "acknowledgment": CMU_ACKNOWLEDGMENT,
        }
        clips.append(replace(
            mapped, positions=mapped.positions[:keep], bodies=mapped.bodies[:, :keep], name=name,
            provenance=Provenance(source.name, "cmu8", details),
        ))
    return ClipDataset(clips, sorted(counts), name="cmu_actions", source=str(source))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cmu8", type=Path, default=None,
                        help="the shared cmu8 positions file (default: $SKELVIZ_SHARED_DATA or ../shared/data)")
    parser.add_argument("--out", type=Path, required=True, help="dataset file to write (.h5)")
    parser.add_argument("--max-seconds", type=float, default=MAX_SECONDS, help="longest clip kept (default 20)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    source = args.cmu8 or default_cmu8_path()
    dataset = derive(source, max_seconds=args.max_seconds)
    save_dataset(dataset, args.out)
    frames = sum(c.num_frames for c in dataset)
    log.info("%s: %d clips, %d classes %s, %d frames (%.0f s) at %g fps, %.2f MB", args.out, len(dataset),
             dataset.num_classes, dataset.class_counts(), frames, frames / FPS, FPS, args.out.stat().st_size / 1e6)
    lengths = np.array([c.num_frames for c in dataset])
    log.info("clip lengths %d–%d frames", lengths.min(), lengths.max())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
