"""Qt-free application state (scene, playback, selection, settings): testable headless."""

from skelviz.model.events import Signal
from skelviz.model.playback import Playback
from skelviz.model.scene import COLOUR_MODES, SLOTS, Scene
from skelviz.model.settings import MemoryStore, Settings

__all__ = ["COLOUR_MODES", "SLOTS", "MemoryStore", "Playback", "Scene", "Settings", "Signal"]
