"""Trial plans: reproducible from the seed, counterbalanced, run-length limited, catch trials interleaved."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from engine.errors import StudyError
from studies.protocol import load_protocol, parse_protocol
from studies.schedule import (
    balanced_sides,
    constrained_sequence,
    max_run_length,
    plan_trials,
    run_feasible,
    session_seed,
)
from studies.stimuli import read_stimuli
from tests.studies.conftest import make_stimulus_file


@pytest.fixture
def catalogue(tmp_path):
    return read_stimuli(make_stimulus_file(tmp_path / "s.h5", ("clean", "smart", "basar", "jitter"), n_clips=9))\
        .catalogue()


@pytest.mark.parametrize("preset", ["deceitfulness", "naturalness", "indistinguishability", "generic_2afc"])
def test_same_seed_same_order_and_other_seed_other_order(preset, catalogue):
    protocol = load_protocol(preset)
    a = plan_trials(protocol, catalogue, 123)
    b = plan_trials(protocol, catalogue, 123)
    c = plan_trials(protocol, catalogue, 124)
    assert a == b
    assert [t.stimuli for t in a] != [t.stimuli for t in c]
    def content(plan):
        return sorted((t.condition, tuple(sorted(t.stimuli))) for t in plan if t.phase == "main" and not t.is_catch)

    assert content(a) == content(c)  # the same trials, reordered


def test_session_seed_is_stable_and_per_participant():
    protocol = load_protocol("naturalness")
    assert session_seed(protocol, "P-AAAAAA") == session_seed(protocol, "P-AAAAAA")
    assert session_seed(protocol, "P-AAAAAA") != session_seed(protocol, "P-BBBBBB")
    fixed = parse_protocol(protocol.text.replace("seed = 20210602", "seed = 5\norder_per_participant = false"))
    assert session_seed(fixed, "P-AAAAAA") == session_seed(fixed, "P-BBBBBB") == 5


@pytest.mark.parametrize("seed", range(40))
def test_sides_are_balanced_and_runs_limited(seed, catalogue):
    protocol = load_protocol("generic_2afc")  # 3 conditions x 9 clips + 4 catch, max side run 3, condition run 3
    plan = [t for t in plan_trials(protocol, catalogue, seed) if t.phase == "main"]
    sides = [t.target_side for t in plan]
    counts = Counter(sides)
    assert abs(counts["left"] - counts["right"]) <= 1
    assert max_run_length(sides) <= protocol.max_side_run
    assert max_run_length([t.condition for t in plan]) <= protocol.max_condition_run
    # the methods really are shown where target_side says
    for t in plan:
        cond = next((c for c in protocol.conditions if c.name == t.condition), None)
        target = cond.stimuli[1] if cond else protocol.catch_method
        assert t.methods[0 if t.target_side == "left" else 1] == target


def test_catch_trials_are_interleaved_with_known_answers(catalogue):
    for preset, expected in (("deceitfulness", {"no"}), ("indistinguishability", {"different"})):
        protocol = load_protocol(preset)
        plan = [t for t in plan_trials(protocol, catalogue, 3) if t.phase == "main"]
        catch = [t for t in plan if t.is_catch]
        assert len(catch) == protocol.catch_count
        assert {t.expected for t in catch} == expected
        assert all(not t.expected for t in plan if not t.is_catch)
        positions = [i for i, t in enumerate(plan) if t.is_catch]
        assert positions != list(range(len(positions)))  # not all at the start
    protocol = load_protocol("deceitfulness")
    for t in (t for t in plan_trials(protocol, catalogue, 3) if t.is_catch):
        assert t.label != catalogue.labels[t.clip]  # a wrong label
    protocol = load_protocol("naturalness")
    for t in (t for t in plan_trials(protocol, catalogue, 3) if t.is_catch):
        clean_side = "left" if t.methods[0] == "clean" else "right"
        assert t.expected == clean_side and "jitter" in t.methods


def test_blocks_and_practice(catalogue):
    protocol = load_protocol("indistinguishability")  # 2 conditions x 9 clips + 4 catch = 22 main, 2 blocks
    plan = plan_trials(protocol, catalogue, 9)
    practice = [t for t in plan if t.phase == "practice"]
    main = [t for t in plan if t.phase == "main"]
    assert len(practice) == protocol.practice and plan[: len(practice)] == practice
    assert all(t.block == -1 and not t.is_catch for t in practice)
    assert [t.index for t in plan] == list(range(len(plan)))
    assert Counter(t.block for t in main) == {0: 11, 1: 11}
    assert [t.block for t in main] == sorted(t.block for t in main)
    assert Counter(t.condition for t in main) == {"attacked": 9, "identical": 9, "catch": 4}


def _exhaustive_feasible(counts, last, run, m):
    items = [k for k, c in counts.items() for _ in range(c)]
    for perm in set(itertools.permutations(items)):
        seq = [last] * run + list(perm)
        if max_run_length(seq) <= m:
            return True
    return not items


@pytest.mark.parametrize("m", [1, 2, 3])
def test_feasibility_condition_is_exact(m):
    for a, b, c in itertools.product(range(5), range(4), range(3)):
        counts = {"a": a, "b": b, "c": c}
        for last, run in ((None, 0), ("a", 1), ("a", m), ("b", 1)):
            assert run_feasible(counts, last, run, m) == _exhaustive_feasible(counts, last, run, m), (counts, last, run)


def test_constrained_sequence_keeps_counts_and_limit():
    rng = np.random.default_rng(0)
    for _ in range(200):
        counts = {k: int(rng.integers(0, 8)) for k in "abcd"}
        m = int(rng.integers(1, 4))
        if not run_feasible(counts, None, 0, m):
            with pytest.raises(StudyError, match="at most"):
                constrained_sequence(counts, m, rng)
            continue
        seq = constrained_sequence(counts, m, rng)
        assert Counter(seq) == {k: v for k, v in counts.items() if v}
        assert max_run_length(seq) <= m
    sides = balanced_sides(11, 2, rng)
    assert sorted(Counter(sides).values()) == [5, 6] and max_run_length(sides) <= 2


def test_impossible_plan_gives_a_clear_error(catalogue):
    protocol = load_protocol("naturalness")
    text = protocol.text.replace('stimuli = ["clean", "smart"]', 'stimuli = ["clean", "ciasa"]')
    with pytest.raises(StudyError, match="needs stimuli of methods"):
        plan_trials(parse_protocol(text), catalogue, 0)
