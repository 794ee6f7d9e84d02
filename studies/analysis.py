"""Analysis of study sessions: merge, exclude on catch trials, proportions with Wilson intervals, exact binomial
tests against chance, d′, and a Markdown/CSV report with PNG plots.

The proportion reported per condition is the share of one answer, fixed by the trial type:

* ``yesno``: "yes" (the label describes the motion; for attacked motions: the attack went unnoticed);
* ``2afc``: choosing the condition's first method (for clean vs attacked: the clean one looked more natural);
* ``same_different``: "same".

Statistics (scored trials only; practice and catch trials are left out of the condition figures):

* Wilson score interval (95 %, no continuity correction), ``scipy.stats.binomtest(...).proportion_ci``;
* two-sided exact binomial test of the proportion against 0.5, ``scipy.stats.binomtest(k, n, 0.5).pvalue`` (for
  p₀ = 0.5 the distribution is symmetric, so this is 2·P(X ≤ min(k, n−k)), capped at 1);
* d′ with the log-linear correction (Hautus 1995: rates (k + 0.5)/(n + 1)) so that 0 and 1 stay finite:
  yes/no and same/different: d′ = z(H) − z(F), H the rate of "detect" answers ("no" / "different") on a signal
  condition, F that on the pooled noise conditions (``signal = false``); 2AFC: d′ = √2·z(Pc) with Pc the
  corrected proportion of choosing the condition's first method;
* exclusion: a participant whose catch-trial accuracy is below the threshold is excluded (listed with it).
"""

from __future__ import annotations

import csv
import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist

from scipy.stats import binomtest

from engine.errors import StudyError
from studies.protocol import DETECT, Protocol
from studies.storage import SessionData, read_session

log = logging.getLogger(__name__)
_NORMAL = NormalDist()


# -- statistics -------------------------------------------------------------------------------------------------
def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion k/n (no continuity correction), by scipy."""
    if n == 0:
        return (float("nan"), float("nan"))
    ci = binomtest(k, n, 0.5).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def binomial_test_half(k: int, n: int) -> float:
    """Two-sided exact binomial test of k successes in n trials against p = 0.5, by scipy."""
    if n == 0:
        return float("nan")
    return float(binomtest(k, n, 0.5, alternative="two-sided").pvalue)


def z_score(p: float) -> float:
    return _NORMAL.inv_cdf(p)


def corrected_rate(k: int, n: int) -> float:
    """Log-linear corrected rate (k + 0.5)/(n + 1), finite z for 0 and n."""
    return (k + 0.5) / (n + 1)


def dprime_yes_no(hits: int, n_signal: int, false_alarms: int, n_noise: int) -> float:
    if n_signal == 0 or n_noise == 0:
        return float("nan")
    return z_score(corrected_rate(hits, n_signal)) - z_score(corrected_rate(false_alarms, n_noise))


def dprime_2afc(k_correct: int, n: int) -> float:
    if n == 0:
        return float("nan")
    return math.sqrt(2) * z_score(corrected_rate(k_correct, n))


# -- data -------------------------------------------------------------------------------------------------------
@dataclass
class Cell:
    """The figures of one condition (overall or for one participant)."""

    condition: str
    participant: str
    n: int
    k: int
    proportion: float
    ci_low: float
    ci_high: float
    p_value: float
    dprime: float = float("nan")
    mean_rt_s: float = float("nan")

    def row(self) -> dict:
        return {
            "condition": self.condition,
            "participant": self.participant,
            "n": self.n,
            "k": self.k,
            "proportion": self.proportion,
            "ci95_low": self.ci_low,
            "ci95_high": self.ci_high,
            "p_binomial_vs_0.5": self.p_value,
            "dprime": self.dprime,
            "mean_rt_s": self.mean_rt_s,
        }


@dataclass
class Analysis:
    protocol: Protocol
    sessions: list[SessionData]
    trials: list[dict]  # every scored response (practice left out), excluded participants included
    measure: str
    catch_accuracy: dict[str, float]
    excluded: list[str]
    threshold: float
    conditions: list[Cell] = field(default_factory=list)
    participants: list[Cell] = field(default_factory=list)
    focus_losses: dict[str, int] = field(default_factory=dict)  # per participant, while a trial was on screen
    max_focus_losses: int = 3  # more than this is flagged (not excluded) in the report

    @property
    def included(self) -> list[str]:
        return sorted({t["participant_id"] for t in self.trials} - set(self.excluded))


def measure_text(protocol: Protocol) -> str:
    return {
        "yesno": 'proportion of "yes" (the label describes the motion)',
        "2afc": "proportion choosing the condition's first method",
        "same_different": 'proportion of "same"',
    }[protocol.kind]


def _hit(protocol: Protocol, row: dict) -> bool:
    """Whether a response is the measured answer (see the module docstring)."""
    if protocol.kind == "2afc":
        cond = next(c for c in protocol.conditions if c.name == row["condition"])
        return row["chosen_method"] == cond.stimuli[0]
    return row["response"] == ("yes" if protocol.kind == "yesno" else "same")


def _cell(protocol: Protocol, condition: str, participant: str, rows: list[dict]) -> Cell:
    n = len(rows)
    k = sum(_hit(protocol, r) for r in rows)
    low, high = wilson_interval(k, n)
    rts = [r["rt_s"] for r in rows if math.isfinite(r["rt_s"])]
    return Cell(condition, participant, n, k, k / n if n else float("nan"), low, high, binomial_test_half(k, n),
                mean_rt_s=sum(rts) / len(rts) if rts else float("nan"))


def _fill_dprime(protocol: Protocol, cells: dict[str, Cell], rows_by_condition: dict[str, list[dict]]) -> None:
    if protocol.kind == "2afc":
        for cell in cells.values():
            cell.dprime = dprime_2afc(cell.k, cell.n)
        return
    signal = [c.name for c in protocol.conditions if c.signal is True]
    noise = [c.name for c in protocol.conditions if c.signal is False]
    if not signal or not noise:
        return
    detect = DETECT[protocol.kind]
    noise_rows = [r for name in noise for r in rows_by_condition.get(name, [])]
    fa = sum(r["response"] == detect for r in noise_rows)
    for name in signal:
        rows = rows_by_condition.get(name, [])
        hits = sum(r["response"] == detect for r in rows)
        if name in cells:
            cells[name].dprime = dprime_yes_no(hits, len(rows), fa, len(noise_rows))


def load_sessions(paths: list[str | Path]) -> list[SessionData]:
    """Read the session files; a file that cannot be read is reported (logged) and skipped, so one damaged or
    wrong file does not stop the analysis of the others. :class:`StudyError` when none can be read."""
    if not paths:
        raise StudyError("no session files given")
    sessions, skipped = [], []
    for p in paths:
        try:
            sessions.append(read_session(p))
        except (StudyError, ValueError, TypeError, KeyError, OSError) as exc:
            reason = str(exc) if isinstance(exc, StudyError) else f"{p}: cannot be read ({type(exc).__name__}: {exc})"
            log.warning("skipped %s", reason)
            skipped.append(reason)
    if not sessions:
        raise StudyError("none of the session files can be read: " + "; ".join(skipped))
    digests = {s.attrs["protocol_sha256"] for s in sessions}
    if len(digests) > 1:
        titles = sorted({f"{s.path.name}: {s.attrs['protocol_title']} ({s.attrs['protocol_sha256'][:8]})"
                         for s in sessions})
        raise StudyError("the sessions were run with different protocols; analyse each protocol separately:\n  "
                         + "\n  ".join(titles))
    return sessions


def runner_of(session: SessionData) -> str:
    """"web" for ``skelviz study serve`` sessions, "desktop" otherwise (files from before the attribute too)."""
    return str(session.attrs.get("runner", "desktop"))


def analyse(sessions: list[SessionData], catch_threshold: float | None = None) -> Analysis:
    """Merge sessions (one protocol) and compute every figure of the report."""
    protocol = sessions[0].protocol
    threshold = protocol.catch_threshold if catch_threshold is None else float(catch_threshold)
    trials: list[dict] = []
    seen: set[tuple[str, int, str]] = set()
    for s in sessions:
        for r in s.responses:
            if r["phase"] != "main":
                continue
            key = (r["session_id"], r["trial_index"], r["participant_id"])
            if key in seen:  # the same file given twice
                continue
            seen.add(key)
            # online and desktop sessions are analysed alike; the runner is kept to tell them apart
            trials.append({**r, "session_file": s.path.name, "runner": runner_of(s)})

    catch_accuracy: dict[str, float] = {}
    by_pid: dict[str, list[dict]] = defaultdict(list)
    for r in trials:
        by_pid[r["participant_id"]].append(r)
    for pid, rows in by_pid.items():
        catch = [r for r in rows if r["is_catch"]]
        if catch:
            catch_accuracy[pid] = sum(r["correct"] == 1 for r in catch) / len(catch)
    excluded = sorted(pid for pid, acc in catch_accuracy.items() if acc < threshold)

    result = Analysis(protocol, sessions, trials, measure_text(protocol), catch_accuracy, excluded, threshold)
    result.max_focus_losses = protocol.max_focus_losses
    result.focus_losses = {pid: sum(int(r["focus_losses"]) for r in rows) for pid, rows in by_pid.items()}
    scored = [r for r in trials if not r["is_catch"] and r["participant_id"] not in excluded]
    names = [c.name for c in protocol.conditions]
    by_cond: dict[str, list[dict]] = {n: [r for r in scored if r["condition"] == n] for n in names}
    overall = {n: _cell(protocol, n, "all", rows) for n, rows in by_cond.items()}
    _fill_dprime(protocol, overall, by_cond)
    result.conditions = [overall[n] for n in names]
    for pid in sorted(by_pid):
        if pid in excluded:
            continue
        rows_p = {n: [r for r in rows if r["participant_id"] == pid] for n, rows in by_cond.items()}
        cells = {n: _cell(protocol, n, pid, rows) for n, rows in rows_p.items() if rows}
        _fill_dprime(protocol, cells, rows_p)
        result.participants += [cells[n] for n in names if n in cells]
    return result


# -- report -----------------------------------------------------------------------------------------------------
def _fmt(x: float, digits: int = 3) -> str:
    return "–" if isinstance(x, float) and not math.isfinite(x) else f"{x:.{digits}f}"


def _fmt_p(p: float) -> str:
    if not math.isfinite(p):
        return "–"
    return f"{p:.3g}" if p >= 1e-4 else f"{p:.1e}"


def _write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        path.write_text("")
        return
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def write_report(result: Analysis, out_dir: str | Path) -> dict[str, Path]:
    """Write report.md, conditions.csv, participants.csv, trials.csv, exclusions.csv and PNG plots."""
    from studies.plots import proportion_plot

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "report": out / "report.md",
        "conditions": out / "conditions.csv",
        "participants": out / "participants.csv",
        "trials": out / "trials.csv",
        "exclusions": out / "exclusions.csv",
        "plot_conditions": out / "conditions.png",
        "plot_participants": out / "participants.png",
    }
    _write_csv(files["conditions"], [c.row() for c in result.conditions])
    _write_csv(files["participants"], [c.row() for c in result.participants])
    _write_csv(files["trials"], result.trials)
    _write_csv(files["exclusions"], [
        {"participant": pid, "catch_accuracy": acc, "excluded": pid in result.excluded}
        for pid, acc in sorted(result.catch_accuracy.items())
    ])
    p = result.protocol
    proportion_plot(
        files["plot_conditions"],
        [(c.condition, c.proportion, c.ci_low, c.ci_high, c.n) for c in result.conditions],
        title=f"{p.title}: {result.measure}",
    )
    proportion_plot(
        files["plot_participants"],
        [(f"{c.participant} {c.condition}", c.proportion, c.ci_low, c.ci_high, c.n) for c in result.participants],
        title="per participant (Wilson 95% CI)",
    )
    files["report"].write_text(_markdown(result), encoding="utf-8")
    return files


def _session_table(r: Analysis) -> list[str]:
    """One row per session: where it ran (desktop or online) and the flags a researcher should look at."""
    answered: dict[str, int] = defaultdict(int)
    for t in r.trials:
        answered[t["session_file"]] += 1
    lines = ["", "## Sessions", "",
             "| session file | participant | runner | status | scored trials | focus losses in trials | flags |",
             "|---|---|---|---|---:|---:|---|"]
    for s in r.sessions:
        pid = s.participant_id
        flags = []
        if pid in r.excluded:
            flags.append(f"failed catch trials ({r.catch_accuracy[pid]:.2f} < {r.threshold:.2f})")
        losses = r.focus_losses.get(pid, 0)
        if losses > r.max_focus_losses:
            flags.append(f"lost focus too often ({losses} > {r.max_focus_losses})")
        lines.append(f"| {s.path.name} | {pid} | {runner_of(s)} | {s.attrs.get('status', '')} | "
                     f"{answered[s.path.name]} | {losses} | {'; '.join(flags) or '–'} |")
    return lines


def _markdown(r: Analysis) -> str:
    p = r.protocol
    lines = [
        f"# {p.title}",
        "",
        f"Trial type: `{p.kind}`. Question: *{p.question}*",
        f"Measure: {r.measure}. Chance is 0.5.",
        "",
        f"Sessions merged: {len(r.sessions)} ({', '.join(s.path.name for s in r.sessions)}).",
        f"Participants: {len(r.included)} included, {len(r.excluded)} excluded "
        f"(catch-trial accuracy below {r.threshold:.2f}).",
    ]
    if r.excluded:
        lines.append("Excluded: " + ", ".join(f"{pid} ({r.catch_accuracy[pid]:.2f})" for pid in r.excluded) + ".")
    incomplete = [s.path.name for s in r.sessions if s.attrs.get("status") != "completed"]
    if incomplete:
        lines.append(f"Incomplete sessions (their answered trials are used): {', '.join(incomplete)}.")
    lines += _session_table(r)
    lines += [
        "",
        "## Per condition",
        "",
        "| condition | n | k | proportion | Wilson 95% CI | p (exact binomial vs 0.5) | d′ | mean RT (s) |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for c in r.conditions:
        lines.append(f"| {c.condition} | {c.n} | {c.k} | {_fmt(c.proportion)} | [{_fmt(c.ci_low)}, {_fmt(c.ci_high)}]"
                     f" | {_fmt_p(c.p_value)} | {_fmt(c.dprime, 2)} | {_fmt(c.mean_rt_s, 2)} |")
    lines += ["", "![per condition](conditions.png)", "", "## Per participant", "",
              "| participant | condition | n | k | proportion | Wilson 95% CI | p | d′ |",
              "|---|---|---:|---:|---:|---|---:|---:|"]
    for c in r.participants:
        lines.append(f"| {c.participant} | {c.condition} | {c.n} | {c.k} | {_fmt(c.proportion)} | "
                     f"[{_fmt(c.ci_low)}, {_fmt(c.ci_high)}] | {_fmt_p(c.p_value)} | {_fmt(c.dprime, 2)} |")
    lines += ["", "![per participant](participants.png)", "", "## Catch trials", ""]
    if r.catch_accuracy:
        lines += ["| participant | accuracy | excluded |", "|---|---:|---|"]
        lines += [f"| {pid} | {acc:.2f} | {'yes' if pid in r.excluded else 'no'} |"
                  for pid, acc in sorted(r.catch_accuracy.items())]
    else:
        lines.append("The protocol has no catch trials; nobody was excluded.")
    if p.kind == "2afc":
        note = "d′ = √2·z(Pc), Pc the log-linear corrected proportion choosing the first method."
    else:
        note = (f"d′ = z(H) − z(F) with H, F the log-linear corrected rates of \"{DETECT[p.kind]}\" on the signal "
                "condition and on the pooled noise conditions (`signal = false`); shown on signal conditions.")
    lines += ["", "## Methods", "",
              "Wilson score intervals without continuity correction; two-sided exact binomial tests against 0.5; "
              + note + " Practice and catch trials are not part of the condition figures.", ""]
    return "\n".join(lines)
