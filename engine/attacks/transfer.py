"""Transfer-based black-box attacks: attack a surrogate white-box, replay the adversarial clips on victims.

Threat model: black-box with respect to the victims (they are only queried once per clip, for the label);
white-box on the surrogate. Any registered attack can craft the clips (SMART by default in the CLI;
MI-FGSM was designed for transfer).

Transfer success of a victim: among the clips whose surrogate attack succeeded *and* which the victim
classifies correctly when clean, the fraction whose adversarial version also succeeds on the victim under the
same strategy (AB: any wrong class; ABN: the true class out of the victim's top N; SA: the victim predicts
the target). Clips the victim already gets wrong are not counted as transfer successes. The surrogate's own
column is its white-box success rate over all attacked clips.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from engine.attacks.base import Attack
from engine.attacks.common import strategy_success
from engine.devices import model_device
from engine.errors import AttackError


@dataclass
class VictimOutcome:
    """One victim's replay: per-clip clean correctness and fooling, and the transfer success rate."""

    clean_correct: torch.Tensor
    fooled: torch.Tensor
    counted: torch.Tensor
    predictions: torch.Tensor

    @property
    def n(self) -> int:
        return int(self.counted.sum())

    @property
    def success_rate(self) -> float:
        n = self.n
        return float((self.fooled & self.counted).sum()) / n if n else 0.0

    @property
    def clean_accuracy(self) -> float:
        return float(self.clean_correct.float().mean()) if self.clean_correct.numel() else 0.0

    def to_dict(self) -> dict:
        return {"success_rate": self.success_rate, "n": self.n, "clean_accuracy": self.clean_accuracy}


@dataclass
class TransferResult:
    """The surrogate's adversarial clips and every victim's outcome."""

    adversarial: torch.Tensor
    surrogate_success: torch.Tensor
    victims: dict[str, VictimOutcome] = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    def row(self, surrogate_name: str = "surrogate") -> dict[str, float]:
        """``{victim: transfer success rate}`` with the surrogate's white-box rate under its own name."""
        out = {surrogate_name: float(self.surrogate_success.float().mean()) if self.surrogate_success.numel() else 0.0}
        out.update({name: v.success_rate for name, v in self.victims.items()})
        return out


def check_compatible(surrogate, victim, name: str) -> None:
    sk_s, sk_v = getattr(surrogate, "skeleton", None), getattr(victim, "skeleton", None)
    if sk_s is not None and sk_v is not None and not sk_s.same_topology(sk_v):
        raise AttackError(
            f"victim {name!r} takes skeleton {sk_v.name!r} but the surrogate takes {sk_s.name!r}; "
            "transfer needs models of the same input layout"
        )
    pre_s, pre_v = getattr(surrogate, "preprocessing", None), getattr(victim, "preprocessing", None)
    if pre_s is None or pre_v is None:
        return
    for key in ("fps", "window"):
        if float(getattr(pre_s, key)) != float(getattr(pre_v, key)):
            raise AttackError(f"victim {name!r} takes {key}={getattr(pre_v, key)} but the surrogate "
                              f"{key}={getattr(pre_s, key)}")


@torch.no_grad()
def _logits(model, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    device = model_device(model)
    was = model.training
    model.eval()
    try:
        return torch.cat([model(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)])
    finally:
        model.train(was)


def replay(
    victim,
    clean: torch.Tensor,
    adversarial: torch.Tensor,
    y: torch.Tensor,
    surrogate_success: torch.Tensor,
    *,
    strategy: str = "ab",
    top_n: int = 3,
    target: torch.Tensor | None = None,
    batch_size: int = 64,
) -> VictimOutcome:
    """Query ``victim`` on clean and adversarial clips; see the module docstring for what counts."""
    y = y.cpu()
    clean_logits = _logits(victim, clean, batch_size)
    adv_logits = _logits(victim, adversarial, batch_size)
    clean_correct = clean_logits.argmax(1) == y
    fooled = strategy_success(adv_logits, y, strategy, top_n, None if target is None else target.cpu())
    return VictimOutcome(clean_correct, fooled, clean_correct & surrogate_success.cpu(), adv_logits.argmax(1))


def transfer_attack(
    attack: Attack,
    victims: Mapping[str, torch.nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    target: torch.Tensor | None = None,
    *,
    batch_size: int = 64,
) -> TransferResult:
    """Run ``attack`` (built on the surrogate) on ``x`` and replay its clips on every victim."""
    for name, victim in victims.items():
        check_compatible(attack.model, victim, name)
    result = attack(x, y, target=target)
    strategy = getattr(attack, "strategy", "ab")
    top_n = getattr(attack, "top_n", 3)
    y = torch.as_tensor(y).reshape(-1)
    t = None if target is None else torch.as_tensor(target).reshape(-1).expand_as(y)
    outcomes = {
        name: replay(victim, x, result.adversarial, y, result.success, strategy=strategy, top_n=top_n, target=t,
                     batch_size=batch_size)
        for name, victim in victims.items()
    }
    return TransferResult(result.adversarial, result.success, outcomes, dict(result.params))


def markdown_matrix(rows: Mapping[str, Mapping[str, float]], *, title: str = "surrogate \\ victim") -> str:
    """A Markdown table of success rates (percent): one row per surrogate, one column per model."""
    columns: list[str] = []
    for row in rows.values():
        for c in row:
            if c not in columns:
                columns.append(c)
    lines = ["| " + " | ".join([title, *columns]) + " |", "|" + "---|" * (len(columns) + 1)]
    for name, row in rows.items():
        cells = [f"{100 * row[c]:.1f}%" if c in row and row[c] is not None else "—" for c in columns]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines) + "\n"
