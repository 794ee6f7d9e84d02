"""``skelviz report DIR...``: the success rates of ``skelviz attack`` runs as a Markdown table (no Qt).

Laid out like the results tables of the SMART paper: one row per model, one column per strategy (AB, ABN,
SA; prefixed with the method when the folders hold more than one method), cells the success rates.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "print a Markdown table of attack success rates (rows: models, columns: strategies) from attack folders"

_ORDER = {"ab": 0, "abn": 1, "sa": 2}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="output folders of `skelviz attack`")
    parser.add_argument("--deviation", action="store_true",
                        help="add the mean relative bone-length change to every cell")


def load_results(dirs: list[str]) -> list[dict]:
    from engine.errors import SkelvizError

    out = []
    for d in dirs:
        path = Path(d) / "results.json"
        if not path.is_file():
            raise SkelvizError(f"{d} has no results.json; is it the --out folder of a finished `skelviz attack`?")
        try:
            out.append(json.loads(path.read_text(encoding="utf-8")))
        except json.JSONDecodeError as exc:
            raise SkelvizError(f"{path} is not valid JSON ({exc})") from None
    return out


def _model_name(r: dict) -> str:
    model = (r.get("params") or {}).get("model")
    return Path(model).stem if model else "model"


def _column(r: dict, with_method: bool) -> str:
    strategy = str(r.get("strategy", "ab")).lower()
    label = strategy.upper()
    if strategy == "abn" and r.get("top_n"):
        label = f"ABN (N={r['top_n']})"
    if strategy == "sa" and r.get("target") is not None:
        label = f"SA (→{r['target']})"
    return f"{str(r.get('method', '')).upper()}-{label}" if with_method else label


def markdown_table(results: list[dict], deviation: bool = False) -> str:
    methods = {str(r.get("method", "")) for r in results}
    with_method = len(methods) > 1
    rows: dict[str, dict[str, str]] = {}
    col_keys: dict[str, tuple] = {}
    for r in results:
        col = _column(r, with_method)
        col_keys[col] = (str(r.get("method", "")), _ORDER.get(str(r.get("strategy", "")).lower(), 9), col)
        cell = f"{100 * float(r.get('success_rate', 0.0)):.1f}%"
        if deviation and r.get("mean_bone_length_rel_dev") is not None:
            cell += f" (Δbone {100 * float(r['mean_bone_length_rel_dev']):.2f}%)"
        cell += f" n={int(r.get('n', 0))}"
        rows.setdefault(_model_name(r), {})[col] = cell
    columns = sorted(col_keys, key=lambda c: col_keys[c])
    lines = ["| model | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for model, cells in rows.items():
        lines.append(f"| {model} | " + " | ".join(cells.get(c, "—") for c in columns) + " |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    print(markdown_table(load_results(args.dirs), args.deviation))
    return 0
