"""Study protocols: one TOML file per study, read with the standard library's ``tomllib`` and validated here.

A protocol names the trial type, the texts the participant reads, the conditions, the design (repetitions,
practice, catch trials, blocks, run-length limits), the response keys, the playback and the seed; the optional
``[prepare]`` table says which attacks build the stimulus file (see :mod:`studies.prepare`). Every problem is a
:class:`~engine.errors.StudyError` naming the file, the table and the key, and saying what is expected::

    [study]
    title = "Naturalness"
    kind = "2afc"                      # "yesno" | "2afc" | "same_different"
    question = "Which motion looks more natural?"
    seed = 1234
    consent = "..."
    instructions = "..."

    [design]                            # all optional
    repetitions = 1
    practice = 3
    blocks = 2
    max_side_run = 3
    max_condition_run = 3
    orders = 1                          # counterbalanced trial orders (see studies.counterbalance)

    [online]                            # optional: only `skelviz study serve` (the browser runner) reads it
    completion_code = "C1A2B3"          # shown on the last page (Prolific / MTurk)
    redirect_url = "https://app.prolific.com/submissions/complete?cc={code}"
    min_width = 800                     # the page refuses smaller windows (CSS pixels)
    min_height = 500
    presentation = "side_by_side"       # or "sequential": a pair one after the other

    [catch]                             # optional: trials with a known answer
    count = 4
    method = "jitter"

    [[conditions]]
    name = "smart"
    stimuli = ["clean", "smart"]        # 2afc/same_different: two methods; yesno: one
    signal = true                       # for d′ (yesno/same_different: signal vs noise conditions)

Trial types (``kind``):

``yesno``
    One motion with a label (its true class); the participant answers whether the label describes it.
    Catch trials show a clean motion with a wrong label (correct answer: no).
``2afc``
    Two motions side by side; the participant picks one (e.g. the more natural). The second method's side is
    counterbalanced. Catch trials pair the clean motion with ``catch.method`` (a plainly corrupted version);
    the correct choice is the clean one.
``same_different``
    Two motions side by side (clean vs attacked, or clean vs itself); are they the same motion? Catch trials
    pair two different clips (correct answer: different).
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import StudyError

KINDS = ("yesno", "2afc", "same_different")

#: The responses each trial type accepts, in the order the buttons appear.
RESPONSES: dict[str, tuple[str, ...]] = {
    "yesno": ("no", "yes"),
    "2afc": ("left", "right"),
    "same_different": ("different", "same"),
}

#: Default keyboard keys (Qt key names) for every response, plus replay.
DEFAULT_KEYS: dict[str, dict[str, str]] = {
    "yesno": {"no": "F", "yes": "J", "replay": "Space"},
    "2afc": {"left": "F", "right": "J", "replay": "Space"},
    "same_different": {"different": "F", "same": "J", "replay": "Space"},
}

#: The answer whose proportion the analysis reports for each trial type, and the one that means "detected".
MEASURE: dict[str, str] = {"yesno": "yes", "2afc": "first", "same_different": "same"}
DETECT: dict[str, str] = {"yesno": "no", "same_different": "different"}

_TABLE_KEYS: dict[str, set[str]] = {
    "study": {"title", "kind", "question", "seed", "consent", "instructions", "order_per_participant", "end_text"},
    "design": {"repetitions", "practice", "blocks", "max_side_run", "max_condition_run", "clips_per_condition",
               "orders"},
    "catch": {"count", "method"},
    "keys": set(),  # checked per kind
    "display": {"loops", "replays", "fps", "show_label", "inter_trial_ms"},
    "analysis": {"catch_threshold", "max_focus_losses"},
    "online": {"completion_code", "redirect_url", "min_width", "min_height", "presentation", "gap_ms"},
    "prepare": {"clips", "seed", "split", "methods", "classes", "jitter_std"},
}
_TOP_KEYS = set(_TABLE_KEYS) | {"conditions", "schema"}
SCHEMA = 1


@dataclass(frozen=True)
class Condition:
    """One experimental condition: the stimulus methods shown together and whether it is a signal for d′."""

    name: str
    stimuli: tuple[str, ...]
    signal: bool | None = None

    @property
    def is_identity(self) -> bool:
        """A pair showing the same method twice (clean vs itself)."""
        return len(self.stimuli) == 2 and self.stimuli[0] == self.stimuli[1]


@dataclass(frozen=True)
class PrepareMethod:
    """One attacked condition of the stimulus file: a method name, the registered attack and its arguments."""

    name: str
    attack: str
    params: dict[str, Any] = field(default_factory=dict)
    target: str | None = None


@dataclass(frozen=True)
class PrepareSpec:
    clips: int = 8
    seed: int = 0
    split: str | None = None
    classes: tuple[str, ...] = ()
    jitter_std: float = 0.05
    methods: tuple[PrepareMethod, ...] = ()


PRESENTATIONS = ("side_by_side", "sequential")


@dataclass(frozen=True)
class OnlineSpec:
    """The ``[online]`` table: what only the browser runner (``skelviz study serve``) uses.

    ``completion_code`` and ``redirect_url`` are shown / offered on the last page so that a crowd-sourcing
    platform (Prolific, MTurk) can credit the participant; ``redirect_url`` may contain ``{code}``. The page
    refuses to start in a window smaller than ``min_width`` × ``min_height`` CSS pixels. ``presentation`` shows
    a pair side by side or one after the other (``gap_ms`` of blank between them).
    """

    completion_code: str = ""
    redirect_url: str = ""
    min_width: int = 800
    min_height: int = 500
    presentation: str = "side_by_side"
    gap_ms: int = 500


@dataclass(frozen=True)
class Protocol:
    """A validated study protocol. ``text`` is the TOML source; ``sha256`` identifies it in session files."""

    title: str
    kind: str
    question: str
    seed: int
    consent: str
    instructions: str
    end_text: str
    conditions: tuple[Condition, ...]
    repetitions: int = 1
    practice: int = 0
    blocks: int = 1
    max_side_run: int = 3
    max_condition_run: int = 0
    clips_per_condition: int = 0
    catch_count: int = 0
    catch_method: str | None = None
    keys: dict[str, str] = field(default_factory=dict)
    loops: int = 1
    replays: int = 1
    fps: float | None = None
    show_label: bool = False
    inter_trial_ms: int = 500
    order_per_participant: bool = True
    catch_threshold: float = 0.75
    max_focus_losses: int = 3
    orders: int = 1
    online: OnlineSpec = field(default_factory=OnlineSpec)
    prepare: PrepareSpec | None = None
    text: str = ""
    source: str = ""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def responses(self) -> tuple[str, ...]:
        return RESPONSES[self.kind]

    @property
    def two_stimuli(self) -> bool:
        return self.kind != "yesno"

    def methods(self) -> set[str]:
        """Every stimulus method the trials need (conditions, catch, and the clean reference of catch trials)."""
        needed = {m for c in self.conditions for m in c.stimuli}
        if self.catch_count:
            needed.add("clean")
            if self.kind == "2afc" and self.catch_method:
                needed.add(self.catch_method)
        return needed


# ---------------------------------------------------------------------------------------------------------------
class _Reader:
    """Typed access to a TOML table with error messages that name the file, the table and the key."""

    def __init__(self, source: str, table: str, data: dict) -> None:
        self.source, self.table, self.data = source, table, data
        known = _TABLE_KEYS.get(table)
        if known:
            unknown = sorted(set(data) - known)
            if unknown:
                self.fail(f"unknown key {unknown[0]!r}", f"known keys: {', '.join(sorted(known))}")

    def fail(self, problem: str, hint: str = "") -> None:
        msg = f"{self.source}: [{self.table}] {problem}"
        raise StudyError(msg + (f"; {hint}" if hint else ""))

    def get(self, key: str, typ: type | tuple, default: Any = ..., *, what: str = "") -> Any:
        if key not in self.data:
            if default is ...:
                self.fail(f"lacks the required key {key!r}", what)
            return default
        value = self.data[key]
        types = typ if isinstance(typ, tuple) else (typ,)
        # bool is an int in Python: refuse it where a number is expected, and vice versa
        if (bool not in types and isinstance(value, bool)) or not isinstance(value, types):
            names = " or ".join(t.__name__ for t in types)
            self.fail(f"{key} must be {names}, got {value!r}", what)
        return value

    def integer(self, key: str, default: int, *, minimum: int = 0) -> int:
        value = self.get(key, int, default)
        if value < minimum:
            self.fail(f"{key} must be an integer ≥ {minimum}, got {value}")
        return value

    def text(self, key: str, default: Any = ..., *, what: str = "") -> str:
        value = self.get(key, str, default, what=what)
        return value.strip() if isinstance(value, str) else value


def parse_protocol(text: str, source: str = "<protocol>") -> Protocol:
    """Parse and validate protocol TOML ``text``; ``source`` names it in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(f"{source}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise StudyError(f"{source}: unknown table {unknown[0]!r}; known tables: {', '.join(sorted(_TOP_KEYS))}")
    schema = data.get("schema", SCHEMA)
    if schema != SCHEMA:
        raise StudyError(f"{source}: protocol schema {schema!r} is not supported (this skelviz reads {SCHEMA})")
    tables = {}
    for name in _TABLE_KEYS:
        value = data.get(name, {})
        if not isinstance(value, dict):
            raise StudyError(f"{source}: {name} must be a table ([{name}]), got {type(value).__name__}")
        tables[name] = value
    if "study" not in data:
        raise StudyError(f"{source}: the [study] table is missing (it holds title, kind, question, seed...)")

    study = _Reader(source, "study", tables["study"])
    kind = study.text("kind", what=f"one of {', '.join(KINDS)}")
    if kind not in KINDS:
        study.fail(f"kind {kind!r} is not a trial type", f"use one of {', '.join(KINDS)}")
    seed = study.get("seed", int, what="an integer that makes the trial order reproducible")

    design = _Reader(source, "design", tables["design"])
    catch = _Reader(source, "catch", tables["catch"])
    display = _Reader(source, "display", tables["display"])
    analysis = _Reader(source, "analysis", tables["analysis"])

    conditions = _parse_conditions(source, kind, data.get("conditions"))
    catch_count = catch.integer("count", 0)
    catch_method = catch.text("method", None)
    if kind == "2afc" and catch_count and not catch_method:
        catch.fail("2afc catch trials need a method", 'name the corrupted stimulus method, e.g. method = "jitter"')

    keys = _parse_keys(source, kind, tables["keys"])
    fps = display.get("fps", (int, float), None)
    if fps is not None and fps <= 0:
        display.fail(f"fps must be positive, got {fps}")
    threshold = analysis.get("catch_threshold", (int, float), 0.75)
    online = _parse_online(source, kind, tables["online"])
    if not 0 <= threshold <= 1:
        analysis.fail(f"catch_threshold must lie in [0, 1], got {threshold}")

    return Protocol(
        title=study.text("title"),
        kind=kind,
        question=study.text("question"),
        seed=seed,
        consent=study.text("consent"),
        instructions=study.text("instructions"),
        end_text=study.text("end_text", "Thank you for taking part. You may now call the experimenter."),
        order_per_participant=study.get("order_per_participant", bool, True),
        conditions=conditions,
        repetitions=design.integer("repetitions", 1, minimum=1),
        practice=design.integer("practice", 0),
        blocks=design.integer("blocks", 1, minimum=1),
        max_side_run=design.integer("max_side_run", 3, minimum=1),
        max_condition_run=design.integer("max_condition_run", 0),
        clips_per_condition=design.integer("clips_per_condition", 0),
        catch_count=catch_count,
        catch_method=catch_method,
        keys=keys,
        loops=display.integer("loops", 1, minimum=1),
        replays=display.integer("replays", 1),
        fps=None if fps is None else float(fps),
        show_label=display.get("show_label", bool, kind == "yesno"),
        inter_trial_ms=display.integer("inter_trial_ms", 500),
        catch_threshold=float(threshold),
        max_focus_losses=analysis.integer("max_focus_losses", 3),
        orders=design.integer("orders", 1, minimum=1),
        online=online,
        prepare=_parse_prepare(source, tables["prepare"]) if "prepare" in data else None,
        text=text,
        source=source,
    )


def load_protocol(path: str | Path) -> Protocol:
    """Read and validate a protocol file (a preset name such as ``naturalness`` also works)."""
    path = resolve_protocol_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise StudyError(f"{path}: a protocol must be UTF-8 text (TOML)") from None
    return parse_protocol(text, str(path))


PRESETS_DIR = Path(__file__).resolve().parent / "protocols"


def presets() -> list[str]:
    """Names of the protocols shipped in ``studies/protocols``."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def resolve_protocol_path(path: str | Path) -> Path:
    p = Path(path)
    if p.is_file():
        return p
    preset = PRESETS_DIR / f"{p.name}.toml" if p.suffix == "" else PRESETS_DIR / p.name
    if len(p.parts) == 1 and preset.is_file():
        return preset
    raise StudyError(f"protocol {str(path)!r} not found; give a TOML file or a preset: {', '.join(presets())}")


# ---------------------------------------------------------------------------------------------------------------
def _parse_conditions(source: str, kind: str, raw: Any) -> tuple[Condition, ...]:
    if not raw:
        raise StudyError(f"{source}: no [[conditions]]; a study needs at least one condition")
    if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
        raise StudyError(f"{source}: conditions must be an array of tables ([[conditions]])")
    n_stimuli = 1 if kind == "yesno" else 2
    out, seen = [], set()
    for i, c in enumerate(raw):
        table = f"conditions #{i + 1}"
        unknown = sorted(set(c) - {"name", "stimuli", "signal"})
        if unknown:
            raise StudyError(f"{source}: [{table}] unknown key {unknown[0]!r}; known keys: name, signal, stimuli")
        name = c.get("name")
        if not isinstance(name, str) or not name:
            raise StudyError(f"{source}: [{table}] needs a name (a non-empty string)")
        if name in seen:
            raise StudyError(f"{source}: [{table}] the condition name {name!r} is used twice")
        seen.add(name)
        stimuli = c.get("stimuli")
        if (
            not isinstance(stimuli, list)
            or len(stimuli) != n_stimuli
            or not all(isinstance(s, str) and s for s in stimuli)
        ):
            raise StudyError(
                f"{source}: [{table}] ({name}) stimuli must list {n_stimuli} stimulus method name(s) for a "
                f"{kind} study, got {stimuli!r}"
            )
        if kind == "2afc" and stimuli[0] == stimuli[1]:
            raise StudyError(f"{source}: [{table}] ({name}) a 2afc condition needs two different methods")
        signal = c.get("signal")
        if signal is not None and not isinstance(signal, bool):
            raise StudyError(f"{source}: [{table}] ({name}) signal must be true or false, got {signal!r}")
        out.append(Condition(name, tuple(stimuli), signal))
    return tuple(out)


def _parse_keys(source: str, kind: str, raw: dict) -> dict[str, str]:
    keys = dict(DEFAULT_KEYS[kind])
    allowed = set(keys)
    for action, key in raw.items():
        if action not in allowed:
            raise StudyError(
                f"{source}: [keys] {action!r} is not an action of a {kind} study; use {', '.join(sorted(allowed))}"
            )
        if not isinstance(key, str) or not key:
            raise StudyError(f"{source}: [keys] {action} must be a key name such as \"F\", got {key!r}")
        keys[action] = key
    reserved = {"Escape"}
    for action, key in keys.items():
        if key in reserved:
            raise StudyError(f"{source}: [keys] {action} = {key!r} is reserved: Escape pauses and asks whether to end the session")
    if len(set(keys.values())) != len(keys):
        raise StudyError(f"{source}: [keys] two actions share a key: {keys}")
    return keys


def _parse_online(source: str, kind: str, raw: dict) -> OnlineSpec:
    r = _Reader(source, "online", raw)
    url = r.text("redirect_url", "")
    if url and not url.startswith(("https://", "http://")):
        r.fail(f"redirect_url must be an http(s) address, got {url!r}", "e.g. the completion URL Prolific gives you")
    presentation = r.text("presentation", "side_by_side")
    if presentation not in PRESENTATIONS:
        r.fail(f"presentation {presentation!r} is not known", f"use one of {', '.join(PRESENTATIONS)}")
    if presentation == "sequential" and kind == "yesno":
        r.fail("presentation = \"sequential\" needs two stimuli per trial; a yesno study shows one")
    return OnlineSpec(
        completion_code=r.text("completion_code", ""),
        redirect_url=url,
        min_width=r.integer("min_width", 800, minimum=1),
        min_height=r.integer("min_height", 500, minimum=1),
        presentation=presentation,
        gap_ms=r.integer("gap_ms", 500),
    )


def _check_attack_params(attack: str, params: dict, where: str) -> None:
    """The attack exists and its params table (plus an optional ``preset``) fits its typed parameters
    (:mod:`engine.params`): checked when the protocol is read, not after an hour of stimulus preparation."""
    from engine.attacks.base import get_attack
    from engine.errors import SkelvizError
    from engine.params import make_params

    try:
        cls = get_attack(attack)
        given = dict(params)
        preset = given.pop("preset", None)
        make_params(cls.Params, given, preset=preset, where=f"{where} attack {attack!r}")
    except SkelvizError as exc:
        raise StudyError(str(exc) if str(exc).startswith(where) else f"{where} {exc}") from None


def _parse_prepare(source: str, raw: dict) -> PrepareSpec:
    r = _Reader(source, "prepare", raw)
    methods_raw = r.get("methods", list, [])
    methods = []
    for i, m in enumerate(methods_raw):
        where = f"{source}: [[prepare.methods]] #{i + 1}"
        if not isinstance(m, dict):
            raise StudyError(f"{where} must be a table")
        unknown = sorted(set(m) - {"name", "attack", "params", "target"})
        if unknown:
            raise StudyError(f"{where} unknown key {unknown[0]!r}; known keys: attack, name, params, target")
        name, attack = m.get("name"), m.get("attack", m.get("name"))
        if not isinstance(name, str) or not name or not isinstance(attack, str):
            raise StudyError(f"{where} needs a name and an attack (registered attack name)")
        if name in ("clean", "jitter"):
            raise StudyError(f"{where} the name {name!r} is reserved for the built-in stimulus method")
        params = m.get("params", {})
        if not isinstance(params, dict):
            raise StudyError(f"{where} params must be a table of the attack's arguments")
        target = m.get("target")
        if target is not None and not isinstance(target, str):
            raise StudyError(f"{where} target must be a class name")
        _check_attack_params(attack, params, where)
        methods.append(PrepareMethod(name, attack, dict(params), target))
    classes = r.get("classes", list, [])
    jitter = r.get("jitter_std", (int, float), 0.05)
    if jitter <= 0:
        r.fail(f"jitter_std must be positive (metres), got {jitter}")
    return PrepareSpec(
        clips=r.integer("clips", 8, minimum=1),
        seed=r.get("seed", int, 0),
        split=r.text("split", None),
        classes=tuple(str(c) for c in classes),
        jitter_std=float(jitter),
        methods=tuple(methods),
    )
