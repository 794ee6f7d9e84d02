"""User preferences that persist between sessions (speed, colours, toggles, recent files).

Qt-free: :class:`Settings` reads and writes through any store with ``value(key, default)`` and
``setValue(key, value)`` — ``QSettings`` in the app, :class:`MemoryStore` in tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

MAX_RECENT = 10


class Store(Protocol):
    def value(self, key: str, default: Any = None) -> Any: ...

    def setValue(self, key: str, value: Any) -> None: ...  # noqa: N802  (QSettings' spelling)


class MemoryStore(dict):
    """A dict with QSettings' two methods."""

    def value(self, key: str, default: Any = None) -> Any:
        return self.get(key, default)

    def setValue(self, key: str, value: Any) -> None:  # noqa: N802
        self[key] = value


def _as_bool(v: Any) -> bool:
    # QSettings' INI backend gives strings back.
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "on")
    return bool(v)


def _as_list(v: Any) -> list[str]:
    if v is None or v == "":
        return []
    if isinstance(v, str):
        return [v]
    return [str(x) for x in v]


@dataclass
class Settings:
    speed: float = 1.0
    loop: bool = True
    linked_cameras: bool = True
    show_grid: bool = True
    show_trails: bool = False
    colour_mode: str = "bone_length"
    colormap: str = "plasma"
    overlay: bool = False
    device: str = "cpu"
    last_dir: str = ""
    recent_files: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, store: Store) -> Settings:
        s = cls()
        for f in fields(cls):
            raw = store.value(f.name, None)
            if raw is None:
                continue
            current = getattr(s, f.name)
            try:
                if isinstance(current, bool):
                    value = _as_bool(raw)
                elif isinstance(current, float):
                    value = float(raw)
                elif isinstance(current, list):
                    value = _as_list(raw)
                else:
                    value = str(raw)
            except (TypeError, ValueError):
                continue  # a corrupt entry falls back to the default
            setattr(s, f.name, value)
        if not s.speed > 0:
            s.speed = 1.0
        return s

    def save(self, store: Store) -> None:
        for f in fields(self):
            store.setValue(f.name, getattr(self, f.name))

    def add_recent(self, path: str | Path) -> None:
        p = str(Path(path).resolve())
        self.recent_files = [p] + [r for r in self.recent_files if r != p][: MAX_RECENT - 1]
