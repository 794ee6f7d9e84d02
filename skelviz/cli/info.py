"""``skelviz info FILE``: what a motion file or dataset holds, without opening the app (no Qt)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "print a motion file's format, skeleton, performers, frames, fps, duration and label (datasets: classes)"

_MULTI = {"skelviz-h5", "positions-h5", "smart-npz", "stgcn-npy", "folder"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="motion file or folder (.skeleton, .amc, .bvh, .npz, .npy, .h5, folder)")
    parser.add_argument("--asf", help="the ASF skeleton of an AMC motion (default: found beside it)")
    parser.add_argument("--units", help="BVH length units override (e.g. m, cm, inch or a factor to metres)")
    parser.add_argument("--index", type=int, help="also describe clip INDEX of a multi-clip file")
    parser.add_argument("--skeleton", help="skeleton of an ST-GCN .npy (default hdm05_25)")
    add_stats_argument(parser)


def add_stats_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stats", default=None, metavar="PATH",
                        help="a SMART .npz's normalisation statistics (preprocess_core.npz with Xmean, Xstd) when "
                        "they are not beside it, e.g. adClassTrain.npz in a results folder")


def reader_options(path, stats) -> dict:
    """Reader keywords for ``--stats``: ``{"stats": PATH}`` for a SMART ``.npz``; a clear error for other files."""
    from engine.errors import SkelvizError
    from engine.io import detect_format

    if stats is None:
        return {}
    if detect_format(path) != "smart-npz":
        raise SkelvizError(f"--stats is for SMART .npz files; {path} is not one")
    if not Path(stats).is_file():
        raise SkelvizError(f"--stats {stats}: no such file (the SMART code writes it as preprocess_core.npz)")
    return {"stats": str(stats)}


def _fmt_seconds(s: float) -> str:
    return f"{s:.2f} s" if s < 120 else f"{s:.1f} s ({s / 60:.1f} min)"


def _fmt_fps(values) -> str:
    values = sorted(set(values))
    return ", ".join(f"{v:g}" for v in values)


def describe_clip(clip) -> list[tuple[str, str]]:
    sk = clip.skeleton
    rows = [
        ("clip", clip.name or clip.title),
        ("skeleton", f"{sk.name} ({sk.num_joints} joints, root {sk.joint_names[sk.root]}, up {sk.up_axis})"),
        ("joints", ", ".join(sk.joint_names)),
        ("bodies", str(clip.num_bodies)),
        ("frames", str(clip.num_frames)),
        ("fps", f"{clip.fps:g}"),
        ("duration", _fmt_seconds(clip.duration)),
        ("label", clip.label if clip.label is not None else "(none)"),
    ]
    if clip.provenance.source:
        rows.append(("source", clip.provenance.source))
    return rows


def describe_dataset(ds) -> list[tuple[str, str]]:
    sk = ds.skeleton
    frames = [c.num_frames for c in ds]
    rows = [
        ("clips", str(len(ds))),
        ("skeleton", f"{sk.name} ({sk.num_joints} joints, root {sk.joint_names[sk.root]}, up {sk.up_axis})"),
        ("joints", ", ".join(sk.joint_names)),
        ("bodies", _fmt_fps(c.num_bodies for c in ds)),
        ("frames", f"{sum(frames)} in all, " + (f"{min(frames)} per clip" if min(frames) == max(frames)
                                                 else f"{min(frames)} to {max(frames)} per clip")),
        ("fps", _fmt_fps(c.fps for c in ds)),
        ("duration", _fmt_seconds(sum(c.duration for c in ds))),
        ("classes", str(ds.num_classes)),
    ]
    unlabelled = int((ds.labels < 0).sum())
    if unlabelled:
        rows.append(("unlabelled", str(unlabelled)))
    return rows


def _print(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows) + 1
    for key, value in rows:
        print(f"{key + ':':<{width}} {value}")


def run(args: argparse.Namespace) -> int:
    from engine.io import FORMATS, detect_format, load_clip, load_dataset

    path = Path(args.file)
    fmt = detect_format(path)
    print(f"file:     {path}")
    print(f"format:   {fmt} ({FORMATS[fmt][1]})")
    kw = {"skeleton": args.skeleton} if args.skeleton and fmt in ("stgcn-npy", "smart-npz", "folder") else {}
    kw.update(reader_options(path, args.stats))
    if fmt in _MULTI:
        if fmt == "folder" and args.units:
            kw["units"] = args.units
        ds = load_dataset(path, **kw)
        if len(ds) == 1 and args.index is None:  # a one-clip file: describe the clip
            _print(describe_clip(ds[0]))
            return 0
        _print(describe_dataset(ds))
        counts = ds.class_counts()
        if counts:
            width = max(len(n) for n in counts)
            for name, n in counts.items():
                print(f"  {name:<{width}}  {n} clip{'s' if n != 1 else ''}")
        if args.index is not None:
            i = args.index
            if not -len(ds) <= i < len(ds):
                from engine.errors import DataFormatError

                raise DataFormatError(path, f"clip index {i} out of range: {len(ds)} clips")
            print()
            _print(describe_clip(ds[i]))
        return 0
    clip = load_clip(path, asf=args.asf, units=args.units, **kw)
    _print(describe_clip(clip))
    return 0
