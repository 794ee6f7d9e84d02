"""Colours: the palette of the two clips and colormap lookup tables for deviation colouring."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

COLORMAPS = ("plasma", "viridis", "inferno", "magma", "cividis", "turbo")
# The darkest end of most perceptual maps vanishes against the dark view background; start a little in.
_LUT_START = 0.12

BACKGROUND = (24, 26, 31)
SLOT_COLOURS = {"A": (0.33, 0.66, 1.0, 1.0), "B": (1.0, 0.45, 0.32, 1.0)}
JOINT_COLOUR = (0.92, 0.92, 0.92, 1.0)
SELECTED_COLOUR = (0.2, 1.0, 0.4, 1.0)
GRID_COLOUR = (255, 255, 255, 40)


def swatch(slot: str) -> str:
    """A small square in a slot's colour, as rich text for labels."""
    r, g, b = (int(c * 255) for c in SLOT_COLOURS[slot][:3])
    return f"<span style='color:rgb({r},{g},{b})'>■</span>"


@lru_cache(maxsize=16)
def lookup_table(name: str, n: int = 256) -> np.ndarray:
    """(n, 4) float32 RGBA in 0..1 for the colormap ``name``."""
    import pyqtgraph as pg

    if name not in COLORMAPS:
        raise ValueError(f"unknown colormap {name!r}; choose one of {', '.join(COLORMAPS)}")
    cmap = pg.colormap.get(name)
    stops = np.linspace(_LUT_START, 1.0, n)
    lut = cmap.map(stops, mode="float")
    lut = np.asarray(lut, np.float32)
    if lut.shape[1] == 3:
        lut = np.concatenate([lut, np.ones((n, 1), np.float32)], axis=1)
    lut.setflags(write=False)
    return lut


def map_values(values: np.ndarray, vmin: float, vmax: float, name: str) -> np.ndarray:
    """(N,) values → (N, 4) RGBA through colormap ``name`` over [vmin, vmax] (clipped)."""
    lut = lookup_table(name)
    span = vmax - vmin if vmax > vmin else 1.0
    idx = np.clip((np.asarray(values, np.float64) - vmin) / span, 0.0, 1.0) * (len(lut) - 1)
    return lut[idx.astype(np.int64)]
