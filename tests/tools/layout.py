"""The package layout and its import rules, checked on the source.

``python -m tests.tools.layout`` prints every package, its subpackages and what each may import,
then every violation; it exits 1 when there is one. ``tests/test_layout.py`` runs the same check.

Rules (docs/architecture.md, "Packages"):
- top level: ``schemas`` <- ``eventlog`` <- {``ingest``, ``projector``, ``api``} <- ``aaltohub``;
  the three services never import each other;
- inside a package, a subpackage (``ingest/telegram``, ``projector/duckdb``, ...) imports only
  itself and the package's shared modules (errors, seams, failure_events, records), never a sibling subpackage.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OURS = frozenset(
    {"schemas", "eventlog", "ingest", "projector", "api", "aaltohub", "tests", "bench"}
)

# Which of our top-level packages each package may import; `aaltohub` is the composition root.
ALLOWED: dict[str, frozenset[str]] = {
    "schemas": frozenset(),
    "eventlog": frozenset({"schemas"}),
    "ingest": frozenset({"schemas", "eventlog"}),
    "projector": frozenset({"schemas", "eventlog"}),
    "api": frozenset({"schemas", "eventlog"}),
    "aaltohub": frozenset({"schemas", "eventlog", "ingest", "projector", "api"}),
}

# Packages split into one subpackage per job, and the modules those subpackages may share;
# anything else at their top is wiring. (In `api` and `aaltohub` the subpackages are the leaves
# and may use everything of their package.)
SHARED: dict[str, frozenset[str]] = {
    "ingest": frozenset({"errors", "failure_events", "seams"}),
    "projector": frozenset({"errors", "records", "deadletter", "loading"}),
}


def module_name(path: Path) -> str:
    """Dotted module name of a source file under ``ROOT``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, *, module: str) -> set[str]:
    """Dotted names of our modules imported anywhere in ``source`` (function-level too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level > 0:
                base = module.split(".")[: -node.level]
                found.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                found.add(node.module)
    return {name for name in found if name.split(".")[0] in OURS}


def subpackage_of(module: str) -> str | None:
    """``ingest.telegram`` for ``ingest.telegram.worker``; None for a package's top-level module."""
    parts = module.split(".")
    if len(parts) >= 3 and (ROOT / parts[0] / parts[1]).is_dir():
        return ".".join(parts[:2])
    return None


def violation(importer: str, imported: str) -> str | None:
    """Why ``importer`` may not import ``imported``, or None when it may."""
    top, target_top = importer.split(".")[0], imported.split(".")[0]
    if target_top != top:
        return None if target_top in ALLOWED[top] else f"{top} may not import {target_top}"
    own_sub = subpackage_of(importer)
    if own_sub is None or top not in SHARED:
        return None
    target_sub = subpackage_of(imported) or (
        imported if (ROOT / imported.replace(".", "/")).is_dir() else None
    )
    if target_sub == own_sub:
        return None
    if target_sub is None:
        leaf = imported.split(".")[1] if imported.count(".") else ""
        if leaf in SHARED[top] or imported == top:
            return None
        return f"{own_sub} may only share {sorted(SHARED[top])} of {top}, not {imported}"
    return f"{own_sub} may not import its sibling {target_sub}"


def violations() -> list[str]:
    """``file: imports X (why)`` for every forbidden import in our packages."""
    found = []
    for package in sorted(ALLOWED):
        for path in sorted((ROOT / package).rglob("*.py")):
            importer = module_name(path)
            for imported in sorted(imports_of(path.read_text(), module=importer)):
                why = violation(importer, imported)
                if why:
                    found.append(f"{path.relative_to(ROOT)}: imports {imported} ({why})")
    return found


def describe() -> list[str]:
    """The layout as lines: each package, what it may import, and its subpackages."""
    lines = []
    for package in sorted(ALLOWED, key=lambda p: (len(ALLOWED[p]), p)):
        may = ", ".join(sorted(ALLOWED[package])) or "nothing of ours"
        lines.append(f"{package}/  may import: {may}")
        subs = sorted(p.name for p in (ROOT / package).iterdir() if (p / "__init__.py").is_file())
        if subs and package in SHARED:
            shared = ", ".join(sorted(SHARED[package]))
            lines.append(f"    jobs: {', '.join(subs)}  (each imports itself and only: {shared})")
        elif subs:
            lines.append(f"    subpackages: {', '.join(subs)}")
    return lines


def main() -> int:
    """Print the layout and the violations; 1 when there is any."""
    print("\n".join(describe()))
    found = violations()
    print(f"\n{len(found)} violation(s)")
    print("\n".join(found))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
