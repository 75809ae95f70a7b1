"""A rebuild loads only its own sink's libraries."""

from __future__ import annotations

import subprocess
import sys


def _loaded_after_import(module: str, watched: tuple[str, ...]) -> list[str]:
    """The ``watched`` top-level modules a fresh interpreter holds after importing ``module``."""
    code = f"import sys, {module}; print(','.join(m for m in {watched!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    return [m for m in out.split(",") if m]


def test_the_postgres_rebuild_does_not_load_duckdb_or_arrow() -> None:
    assert _loaded_after_import("projector.rebuild_postgres", ("duckdb", "pyarrow")) == []
