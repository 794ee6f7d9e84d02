"""A folder of motion files (ASF/AMC, BVH, NTU ``.skeleton``) with a ``labels.csv`` as a dataset.

``labels.csv`` has a header row with the columns ``file`` and ``label`` (any order, more columns allowed);
``file`` is relative to the folder. An optional ``asf`` column names the skeleton of an AMC row (otherwise it
is found beside the AMC, see :func:`engine.io.find_asf`). An empty label means unlabelled. Without a
``labels.csv`` every motion file in the folder is read, unlabelled, in name order.

All clips must end up on one skeleton: files whose skeletons have the same joints and parents are put on
the first one's; otherwise pass ``skeleton=`` to map every clip to one layout by joint names.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path

from engine.data import ClipDataset, map_clip
from engine.errors import DataFormatError, SkeletonMismatchError
from engine.skeletons import Skeleton

log = logging.getLogger(__name__)

LABELS_FILE = "labels.csv"
MOTION_SUFFIXES = (".amc", ".bvh", ".skeleton")


def read_labels_csv(path: str | Path) -> list[tuple[str, str | None, str | None, int]]:
    """Rows ``(file, label, asf, line)`` of a labels.csv."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(path, f"cannot read ({exc})") from None
    reader = csv.reader(text.splitlines())
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise DataFormatError(path, "the file is empty", hint="write a header row: file,label") from None
    for col in ("file", "label"):
        if col not in header:
            raise DataFormatError(path, f"no {col!r} column in the header {header}", line=1,
                                  hint="the header row must name the columns file,label")
    fi, li = header.index("file"), header.index("label")
    ai = header.index("asf") if "asf" in header else None
    rows = []
    for line, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) <= max(fi, li):
            raise DataFormatError(path, f"expected {len(header)} columns, got {len(row)}", line=line)
        label = row[li].strip() or None
        asf = row[ai].strip() or None if ai is not None and ai < len(row) else None
        rows.append((row[fi].strip(), label, asf, line))
    return rows


def read_folder(
    path: str | Path,
    *,
    labels_csv: str | Path | None = None,
    skeleton: str | Skeleton | None = None,
    class_names: Sequence[str] | None = None,
    units: str | float | None = None,
) -> ClipDataset:
    """Every clip listed in the folder's ``labels.csv`` (or every motion file when there is none)."""
    from engine.io import find_asf, load_clip

    folder = Path(path)
    if not folder.is_dir():
        raise DataFormatError(folder, "not a folder")
    csv_path = Path(labels_csv) if labels_csv is not None else folder / LABELS_FILE
    if csv_path.is_file():
        rows = read_labels_csv(csv_path)
    elif labels_csv is not None:
        raise DataFormatError(csv_path, "no such file")
    else:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in MOTION_SUFFIXES and p.is_file())
        log.warning("%s: no %s; reading %d motion files without labels", folder, LABELS_FILE, len(files))
        rows = [(p.name, None, None, 0) for p in files]
    if not rows:
        raise DataFormatError(csv_path if csv_path.is_file() else folder, "no motion files listed or found")
    clips = []
    first: Skeleton | None = None
    for name, label, asf, line in rows:
        file = folder / name
        if not file.is_file():
            raise DataFormatError(csv_path, f"lists {name!r}, which is not in {folder}", line=line or None)
        asf_path = folder / asf if asf else (find_asf(file) if file.suffix.lower() == ".amc" else None)
        clip = load_clip(file, asf=asf_path, units=units)
        if skeleton is not None:
            clip = map_clip(clip, skeleton)
        elif first is None:
            first = clip.skeleton
        elif clip.skeleton != first:
            if clip.skeleton.same_topology(first) and clip.skeleton.up_axis == first.up_axis:
                clip = clip.with_bodies(clip.bodies, skeleton=first)
            else:
                raise SkeletonMismatchError(
                    f"{file}: skeleton {clip.skeleton.name!r} ({clip.skeleton.num_joints} joints) differs from "
                    f"{first.name!r} ({first.num_joints} joints) of the folder's first file; pass skeleton= to map "
                    "every clip to one layout"
                )
        if label is not None:
            from dataclasses import replace

            clip = replace(clip, label=label)
        clips.append(clip)
    try:
        return ClipDataset(clips, class_names, name=folder.name, source=str(folder))
    except DataFormatError as exc:
        raise DataFormatError(csv_path, exc.problem, hint=exc.hint) from None
