"""The dependency direction of DESIGN.md, checked on the source: schemas <- eventlog <- {ingest, projector, api}."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = frozenset({"schemas", "eventlog", "ingest", "projector", "api", "aaltohub", "tests", "bench"})
# Which of our packages each package may import (DESIGN.md "Packages"); `aaltohub` may import all.
ALLOWED: dict[str, frozenset[str]] = {
    "schemas": frozenset(),
    "eventlog": frozenset({"schemas"}),
    "ingest": frozenset({"schemas", "eventlog"}),
    "projector": frozenset({"schemas", "eventlog"}),
    "api": frozenset({"schemas", "eventlog"}),
}


def imported_packages(source: str, *, package: str) -> set[str]:
    """Top-level names of our packages imported anywhere in ``source`` (incl. function-level imports)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add(package if node.level > 0 else (node.module or "").split(".")[0])
    return (found & OURS) - {package}


def violations(package: str) -> list[str]:
    """``file: imports X`` for every forbidden import in ``package``."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in sorted(imported_packages(path.read_text(), package=package) - ALLOWED[package]):
            found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_design_allows(package: str) -> None:
    assert violations(package) == []


def test_checker_sees_forbidden_imports_in_any_form() -> None:
    source = "import projector.runner\nfrom ingest import x\ndef f():\n    from aaltohub.settings import S\n"
    assert imported_packages(source, package="api") == {"projector", "ingest", "aaltohub"}
