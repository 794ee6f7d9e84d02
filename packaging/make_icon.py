"""Draw the skelviz icon (``assets/icons/skelviz.svg`` and ``skelviz.png``) from a demo clip.

The icon shows what the tool does: one pose from the synthetic demo dataset drawn twice, the original in blue
and a perturbed copy in orange, on a dark rounded square. Bones come from the clip's Skeleton (no edge list
here). Run from the repository root::

    .venv/bin/python packaging/make_icon.py            # writes assets/icons/skelviz.{svg,png}
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.io import load_dataset  # noqa: E402

CLIP = "wave_s01_t1"
BACKGROUND = "#23262c"
ORIGINAL = "#5aa0ff"
ADVERSARIAL = "#ff8a3d"


def _pose(size: float, margin: float) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """2D pixel coordinates of the original and perturbed pose, and the bones (parent, child)."""
    dataset = load_dataset(REPO / "assets" / "demo" / "demo_actions.h5")
    clip = next((c for c in dataset if c.name == CLIP), dataset[0])
    # the frame whose pose is widest (limbs spread), seen from its widest horizontal direction
    pos = clip.positions - clip.positions.mean(axis=1, keepdims=True)
    horizontal = pos[..., [0, 2]]
    best, best_width, best_axis = 0, -1.0, np.array([1.0, 0.0])
    for t in range(len(pos)):
        _, sv, vt = np.linalg.svd(horizontal[t], full_matrices=False)
        if sv[0] > best_width:
            best, best_width, best_axis = t, float(sv[0]), vt[0]
    frame = pos[best]
    xy = np.stack([frame[:, [0, 2]] @ best_axis, frame[:, 1]], axis=1).astype(float)
    # a smooth, deterministic perturbation that grows along the kinematic chain (visible at the extremities)
    rng = np.random.default_rng(3)
    depth = np.zeros(len(xy))
    for j, p in enumerate(clip.skeleton.parents):
        depth[j] = 0 if p < 0 else depth[p] + 1
    wobble = xy + rng.normal(0, 1, xy.shape) * 0.011 * depth[:, None]
    both = np.concatenate([xy, wobble])
    lo, hi = both.min(axis=0), both.max(axis=0)
    scale = (size - 2 * margin) / float((hi - lo).max())
    offset = (size - (hi - lo) * scale) / 2

    def to_px(p: np.ndarray) -> np.ndarray:
        q = (p - lo) * scale + offset
        q[:, 1] = size - q[:, 1]  # image y goes down
        return q

    return to_px(xy), to_px(wobble), list(clip.skeleton.bones)


def svg(size: int = 256) -> str:
    orig, adv, bones = _pose(size, margin=size * 0.14)
    width = size * 0.04
    lines = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 {size} {size}">',
        f'<rect x="4" y="4" width="{size - 8}" height="{size - 8}" rx="{size * 0.18:.1f}" fill="{BACKGROUND}"/>',
    ]
    for pts, colour, opacity in ((adv, ADVERSARIAL, 0.95), (orig, ORIGINAL, 1.0)):
        lines.append(
            f'<g stroke="{colour}" stroke-width="{width:.1f}" stroke-linecap="round" opacity="{opacity}" fill="none">'
        )
        for p, c in bones:
            (x1, y1), (x2, y2) = pts[p], pts[c]
            lines.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}"/>')
        lines.append("</g>")
    lines.append("</svg>")
    return "\n".join(lines) + "\n"


def png(path: Path, size: int = 256) -> None:
    """Rasterise with Qt (a runtime dependency already), antialiased."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6 import QtCore, QtGui

    _ = QtGui.QGuiApplication.instance() or QtGui.QGuiApplication([])
    orig, adv, bones = _pose(size, margin=size * 0.14)
    image = QtGui.QImage(size, size, QtGui.QImage.Format.Format_ARGB32)
    image.fill(QtCore.Qt.GlobalColor.transparent)
    painter = QtGui.QPainter(image)
    painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    painter.setPen(QtCore.Qt.PenStyle.NoPen)
    painter.setBrush(QtGui.QColor(BACKGROUND))
    painter.drawRoundedRect(QtCore.QRectF(4, 4, size - 8, size - 8), size * 0.18, size * 0.18)
    for pts, colour in ((adv, ADVERSARIAL), (orig, ORIGINAL)):
        pen = QtGui.QPen(QtGui.QColor(colour), size * 0.04)
        pen.setCapStyle(QtCore.Qt.PenCapStyle.RoundCap)
        painter.setPen(pen)
        for p, c in bones:
            painter.drawLine(QtCore.QPointF(*pts[p]), QtCore.QPointF(*pts[c]))
    painter.end()
    if not image.save(str(path)):
        raise OSError(f"could not write {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "assets" / "icons")
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "skelviz.svg").write_text(svg(args.size))
    png(args.out / "skelviz.png", args.size)
    print(f"wrote {args.out / 'skelviz.svg'} and {args.out / 'skelviz.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
