"""Protocol files: presets load; every mistake is a StudyError that names the table and key."""

from __future__ import annotations

import pytest

from engine.errors import StudyError
from studies.protocol import RESPONSES, load_protocol, parse_protocol, presets

MINIMAL = """
[study]
title = "t"
kind = "2afc"
question = "q?"
seed = 1
consent = "c"
instructions = "i"

[[conditions]]
name = "a"
stimuli = ["clean", "smart"]
"""


def test_presets_follow_the_papers():
    assert set(presets()) >= {"deceitfulness", "naturalness", "indistinguishability", "generic_2afc"}
    kinds = {name: load_protocol(name).kind for name in presets()}
    assert kinds["deceitfulness"] == "yesno"
    assert kinds["naturalness"] == "2afc" and kinds["generic_2afc"] == "2afc"
    assert kinds["indistinguishability"] == "same_different"
    ind = load_protocol("indistinguishability")
    assert {c.stimuli for c in ind.conditions} == {("clean", "smart"), ("clean", "clean")}
    assert load_protocol("deceitfulness").show_label


def test_minimal_protocol_defaults():
    p = parse_protocol(MINIMAL)
    assert p.responses == RESPONSES["2afc"]
    assert p.keys == {"left": "F", "right": "J", "replay": "Space"}
    assert p.repetitions == 1 and p.blocks == 1 and p.catch_count == 0 and p.prepare is None
    assert p.sha256 == parse_protocol(MINIMAL).sha256 != parse_protocol(MINIMAL + "\n# x").sha256


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('kind = "2afc"', 'kind = "3afc"'), r"\[study\] kind '3afc' is not a trial type; use one of yesno"),
        (("seed = 1", 'seed = "one"'), r"\[study\] seed must be int"),
        (("seed = 1\n", ""), r"\[study\] lacks the required key 'seed'"),
        (('title = "t"', 'title = "t"\ntitel = "x"'), r"\[study\] unknown key 'titel'"),
        (("[[conditions]]", "[design]\nblocks = 0\n[[conditions]]"), r"\[design\] blocks must be an integer ≥ 1"),
        (("[[conditions]]", "[design]\npractice = true\n[[conditions]]"), r"\[design\] practice must be int"),
        (('["clean", "smart"]', '["clean"]'), r"stimuli must list 2 stimulus method"),
        (('["clean", "smart"]', '["smart", "smart"]'), r"needs two different methods"),
        (("[[conditions]]", "[catch]\ncount = 2\n[[conditions]]"), r"2afc catch trials need a method"),
        (("[[conditions]]", '[keys]\nleft = "J"\n[[conditions]]'), r"two actions share a key"),
        (("[[conditions]]", '[keys]\nyes = "Y"\n[[conditions]]'), r"'yes' is not an action of a 2afc study"),
        (("[[conditions]]", '[keys]\nleft = "Escape"\n[[conditions]]'), r"reserved"),
        (("[[conditions]]", "[analysis]\ncatch_threshold = 2\n[[conditions]]"), r"catch_threshold must lie in"),
        (("[[conditions]]", "[blocks]\n[[conditions]]"), r"unknown table 'blocks'"),
        (('seed = 1', 'seed = 1\nkind = "x"'), r"not valid TOML"),
        (("[[conditions]]\nname = \"a\"\nstimuli = [\"clean\", \"smart\"]", ""), r"no \[\[conditions\]\]"),
    ],
)
def test_mistakes_are_named(edit, message):
    old, new = edit
    assert old in MINIMAL
    with pytest.raises(StudyError, match=message) as info:
        parse_protocol(MINIMAL.replace(old, new, 1), "my.toml")
    assert str(info.value).startswith("my.toml")


def test_prepare_table():
    text = MINIMAL + '\n[prepare]\nclips = 4\n[[prepare.methods]]\nname = "smart"\nattack = "smart"\nparams = { iterations = 5 }\n'
    p = parse_protocol(text)
    assert p.prepare.clips == 4 and p.prepare.methods[0].params == {"iterations": 5}
    with pytest.raises(StudyError, match="reserved for the built-in"):
        parse_protocol(MINIMAL + '\n[prepare]\n[[prepare.methods]]\nname = "clean"\nattack = "smart"\n')


def test_missing_protocol_names_the_presets(tmp_path):
    with pytest.raises(StudyError, match="naturalness"):
        load_protocol(tmp_path / "nope.toml")
