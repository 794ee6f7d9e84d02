"""Build a study's stimulus file: run the protocol's attacks through the engine, ahead of any participant.

``skelviz study prepare PROTOCOL --model CKPT --data PATH --out STIMULI.h5`` ends up in
:func:`prepare_stimuli`: clips are drawn from the data set (stratified over classes, seeded), each is
preprocessed exactly as the classifier's checkpoint says (:func:`engine.data.preprocess_clip`, first window),
and every method of ``[[prepare.methods]]`` is run on it with the registered attack
(:func:`engine.attacks.get_attack`). The clean window, each adversarial version and, when the protocol's catch
trials need it, a jittered version (white noise of ``jitter_std`` metres on every joint and frame) are stored
with their provenance: clip id, method, attack and parameters, true class, the model's prediction and whether
the attack succeeded, content hashes, and the hashes of the checkpoint and data files.

Classifiers take world-coordinate windows and centre them themselves (:mod:`engine.preprocessing`), so the
stimuli are exactly the motions the classifier judged and the attack produced, moving through space as they
were captured. An attacked stimulus's ``success`` is re-checked by predicting the stored motion again
(:mod:`engine.validity`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from engine import validity
from engine.data import Clip, map_clip
from engine.devices import model_device
from engine.errors import AttackError, StudyError
from engine.progress import ProgressFn
from studies.protocol import Protocol
from studies.stimuli import Stimulus, StimulusSet, file_sha256, read_stimuli, stimulus_id, write_stimuli

log = logging.getLogger(__name__)



def select_clips(clips: Sequence[Clip], class_names: Sequence[str], n: int, seed: int,
                 classes: Sequence[str] = ()) -> list[Clip]:
    """``n`` labelled clips, as evenly spread over the classes as the data allow, in a seeded order."""
    wanted = set(classes) if classes else set(class_names)
    unknown = sorted(set(classes) - set(class_names))
    if unknown:
        raise StudyError(f"[prepare] classes {unknown} are not classes of the model ({', '.join(class_names)})")
    by_class: dict[str, list[Clip]] = {}
    for c in clips:
        if c.label in wanted:
            by_class.setdefault(c.label, []).append(c)
    if not by_class:
        raise StudyError("no clip of the data set has a label the model knows; check --data and --model")
    rng = np.random.default_rng(seed)
    queues = {k: [v[i] for i in rng.permutation(len(v))] for k, v in sorted(by_class.items())}
    out: list[Clip] = []
    while len(out) < n and any(queues.values()):
        for label in sorted(queues):
            if queues[label] and len(out) < n:
                out.append(queues[label].pop(0))
    if len(out) < n:
        log.warning("only %d labelled clips available; the protocol asks for %d", len(out), n)
    return out


def _model_window(classifier, clip: Clip) -> np.ndarray:
    """The clip's first window as the classifier takes it: (1, 3, T, V, M), metres, world coordinates."""
    if not clip.skeleton.same_topology(classifier.skeleton):
        clip = map_clip(clip, classifier.skeleton)  # by joint names; a clear error when impossible
    x = classifier.preprocessing.windows(clip)[:1]
    return x.astype(np.float32)


def _positions(x: np.ndarray) -> np.ndarray:
    """(1, 3, T, V, M) → the main performer's (T, V, 3)."""
    return np.ascontiguousarray(np.asarray(x)[0, :, :, :, 0].transpose(1, 2, 0), dtype=np.float32)


def _build_attack(name: str, classifier, params: dict, cancel):
    from engine.attacks.base import build
    from engine.errors import SkelvizError

    params = dict(params)
    preset = params.pop("preset", None)
    try:
        return build(name, classifier, preset=preset, cancel=cancel, **params)
    except SkelvizError as exc:
        raise StudyError(f"[prepare.methods] {name}: {exc}") from None


def prepare_stimuli(
    protocol: Protocol,
    classifier,
    clips: Sequence[Clip],
    out: str | Path,
    *,
    class_names: Sequence[str] | None = None,
    meta: dict | None = None,
    progress: ProgressFn | None = None,
    cancel: Callable[[], bool] | None = None,
) -> StimulusSet:
    """Attack the protocol's clips and write the stimulus file ``out``; returns it read back and validated."""
    import torch

    spec = protocol.prepare
    if spec is None:
        raise StudyError(f"protocol {protocol.title!r} has no [prepare] table saying which attacks to run")
    produced = {"clean", "jitter"} | {m.name for m in spec.methods}
    missing = sorted(protocol.methods() - produced)
    if missing:
        raise StudyError(
            f"protocol {protocol.title!r} shows method(s) {missing} that [[prepare.methods]] does not produce"
        )
    needs_jitter = "jitter" in protocol.methods()
    names = list(classifier.class_names)
    chosen = select_clips(clips, names, spec.clips, spec.seed, spec.classes)
    fps = classifier.preprocessing.fps
    device = model_device(classifier)
    rng = np.random.default_rng(spec.seed)
    total = len(chosen) * (1 + len(spec.methods))
    done = 0
    stimuli: list[Stimulus] = []
    used_ids: set[str] = set()

    def predict(x: np.ndarray) -> int:
        probs = classifier.predict_proba(torch.from_numpy(x).to(device))
        return int(probs.argmax(-1)[0])

    for n, clip in enumerate(chosen):
        clip_id = clip.name or clip.title
        if clip_id in used_ids:
            clip_id = f"{clip_id}#{n}"
        used_ids.add(clip_id)
        label = clip.label
        y = names.index(label)
        x = _model_window(classifier, clip)
        clean_pred = predict(x)
        source = clip.provenance.source or ""
        clean_pos = _positions(x)
        stimuli.append(Stimulus(stimulus_id(clip_id, "clean"), clip_id, "clean", label, clean_pos, true_class=y,
                                prediction=names[clean_pred], predicted_class=clean_pred, source=source))
        if needs_jitter:
            jit = clean_pos + rng.normal(0.0, spec.jitter_std, clean_pos.shape).astype(np.float32)
            stimuli.append(Stimulus(stimulus_id(clip_id, "jitter"), clip_id, "jitter", label, jit, true_class=y,
                                    params={"std_m": spec.jitter_std}, source=source))
        done += 1
        if progress:
            progress(done, total, {"message": f"{clip_id}: clean"})
        for m in spec.methods:
            attack = _build_attack(m.attack, classifier, m.params, cancel)
            target = None
            if m.target is not None:
                if m.target not in names:
                    raise StudyError(f"[prepare.methods] {m.name}: target {m.target!r} is not a class of the model")
                if names.index(m.target) == y:
                    log.info("%s: skipping %s, its target is the clip's own class", clip_id, m.name)
                    continue
                target = torch.tensor([names.index(m.target)])
            try:
                result = attack(torch.from_numpy(x), torch.tensor([y]), target=target)
            except AttackError as exc:
                raise StudyError(f"{clip_id}: attack {m.attack} failed: {exc}") from None
            adv = result.adversarial.detach().cpu().numpy().astype(np.float32)
            strategy = (m.params.get("strategy") or ("sa" if target is not None else "ab"))
            checked = validity.recheck(classifier, adv, np.array([y]), strategy=strategy,
                                       top_n=int(m.params.get("top_n", 3)),
                                       target=None if target is None else target.numpy(), device=device)
            pred = int(checked["pred"][0])
            success = bool(checked["success"][0])
            params = {k: v for k, v in {**m.params, **(result.params or {})}.items() if k != "skeleton"}
            stimuli.append(Stimulus(
                stimulus_id(clip_id, m.name), clip_id, m.name, label, _positions(adv), true_class=y,
                attack=m.attack, params=params, prediction=names[pred], predicted_class=pred,
                success=int(success), source=source,
            ))
            done += 1
            if progress:
                progress(done, total, {"message": f"{clip_id}: {m.name} ({'succeeded' if success else 'failed'}, "
                                                  f"predicted {names[pred]})"})

    info = {"protocol_title": protocol.title, "protocol_sha256": protocol.sha256, **(meta or {})}
    write_stimuli(out, stimuli, skeleton=classifier.skeleton, fps=fps, class_names=names, meta=info)
    log.info("wrote %d stimuli of %d clips to %s", len(stimuli), len(chosen), out)
    return read_stimuli(out)


def provenance_meta(model_path: str | Path, data_path: str | Path) -> dict:
    """Paths and content hashes of the checkpoint and the data set (a folder's hash is left empty)."""
    model_path, data_path = Path(model_path), Path(data_path)
    return {
        "model": str(model_path.resolve()),
        "model_sha256": file_sha256(model_path) if model_path.is_file() else "",
        "data": str(data_path.resolve()),
        "data_sha256": file_sha256(data_path) if data_path.is_file() else "",
    }
