"""What the two views show: a clip in each slot, its predictions, deviation colouring and the selected joint.

Qt-free. Widgets change the scene; the scene emits events; visuals subscribe. Slot ``"A"`` is the left view
(usually the original clip) and ``"B"`` the right one (usually the adversarial clip); deviations always
measure B against A.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.api import Deviations, deviations
from engine.data import Clip
from skelviz.model.events import Signal

SLOTS = ("A", "B")

# Deviation quantities a user can colour bones by: key → (label, per-bone?, unit).
COLOUR_MODES = {
    "none": ("plain colours", False, ""),
    "bone_length": ("bone-length change", True, "m"),
    "position": ("position difference", False, "m"),
    "velocity": ("velocity difference", False, "m/s"),
    "acceleration": ("acceleration difference", False, "m/s²"),
}


@dataclass
class SlotState:
    clip: Clip | None = None
    caption: str = ""
    probs: np.ndarray | None = None


class Scene:
    def __init__(self) -> None:
        self.clip_changed = Signal()  # (slot): a different clip
        self.positions_changed = Signal()  # (slot): same clip, new positions (live attack progress)
        self.prediction_changed = Signal()  # (slot)
        self.class_names_changed = Signal()  # (class_names)
        self.colour_mode_changed = Signal()  # (mode)
        self.deviations_changed = Signal()  # ()
        self.overlay_changed = Signal()  # (bool)
        self.selection_changed = Signal()  # (joint or None)
        self._slots = {"A": SlotState(caption="original"), "B": SlotState(caption="adversarial")}
        self._class_names: list[str] = []
        self._colour_mode = "bone_length"
        self._overlay = False
        self._selected: int | None = None
        self._deviations: Deviations | None = None
        self._deviations_valid = False

    # -- clips --------------------------------------------------------------------------------------------
    def clip(self, slot: str) -> Clip | None:
        return self._slots[slot].clip

    def caption(self, slot: str) -> str:
        return self._slots[slot].caption

    def set_clip(self, slot: str, clip: Clip | None, caption: str | None = None, *, probs=None) -> None:
        state = self._slots[slot]
        state.clip = clip
        if caption is not None:
            state.caption = caption
        state.probs = None if probs is None else np.asarray(probs, np.float64)
        self._deviations_valid = False
        if self._selected is not None and clip is not None and self._selected >= clip.skeleton.num_joints:
            self.select_joint(None)
        self.clip_changed.emit(slot)
        self.prediction_changed.emit(slot)
        self.deviations_changed.emit()

    def update_positions(self, slot: str, positions: np.ndarray, probs=None) -> None:
        """Replace a slot's positions in place of the whole clip (live attack progress)."""
        clip = self._slots[slot].clip
        if clip is None:
            return
        self._slots[slot].clip = clip.with_positions(positions)
        self._deviations_valid = False
        self.positions_changed.emit(slot)
        self.deviations_changed.emit()
        if probs is not None:
            self.set_probs(slot, probs)

    @property
    def num_frames(self) -> int:
        return max((s.clip.num_frames for s in self._slots.values() if s.clip is not None), default=1)

    @property
    def fps(self) -> float:
        for s in SLOTS:
            if self._slots[s].clip is not None:
                return self._slots[s].clip.fps
        return 30.0

    def frame_for(self, slot: str, frame: int) -> int:
        """The slot's own frame at master frame ``frame`` (clips of other rates are matched by time)."""
        clip = self._slots[slot].clip
        if clip is None:
            return 0
        if clip.fps != self.fps:
            frame = int(round(frame / self.fps * clip.fps))
        return min(max(frame, 0), clip.num_frames - 1)

    # -- predictions --------------------------------------------------------------------------------------
    @property
    def class_names(self) -> list[str]:
        return list(self._class_names)

    def set_class_names(self, names: list[str]) -> None:
        self._class_names = list(names)
        for s in SLOTS:
            self._slots[s].probs = None
        self.class_names_changed.emit(self.class_names)
        for s in SLOTS:
            self.prediction_changed.emit(s)

    def probs(self, slot: str) -> np.ndarray | None:
        return self._slots[slot].probs

    def set_probs(self, slot: str, probs) -> None:
        self._slots[slot].probs = None if probs is None else np.asarray(probs, np.float64)
        self.prediction_changed.emit(slot)

    def prediction(self, slot: str) -> tuple[str, float] | None:
        """(class name, confidence) of the slot's clip, when a classifier has scored it."""
        p = self._slots[slot].probs
        if p is None or not len(p):
            return None
        i = int(np.argmax(p))
        name = self._class_names[i] if i < len(self._class_names) else f"class {i}"
        return name, float(p[i])

    def title(self, slot: str) -> str:
        clip = self._slots[slot].clip
        if clip is None:
            hint = "run an attack to fill this view" if slot == "B" else "open a clip in the Data panel"
            return f"{self._slots[slot].caption or slot}: no clip — {hint}"
        text = f"{self._slots[slot].caption}: {clip.title}" if self._slots[slot].caption else clip.title
        pred = self.prediction(slot)
        if pred is not None:
            text += f" — {pred[0]} ({pred[1]:.0%})"
        return text

    # -- deviations and colouring -------------------------------------------------------------------------
    @property
    def comparable(self) -> bool:
        """True when B can be measured against A (same skeleton topology and frames)."""
        a, b = self.clip("A"), self.clip("B")
        return (
            a is not None
            and b is not None
            and a.positions.shape == b.positions.shape
            and a.skeleton.same_topology(b.skeleton)
        )

    @property
    def deviations(self) -> Deviations | None:
        if not self._deviations_valid:
            a, b = self.clip("A"), self.clip("B")
            self._deviations = deviations(a, b) if self.comparable else None
            self._deviations_valid = True
        return self._deviations

    @property
    def colour_mode(self) -> str:
        return self._colour_mode

    def set_colour_mode(self, mode: str) -> None:
        if mode not in COLOUR_MODES:
            raise ValueError(f"unknown colour mode {mode!r}; choose one of {', '.join(COLOUR_MODES)}")
        if mode != self._colour_mode:
            self._colour_mode = mode
            self.colour_mode_changed.emit(mode)

    def colour_values(self) -> np.ndarray | None:
        """(T, B) per-bone values of the current colour mode, or None when there is nothing to colour by."""
        dev = self.deviations
        if dev is None or self._colour_mode == "none":
            return None
        values = getattr(dev, self._colour_mode)
        per_bone = COLOUR_MODES[self._colour_mode][1]
        if per_bone:
            return values
        # A joint quantity colours the bone that ends at that joint.
        return values[:, self.clip("B").skeleton.bone_children]

    def colour_range(self) -> tuple[float, float]:
        """(0, vmax): a range fixed over the whole clip so colours mean the same in every frame."""
        values = self.colour_values()
        if values is None or values.size == 0:
            return 0.0, 1.0
        vmax = float(np.percentile(values, 99.5))
        return 0.0, vmax if vmax > 0 else 1.0

    # -- overlay and selection ----------------------------------------------------------------------------
    @property
    def overlay(self) -> bool:
        return self._overlay

    def set_overlay(self, on: bool) -> None:
        if bool(on) != self._overlay:
            self._overlay = bool(on)
            self.overlay_changed.emit(self._overlay)

    @property
    def selected_joint(self) -> int | None:
        return self._selected

    def select_joint(self, joint: int | None) -> None:
        if joint != self._selected:
            self._selected = joint
            self.selection_changed.emit(joint)

    def joint_report(self, slot: str, joint: int, frame: int) -> str:
        """A line describing a joint at a frame: name, position and, when comparable, its deviations."""
        clip = self.clip(slot)
        if clip is None or not 0 <= joint < clip.skeleton.num_joints:
            return ""
        f = self.frame_for(slot, frame)
        x, y, z = clip.positions[f, joint]
        text = f"{clip.skeleton.joint_names[joint]} (joint {joint}) frame {f}: ({x:.3f}, {y:.3f}, {z:.3f}) m"
        dev = self.deviations
        if dev is not None:
            text += (
                f" | Δpos {dev.position[f, joint] * 1000:.1f} mm, Δvel {dev.velocity[f, joint]:.3f} m/s, "
                f"Δacc {dev.acceleration[f, joint]:.2f} m/s²"
            )
            bones = np.nonzero(clip.skeleton.bone_children == joint)[0]
            if len(bones):
                text += f", Δbone {dev.bone_length_rel[f, bones[0]]:.2%}"
        return text
