"""The one progress reporter of the command line: a tqdm bar on stderr.

Every long command (train, attack, defend, robustness) hands a :class:`CliProgress` to the engine as its
``progress(done, total, info)`` callback. stdout stays free for results (JSON, tables); ``--quiet`` removes the
bar; lines a command wants to keep (train's epoch summaries) are written above the bar, even when quiet, as
before.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from tqdm import tqdm

__all__ = ["CliProgress", "numbers_postfix"]


def numbers_postfix(info: dict[str, Any]) -> str:
    """``key value`` for every number or word in ``info`` (the engine's progress details)."""
    return " ".join(
        f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
        for k, v in info.items()
        if isinstance(v, (int, float, str)) and not isinstance(v, bool)
    )


class CliProgress:
    """A ``progress(done, total, info)`` callback that draws one tqdm bar on stderr.

    ``postfix(info)`` gives the text shown after the counts; ``line(info)``, when it returns text, is written on its
    own line above the bar (it is kept in the terminal's scroll-back, and written even when ``quiet``).
    """

    def __init__(
        self,
        label: str,
        *,
        unit: str = "it",
        quiet: bool = False,
        postfix: Callable[[dict[str, Any]], str] | None = numbers_postfix,
        line: Callable[[dict[str, Any]], str | None] | None = None,
    ) -> None:
        self.label, self.unit, self.quiet = label, unit, quiet
        self.postfix, self.line = postfix, line
        self.bar: tqdm | None = None

    def __call__(self, done: int, total: int, info: dict[str, Any]) -> None:
        text = self.line(info) if self.line is not None else None
        if text is not None:
            if self.bar is not None:
                self.bar.write(text, file=sys.stderr)
            else:
                print(text, file=sys.stderr, flush=True)
        if self.quiet:
            return
        if self.bar is None or self.bar.total != total:
            self.close()
            # mininterval: the engine may call after every batch; redrawing more often than twice a second only
            # costs time on a slow terminal.
            self.bar = tqdm(total=total, desc=self.label, unit=self.unit, file=sys.stderr, mininterval=0.5,
                            dynamic_ncols=True, leave=True)
        if self.postfix is not None:
            self.bar.set_postfix_str(self.postfix(info), refresh=False)
        if done >= self.bar.n:
            self.bar.update(done - self.bar.n)
        else:  # a resumed run starts below what was drawn: redraw from there
            self.bar.n = done
            self.bar.refresh()
        if done >= total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
