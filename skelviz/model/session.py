"""Everything the app has loaded: clip collections, the classifier (and a defended one), the last attack.

Qt-free. Panels read and change the session; its signals tell the other panels.
"""

from __future__ import annotations

from engine.api import AttackOutcome
from engine.data import ClipDataset
from skelviz.model.events import Signal
from skelviz.model.playback import Playback
from skelviz.model.scene import Scene
from skelviz.model.settings import Settings


class Session:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.scene = Scene()
        self.playback = Playback(speed=self.settings.speed, loop=self.settings.loop)
        self.collections_changed = Signal()  # ()
        self.classifier_changed = Signal()  # (classifier or None)
        self.defended_changed = Signal()  # (classifier or None)
        self.outcome_changed = Signal()  # (AttackOutcome or None)
        self.collections: list[ClipDataset] = []
        self.classifier = None
        self.classifier_source = ""
        self.defended = None
        self.defended_source = ""
        self.outcome: AttackOutcome | None = None
        self.scene.clip_changed.connect(self._on_clip_changed)
        self.playback.speed_changed.connect(lambda v: setattr(self.settings, "speed", v))
        self.playback.loop_changed.connect(lambda v: setattr(self.settings, "loop", v))

    def add_collection(self, collection: ClipDataset) -> None:
        self.collections.append(collection)
        self.collections_changed.emit()

    def set_classifier(self, classifier, source: str = "") -> None:
        self.classifier, self.classifier_source = classifier, source
        self.scene.set_class_names(list(classifier.class_names) if classifier is not None else [])
        self.classifier_changed.emit(classifier)

    def set_defended(self, classifier, source: str = "") -> None:
        self.defended, self.defended_source = classifier, source
        self.defended_changed.emit(classifier)

    def set_outcome(self, outcome: AttackOutcome | None) -> None:
        self.outcome = outcome
        if outcome is not None:
            names = self.scene.class_names
            self.scene.set_clip("A", outcome.clean, "original", probs=outcome.clean_probs if names else None)
            self.scene.set_clip(
                "B", outcome.adversarial, "adversarial", probs=outcome.adversarial_probs if names else None
            )
        self.outcome_changed.emit(outcome)

    def _on_clip_changed(self, slot: str) -> None:
        self.playback.set_length(self.scene.num_frames, self.scene.fps)
