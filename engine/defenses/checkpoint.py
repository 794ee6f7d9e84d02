"""Defended checkpoints: a plain classifier checkpoint (the base network, loadable on its own) plus a
``defence`` section that :func:`engine.models.checkpoint.load_classifier` hands to :func:`defended_from_dict`.

``defence`` is a dict of plain data and tensors (read with ``weights_only=True`` like the rest):

``method``   ``"beat"``: ``feature_dim``, ``hidden`` and ``heads`` (a list of the N posterior samples' state
             dicts of the appended head); ``"smoothing"``: ``sigma``, ``num_noise``, ``noise_seed``.

Adversarially fine-tuned models (``smart-at``, ``trades``, ``mart``) are plain classifiers and need no
section; every defended model records its training in ``meta["defence"]``.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.errors import CheckpointError


def defended_from_dict(base, section, where: str = "checkpoint"):
    """Rebuild the defended model of ``section`` around the already loaded ``base`` classifier."""
    if not isinstance(section, Mapping) or "method" not in section:
        raise CheckpointError(f"{where}: the defence section is damaged (no method)")
    method = str(section["method"])
    if method == "beat":
        from engine.defenses.beat import BEATClassifier

        return BEATClassifier.from_state(base, dict(section), where)
    if method == "smoothing":
        from engine.defenses.smoothing import SmoothedClassifier

        return SmoothedClassifier.from_state(base, dict(section), where)
    raise CheckpointError(
        f"{where}: defence {method!r} is unknown to this skelviz (known: beat, smoothing); upgrade skelviz"
    )
