"""SMART: the white-box attack of Wang et al., "Understanding the Robustness of Skeleton-based Action
Recognition under Adversarial Attack", CVPR 2021 (and its arXiv predecessor "SMART: Skeletal Motion Action
Recognition aTtack").

Threat model: white-box (gradients of the classifier's logits with respect to the joint positions).

Objective, minimised over the perturbation ``δ`` of the clip ``x`` (``x̂ = x + δ``)::

    w·Lc + (1 − w)·Lp,     Lp = α·l_dyn + (1 − α)·l_bl,     l_dyn = Σ_n β_n ‖Dⁿx − Dⁿx̂‖²

``Dⁿ`` the n-th temporal derivative with the clip's real frame interval (``engine.losses``), ``l_bl`` the mean
squared change of every bone length in every frame. As in the published code, the gradients of ``Lc`` and
``Lp`` are each normalised per frame (over all joints of one performer) before they are mixed with ``w``:
the two losses have unrelated units (nats and m²), and normalising makes ``w`` a pure balance of directions.

``balance="terms"`` (default, ours) applies the same idea inside ``Lp``: the gradients of ``l_dyn`` and
``l_bl`` are normalised per frame before being mixed with ``α``. With real units the acceleration term
(m²/s⁴, a factor 1/dt⁴ ≈ 8·10⁵ at 30 fps) otherwise swamps the bone-length term (m²), so ``α`` would have no
effect and bone lengths drift: on the cmu8 ST-GCN of the tests the published mixing (``balance="published"``,
gradient of ``Lp`` as a whole) changed bone lengths by 1.8% on average against 0.5% with ``"terms"``, at the
same success rate. Inside ``l_dyn`` the ``β_n`` keep their literal meaning on the physical derivatives.

Strategies (``strategy=``):

``"ab"`` (anything but)
    success: the predicted class differs from the true class. ``Lc = −CE(logits, y)`` (published code).
``"abn"`` (anything but N)
    success, the paper's definition: the true class is no longer among the ``top_n`` highest logits (at
    least ``top_n`` classes score strictly higher). ``Lc = z_y − z_(N)``, the margin between the true logit
    and the N-th highest other logit (our choice, a C&W-style margin; it is the AB margin for N = 1). The
    published code's ABN never reports success: it tests ``len(tensor.nonzero(as_tuple=True)) == 0``, and
    with ``as_tuple=True`` that length is the number of dimensions (1), never 0. Its ABN class loss, an
    MSE to a ``LongTensor`` of 1/C values (all truncated to 0), is not used either.
``"sa"`` (specified target)
    success: the predicted class equals ``target`` (which can never be the true class; the base class
    rejects it). ``Lc = CE(logits, target)`` (published code).

Defaults and their source (published code: ``code/main.py`` and ``code/Attackers/SMARTAttacker.py`` of
the authors' repository; its perceptual loss ``l2_acc-bone`` is
``0.4·L_pos + 0.6·(0.3·L_acc + 0.7·L_bone)``):

============== ============================ ==================================================================
parameter      default                      source
============== ============================ ==================================================================
``w``          0.6                          code: ``--classWeight 0.6``
``alpha``      0.58                         code: position weight 0.4 + acceleration weight 0.6·0.3 = 0.58
``betas``      (0.69, 0, 0.31)              code: 0.4/0.58 on positions, 0.18/0.58 on acceleration, none on
                                            velocity; so ``(1 − α) = 0.42 = 0.6·0.7`` on bone lengths
``update``     ``"gd"``                     code: ``--updateRule gd``, a plain step along the per-frame
                                            normalised mixed gradient (its Adam option is commented out);
                                            ``"adam"`` runs Adam on the same normalised direction
``lr``         0.005 m per frame            ours. The code's step is 0.01 in its normalised units
                                            (σ = 0.279 m for its HDM05 data) = 0.0028 m; we take a
                                            1.8× larger step so the default run is short on a CPU. Measured
                                            on world-coordinate input (the classifier centres it itself),
                                            16 windows of the demo ST-GCN: 100% AB success in 14 iterations
                                            on average, bone lengths changed by 0.6% on average (lr 0.01:
                                            4 iterations but 1.3%); 40 held-out cmu8 windows of the test
                                            ST-GCN: 100%, 17 iterations, 0.5%
``iterations`` 300                          ours. The code runs its ``--epochs`` (200) on every batch and the
                                            paper up to 1,000; with early stopping almost every sample
                                            succeeds within a few dozen steps, so 300 bounds the failures' cost
``refine_steps`` 30                         ours (the code stops a sample at success): extra steps after
                                            the first success that lower Lp while staying adversarial (10
                                            left 0.9% bone-length change on the demo ST-GCN, 30 leave 0.6%)
``top_n``      3                            code: ``self.topN = 3``
``joint_weighting`` uniform                 the code weights spinal joints ×2 in its position term, for
                                            its 25-joint HDM05 layout (``"spine"``, in the preset below)
``balance``    ``"terms"``                  ours, see above (``"published"`` is the code's mixing)
============== ============================ ==================================================================

Published preset (``build("smart", model, preset="published")``, ``--preset published``): the settings of
the authors' code as this project reads them. Its values and sources:

=================== ===================== ==============================================================
parameter           published             source
=================== ===================== ==============================================================
``lr``              0.0028 m              code: step 0.01 in its normalised units × σ = 0.279 m (HDM05)
``iterations``      1000                  paper: "up to 1,000 iterations"; the code's epochs are 200
``refine_steps``    0                     code: a sample stops at its first success
``joint_weighting`` ``"spine"``           code: spinal joints ×2 in the position term (25-joint layout)
``betas``           (1/3, 0, 2/3)         code: absolute weights 0.02 on positions and 0.04 on
                                          accelerations, normalised (as read in the project's issue 14;
                                          not re-checked against the code here)
``balance``         ``"published"``       code: the gradient of Lp normalised as a whole
=================== ===================== ==============================================================

Where a default is the published code's, the paper's text was not at hand to cross-check it; the brief's
note that the code optimises with Adam does not match the code (``updateRule`` defaults to ``gd``; the Adam
branch is commented out).

Budgets (optional, ours): ``joint_budget`` (metres; or a ``(V,)`` array ``joint_budgets=``) caps every joint's displacement in
every frame, ``frame_budget`` (metres; float or ``(T,)``) caps the norm of a whole frame's displacement;
both are enforced by projection after every step. Performers that are absent from a clip (all-zero
padding, as in two-person NTU tensors) are never perturbed.

Shapes: ``x`` ``(N, 3, T, V, M)`` metres, ``y`` ``(N,)``; ``target`` ``(N,)`` or a scalar for SA.
The result's ``history`` holds per-iteration lists of N values for ``Lc``, ``Lp``, ``l_dyn``, ``l_bl`` and
``pred`` (NaN / −1 for samples that had already stopped); ``iterations`` is the iteration of the first
success (the total when it never succeeded); ``adversarial`` is, for a successful sample, its adversarial
iterate with the lowest ``Lp``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from engine.attacks.base import Attack, AttackResult, StrategyParams, register_attack
from engine.attacks.common import (
    Budget,
    IterativeState,
    check_strategy,
    model_fps,
    model_skeleton,
    per_frame_normalise,
    present_performers,
    strategy_class_loss,
    strategy_success,
)
from engine.errors import AttackError, ParameterError
from engine.losses import bone_lengths, dynamics_loss
from engine.params import param
from engine.skeletons import Skeleton


class _History:
    """Collects per-iteration values of the samples computed (on the device); assembled into N-long lists once at
    the end (NaN / −1 for the samples not computed or already stopped)."""

    def __init__(self, n: int, enabled: bool) -> None:
        self.n = n
        self.enabled = enabled
        self.rows: list[tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]] = []

    def add(self, idx: torch.Tensor, live: torch.Tensor, **values: torch.Tensor) -> None:
        """Values of the samples ``idx``, of which those with ``live`` were still active."""
        if self.enabled:
            self.rows.append((idx, live, {k: v.detach() for k, v in values.items()}))

    def assemble(self) -> dict[str, list]:
        out: dict[str, list] = {}
        if not self.rows:
            return out
        keys = list(self.rows[0][2])
        device = self.rows[0][0].device
        tables = {}
        for key in keys:
            is_int = key == "pred"
            fill = -1 if is_int else math.nan
            full = torch.full((len(self.rows), self.n), fill, dtype=torch.long if is_int else torch.float64,
                              device=device)
            for i, (idx, live, values) in enumerate(self.rows):
                full[i, idx] = torch.where(live, values[key].to(full.dtype), fill)
            tables[key] = full
        # iterations computed after every sample had stopped (between two reads of the stop condition) are left
        # out, as if the loop had stopped at once
        live_rows = (tables["pred"] >= 0).any(dim=1) if "pred" in tables else torch.ones(len(self.rows), dtype=bool)
        rows = int(live_rows.nonzero().max()) + 1 if bool(live_rows.any()) else 0
        for key, full in tables.items():
            out[key] = full[:rows].tolist()
        return out


#: The spinal joints the published code weights ×2 in its position term (its 25-joint HDM05 layout).
SPINE_JOINTS = ("Hips", "Spine", "Spine1", "Neck", "Neck1")


def spine_joint_weights(skeleton: Skeleton) -> torch.Tensor:
    """(V,) weights: 2 on the spinal joints (by name, :data:`SPINE_JOINTS`), 1 elsewhere."""
    w = torch.ones(skeleton.num_joints)
    names = [n.lower() for n in skeleton.joint_names]
    hits = [names.index(j.lower()) for j in SPINE_JOINTS if j.lower() in names]
    if not hits:
        raise AttackError(f"skeleton {skeleton.name!r} has none of the spinal joints {SPINE_JOINTS}; "
                          "use joint_weighting='uniform'")
    w[hits] = 2.0
    return w


@dataclass(frozen=True)
class SMARTParams(StrategyParams):
    """SMART's hyper-parameters (module docstring: defaults and their sources; ``PRESETS["published"]``)."""

    iterations: int = param(300, "maximum optimisation steps per sample", min=0)
    lr: float = param(0.005, "step length: the norm of one performer's frame displacement per step", unit="m",
                      min=0.0, min_exclusive=True)
    w: float = param(0.6, "weight of the class loss Lc against the perceptual loss Lp", min=0.0, max=1.0)
    alpha: float = param(0.58, "weight of the dynamics term against the bone-length term in Lp", min=0.0, max=1.0)
    betas: tuple[float, ...] = param((0.69, 0.0, 0.31), "weights of the 0th, 1st, 2nd … temporal derivatives in "
                                     "l_dyn (normalised to sum 1)")
    joint_weighting: Literal["uniform", "spine"] = param("uniform", "joint weights in l_dyn: uniform, or spinal "
                                                         "joints ×2 as the published code")
    update: Literal["gd", "adam"] = param("gd", "gd: a step along the normalised gradient (published); adam")
    refine_steps: int = param(30, "steps after the first success that lower Lp while staying adversarial", min=0)
    joint_budget: float | None = param(None, "cap on every joint's displacement in every frame", unit="m",
                                       min=0.0, min_exclusive=True)
    frame_budget: float | None = param(None, "cap on the norm of a whole frame's displacement", unit="m",
                                       min=0.0, min_exclusive=True)
    balance: Literal["terms", "published"] = param("terms", "terms: normalise the gradients of l_dyn and l_bl "
                                                   "before mixing; published: the code's mixing")
    freeze_root: bool = param(False, "never move the root joint (keeps the captured trajectory exactly)")
    record_history: bool = param(True, "keep the per-iteration loss history")

    PRESETS: ClassVar[dict[str, dict]] = {
        # the authors' code settings (module docstring, "published preset")
        "published": {"lr": 0.0028, "iterations": 1000, "refine_steps": 0, "joint_weighting": "spine",
                      "balance": "published", "betas": (1 / 3, 0.0, 2 / 3), "alpha": 0.58},
    }

    def validate(self, where: str) -> None:
        if not self.betas or min(self.betas) < 0 or sum(self.betas) <= 0:
            raise ParameterError(f"{where}: betas must be non-negative with a positive sum, got {list(self.betas)}")


@register_attack("smart")
class SMART(Attack):
    """SMART white-box attack (see the module docstring for the objective, strategies and defaults).

    Built with :func:`engine.attacks.build` (``build("smart", model, **overrides)``); its hyper-parameters are
    :class:`SMARTParams`. Skeleton and frame rate come from the model. Inputs that are not hyper-parameters:
    ``joint_weights`` (an explicit (V,) weight array, replacing ``joint_weighting``), ``joint_budgets`` (a
    (V,) per-joint budget in metres, replacing ``joint_budget``) and ``skeleton`` (only for a bare network that
    does not carry one).
    """

    threat_model = "white-box"
    Params = SMARTParams
    resources = ("skeleton", "joint_weights", "joint_budgets")

    def __init__(self, model, params=None, *, skeleton: Skeleton | None = None,
                 joint_weights: Sequence[float] | torch.Tensor | None = None,
                 joint_budgets: Sequence[float] | torch.Tensor | None = None, **kwargs) -> None:
        super().__init__(model, params, **kwargs)
        self.skeleton = model_skeleton(model, skeleton)
        self.betas = [b / sum(self.hp.betas) for b in self.hp.betas]
        self.fps = model_fps(model, None)
        if joint_weights is not None:
            self.joint_weights = torch.as_tensor(joint_weights, dtype=torch.float32)
        elif self.hp.joint_weighting == "spine":
            self.joint_weights = spine_joint_weights(self.skeleton)
        else:
            self.joint_weights = None
        self.budget = Budget(joint_budgets if joint_budgets is not None else self.hp.joint_budget, self.hp.frame_budget)

    @property
    def params(self) -> dict:
        out = super().params
        if self.joint_weights is not None:
            out["joint_weights"] = [float(v) for v in torch.as_tensor(self.joint_weights).reshape(-1)]
        out.update(self.budget.as_dict())
        return out

    def perceptual_terms(self, x: torch.Tensor, x_adv: torch.Tensor, clean_lengths: torch.Tensor):
        """Per-sample ``(Lp, l_dyn, l_bl)`` for clips ``x`` and ``x_adv`` (clean bone lengths given)."""
        dt = 1.0 / self.fps
        l_dyn = dynamics_loss(x, x_adv, self.betas, dt, self.joint_weights, reduction="none")
        l_bl = (bone_lengths(x_adv, self.skeleton) - clean_lengths).square().flatten(1).mean(dim=1)
        return self.alpha * l_dyn + (1 - self.alpha) * l_bl, l_dyn, l_bl

    def run(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> AttackResult:
        n = x.shape[0]
        num_classes = getattr(self.model, "num_classes", None)
        check_strategy(self.strategy, self.top_n, num_classes, target)
        if x.shape[3] != self.skeleton.num_joints:
            raise AttackError(
                f"clips have {x.shape[3]} joints but skeleton {self.skeleton.name!r} has {self.skeleton.num_joints}"
            )
        device = x.device
        present = present_performers(x)  # (N, 1, 1, 1, M)
        if self.freeze_root:
            movable = torch.ones(1, 1, 1, x.shape[3], 1, device=device, dtype=x.dtype)
            movable[:, :, :, self.skeleton.root] = 0
            present = present * movable  # (N, 1, 1, V, M)
        clean_lengths = bone_lengths(x, self.skeleton)  # computed once, reused every iteration

        delta = torch.zeros_like(x)
        state = IterativeState(x)  # updated in place here: SMART keeps the adversarial iterate of lowest Lp
        best_lp = torch.full((n,), math.inf, device=device)
        if self.update == "adam":
            adam_m = torch.zeros_like(x)
            adam_v = torch.zeros_like(x)
            adam_t = torch.zeros(n, device=device)
        history = _History(n, self.record_history)
        w, lr = self.w, self.lr
        # The batch computed each iteration: the samples still active at the last read of the stop condition
        # (every ``check_every`` iterations, the one read of the device). Samples that stop in between are
        # computed but frozen (``live`` masks every update), so the results are those of a read every iteration.
        idx, full = torch.arange(n, device=device), True

        for it in range(self.iterations + 1):
            final = it == self.iterations
            if it > 0 and it % self.check_every == 0:
                idx = torch.nonzero(~state.done).squeeze(1)
                if len(idx) == 0:
                    break
                full = len(idx) == n
            xs = x if full else x[idx]
            ys = y if full else y[idx]
            ts = None if target is None else (target if full else target[idx])
            d = (delta if full else delta[idx]).detach().requires_grad_(not final)
            live = ~state.done[idx]

            with torch.set_grad_enabled(not final):
                x_adv = xs + d
                logits = self.model(x_adv)
                lc = strategy_class_loss(logits, ys, self.strategy, self.top_n, ts)
                lp, l_dyn, l_bl = self.perceptual_terms(xs, x_adv, clean_lengths if full else clean_lengths[idx])
            state.queries[idx] += live.long()
            with torch.no_grad():
                pred = logits.argmax(dim=1)
                adv_now = strategy_success(logits, ys, self.strategy, self.top_n, ts)
                history.add(idx, live, Lc=lc, Lp=lp, l_dyn=l_dyn, l_bl=l_bl, pred=pred)
                state.last_pred[idx] = torch.where(live, pred, state.last_pred[idx])
                # keep the least perceptible adversarial iterate of every sample
                improve = live & adv_now & (lp.detach() < best_lp[idx])
                best_lp[idx] = torch.where(improve, lp.detach(), best_lp[idx])
                state.best_pred[idx] = torch.where(improve, pred, state.best_pred[idx])
                state.best_delta[idx] = torch.where(improve.view(-1, 1, 1, 1, 1), d.detach(), state.best_delta[idx])
                fs = state.first_success[idx]
                fs = torch.where(live & adv_now & (fs < 0), torch.full_like(fs, it), fs)
                state.first_success[idx] = fs
                finished = ((fs >= 0) & (it - fs >= self.refine_steps)) | ~live
                state.done[idx] = finished
            if final:
                break

            g_c, = torch.autograd.grad(lc.sum(), d, retain_graph=False)
            if self.balance == "terms":
                g_dyn, = torch.autograd.grad(l_dyn.sum(), d, retain_graph=True)
                g_bl, = torch.autograd.grad(l_bl.sum(), d)
                with torch.no_grad():
                    g_p = self.alpha * per_frame_normalise(g_dyn) + (1 - self.alpha) * per_frame_normalise(g_bl)
            else:
                g_p, = torch.autograd.grad(lp.sum(), d)
            with torch.no_grad():
                g_c = per_frame_normalise(g_c)
                g_p = per_frame_normalise(g_p)
                # After the first success: while adversarial only lower Lp; once back across the boundary,
                # take the mixed step again (a walk along the decision boundary towards the clean clip).
                refining = (fs >= 0) & adv_now
                wc = torch.where(refining, torch.zeros_like(lp), torch.full_like(lp, w)).view(-1, 1, 1, 1, 1)
                direction = wc * g_c + (1 - wc) * g_p
                if self.update == "adam":
                    direction = self._adam(direction, idx, full, adam_m, adam_v, adam_t)
                step = lr * direction * present[idx] if not full else lr * direction * present
                new = d.detach() - step
                if self.budget:
                    new = self.budget.project(new)
                keep = finished.view(-1, 1, 1, 1, 1)
                new = torch.where(keep, d.detach(), new)
                if full:
                    delta = new
                else:
                    delta[idx] = new

            def info(live=live, lc=lc, lp=lp, l_dyn=l_dyn, l_bl=l_bl, pred=pred, x_adv=x_adv) -> dict:
                # live values for front ends (tensors of the samples computed; ``active``: those not stopped)
                return {"active": live.sum(), "Lc": lc.detach(), "Lp": lp.detach(), "l_dyn": l_dyn.detach(),
                        "l_bl": l_bl.detach(), "pred": pred, "adversarial": x_adv.detach()}

            self._tick(it + 1, self.iterations, info)

        return state.result(x, delta, self.iterations, self.params, history=history.assemble(),
                            host=not self.keep_on_device)

    @staticmethod
    def _adam(direction, idx, full, m_all, v_all, t_all, b1=0.9, b2=0.999, eps=1e-8):
        """One Adam step per sample on ``direction`` (per-sample step counts: samples stop at different times)."""
        m = m_all if full else m_all[idx]
        v = v_all if full else v_all[idx]
        t = (t_all if full else t_all[idx]) + 1
        m = b1 * m + (1 - b1) * direction
        v = b2 * v + (1 - b2) * direction.square()
        m_hat = m / (1 - b1 ** t).view(-1, 1, 1, 1, 1)
        v_hat = v / (1 - b2 ** t).view(-1, 1, 1, 1, 1)
        if full:
            m_all.copy_(m)
            v_all.copy_(v)
            t_all.copy_(t)
        else:
            m_all[idx], v_all[idx], t_all[idx] = m, v, t
        # per-frame normalised so that lr keeps its meaning (metres per frame per step)
        return per_frame_normalise(m_hat / (v_hat.sqrt() + eps))
