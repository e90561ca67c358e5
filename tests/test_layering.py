"""The package layering the README's "Architecture" states, checked on the source.

``nodes`` -> ``training`` -> ``eifer_models`` -> ``streaming``: a package imports only those below
it (``configs`` holds data). The one upward import the README names: the synthetic participant
(``streaming/simulation/participant/``) draws its face with ``eifer_models``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = ("streaming", "eifer_models", "training", "nodes")  # lowest first
ALLOWED_UPWARD = {("streaming/simulation/participant", "eifer_models")}


def _imported_packages(path: Path) -> set[str]:
    """Top-level project packages ``path`` imports, at any depth of the module (lazy ones too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & set(ORDER)


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


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from nodes.cli import main\n    import training.mlp\n")
    assert _imported_packages(module) == {"nodes", "training"}
