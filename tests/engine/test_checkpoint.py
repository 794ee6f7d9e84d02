"""Classifier checkpoints: round trip, safe loading, clear errors, and import of official code-base weights."""

from __future__ import annotations

import pickle

import pytest
import torch

from engine.checkpoints import check_compatible, load_classifier, save_classifier
from engine.errors import CheckpointError
from engine.models import build_model
from engine.models.base import Classifier
from engine.models.checkpoint import import_official, official_graph_parents, to_official_state_dict
from engine.skeletons import HDM05_25, NTU25

CLASSES = ["a", "b", "c", "d"]


def _randomise_bn(net: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial batch-norm statistics, so that a mapping mistake shows in the logits."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)


def _classifier(arch="stgcn", skeleton=HDM05_25, **kw) -> Classifier:
    torch.manual_seed(0)
    kw = {"base_channels": 8, "num_blocks": 3, **kw} if arch != "msg3d" else kw
    net = build_model(arch, skeleton, len(CLASSES), **kw)
    _randomise_bn(net)
    mean = torch.randn(1, 3, 1, skeleton.num_joints, 1) * 0.1
    std = torch.full((1, 1, 1, 1, 1), 0.3)
    prep = {"fps": 30.0, "window": 16, "stride": 8, "root_centre": True}
    return Classifier(net, CLASSES, mean=mean, std=std, preprocessing=prep, arch=arch, arch_kwargs=kw,
                      meta={"epochs": 3, "note": "test"}).eval()


def _x(skeleton=HDM05_25, m=1, n=3):
    return torch.randn(n, 3, 16, skeleton.num_joints, m, generator=torch.Generator().manual_seed(1)) * 0.3


def test_format_1_checkpoint_converts_exactly(tmp_path):
    """A format-1 checkpoint (untyped preprocessing, windows root-centred before the model) loads as a model that
    centres world-coordinate input itself and predicts exactly what the old pipeline predicted."""
    from engine.models.checkpoint import classifier_to_dict

    clf = _classifier()
    d = classifier_to_dict(clf)
    d["version"] = 1
    d["preprocessing"] = {"fps": 30.0, "window": 16, "root_centre": True}  # format 1: no stride, no centre
    torch.save(d, tmp_path / "old.pt")
    old = load_classifier(tmp_path / "old.pt")
    assert old.preprocessing.centre == "frame" and old.preprocessing.stride == 16  # format 1 cut without overlap
    world = _x() + torch.tensor([1.5, 0.0, -2.0])[None, :, None, None, None]
    centred = world - world[:, :, :, HDM05_25.root : HDM05_25.root + 1, :]
    with torch.no_grad():
        before = clf.net((centred - clf.mean) / clf.std)  # the format-1 pipeline: centred outside the model
        torch.testing.assert_close(old(world), before)
    d["preprocessing"] = {"fps": 30.0, "window": 16, "root_centre": False}
    torch.save(d, tmp_path / "raw.pt")
    assert load_classifier(tmp_path / "raw.pt").preprocessing.centre == "none"


def test_round_trip_keeps_everything(tmp_path):
    clf = _classifier()
    path = save_classifier(clf, tmp_path / "sub" / "model.pt")
    back = load_classifier(path)
    assert back.arch == "stgcn" and back.arch_kwargs == clf.arch_kwargs
    assert back.skeleton == HDM05_25 and back.class_names == CLASSES
    assert back.preprocessing == clf.preprocessing and back.meta == clf.meta
    assert not back.training
    x = _x()
    torch.testing.assert_close(back(x), clf(x))
    torch.testing.assert_close(back.mean, clf.mean)
    # one file with plain data: it loads with weights_only=True
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "skelviz-classifier" and raw["version"] == 2
    assert raw["skeleton"]["name"] == "hdm05_25"


def test_tuple_arguments_survive(tmp_path):
    clf = _classifier("msg3d", base_channels=6, num_gcn_scales=2, num_g3d_scales=1, window_sizes=(3,))
    back = load_classifier(save_classifier(clf, tmp_path / "m.pt"))
    x = _x()
    torch.testing.assert_close(back(x), clf(x))


def test_truncated_file_is_a_clear_error(tmp_path):
    path = save_classifier(_classifier(), tmp_path / "m.pt")
    data = path.read_bytes()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_classifier(bad)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_classifier(tmp_path / "nope.pt")


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "skelviz-classifier", "payload": _Evil()}, path)
    with pytest.raises(CheckpointError, match="refused for safety"):
        load_classifier(path)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(CheckpointError):
        load_classifier(plain)


def test_not_a_skelviz_checkpoint(tmp_path):
    path = tmp_path / "official.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(CheckpointError, match="import-checkpoint"):
        load_classifier(path)


def test_weights_that_do_not_fit_the_architecture(tmp_path):
    path = save_classifier(_classifier(), tmp_path / "m.pt")
    raw = torch.load(path, weights_only=True)
    raw["arch_kwargs"]["base_channels"] = 16
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_classifier(path)


def test_compatibility_errors_name_the_problem():
    clf = _classifier()
    check_compatible(clf, skeleton=HDM05_25, class_names=CLASSES)
    with pytest.raises(CheckpointError, match="hdm05_25.*ntu25"):
        check_compatible(clf, skeleton=NTU25)
    with pytest.raises(CheckpointError, match="another order"):
        check_compatible(clf, class_names=CLASSES[::-1])
    with pytest.raises(CheckpointError, match=r"\['e'\]"):
        check_compatible(clf, class_names=["a", "b", "c", "e"])


# -- official code bases ------------------------------------------------------------------------------------------
OFFICIAL_KEYS = {
    # names as written by the official code (checked against their model definitions)
    "stgcn": ["A", "data_bn.running_mean", "st_gcn_networks.0.gcn.conv.weight", "st_gcn_networks.1.tcn.2.weight",
              "st_gcn_networks.1.tcn.3.running_var", "st_gcn_networks.2.residual.0.weight", "edge_importance.2",
              "fcn.weight", "fcn.bias"],
    "ctrgcn": ["data_bn.weight", "l1.gcn1.convs.0.conv1.weight", "l1.gcn1.convs.2.conv4.bias", "l1.gcn1.PA",
               "l1.gcn1.alpha", "l1.gcn1.down.0.weight", "l2.tcn1.branches.0.3.conv.weight",
               "l2.tcn1.branches.2.4.running_mean", "l2.residual.conv.weight", "fc.weight"],
    "msg3d": ["data_bn.weight", "gcn3d1.gcn3d.0.gcn3d.1.A_res", "gcn3d1.gcn3d.0.gcn3d.1.mlp.layers.0.weight",
              "gcn3d1.gcn3d.0.out_conv.weight", "gcn3d2.gcn3d.0.out_bn.running_var", "sgcn1.0.A_res",
              "sgcn1.0.mlp.layers.1.weight", "sgcn2.1.branches.0.3.conv.weight", "sgcn2.1.residual.conv.weight",
              "tcn3.branches.5.1.weight", "fc.weight"],
}
SMALL = {
    "stgcn": {"base_channels": 8, "num_blocks": 3},
    "ctrgcn": {"base_channels": 8, "num_blocks": 3, "num_person": 2},
    "msg3d": {"base_channels": 6, "num_gcn_scales": 3, "num_g3d_scales": 2, "window_sizes": (3, 5), "num_person": 2},
}


@pytest.mark.parametrize("arch", sorted(SMALL))
def test_import_official_state_dict(arch, tmp_path):
    parents = official_graph_parents(NTU25)
    torch.manual_seed(0)
    net = build_model(arch, NTU25, 5, graph_parents=parents, **SMALL[arch])
    _randomise_bn(net)
    with torch.no_grad():  # learned graph parts away from their initial values
        for name, p in net.named_parameters():
            if name.endswith(("A_res", "PA", "alpha")) or name.startswith("edge_importance"):
                p.add_(torch.randn_like(p) * 0.05)
    official = {f"module.{k}": v for k, v in to_official_state_dict(net).items()}  # saved from DataParallel
    for key in OFFICIAL_KEYS[arch]:
        assert f"module.{key}" in official, key
    if arch == "stgcn":  # the official file carries its own graph buffer: it must be the one used
        official["module.A"] = official["module.A"] * 1.5
    weights = tmp_path / "official.pt"
    torch.save(official, weights)
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(f"class{i}" for i in range(5)) + "\n")

    from skelviz.cli import main

    out = tmp_path / "imported.pt"
    assert main(["import-checkpoint", "--arch", arch, "--skeleton", "ntu25", "--classes", str(classes),
                 str(weights), "--out", str(out)]) == 0
    clf = load_classifier(out)
    for key, value in SMALL[arch].items():
        assert clf.arch_kwargs[key] == (list(value) if isinstance(value, tuple) else value), key
    x = torch.randn(2, 3, 20, 25, 2) * 0.5
    if arch == "stgcn":
        net.A.mul_(1.5)
    net.eval()
    torch.testing.assert_close(clf(x), net(x), rtol=1e-4, atol=1e-5)
    assert clf.preprocessing.centre == "none" and clf.preprocessing.num_bodies == 2


def test_import_rejects_other_skeleton_and_wrong_class_count(tmp_path):
    net = build_model("ctrgcn", NTU25, 5, **SMALL["ctrgcn"])
    state = to_official_state_dict(net)
    with pytest.raises(CheckpointError, match="5 outputs but 3 class names"):
        import_official("ctrgcn", state, NTU25, ["a", "b", "c"])
    with pytest.raises(CheckpointError, match="another skeleton|joints"):
        import_official("ctrgcn", state, HDM05_25.__class__("tiny", ("r", "a", "b"), (-1, 0, 1)), list("abcde"))
    with pytest.raises(CheckpointError, match="not an official"):
        import_official("msg3d", state, NTU25, list("abcde"))
    with pytest.raises(CheckpointError, match="not supported"):
        import_official("sgn", state, NTU25, list("abcde"))


# -- hostile but well-formed checkpoints (issue 17): every one a CheckpointError naming the file --------------------
def _damage(raw: dict, how: str) -> None:
    state = raw["state_dict"]
    first = next(k for k, v in state.items() if v.is_floating_point())
    if how == "nan-weight":
        state[first].view(-1)[0] = float("nan")
    elif how == "inf-weight":
        state[first].view(-1)[-1] = float("inf")
    elif how == "zero-std":
        raw["std"] = torch.zeros_like(raw["std"])
    elif how == "negative-std":
        raw["std"] = -raw["std"]
    elif how == "inf-std":
        raw["std"] = torch.full_like(raw["std"], float("inf"))
    elif how == "mean-not-a-tensor":
        raw["mean"] = "zero"
    elif how == "class-names-a-number":
        raw["class_names"] = 4
    elif how == "huge-width":
        raw["arch_kwargs"]["base_channels"] = 10**9
    elif how == "huge-block-count":
        raw["arch_kwargs"]["num_blocks"] = 10**8
    elif how == "one-block-more":
        raw["arch_kwargs"]["num_blocks"] += 1
    elif how == "width-of-wrong-type":
        raw["arch_kwargs"]["base_channels"] = "wide"
    elif how == "unknown-argument":
        raw["arch_kwargs"]["nosuch"] = 3
    elif how == "unknown-arch":
        raw["arch"] = "nosuchnet"
    elif how == "weights-not-tensors":
        raw["state_dict"] = {first: [1.0, 2.0]}
    elif how == "missing-field":
        del raw["skeleton"]
    elif how == "bad-skeleton":
        raw["skeleton"]["parents"] = raw["skeleton"]["parents"][:-3]
    elif how == "bad-preprocessing":
        raw["preprocessing"]["fps"] = -3
    else:
        raise AssertionError(how)


HOSTILE = {
    "nan-weight": "NaN or Inf", "inf-weight": "NaN or Inf", "zero-std": "zero or negative standard deviation",
    "negative-std": "zero or negative standard deviation", "inf-std": "standard deviation holds NaN or Inf",
    "mean-not-a-tensor": "normalisation mean", "class-names-a-number": "wrong type",
    "huge-width": "out of proportion", "huge-block-count": "out of proportion", "one-block-more": "do not fit",
    "width-of-wrong-type": "cannot be built", "unknown-argument": "cannot be built", "unknown-arch": "nosuchnet",
    "weights-not-tensors": "not a state dict of tensors", "missing-field": "lacks a field",
    "bad-skeleton": "bad skeleton description", "bad-preprocessing": "fps must be a positive number",
}


@pytest.mark.parametrize("how", sorted(HOSTILE))
def test_hostile_checkpoint_is_a_checkpoint_error_naming_the_file(tmp_path, how):
    path = save_classifier(_classifier(), tmp_path / "m.pt")
    raw = torch.load(path, weights_only=True)
    _damage(raw, how)
    bad = tmp_path / f"{how}.pt"
    torch.save(raw, bad)
    with pytest.raises(CheckpointError, match=HOSTILE[how] or None) as err:
        load_classifier(bad)
    assert str(bad) in str(err.value)


@pytest.mark.parametrize("content", [b"", b"PK\x05\x06" + b"\0" * 18, b"PK\x03\x04garbage", b"\x80\x02]q\x00.",
                                     b"\x80\x04K\x05.", b"root:x:0:0:root:/root:/bin/bash\n"])
def test_files_that_are_not_checkpoints_name_the_file(tmp_path, content):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    with pytest.raises(CheckpointError) as err:
        load_classifier(bad)
    assert str(bad) in str(err.value)
    folder = tmp_path / "folder.pt"
    folder.mkdir()
    with pytest.raises(CheckpointError, match="is a folder"):
        load_classifier(folder)
