"""Small PNG charts for study reports, drawn with Pillow (no matplotlib, no Qt).

:func:`proportion_plot` draws one horizontal bar per row: the proportion, its 95 % interval as a whisker, and
the chance level 0.5 as a dashed line, on a 0–1 axis.
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

_BG, _FG, _GRID = (255, 255, 255), (30, 30, 30), (210, 210, 210)
_BAR, _WHISKER, _CHANCE = (76, 120, 168), (20, 20, 20), (214, 39, 40)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def proportion_plot(
    path: str | Path,
    rows: list[tuple[str, float, float, float, int]],
    *,
    title: str = "",
    width: int = 900,
    row_height: int = 34,
) -> Path:
    """Write a PNG with one bar per ``(label, proportion, ci_low, ci_high, n)`` row."""
    font, small = _font(15), _font(12)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = max([probe.textlength(r[0], font=font) for r in rows] + [60]) + 20
    left, right, top, bottom = int(label_w), 70, 50, 50
    height = top + bottom + max(1, len(rows)) * row_height
    img = Image.new("RGB", (width, height), _BG)
    d = ImageDraw.Draw(img)
    plot_w = width - left - right

    def x_of(v: float) -> float:
        return left + v * plot_w

    d.text((10, 12), title, fill=_FG, font=font)
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = x_of(tick)
        d.line([(x, top - 5), (x, height - bottom)], fill=_GRID, width=1)
        d.text((x - 12, height - bottom + 6), f"{tick:.2f}", fill=_FG, font=small)
    if not rows:
        d.text((left + 10, top + 5), "no data", fill=_FG, font=font)
    for i, (label, p, low, high, n) in enumerate(rows):
        y0 = top + i * row_height + 6
        y1 = y0 + row_height - 12
        d.text((10, y0 + 2), label, fill=_FG, font=font)
        if not math.isfinite(p):
            d.text((left + 6, y0 + 2), "no trials", fill=_FG, font=small)
            continue
        d.rectangle([x_of(0), y0, x_of(p), y1], fill=_BAR)
        ym = (y0 + y1) / 2
        if math.isfinite(low) and math.isfinite(high):
            d.line([(x_of(low), ym), (x_of(high), ym)], fill=_WHISKER, width=2)
            for v in (low, high):
                d.line([(x_of(v), y0 + 3), (x_of(v), y1 - 3)], fill=_WHISKER, width=2)
        d.text((width - right + 6, y0 + 2), f"{p:.2f} (n={n})", fill=_FG, font=small)
    x = x_of(0.5)
    for y in range(top - 5, height - bottom, 10):  # dashed chance line
        d.line([(x, y), (x, min(y + 5, height - bottom))], fill=_CHANCE, width=2)
    d.text((x + 4, top - 22), "chance", fill=_CHANCE, font=small)
    path = Path(path)
    img.save(path, format="PNG")
    return path
