"""Run every benchmark, collect one JSON, and (optionally) regenerate the README's performance table from it.

    .venv/bin/python bench/run.py --quick --json out.json             # every script's --quick run (minutes)
    .venv/bin/python bench/run.py --json bench/results/run.json       # the full runs (hours on two CPU cores)
    .venv/bin/python bench/run.py --only attack_cost basar --json out.json
    .venv/bin/python bench/run.py --from-json bench/results/run.json --readme README.md   # table only

Each script runs in its own process with ``--json`` (and ``--quick`` when given) and writes its headline figures
under ``summary`` (see ``bench/_harness.py``); this file lifts those keys to the top level of the combined JSON,
keeps every script's full record under ``scripts``, and records failures (a failed script does not stop the
others; the exit status is 1 when any failed). The figures are ratios measured side by side inside each script,
so they compare across machines and loads where absolute times would not. ``bench/ui.py`` needs a display: it
runs under ``xvfb-run`` when there is none and Xvfb is installed, and is skipped otherwise.

The README's table lies between ``<!-- bench:start -->`` and ``<!-- bench:end -->``; ``--readme`` rewrites it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import _harness  # noqa: E402

# Run order: the cheap, headline ratios first. (script, needs a display)
SCRIPTS: list[tuple[str, bool]] = [
    ("attack_cost", False),
    ("basar", False),
    ("defence", False),
    ("beat_sweep", False),
    ("bench_cmu8_benchmark", False),
    ("study_io", False),
    ("model_accuracy", False),
    ("smart_table", False),
    ("transfer", False),
    ("standard_suite", False),
    ("host_syncs", False),
    ("ui", True),
]

# The README table: key, what it measures, the goal (or None), the script that measures it.
TABLE: list[tuple[str, str, str | None, str]] = [
    ("smart_iteration_over_forward_backward", "one SMART iteration ÷ one forward+backward of the same ST-GCN "
     "batch, per batch size", "≤ 1.3", "attack_cost"),
    ("basar_queries_per_second_over_forward", "BASAR queries answered per second ÷ the victim's bare forward "
     "throughput at the same batch size", "≥ 0.5", "basar"),
    ("beat_seconds_over_trades", "BEAT training wall time ÷ TRADES's on the same base, data, device and threads",
     "≤ 0.33", "defence"),
    ("cmu8_load_over_bare_read", "loading the cmu8 benchmark (map, resample, window, split) ÷ a bare h5py read "
     "of the file", None, "bench_cmu8_benchmark"),
    ("study_row_p95_over_frame", "p95 time to put one study response durably on disk (fsync) ÷ one 60 Hz frame",
     "< 1", "study_io"),
    ("study_online_p95_over_frame", "p95 online answer round trip (POST until the fsynced reply) ÷ one 60 Hz "
     "frame", "< 1", "study_io"),
    ("tasar_transfer_over_mifgsm", "TASAR's mean off-diagonal transfer success ÷ MI-FGSM's, same surrogates, "
     "victims, windows and budget", "> 1", "transfer"),
    ("suite_stgcn_robust_1cm", "standard suite robust accuracy of the undefended ST-GCN at 1 cm (per-window worst "
     "case)", None, "standard_suite"),
    ("suite_beat_robust_1cm", "the same for its BEAT version", None, "standard_suite"),
    ("suite_trades_robust_1cm", "the same for its TRADES version", None, "standard_suite"),
    ("host_syncs_per_step_max", "host synchronisations per attack step (an iteration, or one victim call for "
     "BASAR and Square) or defence minibatch, worst method; BASAR's one read of each answer is by design "
     "(counted by wrapping .item/.tolist/.cpu/.numpy/bool)", "0", "host_syncs"),
    ("ui_playback_1x_over_clip_rate", "distinct frames drawn per second in both 3D views ÷ the clip's frame rate "
     "(software OpenGL)", "≈ 1", "ui"),
    ("ui_latency_p95_during_attack_over_frame", "p95 event-loop lateness while a SMART attack runs ÷ one 60 Hz frame",
     "< 1", "ui"),
]

REQUIRED = ("smart_iteration_over_forward_backward", "basar_queries_per_second_over_forward",
            "beat_seconds_over_trades")


def _summary(record: dict) -> dict:
    """A script's headline figures: its ``summary`` (harness format) or, for a flat JSON, its top-level scalars."""
    if isinstance(record.get("summary"), dict):
        return record["summary"]
    return {k: v for k, v in record.items() if isinstance(v, (int, float, str, dict)) and k != "environment"}


def _command(name: str, needs_display: bool, out: Path, quick: bool, extra: list[str]) -> list[str] | None:
    cmd = [sys.executable, str(HERE / f"{name}.py"), "--json", str(out), *(["--quick"] if quick else []), *extra]
    if needs_display and not os.environ.get("DISPLAY"):
        if not shutil.which("xvfb-run"):
            return None
        cmd = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", *cmd]
    return cmd


def run_all(names: list[str], quick: bool, timeout: float, threads: int | None) -> dict:
    env = dict(os.environ)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    combined: dict = {"suite": "skelviz bench/run.py", "quick": quick, "environment": _harness.environment(),
                      "scripts": {}, "failed": {}, "skipped": {}}
    with tempfile.TemporaryDirectory(prefix="skelviz_bench_") as tmp:
        for name, needs_display in SCRIPTS:
            if name not in names:
                continue
            if not (HERE / f"{name}.py").is_file():
                combined["skipped"][name] = "script not present"
                continue
            out = Path(tmp) / f"{name}.json"
            cmd = _command(name, needs_display, out, quick, [])
            if cmd is None:
                combined["skipped"][name] = "needs a display and xvfb-run is not installed"
                print(f"[bench] {name}: skipped (no display, no xvfb-run)", file=sys.stderr)
                continue
            print(f"[bench] {name}: {' '.join(cmd)}", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            try:
                proc = subprocess.run(cmd, cwd=ROOT, env=env, timeout=timeout, capture_output=True, text=True)
                rc, tail = proc.returncode, (proc.stdout + proc.stderr)[-3000:]
            except subprocess.TimeoutExpired as e:
                rc, tail = "timeout", f"ran past {timeout:.0f} s\n" + str(e.stdout or "")[-2000:]
            seconds = time.perf_counter() - t0
            sys.stdout.write(tail if rc != 0 else (proc.stdout[-4000:] if proc.stdout else ""))
            if rc == 0 and out.is_file():
                record = json.loads(out.read_text())
                record["wall_seconds"] = round(seconds, 1)
                combined["scripts"][name] = record
                for key, value in _summary(record).items():
                    combined.setdefault(key, value)
                print(f"[bench] {name}: done in {seconds:.0f} s", file=sys.stderr, flush=True)
            else:
                combined["failed"][name] = {"returncode": rc, "output_tail": tail}
                print(f"[bench] {name}: FAILED ({rc}) after {seconds:.0f} s", file=sys.stderr, flush=True)
    return combined


def _fmt(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.3g}"
    return "–" if value is None else str(value)


def markdown_table(combined: dict) -> str:
    """The README's performance table from a combined JSON."""
    env = combined.get("environment", {})
    lines = [f"Measured by `bench/run.py{' --quick' if combined.get('quick') else ''}` on {env.get('date_utc', '?')[:10]}: "
             f"{env.get('cpu_count', '?')} CPU cores, torch {env.get('torch', '?')}, "
             f"{env.get('cuda') or 'no GPU'}. Ratios are measured side by side within one run.",
             "", "| figure | value | goal | what it is | script |", "|---|---|---|---|---|"]
    for key, what, goal, script in TABLE:
        value = combined.get(key)
        if value is None and script in combined.get("failed", {}):
            value = "failed"
        lines.append(f"| `{key}` | {_fmt(value)} | {goal or '–'} | {what} | `bench/{script}.py` |")
    return "\n".join(lines)


def rewrite_readme(readme: Path, table: str) -> None:
    text = readme.read_text(encoding="utf-8")
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    if start not in text or end not in text:
        raise SystemExit(f"error: {readme} has no {start} … {end} markers; add them where the table belongs")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{table}\n{end}{tail}", encoding="utf-8")
    print(f"rewrote the performance table in {readme}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _harness.add_arguments(ap, quick="every script's own --quick run")
    names = [n for n, _ in SCRIPTS]
    ap.add_argument("--only", nargs="+", choices=names, default=None, help="run only these scripts")
    ap.add_argument("--skip", nargs="+", choices=names, default=[], help="do not run these scripts")
    ap.add_argument("--threads", type=int, default=None, help="OMP/MKL threads of every script (default: unset)")
    ap.add_argument("--timeout", type=float, default=4 * 3600, help="seconds per script before it is stopped")
    ap.add_argument("--readme", type=Path, default=None, help="rewrite this README's performance table")
    ap.add_argument("--from-json", type=Path, default=None,
                    help="run nothing: read a combined JSON written earlier (with --readme: regenerate the table)")
    args = ap.parse_args(argv)
    if args.from_json:
        combined = json.loads(args.from_json.read_text())
    else:
        chosen = [n for n in (args.only or names) if n not in args.skip]
        combined = run_all(chosen, args.quick, args.timeout, args.threads)
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(combined, indent=2) + "\n")
            print(f"wrote {args.json}", file=sys.stderr)
    table = markdown_table(combined)
    print("\n" + table)
    missing = [k for k in REQUIRED if k not in combined and not args.only]
    if missing:
        print(f"\nmissing headline figures: {', '.join(missing)}", file=sys.stderr)
    if args.readme:
        rewrite_readme(args.readme, table)
    return 1 if combined.get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
