"""Consistent read snapshots of the DuckDB file for readers in other processes.

DuckDB lets one process hold a database file, so the writer publishes copies: after a CHECKPOINT
with no write in progress it copies the file to ``<dir>/snapshots/<seq>.duckdb``, then atomically
replaces ``<dir>/snapshots/CURRENT`` (content: that file name) and keeps the newest few. A reader
opens the file named in CURRENT read-only; a file it has open stays valid even after it is pruned.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Final

POINTER: Final = "CURRENT"


def snapshot_dir(duckdb_file: Path) -> Path:
    """Where the snapshots of ``duckdb_file`` live."""
    return duckdb_file.parent / "snapshots"


def publish_snapshot(duckdb_file: Path, seq: int, *, keep: int = 3) -> Path:
    """Copy a checkpointed ``duckdb_file`` as snapshot ``seq``, point CURRENT at it, prune old ones."""
    folder = snapshot_dir(duckdb_file)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{seq:012d}.duckdb"
    target = folder / name
    tmp = folder / f".{name}.tmp"
    shutil.copyfile(duckdb_file, tmp)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, target)
    pointer_tmp = folder / f".{POINTER}.tmp"
    pointer_tmp.write_text(name)
    os.replace(pointer_tmp, folder / POINTER)
    snapshots = sorted(p for p in folder.glob("*.duckdb") if not p.name.startswith("."))
    for old in snapshots[:-keep]:
        old.unlink(missing_ok=True)
    return target


def current_snapshot(duckdb_file: Path) -> Path | None:
    """The snapshot CURRENT names, or None before the first one."""
    folder = snapshot_dir(duckdb_file)
    try:
        name = (folder / POINTER).read_text().strip()
    except FileNotFoundError:
        return None
    path = folder / name
    return path if name and path.exists() else None
