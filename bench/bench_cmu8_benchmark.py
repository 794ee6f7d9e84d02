"""Time engine.data.load_cmu8_benchmark (the brief: under 2 s; it caches nothing on disk).

    .venv/bin/python bench/bench_cmu8_benchmark.py [PATH_TO_cmu8_positions.h5]
"""

from __future__ import annotations

import sys
import time

from engine.benchmark import load_cmu8_benchmark


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else None
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        train, test = load_cmu8_benchmark(path)
        times.append(time.perf_counter() - t0)
    print(f"train {train.x.shape}, test {test.x.shape}")
    print(f"load_cmu8_benchmark: best {min(times):.3f} s, first {times[0]:.3f} s")


if __name__ == "__main__":
    main()
