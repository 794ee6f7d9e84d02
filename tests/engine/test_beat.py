"""BEAT's cost levers keep its maths: the cached clean features are the base's own, the batched posterior
prediction equals the loop over the samples, persistent chains really continue across epochs (and restarted
ones do not), the adversary and p(x) chains share one pass, and the training loop reads nothing back to the host
per minibatch (the syncs grow with epochs, not with steps)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from engine.defenses import BEATClassifier, get_defence
from engine.losses import bone_lengths
from engine.skeletons import get as get_skeleton

T = 12
K = 4

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny():
    """A tiny trained MLP on synthetic hdm05_25 clips whose class sets the mean pose offset."""
    from engine.data import WindowSet
    from engine.train import train_classifier

    skeleton = get_skeleton("hdm05_25")
    gen = torch.Generator().manual_seed(0)
    n = 48
    y = torch.arange(n) % K
    base = torch.randn(1, 3, 1, skeleton.num_joints, 1, generator=gen) * 0.3
    offset = torch.randn(K, 3, 1, skeleton.num_joints, 1, generator=gen) * 0.05
    x = base + offset[y] + 0.02 * torch.randn(n, 3, T, skeleton.num_joints, 1, generator=gen)
    ws = WindowSet(x=x.numpy(), y=y.numpy(), clip_index=np.arange(n), class_names=tuple(f"c{i}" for i in range(K)),
                   skeleton=skeleton, fps=30.0)
    torch.set_num_threads(1)
    clf = train_classifier("mlp", ws, arch_kwargs={"num_frames": T, "hidden": 32}, epochs=10, seed=0,
                           device="cpu").classifier
    return clf, ws


def _defence(clf, **kw):
    params = dict(num_samples=3, burn_in=1, batch_size=16, hidden=16, device="cpu", seed=0)
    params.update(kw)
    return get_defence("beat")(clf, **params)


@pytest.mark.parametrize("head_input", ["features", "logits"])
def test_cached_head_inputs_are_the_base_models_own_and_batched_bma_equals_the_loop(tiny, head_input):
    clf, ws = tiny
    model = _defence(clf, head_input=head_input, sgld_steps=1).fit(ws)
    x = torch.from_numpy(ws.x[:20])
    with torch.no_grad():
        inp, base = model.head_inputs(x, batch_size=7)  # chunked as training caches them
        for i in (0, 9, 19):  # each window alone through the frozen network
            phi = clf.net.features(clf.network_input(x[i:i + 1]))
            g = clf.net.fc(phi)
            want = (torch.relu(g), torch.relu(g)) if head_input == "logits" else (phi, g)
            torch.testing.assert_close(inp[i:i + 1], want[0])
            torch.testing.assert_close(base[i:i + 1], want[1])
        phi = model.net.features(model.network_input(x))
        stacked = model.sample_logits_from_features(phi)
        loop = torch.stack([model.logits_with(h, phi) for h in model.heads])
        assert stacked.shape == (3, 20, K)
        torch.testing.assert_close(stacked, loop)
        torch.testing.assert_close(model.sample_logits_from_features(phi, [2, 0]), loop[[2, 0]])
        bma = torch.log(torch.softmax(loop, -1).mean(0))
        torch.testing.assert_close(model(x), bma)
        # the heads really differ (else the equalities above would be trivially met by one head)
        assert not torch.allclose(loop[0], loop[2])


def _record_chains(defence):
    """Wrap ``defence.sgld_step`` to record each call's adversary chains before and after the step."""
    calls = []
    step = defence.sgld_step

    def recording(model, head, x_adv, x_neg, *args):
        out = step(model, head, x_adv, x_neg, *args)
        calls.append((x_adv.detach().clone(), out[0].detach().clone()))
        return out

    defence.sgld_step = recording
    return calls


def _rows_found(rows: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """For each row of ``rows``: is it (bitwise) one of ``pool``'s rows?"""
    d = torch.cdist(rows.flatten(1).double(), pool.flatten(1).double(), compute_mode="donot_use_mm_for_euclid_dist")
    return d.min(dim=1).values == 0


def test_persistent_chains_continue_across_epochs_and_restarted_ones_do_not(tiny):
    clf, ws = tiny
    n = len(ws.x)
    # one minibatch per epoch, so each window's chain is visited once an epoch (in a shuffled order)
    persistent = _defence(clf, batch_size=n, sgld_steps=1, reinit_freq=0.0, num_samples=1, burn_in=2)
    calls = _record_chains(persistent)
    persistent.fit(ws)
    assert len(calls) == 3
    for (_, out_prev), (in_next, _) in zip(calls, calls[1:]):
        assert bool(_rows_found(in_next, out_prev).all())  # every chain starts where it stopped last epoch
    x = torch.from_numpy(ws.x)
    assert bool(_rows_found(calls[-1][1], persistent.chains["adversaries"]).all())
    # the chains have walked away from the clean clips, further than one step
    assert not bool(_rows_found(calls[-1][1], x).any())

    restarted = _defence(clf, batch_size=n, sgld_steps=1, persistent=False, num_samples=1, burn_in=2)
    calls = _record_chains(restarted)
    restarted.fit(ws)
    assert restarted.chains["adversaries"] is None
    for (_, out_prev), (in_next, _) in zip(calls, calls[1:]):
        assert not bool(_rows_found(in_next, out_prev).any())

    # reinitialisation: with reinit_freq=1 every visit starts afresh from the clean clip plus noise
    fresh = _defence(clf, batch_size=n, sgld_steps=1, reinit_freq=1.0, num_samples=1, burn_in=2)
    calls = _record_chains(fresh)
    fresh.fit(ws)
    for (_, out_prev), (in_next, _) in zip(calls, calls[1:]):
        assert not bool(_rows_found(in_next, out_prev).any())
        # ... within ±init_noise (1 cm) of a clean clip
        gap = (in_next.flatten(1)[:, None] - x.flatten(1)[None]).abs().amax(dim=2).min(dim=1).values
        assert float(gap.max()) <= 0.01 + 1e-6


def test_adversaries_and_negatives_share_one_pass_and_the_px_term_alone_trains(tiny):
    clf, ws = tiny
    d = _defence(clf, x_weight=1.0, sgld_steps=2)
    d.fit(ws)
    assert d.chains["negatives"] is not None and d.chains["negatives"].shape == d.chains["adversaries"].shape
    # count the frozen network's feature passes in one SGLD step with both chains: exactly one, of both
    model = BEATClassifier(copy.deepcopy(clf), [d.model.heads[0]]).eval()
    x = torch.from_numpy(ws.x[:8])
    y = torch.from_numpy(ws.y[:8])
    present = torch.ones(8, 1, 1, 1, 1)
    gen = torch.Generator().manual_seed(0)
    model_calls = []
    feats = model.net.features

    def counting(inp):
        model_calls.append(inp.shape[0])
        return feats(inp)

    model.net.features = counting
    adv, neg, inp, base = d.sgld_step(model, model.heads[0], x + 0.01, x - 0.01, x, y, bone_lengths(x, clf.skeleton),
                                      present, gen)
    assert model_calls == [16]  # adversaries and negatives stacked in one batched pass
    assert adv.shape == neg.shape == x.shape and inp.shape[0] == base.shape[0] == 16
    assert not torch.equal(adv, x + 0.01) and not torch.equal(neg, x - 0.01)
    only_px = _defence(clf, adv_weight=0.0, x_weight=1.0, sgld_steps=1).fit(ws)
    assert isinstance(only_px, BEATClassifier) and only_px.num_samples == 3


_SYNCS = ("item", "tolist", "__float__", "__int__", "__bool__", "cpu", "numpy")


def _count_syncs(monkeypatch, fn) -> int:
    count = [0]
    for name in _SYNCS:
        original = getattr(torch.Tensor, name)

        def wrapped(self, *a, _original=original, **k):
            count[0] += 1
            return _original(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, wrapped)
    try:
        fn()
    finally:
        monkeypatch.undo()
    return count[0]


def test_training_reads_back_to_the_host_once_an_epoch_not_once_a_step(tiny, monkeypatch):
    """The training loop keeps its work on the model's device: losses are summed on the device and read once
    per epoch; noise is drawn on the device. 3 minibatches an epoch, 2 SGLD steps each: a read-back per step
    would add ≥ 6 per extra epoch (the loop before this change read 4 losses per minibatch)."""
    clf, ws = tiny

    def run(burn_in):
        return lambda: _defence(clf, sgld_steps=2, x_weight=1.0, num_samples=1, burn_in=burn_in).fit(ws)

    short, long = _count_syncs(monkeypatch, run(1)), _count_syncs(monkeypatch, run(4))
    assert long - short <= 3 * 2, (short, long)  # three more epochs: at most two read-backs each
