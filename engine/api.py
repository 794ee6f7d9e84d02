"""The narrow, Qt-free facade that the desktop app and the studies use.

Every function here delegates to the module that owns the work (``engine.io`` reads and writes files,
``engine.data`` preprocesses, ``engine.models`` loads classifiers, ``engine.attacks`` attacks,
``engine.metrics`` measures, ``engine.defenses`` defends); this module only adapts their results to what a
front end needs: plain numpy arrays, :class:`~engine.data.Clip` objects, progress callbacks that carry plain
Python values, and :class:`~engine.errors.SkelvizError` for everything a user can cause.

Nothing here keeps state between calls, so it is safe to call from worker threads.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.data import Clip, ClipDataset
from engine.devices import model_device
from engine.errors import AttackError, CheckpointError, DefenceError, SkelvizError, UnsupportedFormatError
from engine.progress import CancelFn, ProgressFn

log = logging.getLogger(__name__)


__all__ = [
    "AttackOutcome",
    "Deviations",
    "ParamSpec",
    "open_clip",
    "open_dataset",
    "demo_dataset",
    "demo_classifier",
    "load_classifier",
    "available_devices",
    "model_input",
    "predict",
    "attack_methods",
    "run_attack",
    "deviations",
    "export_clip",
    "export_formats",
    "defence_methods",
    "defence_params",
    "defence_presets",
    "apply_defence",
]


# -- data ----------------------------------------------------------------------------------------------------
def open_clip(path: str | Path, asf: str | Path | None = None) -> Clip:
    """Read one motion file (any format :func:`engine.io.load_clip` knows)."""
    from engine.io import load_clip

    return load_clip(path, asf=asf)


def open_dataset(path: str | Path, asf: str | Path | None = None, stats: str | Path | None = None) -> ClipDataset:
    """Read whatever ``path`` holds as a :class:`~engine.data.ClipDataset`: a labelled dataset (HDF5, SMART
    ``.npz``, ST-GCN ``.npy``, a folder) or a single motion file (a dataset of one clip). Its ``name`` is set
    (the file name when the file does not carry one) so a front end can list it."""
    from engine.io import load_dataset

    path = Path(path)
    kw: dict[str, Any] = {"asf": asf} if asf is not None else {}
    if stats is not None:  # a SMART .npz whose preprocess_core.npz (Xmean, Xstd) is kept elsewhere
        kw["stats"] = str(stats)
    dataset = load_dataset(path, **kw)
    if not dataset.name:
        dataset.name = path.stem or path.name
    if not dataset.source:
        dataset.source = str(path)
    return dataset


def demo_dataset(demo: str | None = None) -> ClipDataset:
    """A demo dataset shipped with skelviz: ``"cmu"`` (real motion capture, the default) or ``"synthetic"``
    (see :data:`engine.assets.DEMOS`). Its name is ``"<demo> demo"``."""
    from engine.assets import DEFAULT_DEMO, asset_path
    from engine.assets import demo as find_demo

    dataset = open_dataset(asset_path(find_demo(demo).dataset))
    dataset.name = f"{demo or DEFAULT_DEMO} demo"
    return dataset


def export_formats() -> dict[str, str]:
    """File suffix → description of the clip formats :func:`export_clip` writes."""
    return {".h5": "HDF5", ".bvh": "BVH", ".npz": "SMART .npz"}


def export_clip(clip: Clip, path: str | Path) -> Path:
    """Write ``clip`` to ``path``; the suffix chooses the format (see :func:`export_formats`)."""
    from engine.io import save_clip

    path = Path(path)
    if path.suffix.lower() not in export_formats():
        raise UnsupportedFormatError(
            f"cannot write {path.name}: choose one of {', '.join(export_formats())} as the file suffix"
        )
    save_clip(clip, path)
    return path


# -- classifiers ---------------------------------------------------------------------------------------------
def load_classifier(path: str | Path, device: str = "cpu"):
    """Load a checkpoint (any architecture, plain or defended) onto ``device`` in eval mode."""
    from engine.checkpoints import load_classifier as _load

    model = _load(path)
    return model.to(device).eval()


def demo_classifier(arch: str = "stgcn", device: str = "cpu", demo: str | None = None):
    """One of the demo checkpoints shipped with skelviz, trained on demo ``demo``'s dataset (default: the real
    CMU demo; ``"synthetic"`` for the synthetic one)."""
    from engine.assets import asset_path
    from engine.assets import demo as find_demo

    checkpoints = find_demo(demo).checkpoints
    if arch not in checkpoints:
        raise CheckpointError(f"no demo checkpoint {arch!r}; available: {', '.join(checkpoints)}")
    return load_classifier(asset_path(checkpoints[arch]), device)


def available_devices() -> list[str]:
    import torch

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def model_input(classifier, clip: Clip) -> Clip:
    """``clip`` as ``classifier`` takes it: mapped to its skeleton, resampled to its fps and cut to its first
    window (:meth:`Preprocessing.windows <engine.preprocessing.Preprocessing.windows>`), as a Clip in metres
    and **world coordinates**, so the app shows exactly the motion the classifier and the attack work on (the
    classifier centres and normalises it itself). Raises :class:`~engine.errors.MappingError` when the clip's
    joints cannot be mapped onto the classifier's skeleton.
    """
    from dataclasses import replace

    from engine.data import map_clip

    target = classifier.skeleton
    pre = classifier.preprocessing
    key = repr(sorted(pre.to_dict().items()))
    if clip.skeleton == target and clip.provenance.details.get("model_input") == key:
        return clip  # already the input of this preprocessing (e.g. an adversarial clip): use it as it is
    clip = map_clip(clip, target)
    x = pre.windows(clip)  # (W, 3, T, V, M)
    if not len(x):
        raise SkelvizError(f"{clip.title}: too short for the classifier's {pre.window}-frame window")
    bodies = x[0].transpose(3, 1, 2, 0)  # (M, T, V, 3)
    keep = [0] + [m for m in range(1, bodies.shape[0]) if np.any(bodies[m] != 0)]
    provenance = replace(clip.provenance, details={**clip.provenance.details, "model_input": key})
    return Clip.from_bodies(bodies[keep], target, pre.fps, label=clip.label, name=clip.title, provenance=provenance)


def _to_tensor(clip: Clip, num_bodies: int | None = None):
    """(M, T, V, 3) bodies → (1, 3, T, V, M) float tensor."""
    import torch

    bodies = clip.bodies
    if num_bodies is not None and bodies.shape[0] != num_bodies:
        if bodies.shape[0] > num_bodies:
            bodies = bodies[:num_bodies]
        else:
            pad = np.zeros((num_bodies - bodies.shape[0],) + bodies.shape[1:], np.float32)
            bodies = np.concatenate([bodies, pad])
    return torch.from_numpy(np.ascontiguousarray(bodies.transpose(3, 1, 2, 0)))[None].float()


def _num_bodies(classifier) -> int:
    return int(classifier.preprocessing.num_bodies)


def predict(classifier, clip: Clip, *, preprocessed: bool = False) -> np.ndarray:
    """Class probabilities (C,) that ``classifier`` gives ``clip``."""
    x_clip = clip if preprocessed else model_input(classifier, clip)
    x = _to_tensor(x_clip, _num_bodies(classifier)).to(model_device(classifier))
    return classifier.predict_proba(x)[0].detach().cpu().numpy().astype(np.float64)


def class_index(classifier, label: str | int | None) -> int | None:
    """The index of ``label`` among the classifier's classes (None when unknown)."""
    if label is None:
        return None
    if isinstance(label, (int, np.integer)):
        return int(label) if 0 <= int(label) < len(classifier.class_names) else None
    lowered = [n.lower() for n in classifier.class_names]
    return lowered.index(str(label).lower()) if str(label).lower() in lowered else None


# -- parameters ----------------------------------------------------------------------------------------------
# Forms come from each method's typed parameter dataclass (engine.params); ParamSpec is re-exported here.
from engine.params import ParamSpec  # noqa: E402

# -- attacks -------------------------------------------------------------------------------------------------
STRATEGY_PARAMS = ("strategy", "top_n", "target")


def attack_methods() -> list[str]:
    """Registered attack names, SMART first."""
    from engine.attacks import ATTACKS, get_attack

    try:
        get_attack("smart")  # importing the package registers the built-ins
    except AttackError:
        pass
    return sorted(ATTACKS, key=lambda n: (n != "smart", n))


def attack_info(method: str) -> dict:
    """What the front end needs to draw an attack's form: threat model, strategies, parameters."""
    from engine.attacks import get_attack
    from engine.params import presets, specs

    cls = get_attack(method)
    fields = specs(cls.Params)
    strategies = next((s.choices for s in fields if s.name == "strategy"), ())
    return {
        "name": method,
        "threat_model": cls.threat_model,
        "progress_unit": cls.progress_unit,
        "doc": (cls.__doc__ or "").strip().split("\n\n")[0],
        "strategies": tuple(strategies),
        "params": [s for s in fields if s.name not in STRATEGY_PARAMS],
        "has_top_n": any(s.name == "top_n" for s in fields),
        "presets": tuple(presets(cls.Params)),
    }


def attack_preset_values(method: str, preset: str) -> dict[str, Any]:
    """Every parameter value of attack ``method`` under ``preset`` (for filling a form)."""
    from engine.attacks import get_attack
    from engine.params import make_params, to_dict

    return to_dict(make_params(get_attack(method).Params, preset=preset, where=f"attack {method!r}"))


def defence_preset_values(method: str, preset: str) -> dict[str, Any]:
    """Every parameter value of defence ``method`` under ``preset`` (for filling a form)."""
    from engine.params import make_params, to_dict

    reg = _defence_registry()
    if method not in reg:
        raise DefenceError(f"unknown defence {method!r}; available: {', '.join(reg) or 'none'}")
    return to_dict(make_params(reg[method].Params, preset=preset, where=f"defence {method!r}"))


@dataclass
class AttackOutcome:
    """One clip's attack: the model-input clean clip, its adversarial twin, and what happened."""

    method: str
    clean: Clip
    adversarial: Clip
    success: bool
    iterations: int
    queries: int | None
    true_class: int
    clean_probs: np.ndarray
    adversarial_probs: np.ndarray
    history: dict[str, list[float]]
    params: dict[str, Any]
    metrics: dict[str, float]
    seconds: float
    #: validity (engine.validity): ``success_reported`` (the attack's own claim), ``success_recentred``,
    #: ``top_joint_share``, ``top_joint`` (name), ``top_frame_share``, ``warnings`` (list of sentences)
    diagnostics: dict[str, Any] = field(default_factory=dict)

    @property
    def clean_pred(self) -> int:
        return int(np.argmax(self.clean_probs))

    @property
    def adversarial_pred(self) -> int:
        return int(np.argmax(self.adversarial_probs))


def _plain(value: Any, index: int = 0) -> Any:
    """One sample's value of a per-iteration info entry, as a plain Python number (None if not scalar)."""
    try:
        import torch

        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return value.item()
        if value.ndim == 1 and value.shape[0] > index:
            return value[index].item()
        return None
    if isinstance(value, (list, tuple)):
        return _plain(np.asarray(value), index) if value and np.isscalar(value[0]) else None
    if isinstance(value, (int, float, np.number)):
        return value.item() if isinstance(value, np.number) else value
    return None


def _positions_from(value: Any) -> np.ndarray | None:
    """Main-performer positions (T, V, 3) from an (N, 3, T, V, M) tensor/array in a progress message."""
    try:
        import torch

        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, np.ndarray) and value.ndim == 5 and value.shape[1] == 3:
        return np.ascontiguousarray(value[0, :, :, :, 0].transpose(1, 2, 0), dtype=np.float32)
    return None


def _recording(classifier):
    """``classifier`` behind a transparent proxy that keeps the first sample of its last input and output.

    An attack sees the same parameters, mode and attributes (skeleton, class names, preprocessing ...); the
    front end gets the attack's current iterate and its class scores without the attack having to report
    them.
    """
    import torch
    from torch import nn

    class Recorder(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner
            # In the inner model's own mode: an attack restores the mode it found, and a new module is in train
            # mode, which would leave the shared classifier training (batch-norm statistics from one clip) and
            # spoil predictions running beside the attack or after it.
            self.train(inner.training)
            self.last_input: torch.Tensor | None = None
            self.last_logits: torch.Tensor | None = None

        def __getattr__(self, name: str):
            try:
                return super().__getattr__(name)
            except AttributeError:
                return getattr(self._modules["inner"], name)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.inner(x)
            self.last_input, self.last_logits = x[:1].detach(), out[:1].detach()
            return out

    return Recorder(classifier)


def _start_pool(classifier, pool, exclude=None, limit: int = 64):
    """``(clips (P, 3, T, V, M), labels (P,))`` of the labelled clips of ``pool`` as ``classifier`` takes them
    (its first window each), at most ``limit``; None when none is usable."""
    import torch

    xs, ys = [], []
    for c in pool:
        if len(xs) >= limit:
            break
        if c is exclude or c.label is None:
            continue
        k = class_index(classifier, c.label)
        if k is None:
            continue
        try:
            xs.append(_to_tensor(model_input(classifier, c), _num_bodies(classifier)))
        except SkelvizError as exc:
            log.debug("start pool: %s skipped (%s)", c.title, exc)
            continue
        ys.append(k)
    if not xs:
        return None
    return torch.cat(xs), torch.as_tensor(ys, dtype=torch.long)


def run_attack(
    method: str,
    classifier,
    clip: Clip,
    params: dict | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    *,
    strategy: str | None = None,
    target: int | str | None = None,
    top_n: int | None = None,
    true_class: int | str | None = None,
    preprocessed: bool = False,
    live_every: float = 0.1,
    preset: str | None = None,
    pool=None,
) -> AttackOutcome:
    """Attack one clip with ``method`` and report progress as plain values.

    ``clip`` is preprocessed for the classifier first (:func:`model_input`) unless ``preprocessed``; the attack pushes it away from
    ``true_class`` (default: the clip's label if the classifier knows it, else the clean prediction).
    ``progress(done, total, info)`` receives every iteration's scalar terms (``Lc``, ``Lp`` ..., ``pred``) and,
    at most every ``live_every`` seconds, ``info["adversarial"]`` (T, V, 3) positions and ``info["probs"]``
    (C,) class probabilities of the current adversarial clip. ``cancel()`` is checked every iteration
    (raising :class:`~engine.errors.CancelledError`). Raises :class:`AttackError` for impossible requests.

    ``pool``: labelled clips (a ClipDataset or a list of Clips, e.g. the dataset the clip came from) that a
    decision-based attack may start from (BASAR's ``starts``): a targeted BASAR needs a clip of the target
    class to start from. Unused by attacks that take no start clips.
    """
    import torch

    from engine.attacks import get_attack

    cls = get_attack(method)
    clean = clip if preprocessed else model_input(classifier, clip)
    x = _to_tensor(clean, _num_bodies(classifier))
    clean_probs = predict(classifier, clean, preprocessed=True)
    y = class_index(classifier, true_class if true_class is not None else clean.label)
    if y is None:
        y = int(np.argmax(clean_probs))
    from engine.params import specs

    kwargs = dict(params or {})
    names = {s.name for s in specs(cls.Params)}  # skeleton and fps come from the model itself
    if strategy is not None and "strategy" in names:
        kwargs["strategy"] = strategy
    if top_n is not None and "top_n" in names:
        kwargs["top_n"] = int(top_n)
    t_index = None
    if target is not None and target != "":
        t_index = class_index(classifier, target)
        if t_index is None:
            raise AttackError(f"unknown target class {target!r}; the classifier's classes are {classifier.class_names}")
        if t_index == y:
            raise AttackError(
                f"the target class {classifier.class_names[t_index]!r} is the clip's true class; choose another"
            )
    elif (strategy or "").lower() == "sa":
        raise AttackError("the SA strategy needs a target class")

    device = model_device(classifier)
    recorder = _recording(classifier)
    last_live = [0.0]

    def on_progress(done: int, total: int, raw: dict) -> None:
        if progress is None:
            return
        out: dict[str, Any] = {}
        adv_tensor, probs = None, None
        for key, value in (raw or {}).items():
            if key in ("adversarial", "x_adv", "adv"):
                adv_tensor = value
            elif key in ("probs", "probabilities"):
                probs = value
            else:
                v = _plain(value)
                if v is not None:
                    out[key] = v
        now = time.monotonic()
        if now - last_live[0] >= live_every or done >= total:
            last_live[0] = now
            # Attacks that do not report their iterate are observed through the model's last forward pass.
            if adv_tensor is None and recorder.last_input is not None:
                adv_tensor, probs = recorder.last_input, torch.softmax(recorder.last_logits, dim=-1)
            pos = _positions_from(adv_tensor) if adv_tensor is not None else None
            if pos is not None:
                out["adversarial"] = pos
                if probs is None:
                    with torch.no_grad():
                        probs = classifier.predict_proba(adv_tensor[:1].to(device))
                probs = probs.detach().cpu().numpy() if isinstance(probs, torch.Tensor) else np.asarray(probs)
                out["probs"] = np.asarray(probs, np.float64).reshape(-1, len(classifier.class_names))[0]
        progress(done, total, out)

    from engine.attacks.base import build

    if pool is not None and "starts" in cls.resources:
        starts = _start_pool(classifier, pool, exclude=clip)
        if starts is not None:
            kwargs["starts"], kwargs["start_labels"] = starts
    attack = build(method, recorder, preset=preset, progress=on_progress, cancel=cancel, **kwargs)
    t0 = time.perf_counter()
    result = attack(x, torch.tensor([y]), target=None if t_index is None else torch.tensor([t_index]))
    seconds = time.perf_counter() - t0
    adv_pos = _positions_from(result.adversarial)
    adv_bodies = result.adversarial[0].detach().cpu().numpy().transpose(3, 1, 2, 0)[: clean.num_bodies]
    adversarial = clean.with_bodies(
        np.ascontiguousarray(adv_bodies, dtype=np.float32),
        name=f"{clean.title} ({method})",
    )
    assert adv_pos is not None
    adv_probs = predict(classifier, adversarial, preprocessed=True)
    history: dict[str, list[float]] = {}
    for key, rows in (result.history or {}).items():
        vals = [_plain(r) for r in rows]
        if vals and all(v is not None for v in vals):
            history[key] = [float(v) for v in vals]
    from engine import metrics, validity

    queries = None if result.queries is None else int(result.queries.reshape(-1)[0])
    params_used = dict(attack.params)
    adv_x = _to_tensor(adversarial, _num_bodies(classifier)).numpy()
    used_strategy = str(params_used.get("strategy") or strategy or ("sa" if t_index is not None else "ab"))
    checked = validity.recheck(classifier, adv_x, np.array([y]), strategy=used_strategy,
                               top_n=int(params_used.get("top_n") or top_n or 3),
                               target=None if t_index is None else np.array([t_index]))
    per = metrics.per_sample_summary(x.numpy(), adv_x, clean.skeleton, clean.fps)
    reported = bool(result.success.reshape(-1)[0])
    success = bool(checked["success"][0])
    top = int(per["top_joint"][0])
    diagnostics = {
        "success_reported": reported,
        "success_recentred": bool(checked["success_recentred"][0]),
        "top_joint_share": float(per["top_joint_share"][0]),
        "top_joint": clean.skeleton.joint_names[top] if top >= 0 else None,
        "top_frame_share": float(per["top_frame_share"][0]),
        "warnings": validity.warnings_for(
            np.array([success]), np.array([reported]), checked["success_recentred"], per["top_joint_share"],
            per["top_joint"], clean.skeleton.joint_names),
    }
    return AttackOutcome(
        method=method,
        clean=clean,
        adversarial=adversarial,
        success=success,
        iterations=int(result.iterations.reshape(-1)[0]),
        queries=queries,
        true_class=y,
        clean_probs=clean_probs,
        adversarial_probs=adv_probs,
        history=history,
        params=params_used,
        metrics=metrics.summary(clean.bodies, adversarial.bodies, clean.skeleton, clean.fps),
        seconds=seconds,
        diagnostics=diagnostics,
    )


# -- deviations ----------------------------------------------------------------------------------------------
@dataclass
class Deviations:
    """How far one clip moved from another, frame by frame (both (T, V, 3), same skeleton and fps), for
    display. Computed by :mod:`engine.metrics`; every array has T rows so frame t indexes them all.

    ``bone_length`` (T, B): absolute bone-length change in metres; ``bone_length_rel`` (T, B): relative change
    (0 for bones too short to have one, see ``engine.metrics``); ``position`` (T, V): joint displacement in
    metres; ``velocity`` (T, V) and ``acceleration`` (T, V): deviation of the joints' velocities (m/s) and
    accelerations (m/s²), repeated at the first one or two frames where the derivative is undefined.
    """

    bone_length: np.ndarray
    bone_length_rel: np.ndarray
    position: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray


def _pad_front(a: np.ndarray, rows: int) -> np.ndarray:
    if a.shape[0] >= rows:
        return a
    if a.shape[0] == 0:
        return np.zeros((rows,) + a.shape[1:], a.dtype)
    return np.concatenate([np.repeat(a[:1], rows - a.shape[0], axis=0), a])


def deviations(clean: Clip, adversarial: Clip, skeleton=None, fps: float | None = None) -> Deviations:
    """Per-frame deviations of ``adversarial`` from ``clean`` (see :class:`Deviations`)."""
    from engine import metrics

    skeleton = skeleton or clean.skeleton
    fps = float(fps or clean.fps)
    a, b = clean.positions, adversarial.positions
    if a.shape != b.shape:
        raise SkelvizError(
            f"cannot compare clips of shapes {a.shape} and {b.shape}: they need the same frames and joints"
        )
    t = a.shape[0]
    absolute, relative = metrics.bone_length_deviation(a, b, skeleton)

    def f32(x):
        return np.ascontiguousarray(x, dtype=np.float32)

    return Deviations(
        bone_length=f32(absolute),
        bone_length_rel=f32(np.nan_to_num(relative, nan=0.0)),
        position=f32(metrics.joint_displacement(a, b)),
        velocity=f32(_pad_front(metrics.velocity_deviation(a, b, fps), t)),
        acceleration=f32(_pad_front(metrics.acceleration_deviation(a, b, fps), t)),
    )


# -- defences ------------------------------------------------------------------------------------------------
def _defence_registry() -> dict:
    try:
        import engine.defenses as defenses
    except ImportError:  # pragma: no cover
        return {}
    return dict(getattr(defenses, "DEFENCES", None) or getattr(defenses, "DEFENSES", None) or {})


def defence_methods() -> list[str]:
    """Registered defence names, BEAT first (empty when no defence is available in this build)."""
    return sorted(_defence_registry(), key=lambda n: (n != "beat", n))


def defence_params(method: str) -> list[ParamSpec]:
    """The form fields of defence ``method`` (from its typed parameters, :mod:`engine.params`)."""
    from engine.params import specs

    reg = _defence_registry()
    if method not in reg:
        raise DefenceError(f"unknown defence {method!r}; available: {', '.join(reg) or 'none'}")
    return specs(reg[method].Params)


def defence_presets(method: str) -> tuple[str, ...]:
    """Named presets of defence ``method`` (``"default"`` first)."""
    from engine.params import presets

    reg = _defence_registry()
    if method not in reg:
        raise DefenceError(f"unknown defence {method!r}; available: {', '.join(reg) or 'none'}")
    return tuple(presets(reg[method].Params))


def apply_defence(
    method: str,
    classifier,
    dataset,
    params: dict | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    preset: str | None = None,
):
    """Harden ``classifier`` with defence ``method`` trained on ``dataset`` (a ClipDataset or WindowSet);
    returns the defended classifier (``classifier`` itself is not changed). See :mod:`engine.defenses`."""
    from engine.defenses.common import build

    reg = _defence_registry()
    if method not in reg:
        raise DefenceError(f"unknown defence {method!r}; available: {', '.join(reg) or 'none'}")
    defence = build(method, classifier, preset=preset, progress=progress, cancel=cancel, **dict(params or {}))
    return defence.fit(dataset)
