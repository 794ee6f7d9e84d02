"""Counterbalancing across participants: a fixed set of trial orders, each new participant given the least used.

A protocol with ``[design] orders = K`` (K > 1) has K trial orders. Order k is the plan of
:func:`~studies.schedule.plan_trials` for a seed derived from the protocol's seed and k; for two-stimulus trials
orders come in mirrored pairs (order 2j+1 is order 2j with every pair's sides swapped), so with an even K every
trial shows the attacked motion on the left for half of the participants and on the right for the other half,
on top of the within-session side balance. With ``orders = 1`` (the default) nothing changes: every participant
gets their own seeded order (:func:`~studies.schedule.session_seed`).

Why the allocation is read back from the session files rather than kept in a ledger of its own: the session
file is written (and fsynced) before the first trial and records its ``order``, so the counts survive a
restart or a ``kill -9`` of the server without a second file that could disagree with the sessions. Sessions
that ended without data (consent declined, aborted before any answer) give their order back.

Both runners use it: ``skelviz study run`` (desktop, through :class:`~studies.session.StudySession`) and
``skelviz study serve`` (:mod:`studies.web`).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import h5py

from engine.errors import StudyError
from studies.protocol import Protocol
from studies.schedule import Catalogue, Trial, plan_trials, session_seed

log = logging.getLogger(__name__)

_SWAP = {"left": "right", "right": "left"}


def mirror_trial(trial: Trial) -> Trial:
    """The same trial with the two stimuli's sides swapped (a single-stimulus trial is returned unchanged)."""
    if len(trial.stimuli) != 2:
        return trial
    return replace(
        trial,
        stimuli=trial.stimuli[::-1],
        methods=trial.methods[::-1],
        target_side=_SWAP.get(trial.target_side, trial.target_side),
        expected=_SWAP.get(trial.expected, trial.expected),  # 2afc catch answers are sides; others are not
    )


def order_seed(protocol: Protocol, order: int) -> int:
    """The planning seed of counterbalanced order ``order`` (mirrored pairs share one seed)."""
    base = order // 2 if protocol.two_stimuli else order
    digest = hashlib.sha256(f"{protocol.seed}:order:{base}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass(frozen=True)
class SessionPlan:
    """What a new session needs before its file is created: the seed, the trials and the order they come from."""

    seed: int
    order: int
    trials: list[Trial]


def plan_for_order(protocol: Protocol, catalogue: Catalogue, order: int) -> SessionPlan:
    """The trials of counterbalanced order ``order`` (0 ≤ order < protocol.orders)."""
    if not 0 <= order < protocol.orders:
        raise StudyError(f"order {order} does not exist: protocol {protocol.title!r} has {protocol.orders} orders")
    seed = order_seed(protocol, order)
    trials = plan_trials(protocol, catalogue, seed)
    if protocol.two_stimuli and order % 2 == 1:
        trials = [mirror_trial(t) for t in trials]
    return SessionPlan(seed, order, trials)


def _counts_in(sessions_dir: Path, protocol: Protocol) -> list[int]:
    counts = [0] * protocol.orders
    if not sessions_dir.is_dir():
        return counts
    for path in sorted(sessions_dir.glob("*.h5")):
        try:
            with h5py.File(path, "r") as f:
                attrs = f.attrs
                if attrs.get("format") != "skelviz-session" or attrs.get("protocol_sha256") != protocol.sha256:
                    continue
                if "order" not in attrs:
                    continue
                order = int(attrs["order"])
                gave_nothing = attrs.get("status") == "aborted" and f["responses"].shape[0] == 0
        except (OSError, KeyError, ValueError) as exc:  # a damaged file counts for nothing; analysis reports it
            log.warning("counterbalancing skips %s: %s", path, exc)
            continue
        if 0 <= order < protocol.orders and not gave_nothing:
            counts[order] += 1
    return counts


class OrderAllocator:
    """Hands out counterbalanced orders: always the least used one (the lowest index among equals).

    The counts start from the session files already in ``sessions_dir`` for this protocol and are kept in memory
    afterwards; :meth:`allocate` is thread-safe (the web server creates sessions from several threads).
    """

    def __init__(self, sessions_dir: str | Path, protocol: Protocol) -> None:
        self.protocol = protocol
        self._lock = threading.Lock()
        self._counts = _counts_in(Path(sessions_dir), protocol)

    @property
    def counts(self) -> list[int]:
        with self._lock:
            return list(self._counts)

    def allocate(self) -> int:
        with self._lock:
            order = min(range(len(self._counts)), key=lambda k: (self._counts[k], k))
            self._counts[order] += 1
            return order

    def release(self, order: int) -> None:
        """Give an order back (its session ended before any answer)."""
        with self._lock:
            if 0 <= order < len(self._counts) and self._counts[order] > 0:
                self._counts[order] -= 1


def plan_session(
    protocol: Protocol,
    catalogue: Catalogue,
    participant: str,
    allocator: OrderAllocator | None = None,
) -> SessionPlan:
    """The plan of a new session: a counterbalanced order when the protocol has several, else the participant's."""
    if protocol.orders > 1:
        if allocator is None:
            raise StudyError("this protocol counterbalances orders across participants; give the sessions folder")
        return plan_for_order(protocol, catalogue, allocator.allocate())
    seed = session_seed(protocol, participant)
    return SessionPlan(seed, 0, plan_trials(protocol, catalogue, seed))
