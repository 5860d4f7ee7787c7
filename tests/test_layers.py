"""The package layout is the pipeline: every import (lazy ones included) points downward."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "relocpy"

# Lowest first. A package may import its own layer's packages only where STAGE_ORDER allows.
LAYERS: list[set[str]] = [
    {"core"},
    {"elf"},
    {"sources", "recipes", "build", "repair", "verify", "package"},
    {"pipeline"},
    {"matrix"},
    {"install"},
    {"cli", "__main__"},
]
# Among the stages, imports point from later to earlier entries of this list.
STAGE_ORDER = ["sources", "recipes", "build", "repair", "verify", "package"]


def _imports() -> set[tuple[str, str, str]]:
    """(importing package, imported package, file) for every `relocpy.X` import under src."""
    found = set()
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts == ("__init__",):
            continue
        owner = parts[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.startswith("relocpy."):
                    target = name.split(".")[1]
                    if target != owner:
                        found.add((owner, target, str(path.relative_to(SRC))))
    return found


def _rank(package: str) -> int:
    for number, layer in enumerate(LAYERS):
        if package in layer:
            return number
    raise AssertionError(f"relocpy.{package} is in no layer of tests/test_layers.py")


def _stage(package: str) -> int:
    return STAGE_ORDER.index(package) if package in STAGE_ORDER else -1


def test_every_package_has_a_layer() -> None:
    packages = {p.stem if p.is_file() else p.name for p in SRC.iterdir()}
    packages -= {"__init__", "__pycache__", "runtime"}  # runtime/: data files for the tree
    for package in sorted(packages):
        _rank(package)


def test_imports_point_downward() -> None:
    upward = []
    for owner, target, path in sorted(_imports()):
        low, high = _rank(target), _rank(owner)
        if low > high:
            upward.append(f"{path} imports relocpy.{target}")
        elif low == high and _stage(target) > _stage(owner):
            upward.append(f"{path} imports relocpy.{target} (a later stage)")
    assert upward == []
