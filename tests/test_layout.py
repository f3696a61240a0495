"""The package reads as the pipeline: no package imports one that imports it back (module-level imports; a
lazy import inside a function is how a command or a rare path reaches further), the root modules sit below
every package, and every package says in its first line what it owns."""

from __future__ import annotations

import ast
import collections
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "matbench"
ROOT_MODULES = {"__init__", "cli", "display", "errors", "registry", "tasks"}


def _imports() -> dict[tuple[str, str], list[str]]:
    """(package, package it imports) -> the modules that do, at module level."""
    edges: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG)
        here = rel.parts[0] if len(rel.parts) > 1 else None
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("matbench."):
                parts = node.module.split(".")
                there = parts[1] if (PKG / parts[1]).is_dir() else None
                edges[(here or f"root:{rel.stem}", there or f"root:{parts[1]}")].append(str(rel))
    return edges


def test_no_package_imports_one_that_imports_it_back():
    edges = _imports()
    packages = {a for a, _ in edges} | {b for _, b in edges}
    mutual = sorted(
        (a, b, edges[(a, b)], edges[(b, a)])
        for a in packages for b in packages
        if a < b and not a.startswith("root:") and not b.startswith("root:") and (a, b) in edges and (b, a) in edges
    )
    assert mutual == []


def test_root_modules_sit_below_every_package():
    upward = {k: v for k, v in _imports().items() if k[0].startswith("root:") and not k[1].startswith("root:")}
    assert upward == {}
    assert {p.stem for p in PKG.glob("*.py")} == ROOT_MODULES  # the rest lives in packages


def test_every_package_says_what_it_owns():
    for init in PKG.rglob("__init__.py"):
        text = init.read_text(encoding="utf-8").lstrip()
        assert text.startswith('"""') and len(text.splitlines()[0]) > 10, init
