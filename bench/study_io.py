"""Time to append one response row to a session file and put it on disk (the brief: well under 16 ms), and the
online round trip: an answer POSTed to `skelviz study serve` until its reply, which leaves after the row is on disk.

    .venv/bin/python bench/study_io.py [--rows 500] [--dir DIR] [--quick] [--json OUT]

Measures :meth:`studies.storage.SessionFile.append_response` (grow the table by one row, write it, H5Fflush,
fsync) and the same without fsync, on a session planned from a synthetic stimulus file in DIR (default: a
temporary folder; pass a folder on the disk participants' data will go to, since fsync cost is the disk's).
Ratios: the p95 of a durable row over one display frame at 60 Hz (16.7 ms, the brief's budget; below 1 is
in budget) and the cost of fsync (append + flush + fsync over append + flush, both measured here).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _harness  # bench/ is the script's folder
import numpy as np

from engine.skeletons import get as get_skeleton
from studies.protocol import load_protocol
from studies.schedule import plan_trials
from studies.stimuli import Stimulus, read_stimuli, stimulus_id, write_stimuli
from studies.storage import Response, SessionFile


def _stimuli(path: Path, n_clips: int) -> Path:
    sk = get_skeleton("hdm05_25")
    rng = np.random.default_rng(0)
    items = []
    for c in range(n_clips):
        clip, label = f"clip{c}", ["walk", "run", "jump"][c % 3]
        base = rng.normal(0, 0.3, (60, sk.num_joints, 3)).astype(np.float32)
        for m in ("clean", "smart", "jitter"):
            items.append(Stimulus(stimulus_id(clip, m), clip, m, label, base + (m != "clean") * 0.01))
    return write_stimuli(path, items, skeleton=sk, fps=30.0, class_names=["walk", "run", "jump"])


def _time_appends(folder: Path, rows: int, fsync: bool) -> np.ndarray:
    protocol = load_protocol("naturalness")
    stim = read_stimuli(_stimuli(folder / f"stim_{fsync}.h5", max(1, rows)))
    plan = plan_trials(protocol, stim.catalogue(), seed=1)[:rows]
    session = SessionFile.create(folder / f"session_{fsync}.h5", protocol, stim, plan, participant_id="P-BENCH",
                                 seed=1, fsync=fsync)
    times = np.empty(len(plan))
    try:
        for i, trial in enumerate(plan):
            r = Response(response="left", rt_s=0.8, replays=0, onset_unix=time.time(), response_unix=time.time())
            t0 = time.perf_counter()
            session.append_response(trial, r)
            times[i] = time.perf_counter() - t0
    finally:
        session.close()
    return times * 1e3


def _time_round_trips(folder: Path, rows: int) -> np.ndarray:
    """POST /act respond over a keep-alive localhost connection to the real Starlette app served by uvicorn."""
    import http.client
    import json
    import socket
    import threading

    import uvicorn

    from studies.web.server import create_app
    from studies.web.sessions import WebSessions

    protocol = load_protocol("naturalness")
    stim = read_stimuli(_stimuli(folder / "stim_web.h5", max(1, rows)))
    web = WebSessions(protocol, stim, folder / "web_sessions")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(web), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    conn = http.client.HTTPConnection("127.0.0.1", port)

    def call(method: str, path: str, body: dict | None = None) -> dict:
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={"Content-Type": "application/json"})
        return json.loads(conn.getresponse().read())

    token = call("POST", "/api/sessions")["token"]
    api = f"/api/s/{token}"
    state = call("POST", api + "/act", {"action": "consent"})["state"]
    times = []
    try:
        while state["state"] != "end" and len(times) < rows:
            if state["state"] != "trial":
                state = call("POST", api + "/act", {"action": "advance"})["state"]
                continue
            index = state["trial"]["index"]
            call("POST", api + "/act", {"action": "onset", "trial_index": index})
            t0 = time.perf_counter()
            reply = call("POST", api + "/act", {"action": "respond", "trial_index": index, "response": "left",
                                                "rt_s": 0.8})
            times.append(time.perf_counter() - t0)
            state = reply["state"]
    finally:
        conn.close()
        server.should_exit = True
        thread.join(10)
        web.close()
    return np.asarray(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=500)
    ap.add_argument("--dir", help="folder for the session files (default: a temporary folder)")
    _harness.add_arguments(ap, quick="100 rows")
    args = ap.parse_args()
    if args.quick:
        args.rows = min(args.rows, 100)
    p95s: dict[bool, float] = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for fsync in (False, True):
            ms = _time_appends(Path(tmp), args.rows, fsync)
            p50, p95, p99 = np.percentile(ms, [50, 95, 99])
            p95s[fsync] = float(p95)
            label = "append + flush + fsync" if fsync else "append + flush (no fsync)"
            print(f"{label:28s} {len(ms)} rows: p50 {p50:.3f} ms, p95 {p95:.3f} ms, p99 {p99:.3f} ms, "
                  f"max {ms.max():.3f} ms")
        ms = _time_round_trips(Path(tmp), args.rows)
        p50, p95, p99 = np.percentile(ms, [50, 95, 99])
        print(f"{'online POST -> fsynced row':28s} {len(ms)} rows: p50 {p50:.3f} ms, p95 {p95:.3f} ms, "
              f"p99 {p99:.3f} ms, max {ms.max():.3f} ms (localhost HTTP/1.1 keep-alive, reply after the fsync)")
        frame = 1000 / 60
        summary = {"study_row_p95_over_frame": round(p95s[True] / frame, 4),
                   "study_online_p95_over_frame": round(float(p95) / frame, 4),
                   "study_fsync_over_no_fsync_p95": round(p95s[True] / p95s[False], 2)}
        print(f"ratios: durable row p95 / 16.7 ms frame {summary['study_row_p95_over_frame']:.3f}; online answer "
              f"p95 / frame {summary['study_online_p95_over_frame']:.3f}; fsync cost ×"
              f"{summary['study_fsync_over_no_fsync_p95']:.1f}")
        _harness.write_json(args.json, __file__, args, summary,
                            {"rows": args.rows, "p95_ms": {"flush": p95s[False], "fsync": p95s[True],
                                                           "online": float(p95)}})


if __name__ == "__main__":
    main()
