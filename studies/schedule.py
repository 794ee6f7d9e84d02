"""The planned trial list of a session: seeded, counterbalanced, with catch trials, blocks and practice.

:func:`plan_trials` turns a :class:`~studies.protocol.Protocol`, the stimulus catalogue and a seed into the full
list of :class:`Trial` (practice first, then the main trials); the same inputs always give the same list.

* Conditions are interleaved with catch trials; with ``max_condition_run`` no condition (catch included) occurs
  more than that many times in a row.
* For two-stimulus trials the side of the condition's second method (the attacked one) is counterbalanced:
  half left, half right (±1), never more than ``max_side_run`` times in a row.
* The main trials are cut into ``blocks`` nearly equal blocks (a break between blocks); practice trials come
  first, drawn from the same conditions with their own random stream, and are not scored.

Run-length limits are met by construction, not by rejection: :func:`constrained_sequence` draws one item at a
time among those that keep the rest feasible (:func:`run_feasible` is the exact feasibility condition).
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from engine.errors import StudyError
from studies.protocol import Protocol

CATCH = "catch"


@dataclass(frozen=True)
class StimulusRef:
    """One entry of the stimulus catalogue: its id in the stimulus file, the clip it was made from, the method."""

    id: str
    clip: str
    method: str
    label: str


@dataclass(frozen=True)
class Trial:
    """One planned trial. ``stimuli``/``methods`` are in display order (left, right) or a single stimulus.

    ``target_side`` is where the condition's second method (or the catch corruption) is shown ("" for a single
    stimulus). ``expected`` is the correct response where one is defined (catch trials), else "".
    """

    index: int
    phase: str  # "practice" | "main"
    block: int  # -1 for practice
    condition: str
    clip: str
    stimuli: tuple[str, ...]
    methods: tuple[str, ...]
    target_side: str
    label: str
    expected: str
    is_catch: bool

    def to_dict(self) -> dict:
        return asdict(self)


class Catalogue:
    """The stimuli available to a study, looked up by (clip, method)."""

    def __init__(self, refs: Sequence[StimulusRef], class_names: Sequence[str] = ()) -> None:
        self.refs = list(refs)
        self.by_key = {(r.clip, r.method): r for r in self.refs}
        self.clips = sorted({r.clip for r in self.refs})
        self.labels = {r.clip: r.label for r in self.refs}
        self.class_names = list(class_names) or sorted({r.label for r in self.refs if r.label})

    def clips_with(self, methods: Sequence[str]) -> list[str]:
        return [c for c in self.clips if all((c, m) in self.by_key for m in methods)]

    def id(self, clip: str, method: str) -> str:
        return self.by_key[(clip, method)].id


def session_seed(protocol: Protocol, participant: str) -> int:
    """The seed of one session: the protocol's seed, mixed with the participant id when orders differ per person."""
    if not protocol.order_per_participant:
        return int(protocol.seed)
    digest = hashlib.sha256(f"{protocol.seed}:{participant}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


# -- run-length constrained sequences ---------------------------------------------------------------------------
def run_feasible(counts: dict[Hashable, int], last: Hashable | None, run: int, max_run: int) -> bool:
    """Whether the remaining ``counts`` can be laid out with no item more than ``max_run`` times in a row, given
    that the sequence so far ends with ``run`` copies of ``last``.

    Item j with c_j copies needs enough other items to separate its runs: c_j ≤ m·(R − c_j + 1), where R is the
    total left; for the item that ends the sequence so far its first run is already ``run`` long:
    c_j ≤ (m − run) + m·(R − c_j).
    """
    total = sum(counts.values())
    for key, c in counts.items():
        if c == 0:
            continue
        limit = (max_run - run) + max_run * (total - c) if key == last else max_run * (total - c + 1)
        if c > limit:
            return False
    return True


def constrained_sequence(counts: dict[Hashable, int], max_run: int, rng: np.random.Generator) -> list:
    """A random sequence holding ``counts[k]`` copies of each k, no k more than ``max_run`` times in a row.

    ``max_run <= 0`` means no limit (a plain shuffle). Each step draws among the items that keep the rest
    feasible, weighted by how many of each remain, so that without a binding limit it behaves like a shuffle.
    """
    keys = list(counts)
    left = {k: int(counts[k]) for k in keys}
    if max_run <= 0:
        seq = [k for k in keys for _ in range(left[k])]
        order = rng.permutation(len(seq))
        return [seq[i] for i in order]
    if not run_feasible(left, None, 0, max_run):
        raise StudyError(
            f"cannot order {dict(left)} with at most {max_run} in a row: one kind outnumbers the others; "
            "raise the run-length limit or add trials of the other kinds"
        )
    out: list = []
    last, run = None, 0
    while len(out) < sum(counts.values()):
        options, weights = [], []
        for k in keys:
            if left[k] == 0 or (k == last and run >= max_run):
                continue
            left[k] -= 1
            if run_feasible(left, k, run + 1 if k == last else 1, max_run):
                options.append(k)
                weights.append(left[k] + 1)
            left[k] += 1
        if not options:  # cannot happen when run_feasible is exact; kept as a guard with a clear message
            raise StudyError(f"internal error: no feasible continuation for {left} (run {run} of {last!r})")
        w = np.asarray(weights, dtype=float)
        k = options[int(rng.choice(len(options), p=w / w.sum()))]
        left[k] -= 1
        run = run + 1 if k == last else 1
        last = k
        out.append(k)
    return out


def max_run_length(seq: Sequence) -> int:
    """Longest run of equal consecutive items (0 for an empty sequence)."""
    best = run = 0
    prev = object()
    for x in seq:
        run = run + 1 if x == prev else 1
        prev = x
        best = max(best, run)
    return best


def balanced_sides(n: int, max_run: int, rng: np.random.Generator) -> list[str]:
    """``n`` sides, half "left" and half "right" (the odd one drawn at random), at most ``max_run`` in a row."""
    half = n // 2
    extra = ["left", "right"][int(rng.integers(2))] if n % 2 else None
    counts = {"left": half + (extra == "left"), "right": half + (extra == "right")}
    return constrained_sequence(counts, max_run, rng)


# -- the plan ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Item:
    condition: str
    clip: str
    methods: tuple[str, ...]  # (reference, target) or (single,)
    label: str
    expected_if_target_right: str  # catch answers for two-stimulus trials depend on the side
    is_catch: bool


def _condition_items(protocol: Protocol, cat: Catalogue, rng: np.random.Generator) -> dict[str, list[_Item]]:
    items: dict[str, list[_Item]] = {}
    for cond in protocol.conditions:
        clips = cat.clips_with(cond.stimuli)
        if not clips:
            raise StudyError(
                f"condition {cond.name!r} needs stimuli of methods {list(cond.stimuli)} for the same clip, and the "
                "stimulus file has none; prepare it with this protocol"
            )
        if protocol.clips_per_condition and protocol.clips_per_condition < len(clips):
            pick = sorted(rng.choice(len(clips), protocol.clips_per_condition, replace=False))
            clips = [clips[i] for i in pick]
        items[cond.name] = [
            _Item(cond.name, c, cond.stimuli, cat.labels[c], "", False) for c in clips for _ in range(protocol.repetitions)
        ]
    return items


def _catch_items(protocol: Protocol, cat: Catalogue, rng: np.random.Generator) -> list[_Item]:
    n = protocol.catch_count
    if not n:
        return []
    kind = protocol.kind
    if kind == "2afc":
        clips = cat.clips_with(["clean", protocol.catch_method])
        if not clips:
            raise StudyError(
                f"catch trials need clean and {protocol.catch_method!r} stimuli of the same clip; the stimulus "
                "file has none"
            )
    else:
        clips = cat.clips_with(["clean"])
        if not clips:
            raise StudyError("catch trials need clean stimuli, and the stimulus file has none")
    # cycle through a permutation so that clips repeat only when all were used
    order = [clips[i] for i in np.concatenate([rng.permutation(len(clips)) for _ in range(-(-n // len(clips)))])][:n]
    out = []
    for clip in order:
        label = cat.labels[clip]
        if kind == "yesno":
            others = [c for c in cat.class_names if c != label]
            if not others:
                raise StudyError("yes/no catch trials show a wrong label, but the stimulus file has a single class")
            wrong = others[int(rng.integers(len(others)))]
            out.append(_Item(CATCH, clip, ("clean",), wrong, "no", True))
        elif kind == "2afc":
            # the corrupted stimulus is the target; the correct choice is the clean one
            out.append(_Item(CATCH, clip, ("clean", protocol.catch_method), label, "left", True))
        else:
            partners = [c for c in clips if c != clip and cat.labels[c] != label] or [c for c in clips if c != clip]
            if not partners:
                raise StudyError("same/different catch trials pair two different clips; the stimulus file has one")
            other = partners[int(rng.integers(len(partners)))]
            out.append(_Item(CATCH, f"{clip}|{other}", ("clean", "clean"), label, "different", True))
    return out


def _make_trial(index: int, phase: str, block: int, item: _Item, side: str, cat: Catalogue) -> Trial:
    if len(item.methods) == 1:
        stim = (cat.id(item.clip, item.methods[0]),)
        return Trial(index, phase, block, item.condition, item.clip, stim, item.methods, "", item.label,
                     item.expected_if_target_right, item.is_catch)
    ref_clip, _, target_clip = item.clip.partition("|")
    target_clip = target_clip or ref_clip
    ref = cat.id(ref_clip, item.methods[0])
    target = cat.id(target_clip, item.methods[1])
    if side == "right":
        stimuli, methods = (ref, target), item.methods
    else:
        stimuli, methods = (target, ref), item.methods[::-1]
    expected = item.expected_if_target_right
    if expected == "left" and side == "left":  # 2afc catch: the clean one is opposite the target
        expected = "right"
    return Trial(index, phase, block, item.condition, item.clip, stimuli, methods, side, item.label, expected,
                 item.is_catch)


def plan_trials(protocol: Protocol, catalogue: Catalogue, seed: int) -> list[Trial]:
    """The whole session, practice first. Deterministic in (protocol, catalogue, seed)."""
    root = np.random.SeedSequence(int(seed))
    rng_main, rng_sides, rng_practice = (np.random.default_rng(s) for s in root.spawn(3))

    items = _condition_items(protocol, catalogue, rng_main)
    catch = _catch_items(protocol, catalogue, rng_main)
    pools = {name: [lst[i] for i in rng_main.permutation(len(lst))] for name, lst in items.items()}
    if catch:
        pools[CATCH] = catch
    order = constrained_sequence({k: len(v) for k, v in pools.items()}, protocol.max_condition_run, rng_main)
    taken = dict.fromkeys(pools, 0)
    main_items = []
    for name in order:
        main_items.append(pools[name][taken[name]])
        taken[name] += 1

    two = protocol.two_stimuli
    sides = balanced_sides(len(main_items), protocol.max_side_run, rng_sides) if two else [""] * len(main_items)

    practice: list[Trial] = []
    if protocol.practice:
        pool = [it for lst in items.values() for it in lst]
        pick = rng_practice.choice(len(pool), protocol.practice, replace=protocol.practice > len(pool))
        p_sides = balanced_sides(protocol.practice, protocol.max_side_run, rng_practice) if two else [""] * len(pick)
        practice = [_make_trial(i, "practice", -1, pool[j], s, catalogue) for i, (j, s) in enumerate(zip(pick, p_sides))]

    n = len(main_items)
    bounds = np.linspace(0, n, protocol.blocks + 1).round().astype(int)
    block_of = np.searchsorted(bounds[1:], np.arange(n), side="right")
    offset = len(practice)
    main = [
        _make_trial(offset + i, "main", int(block_of[i]), item, side, catalogue)
        for i, (item, side) in enumerate(zip(main_items, sides))
    ]
    return practice + main
