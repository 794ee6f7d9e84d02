"""Validity diagnostics of an attack result: is the reported success real, and is it an artefact?

An attack reports success from its own last forward pass. A reviewer wants more, and every attack front end
(``skelviz attack``, the app, study preparation) computes the same three things here:

* **re-checked success**: the adversarial motion as it is saved (float32, world coordinates) is predicted again
  through the classifier's full pipeline (its own preprocessing included), in eval mode, and the strategy's
  success test is applied to that prediction;
* **re-centred success**: the same after subtracting the root joint from every frame of the saved motion
  outside the model. A classifier that centres its input itself predicts the same; a success that depends on
  where the root is (a channel a deployed pipeline would erase) fails here;
* **concentration**: the share of the perturbation carried by the most-perturbed joint and frame
  (:func:`engine.metrics.per_sample_summary`); a result carried mostly by one joint is flagged.

Perceptual metrics are then averaged over the re-checked successes only (as the papers report them), with the
failures counted separately (:func:`success_means`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from engine.devices import model_device

#: A result whose most-perturbed joint carries more than this share of the perturbation is flagged.
CONCENTRATION_WARNING = 0.5


@torch.no_grad()
def _logits(classifier, x: np.ndarray, device, batch_size: int = 256) -> torch.Tensor:
    from engine.modes import eval_mode

    out = []
    with eval_mode(classifier):
        for lo in range(0, len(x), batch_size):
            out.append(classifier(torch.as_tensor(x[lo : lo + batch_size], dtype=torch.float32).to(device)).cpu())
    return torch.cat(out) if out else torch.zeros(0, classifier.num_classes)


def recentre(x: np.ndarray, root: int) -> np.ndarray:
    """(N, 3, T, V, M) windows with the main performer's root joint subtracted in every frame (absent
    performers stay zero)."""
    present = np.any(x != 0, axis=(1, 3), keepdims=True)
    return np.where(present, x - x[:, :, :, root : root + 1, :1], 0.0).astype(np.float32)


def recheck(classifier, adversarial: np.ndarray, y: np.ndarray, *, strategy: str = "ab", top_n: int = 3,
            target: np.ndarray | None = None, device=None) -> dict[str, np.ndarray]:
    """Re-predict saved adversarial windows (N, 3, T, V, M): ``pred``, ``success`` and the same after
    re-centring outside the model (``pred_recentred``, ``success_recentred``), each (N,)."""
    from engine.attacks.common import strategy_success

    if device is None:
        device = model_device(classifier)
    adversarial = np.asarray(adversarial, dtype=np.float32)
    y_t = torch.as_tensor(np.asarray(y), dtype=torch.long)
    t_t = None if target is None else torch.as_tensor(np.asarray(target), dtype=torch.long)
    out: dict[str, np.ndarray] = {}
    for suffix, x in (("", adversarial), ("_recentred", recentre(adversarial, classifier.skeleton.root))):
        logits = _logits(classifier, x, device)
        out[f"pred{suffix}"] = logits.argmax(1).numpy() if len(logits) else np.zeros(0, np.int64)
        ok = strategy_success(logits, y_t, strategy, top_n, t_t) if len(logits) else torch.zeros(0, dtype=bool)
        out[f"success{suffix}"] = ok.numpy().astype(bool)
    return out


def warnings_for(success: np.ndarray, reported: np.ndarray, success_recentred: np.ndarray,
                 top_joint_share: np.ndarray, top_joint: np.ndarray, joint_names) -> list[str]:
    """Plain-language warnings a researcher must see next to a success rate (empty when all is well)."""
    notes = []
    n = len(success)
    if not n:
        return notes
    lost = int(np.sum(reported & ~success))
    if lost:
        notes.append(f"{lost} of {n} reported successes do not hold when the saved adversarial motion is predicted "
                     "again; the success rate counts only those that do")
    recentred_lost = int(np.sum(success & ~success_recentred))
    if recentred_lost:
        notes.append(f"{recentred_lost} of {int(success.sum())} successes disappear when the motion is re-centred on "
                     "its root joint: they depend on the root's position, which a centring pipeline erases")
    s = success.astype(bool)
    if s.any():
        share = float(np.mean(top_joint_share[s]))
        if share > CONCENTRATION_WARNING:
            joints = top_joint[s].astype(int)
            common = int(np.bincount(joints[joints >= 0]).argmax()) if (joints >= 0).any() else -1
            name = joint_names[common] if 0 <= common < len(joint_names) else "?"
            notes.append(f"one joint carries {share:.0%} of the perturbation on average (most often {name}); "
                         "a result concentrated on one joint is suspect")
    return notes


def success_means(per_sample: Mapping[str, np.ndarray], success: np.ndarray) -> dict[str, float | None]:
    """``mean_<metric>`` over the successful samples only (None when there is none)."""
    s = np.asarray(success, dtype=bool)
    out: dict[str, float | None] = {}
    for name, values in per_sample.items():
        if name == "top_joint":
            continue
        v = np.asarray(values, dtype=np.float64)[s]
        v = v[np.isfinite(v)]
        out[f"mean_{name}"] = float(np.mean(v)) if len(v) else None
    return out
