"""The dependency direction of DESIGN.md: skelviz → studies → engine, nothing points back.

engine imports no Qt/pyqtgraph/OpenGL/skelviz/studies; studies imports no Qt/pyqtgraph/OpenGL/skelviz.
Checked on the AST of every module (imports inside functions count too).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GUI = {"PySide6", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph", "OpenGL", "pytestqt"}
FORBIDDEN = {
    "engine": GUI | {"skelviz", "studies"},
    "studies": GUI | {"skelviz"},
}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_respect_dependency_direction(package):
    violations = []
    for path in sorted((REPO / package).rglob("*.py")):
        for line, top in _imports(path):
            if top in FORBIDDEN[package]:
                violations.append(f"{path.relative_to(REPO)}:{line} imports {top}")
    assert not violations, "dependency direction broken:\n" + "\n".join(violations)


# Edges inside the engine that must not come back (issue 14): the data model reads no files, the models do not
# know the attacks or defences (defended checkpoints are rebuilt through engine.models.checkpoint.DEFENDED_MODELS,
# filled by engine.defenses), and attacks live under engine/attacks (runner, manifold, oracle included).
INNER_FORBIDDEN = {
    "engine/data.py": {"engine.io", "engine.benchmark", "engine.models", "engine.attacks", "engine.defenses"},
    "engine/models": {"engine.defenses", "engine.attacks", "engine.io"},
    "engine/preprocessing.py": {"engine.models", "engine.attacks", "engine.defenses", "engine.io"},
    "engine/params.py": {"engine.models", "engine.attacks", "engine.defenses", "torch"},
}


def _module_imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("where", sorted(INNER_FORBIDDEN))
def test_engine_internal_edges_stay_cut(where):
    root = REPO / where
    files = [root] if root.suffix == ".py" else sorted(root.rglob("*.py"))
    violations = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for path in files
        for line, name in _module_imports(path)
        if any(name == bad or name.startswith(bad + ".") for bad in INNER_FORBIDDEN[where])
    ]
    assert not violations, "an engine-internal edge came back:\n" + "\n".join(violations)


def test_attack_machinery_lives_under_engine_attacks():
    for name in ("attack_runner.py", "manifold.py", "oracle.py"):
        assert not (REPO / "engine" / name).exists(), f"engine/{name} belongs in engine/attacks/"
    for name in ("runner.py", "manifold.py", "oracle.py"):
        assert (REPO / "engine" / "attacks" / name).is_file()


def test_checker_catches_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from PySide6 import QtCore\n")
    assert (2, "PySide6") in _imports(bad)


def test_engine_and_studies_import_without_qt():
    code = (
        "import sys, pkgutil, importlib, engine, studies\n"
        "for pkg in (engine, studies):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(m.name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'OpenGL', 'skelviz')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
