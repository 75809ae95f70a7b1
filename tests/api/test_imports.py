"""Dependency direction: the API imports only ``schemas`` and ``eventlog`` of ours."""

from __future__ import annotations

import ast
from pathlib import Path

API = Path(__file__).resolve().parents[2] / "api"
OURS = {"schemas", "eventlog", "ingest", "projector", "api", "aaltohub", "tests", "bench"}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_api_imports_only_schemas_and_eventlog() -> None:
    offenders = {
        str(p.relative_to(API)): sorted(imported_roots(p) & OURS - {"api", "schemas", "eventlog"})
        for p in API.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
