"""Square-attack-style random search on motion, after Andriushchenko, Croce, Flammarion and Hein, "Square
Attack: a query-efficient black-box adversarial attack via random search", ECCV 2020 (the black-box member of
AutoAttack).

Threat model: score-based black-box (it reads the model's output scores, never a gradient), untargeted, the
same per-joint budget as :mod:`engine.attacks.apgd` (``norm="joint"``: every joint's 3-D displacement within
``eps`` in every frame; ``norm="linf"``: every coordinate within ``±eps``). Because it uses no gradient it is
the suite's probe for gradient masking (a quantising or majority-vote model defeats gradients, not it).

The image "square" becomes a block of consecutive frames × a random set of joints: the block's joints all get
one displacement at the budget's boundary (a random unit 3-D direction × ``eps``; with ``linf`` a random sign
per coordinate × ``eps``), and the proposal is kept when it lowers the margin loss
``z_y − max_{i≠y} z_i``; a window stops when the model misclassifies it. Initialisation: "stripes", one
boundary displacement per joint held over all frames (the paper's vertical stripes). The share ``p`` of
(frame, joint) cells a block covers starts at ``p_init`` and is halved after 10, 50, 200, 500, 1000, 2000,
4000, 6000 and 8000 queries (rescaled to ``queries / 10000``), as in the paper's schedule.

Defaults and their source (AutoAttack's Square settings): ``queries = 5000``, ``p_init = 0.8``; ``eps`` 0.01 m
is ours. One model query per searching window per iteration; the batch sent to the model is compacted every
10 queries (the only read of the device), so a window that succeeded in between rides along, frozen and not
counted, until the next compaction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from engine.attacks.base import Attack, AttackParams, AttackResult, register_attack
from engine.attacks.common import present_performers
from engine.errors import AttackError
from engine.params import param

_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
#: queries between two reads of which windows still search (the batch is compacted then)
_COMPACT = 10


@dataclass(frozen=True)
class SquareParams(AttackParams):
    """Square-attack hyper-parameters (module docstring: defaults and their source)."""

    eps: float = param(0.01, "per-joint budget", unit="m", min=0.0, min_exclusive=True)
    norm: Literal["joint", "linf"] = param("joint", "joint: every joint's 3-D displacement within eps in every "
                                           "frame; linf: every coordinate within ±eps")
    queries: int = param(5000, "model queries per window (AutoAttack: 5000)", min=1)
    p_init: float = param(0.8, "initial share of (frame, joint) cells a block covers", min=0.0, max=1.0,
                          min_exclusive=True)
    seed: int = param(0, "seed of the random search")


def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``z_y − max_{i≠y} z_i`` per sample (negative: misclassified)."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    return true - logits.scatter(1, y[:, None], float("-inf")).amax(1)


@register_attack("square")
class Square(Attack):
    """Square-attack-style random search within a per-joint budget (module docstring); :class:`SquareParams`."""

    threat_model = "black-box (scores)"
    progress_unit = "queries"
    Params = SquareParams

    def _boundary(self, shape, gen) -> torch.Tensor:
        """Displacements on the budget's boundary, (N, 3, 1, 1, M) broadcastable blocks."""
        if self.norm == "linf":
            return (torch.randint(0, 2, shape, generator=gen) * 2 - 1).float() * self.eps
        d = torch.randn(shape, generator=gen)
        return d / d.norm(dim=1, keepdim=True).clamp_min(1e-12) * self.eps

    def _p(self, i: int) -> float:
        scaled = int(i / self.queries * 10000)
        halvings = sum(scaled > h for h in _HALVINGS)
        return self.p_init / 2 ** halvings

    @torch.no_grad()
    def run(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> AttackResult:
        if target is not None:
            raise AttackError("square is untargeted; call it without target=")
        n, _, t_len, v_len, m = x.shape
        gen = torch.Generator().manual_seed(int(self.seed))
        present = present_performers(x)
        dev = x.device
        delta = (self._boundary((n, 3, 1, v_len, m), gen).to(dev) * present).expand_as(x).clone()
        logits = self.model(x + delta)
        loss = margin(logits, y)
        queries = torch.ones(n, dtype=torch.long, device=dev)
        first = torch.where(loss < 0, 0, -1)
        history: dict[str, list] = {"margin": [loss.tolist()]}
        self._tick(0, self.queries - 1, lambda: {"active": (loss >= 0).sum()})
        for i in range(1, self.queries):
            # The one read of the device, every ``_COMPACT`` queries: which windows still search. In between, the
            # windows that succeeded keep their proposals' draws and queries (so the random stream depends only
            # on the seed and the compaction points, not on the device) but are frozen: no update, no query
            # counted.
            if (i - 1) % _COMPACT == 0:
                active = torch.nonzero(loss >= 0).squeeze(1)
                if len(active) == 0:
                    break
            searching = loss[active] >= 0
            p = self._p(i)
            cells = max(1, round(p * t_len * v_len))
            frames = max(1, min(t_len, round(math.sqrt(cells * t_len / v_len))))
            joints = max(1, min(v_len, cells // frames))
            # Every active window's block drawn at once (host generator, so the draws do not depend on the
            # device): a first frame, a random set of ``joints`` joints (the first ``joints`` of a random
            # permutation per window) and one boundary displacement; the block is a (frame, joint) mask.
            a = len(active)
            t0 = torch.randint(0, t_len - frames + 1, (a, 1), generator=gen)
            in_t = (torch.arange(t_len)[None] >= t0) & (torch.arange(t_len)[None] < t0 + frames)
            chosen = torch.rand(a, v_len, generator=gen).argsort(1)[:, :joints]
            in_v = torch.zeros(a, v_len, dtype=torch.bool).scatter_(1, chosen, True)
            cell = (in_t[:, :, None] & in_v[:, None, :])[:, None, :, :, None].to(dev)
            block = self._boundary((a, 3, 1, 1, m), gen).to(dev)
            proposal = torch.where(cell, block, delta[active])
            proposal = proposal * present[active]
            new = margin(self.model(x[active] + proposal), y[active])
            queries[active] += searching.long()
            # masks instead of boolean indexing (each boolean index is another read of the device)
            better = (new < loss[active]) & searching
            old_first = first[active]
            delta[active] = torch.where(better.view(-1, 1, 1, 1, 1), proposal, delta[active])
            loss[active] = torch.where(better, new, loss[active])
            first[active] = torch.where(better & (new < 0) & (old_first < 0), i, old_first)
            self._tick(i, self.queries - 1, lambda: {"active": (loss >= 0).sum()})
        adv = x + delta
        pred = self.model(adv).argmax(1)
        success = pred != y
        return AttackResult(
            adversarial=adv.cpu(), success=success.cpu(), iterations=torch.where(success, first, self.queries).cpu(),
            predictions=pred.cpu(), queries=queries.cpu(), history=history, params=self.params,
            extras={"final_margin": loss.cpu()},
        )
