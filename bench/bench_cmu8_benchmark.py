"""Time engine.benchmark.load_cmu8_benchmark against a bare h5py read of the same file (it caches nothing on disk;
the brief: under 2 s).

    .venv/bin/python bench/bench_cmu8_benchmark.py [--path cmu8_positions.h5] [--quick] [--json OUT]

Ratio: the best of ``--repeats`` loads (map to the layout, resample, cut windows, split) over the best of as many
bare reads of every clip array of the file, timed alternately in the same run.
"""

from __future__ import annotations

import argparse
import time

import _harness  # bench/ is the script's folder
import h5py

from engine.benchmark import default_cmu8_path, load_cmu8_benchmark


def _bare_read(path) -> int:
    arrays = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda _name, obj: arrays.append(obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return len(arrays)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--path", default=None, help="cmu8_positions.h5 (default: the shared data)")
    ap.add_argument("--repeats", type=int, default=3)
    _harness.add_arguments(ap, quick="2 repeats")
    args = ap.parse_args()
    if args.quick:
        args.repeats = 2
    path = args.path or default_cmu8_path()
    loads, reads = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        train, test = load_cmu8_benchmark(path)
        loads.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        _bare_read(path)
        reads.append(time.perf_counter() - t0)
    ratio = min(loads) / min(reads)
    print(f"train {train.x.shape}, test {test.x.shape}")
    print(f"load_cmu8_benchmark: best {min(loads):.3f} s (first {loads[0]:.3f} s); bare h5py read of the file: best "
          f"{min(reads):.3f} s; ratio {ratio:.1f}")
    _harness.write_json(args.json, __file__, args, {"cmu8_load_over_bare_read": round(ratio, 2)},
                        {"load_seconds": loads, "bare_read_seconds": reads})


if __name__ == "__main__":
    main()
