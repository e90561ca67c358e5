"""The package layering the README's "Architecture" states, checked on the source.

``nodes`` -> ``training`` -> ``simulation`` -> ``eifer_models`` -> ``streaming``: a package imports
only those below it (``configs`` holds data). The synthetic participant (``simulation/``) draws
its face with ``eifer_models``, so it sits above it; no import runs upwards. Inside
``streaming/`` the rooms are layered the same way (:data:`ROOMS`).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = ("streaming", "eifer_models", "simulation", "training", "nodes")  # lowest first
ALLOWED_UPWARD: set[tuple[str, str]] = set()  # (path prefix, package): none today
# streaming/'s rooms, lowest first; "" is its flat modules (addresses, config, errors, folders,
# optional). A room imports only rooms of a lower level, so two rooms of one level never import
# each other.
ROOMS = {"": 0, "dsp": 1, "acquisition": 2, "bus": 3, "pipeline": 4, "recording": 4, "check": 5}


def _imported_packages(path: Path) -> set[str]:
    """Top-level project packages ``path`` imports, at any depth of the module (lazy ones too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & set(ORDER)


def _imported_modules(path: Path) -> set[str]:
    """Dotted names of the modules (or their members) ``path`` imports, lazy ones too."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _room(dotted: str) -> str:
    """The room of ``streaming.<room>.<module>``; "" for a flat module of ``streaming``."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 2 or (ROOT / "streaming" / parts[-1]).is_dir() else ""


def _imports_against_the_rooms() -> list[str]:
    found = []
    for path in sorted((ROOT / "streaming").rglob("*.py")):
        rel = path.relative_to(ROOT / "streaming").with_suffix("")
        own = rel.parts[0] if len(rel.parts) > 1 else ""
        for name in sorted(_imported_modules(path)):
            if name.split(".")[0] != "streaming" or name == "streaming":
                continue
            room = _room(name)
            if room != own and ROOMS[room] >= ROOMS[own]:
                found.append(f"streaming/{rel.as_posix()}.py ({own or '.'}) imports {name}")
    return found


def _upward_imports() -> list[str]:
    found = []
    for level, package in enumerate(ORDER):
        above = set(ORDER[level + 1 :])
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for name in sorted(_imported_packages(path) & above):
                if not any(rel.startswith(p) and name == n for p, n in ALLOWED_UPWARD):
                    found.append(f"{rel} imports {name}")
    return found


def test_no_package_imports_a_layer_above_it() -> None:
    assert _upward_imports() == []


def test_the_rooms_of_streaming_import_only_rooms_below_them() -> None:
    rooms = {p.name for p in (ROOT / "streaming").iterdir() if (p / "__init__.py").exists()}
    assert rooms == set(ROOMS) - {""}
    assert _imports_against_the_rooms() == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from nodes.cli import main\n    import training.mlp\n")
    assert _imported_packages(module) == {"nodes", "training"}
