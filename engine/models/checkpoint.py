"""Classifier checkpoints: one file, loaded with ``torch.load(weights_only=True)`` (a checkpoint is untrusted).

A checkpoint is a plain dict of tensors, strings, numbers, lists and dicts:

``format``        ``"skelviz-classifier"``
``version``       :data:`FORMAT_VERSION`
``arch``          registry name (``"stgcn"``, ``"ctrgcn"`` …); ``arch_kwargs`` its constructor keywords
``skeleton``      :meth:`Skeleton.to_dict` of the skeleton the network was built for
``class_names``   the output classes, in order
``mean``/``std``  the input normalisation (of the spatially preprocessed input), broadcastable to (N, C, T, V, M)
``preprocessing`` :meth:`Preprocessing.to_dict <engine.preprocessing.Preprocessing.to_dict>`: fps, window,
                  stride, centre, face, num_bodies, normalisation (format 1 stored an untyped dict with
                  ``root_centre``; it is converted on loading, exactly)
``meta``          training record (epochs, seed, accuracy, source …)
``state_dict``    the network's weights

Also here: importing state dicts written by the official ST-GCN, CTR-GCN and MS-G3D code bases
(:func:`import_official`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from engine.errors import CheckpointError, SkelvizError
from engine.models.base import Classifier, build_model
from engine.plain import to_plain
from engine.preprocessing import Preprocessing
from engine.registry import Registry
from engine.skeletons import Skeleton
from engine.validation import check_weights, looks_like_torch_file

log = logging.getLogger(__name__)

FORMAT_TAG = "skelviz-classifier"
FORMAT_VERSION = 2  # 2: typed Preprocessing, world-coordinate input (1 is read and converted)


def _refuse(value: Any) -> Any:
    raise CheckpointError(f"cannot store a {type(value).__name__} in a checkpoint ({value!r})")


def _plain(value: Any) -> Any:
    """Plain data (tensors kept) that ``weights_only`` can read back; anything else is refused."""
    return to_plain(value, tensors="keep", unknown=_refuse)


def classifier_to_dict(clf: Classifier) -> dict[str, Any]:
    return {
        "format": FORMAT_TAG,
        "version": FORMAT_VERSION,
        "arch": clf.arch,
        "arch_kwargs": _plain(clf.arch_kwargs),
        "skeleton": clf.skeleton.to_dict(),
        "class_names": list(clf.class_names),
        "mean": clf.mean.detach().cpu().clone(),
        "std": clf.std.detach().cpu().clone(),
        "preprocessing": _plain(clf.preprocessing.to_dict()),
        "meta": _plain(clf.meta),
        "state_dict": {k: v.detach().cpu().clone() for k, v in clf.net.state_dict().items()},
        # a defended model (engine.defenses: BEAT, smoothing) adds its own section; the base stays loadable
        **({"defence": _plain(clf.defence_state())} if callable(getattr(clf, "defence_state", None)) else {}),
    }


def save_classifier(clf: Classifier, path: str | Path) -> Path:
    """Write ``clf`` to ``path`` (parent folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    torch.save(classifier_to_dict(clf), tmp)
    tmp.replace(path)  # a crash mid-write never leaves a truncated checkpoint under the real name
    return path


def _read(path: Path, map_location) -> Any:
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; give the checkpoint file (.pt)")
    try:
        if not looks_like_torch_file(path):
            raise CheckpointError(f"{path}: not a readable checkpoint (not a file written by torch.save)")
        return torch.load(path, map_location=map_location, weights_only=True)
    except SkelvizError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch.load raises anything (IndexError, EOFError …) on hostile bytes
        text = str(exc).strip()
        first = f"{type(exc).__name__}: {text.splitlines()[0][:200]}" if text else type(exc).__name__
        raise CheckpointError(
            f"{path}: not a readable checkpoint (corrupt, truncated, or it holds objects other than tensors and "
            f"plain data, which are refused for safety): {first}"
        ) from None


def _ints(value: Any) -> Iterable[int]:
    """Every integer in an architecture argument (lists and dicts searched; booleans are not numbers here)."""
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _ints(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _ints(v)


def _check_architecture(arch: str, skeleton: Skeleton, num_classes: int, arch_kwargs: dict[str, Any],
                        state: Any, where: str) -> None:
    """Refuse recorded architecture arguments that do not describe the stored weights, before allocating.

    A checkpoint is untrusted: its ``arch_kwargs`` could ask for a network of terabytes. The network is first
    built on the ``meta`` device (shapes only, no memory), after a bound on its integer arguments that keeps even
    that cheap, and its parameter names and shapes must be those of the stored state dict, so the real network is
    never larger than the weights the file holds.
    """
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{where}: the checkpoint's weights are not a state dict of tensors; it is damaged")
    if not 0 < num_classes <= 1_000_000:
        raise CheckpointError(f"{where}: the checkpoint lists {num_classes} classes; it is damaged")
    # Every width, block count and kernel size of the known architectures is at most the largest tensor dimension
    # or the number of tensors stored (measured over every preset); 16× that leaves room for architectures to come.
    largest = max([len(state), *(max(t.shape, default=1) for t in state.values())])
    bound = 16 * largest + 1024
    too_large = [(k, v) for k, v in arch_kwargs.items() if any(i > bound for i in _ints(v))]
    if too_large:
        name, value = too_large[0]
        raise CheckpointError(
            f"{where}: architecture argument {name}={value!r} is out of proportion to the stored weights (largest "
            f"dimension {largest}); the checkpoint is damaged or not what it claims to be"
        )
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in build_model(arch, skeleton, num_classes, **arch_kwargs).state_dict().items()}
    stored = {k: tuple(v.shape) for k, v in state.items()}
    missing, unexpected = sorted(set(shapes) - set(stored)), sorted(set(stored) - set(shapes))
    if missing or unexpected:
        raise CheckpointError(
            f"{where}: the weights do not fit a {arch} network with these arguments "
            f"(missing {missing[:5]}, unexpected {unexpected[:5]}); the file is damaged "
            "or was written by an incompatible version"
        )
    wrong = [k for k in shapes if shapes[k] != stored[k]]
    if wrong:
        k = wrong[0]
        raise CheckpointError(
            f"{where}: the weights do not fit the recorded architecture: {k} is {list(stored[k])} in the file but "
            f"{list(shapes[k])} for {arch} with {arch_kwargs} ({len(wrong)} tensor(s) differ); the file is damaged"
        )


def classifier_from_dict(d: Any, where: str = "checkpoint") -> Classifier:
    if not isinstance(d, Mapping) or d.get("format") != FORMAT_TAG:
        hint = ""
        if isinstance(d, Mapping) and all(isinstance(v, torch.Tensor) for v in d.values()):
            hint = (" It looks like a bare state dict: if it comes from the official ST-GCN, CTR-GCN or MS-G3D code, "
                    "convert it with `skelviz import-checkpoint`.")
        raise CheckpointError(f"{where}: not a skelviz classifier checkpoint.{hint}")
    version = d.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{where}: checkpoint format version {version!r} is newer than this skelviz reads ({FORMAT_VERSION}); "
            "upgrade skelviz"
        )
    try:
        skeleton = Skeleton.from_dict(d["skeleton"])
        class_names = [str(c) for c in d["class_names"]]
        arch, arch_kwargs = str(d["arch"]), dict(d.get("arch_kwargs") or {})
        state = d["state_dict"]
        mean, std = d["mean"], d["std"]
    except SkelvizError as exc:
        raise CheckpointError(f"{where}: bad skeleton description: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{where}: the checkpoint lacks a field or holds one of the wrong type "
                              f"({type(exc).__name__}: {exc}); it is damaged") from None
    for name, value in (("mean", mean), ("std", std)):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise CheckpointError(f"{where}: the input normalisation {name} is not a floating-point tensor; "
                                  "the checkpoint is damaged")
    try:
        _check_architecture(arch, skeleton, len(class_names), arch_kwargs, state, where)
    except TypeError as exc:
        raise CheckpointError(
            f"{where}: architecture {arch!r} cannot be built with the recorded arguments {arch_kwargs}: {exc}"
        ) from None
    net = build_model(arch, skeleton, len(class_names), **arch_kwargs)
    net.load_state_dict(state, strict=True)  # names and shapes were checked on the meta device
    try:
        stored = dict(d.get("preprocessing") or {})
        if version < 2 and stored.get("num_bodies") is None and arch_kwargs.get("num_person"):
            stored["num_bodies"] = int(arch_kwargs["num_person"])  # format 1 fell back on the network's width
        preprocessing = Preprocessing.from_dict(stored, where, legacy=version < 2)
    except SkelvizError as exc:
        raise CheckpointError(str(exc)) from None
    if version < 2:
        log.info("%s: format-%d checkpoint; its preprocessing %s is now %s (root centring inside the model)",
                 where, version, dict(d.get("preprocessing") or {}), preprocessing)
    clf = Classifier(net, class_names, mean=mean, std=std, preprocessing=preprocessing,
                     arch=arch, arch_kwargs=arch_kwargs, meta=dict(d.get("meta") or {}))
    if d.get("defence") is not None:  # a defended checkpoint: rebuilt by the defence that wrote it
        clf = _defended(clf, d["defence"], where)
    check_weights(clf, where)  # NaN/Inf weights, zero std: refused here so every front end is protected
    return clf.eval()


#: How a defended model is rebuilt from its checkpoint section, by defence name. The defences register their
#: defended classes here (``engine.defenses``: BEAT, smoothing), so this module never imports them; load
#: defended checkpoints with :func:`engine.checkpoints.load_classifier`, which imports the defences first.
DEFENDED_MODELS: Registry = Registry("defended model", CheckpointError, name_attribute="defence_name")


def register_defended_model(name: str):
    """Class decorator: ``cls.from_state(base, section, where)`` rebuilds defence ``name``'s model."""
    return DEFENDED_MODELS.register(name)


def _defended(base: Classifier, section: Any, where: str) -> Classifier:
    if not isinstance(section, Mapping) or "method" not in section:
        raise CheckpointError(f"{where}: the defence section is damaged (no method)")
    method = str(section["method"])
    if method not in DEFENDED_MODELS:
        raise CheckpointError(
            f"{where}: the model is defended with {method!r}, which this skelviz does not know "
            f"(known: {', '.join(sorted(DEFENDED_MODELS)) or 'none loaded'}); load it with "
            "engine.checkpoints.load_classifier, or upgrade skelviz"
        )
    return DEFENDED_MODELS[method].from_state(base, dict(section), where)


def load_classifier(path: str | Path, map_location: str | torch.device | None = None) -> Classifier:
    """Read a checkpoint written by :func:`save_classifier`; the classifier comes back in eval mode.

    Anything wrong with the file (unreadable, damaged, weights that do not fit, NaN/Inf weights, a zero
    normalisation std) is a :class:`CheckpointError` naming ``path`` and what is wrong.
    """
    path = Path(path)
    data = _read(path, map_location or "cpu")
    try:
        return classifier_from_dict(data, str(path))
    except SkelvizError as exc:
        if str(path) in str(exc):
            raise
        raise CheckpointError(f"{path}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - building from an untrusted file may raise anything: the file's fault
        log.debug("building the classifier of %s failed", path, exc_info=True)
        raise CheckpointError(
            f"{path}: cannot build the classifier it describes ({type(exc).__name__}: {str(exc)[:200]}); the "
            "checkpoint is damaged or was written by an incompatible version"
        ) from None


def check_compatible(clf: Classifier, skeleton: Skeleton | None = None,
                     class_names: Iterable[str] | None = None) -> None:
    """Raise :class:`CheckpointError` unless ``clf`` suits data of ``skeleton`` with ``class_names``."""
    if skeleton is not None and not clf.skeleton.same_topology(skeleton):
        raise CheckpointError(
            f"the classifier was trained on skeleton {clf.skeleton.name!r} ({clf.skeleton.num_joints} joints) but "
            f"the data uses {skeleton.name!r} ({skeleton.num_joints} joints); map the data to "
            f"{clf.skeleton.name!r} (engine.data.map_clip) or choose a checkpoint trained on {skeleton.name!r}"
        )
    if class_names is not None:
        theirs, ours = [str(c) for c in class_names], list(clf.class_names)
        if theirs != ours:
            if sorted(theirs) == sorted(ours):
                detail = "the same classes in another order"
            else:
                missing = sorted(set(theirs) - set(ours))
                extra = sorted(set(ours) - set(theirs))
                detail = f"the data has {missing or 'no'} classes the classifier lacks"
                detail += f", the classifier has {extra or 'no'} classes the data lacks"
            raise CheckpointError(
                f"the classifier's classes {ours} differ from the data's {theirs} ({detail}); use a checkpoint "
                "trained on this class set"
            )


# -- official code bases --------------------------------------------------------------------------------------------
# Importable: ST-GCN (github.com/yysijie/st-gcn, net/st_gcn.py), CTR-GCN (Uason-Chen/CTR-GCN, model/ctrgcn.py) and
# MS-G3D (kenziyuliu/MS-G3D, model/msg3d.py) state dicts, with or without DataParallel's "module." prefix, bare or
# under a "state_dict"/"model"/"weights" key. The networks here mirror their module layout, so import is a
# key-prefix mapping (ST-GCN's 1×1-conv classifier "fcn" becomes the linear "fc") plus shape inference and checks.
# Their NTU graphs join each hand tip to the thumb and the thumb to the hand; for ntu25 that wiring is kept.
OFFICIAL_ARCHS = ("stgcn", "ctrgcn", "msg3d")
_DEFAULT_WINDOW = {"stgcn": 300, "ctrgcn": 64, "msg3d": 300}


def official_graph_parents(skeleton: Skeleton) -> list[int] | None:
    """Parents of the graph the official code bases use for this layout (None: the skeleton's own)."""
    if skeleton.name != "ntu25" or skeleton.num_joints != 25:
        return None
    parents = list(skeleton.parents)
    for tip, thumb, hand in (("HandTipLeft", "ThumbLeft", "HandLeft"), ("HandTipRight", "ThumbRight", "HandRight")):
        parents[skeleton.index(tip)] = skeleton.index(thumb)
        parents[skeleton.index(thumb)] = skeleton.index(hand)
    return parents


def _unwrap(obj: Any, where: str) -> dict[str, torch.Tensor]:
    for key in ("state_dict", "model", "weights", "model_state_dict"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{where}: expected a state dict (parameter names → tensors)")
    return {k.split("module.", 1)[-1] if k.startswith("module.") else k: v for k, v in obj.items()}


def _count(state: Mapping[str, torch.Tensor], prefix: str, sep: str = ".") -> int:
    n = 0
    while any(k.startswith(f"{prefix}{n}{sep}") or k == f"{prefix}{n}" for k in state):
        n += 1
    return n


def _need(state: Mapping[str, torch.Tensor], key: str, arch: str) -> torch.Tensor:
    if key not in state:
        raise CheckpointError(
            f"this is not an official {arch} state dict: it has no {key!r} (its first keys: {list(state)[:6]})"
        )
    return state[key]


def _num_person(state, v: int, skeleton: Skeleton, arch: str) -> int | None:
    channels = _need(state, "data_bn.weight", arch).shape[0]
    if channels % (3 * v):
        raise CheckpointError(
            f"data_bn has {channels} channels, not a multiple of 3 × {v} joints: the checkpoint was trained on another "
            f"skeleton than {skeleton.name!r}"
        )
    return channels // (3 * v)


def _official_stgcn(state, skeleton: Skeleton) -> tuple[dict, dict]:
    v = skeleton.num_joints
    a = _need(state, "A", "ST-GCN")
    if a.shape[1:] != (v, v):
        raise CheckpointError(f"the ST-GCN graph is {tuple(a.shape[1:])}, but skeleton {skeleton.name!r} has {v} joints")
    k = a.shape[0]
    if k != 3:
        raise CheckpointError(f"only the 'spatial' partition strategy (3 subsets) is supported; this graph has {k}")
    n_blocks = _count(state, "st_gcn_networks.")
    if _need(state, "data_bn.weight", "ST-GCN").shape[0] != 3 * v:
        raise CheckpointError(f"data_bn does not match 3 × {v} joints: trained on another skeleton")
    kwargs = {
        "base_channels": state["st_gcn_networks.0.gcn.conv.weight"].shape[0] // k,
        "num_blocks": n_blocks,
        "temporal_kernel": state["st_gcn_networks.0.tcn.2.weight"].shape[2],
        "edge_importance": "edge_importance.0" in state,
    }
    mapped = {key: val for key, val in state.items() if not key.startswith("fcn.")}
    w = _need(state, "fcn.weight", "ST-GCN")
    mapped["fc.weight"] = w.reshape(w.shape[0], w.shape[1])
    mapped["fc.bias"] = state["fcn.bias"]
    return kwargs, mapped


def _official_ctrgcn(state, skeleton: Skeleton) -> tuple[dict, dict]:
    v = skeleton.num_joints
    n_blocks = 0
    while f"l{n_blocks + 1}.gcn1.alpha" in state:
        n_blocks += 1
    if not n_blocks:
        raise CheckpointError("this is not an official CTR-GCN state dict: no 'l1.gcn1.alpha'")
    pa = _need(state, "l1.gcn1.PA", "CTR-GCN")
    if pa.shape[1:] != (v, v):
        raise CheckpointError(f"the CTR-GCN graph is {tuple(pa.shape[1:])}, but skeleton {skeleton.name!r} has {v} joints")
    n_branches = _count(state, "l1.tcn1.branches.")
    kwargs = {
        "base_channels": state["l1.gcn1.convs.0.conv3.weight"].shape[0],
        "num_blocks": n_blocks,
        "num_person": _num_person(state, v, skeleton, "CTR-GCN"),
        "kernel_size": state["l1.tcn1.branches.0.3.conv.weight"].shape[2],
        "dilations": list(range(1, n_branches - 1)),
    }
    return kwargs, dict(state)


def _official_msg3d(state, skeleton: Skeleton) -> tuple[dict, dict]:
    v = skeleton.num_joints
    a_res = _need(state, "sgcn1.0.A_res", "MS-G3D")
    if a_res.shape[1] != v:
        raise CheckpointError(f"the MS-G3D graph has {a_res.shape[1]} joints, but {skeleton.name!r} has {v}")
    windows = []
    while f"gcn3d1.gcn3d.{len(windows)}.out_conv.weight" in state:
        windows.append(state[f"gcn3d1.gcn3d.{len(windows)}.out_conv.weight"].shape[3])
    if not windows:
        raise CheckpointError("this is not an official MS-G3D state dict: no 'gcn3d1.gcn3d.0.out_conv.weight'")
    g3d = state["gcn3d1.gcn3d.0.gcn3d.1.A_res"]
    kwargs = {
        "base_channels": _need(state, "fc.weight", "MS-G3D").shape[1] // 4,
        "num_gcn_scales": a_res.shape[0] // v,
        "num_g3d_scales": g3d.shape[0] // (windows[0] * v),
        "window_sizes": windows,
        "num_person": _num_person(state, v, skeleton, "MS-G3D"),
    }
    return kwargs, dict(state)


_OFFICIAL = {"stgcn": _official_stgcn, "ctrgcn": _official_ctrgcn, "msg3d": _official_msg3d}


def import_official(
    arch: str,
    weights: str | Path | Mapping[str, torch.Tensor],
    skeleton: Skeleton,
    class_names: list[str],
    *,
    preprocessing: dict[str, Any] | None = None,
) -> Classifier:
    """A :class:`Classifier` from a state dict trained with an official code base (see :data:`OFFICIAL_ARCHS`).

    The official models normalise their input themselves (``data_bn``), so the classifier's mean/std are 0/1;
    ``preprocessing`` should describe how that code base prepared its data (fps, window, root centring): by
    default 30 fps, the code base's usual window and no root centring (``centre="none"``: raw camera
    coordinates in metres), one body per sample unless the weights say more.
    """
    if arch not in _OFFICIAL:
        raise CheckpointError(f"importing {arch!r} is not supported; supported: {', '.join(OFFICIAL_ARCHS)}")
    where = str(weights) if not isinstance(weights, Mapping) else "state dict"
    raw = _read(Path(weights), "cpu") if not isinstance(weights, Mapping) else weights
    state = _unwrap(raw, where)
    kwargs, mapped = _OFFICIAL[arch](state, skeleton)
    num_classes = mapped["fc.weight"].shape[0]
    if num_classes != len(class_names):
        raise CheckpointError(
            f"{where}: the classifier has {num_classes} outputs but {len(class_names)} class names were given"
        )
    parents = official_graph_parents(skeleton)
    if parents is not None:
        kwargs["graph_parents"] = parents
    net = build_model(arch, skeleton, num_classes, **kwargs)
    try:
        result = net.load_state_dict(mapped, strict=False)
    except RuntimeError as exc:
        raise CheckpointError(f"{where}: parameter shapes do not match an official {arch} layout: {exc}") from None
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise CheckpointError(
            f"{where}: not an official {arch} layout skelviz can map (missing {missing[:5]}, "
            f"unexpected {result.unexpected_keys[:5]})"
        )
    prep = {"fps": 30.0, "window": _DEFAULT_WINDOW[arch], "centre": "none",
            # the official NTU pipelines feed two bodies (the second zero when absent)
            "num_bodies": int(kwargs.get("num_person") or (2 if skeleton.name == "ntu25" else 1))}
    prep.update(preprocessing or {})
    meta = {"imported_from": where, "official_code": arch}
    return Classifier(net, list(class_names), preprocessing=prep, arch=arch, arch_kwargs=kwargs, meta=meta).eval()


def to_official_state_dict(net) -> dict[str, torch.Tensor]:
    """The network's weights under the official code base's names (the inverse of :func:`import_official`)."""
    arch = getattr(net, "arch_name", "")
    if arch not in _OFFICIAL:
        raise CheckpointError(f"no official layout for {arch!r}; supported: {', '.join(OFFICIAL_ARCHS)}")
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    if arch == "stgcn":
        w = state.pop("fc.weight")
        state["fcn.weight"] = w[:, :, None, None]
        state["fcn.bias"] = state.pop("fc.bias")
    return state
