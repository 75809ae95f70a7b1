"""Analytics reads over the projector's published DuckDB snapshots (never the live writer file).

The projector writes ``<dir>/snapshots/<file>`` copies and names the newest consistent one in
``<dir>/snapshots/CURRENT``. We open that file ``read_only`` and reopen when CURRENT changes, so
analytics never block the writer. Queries run in a thread; a timer interrupts ones that run too long.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from api.errors import BadRequest, ServiceUnavailable

_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_SELECT = re.compile(
    r"^\s*(\(\s*)*(select|with|from|values|table|describe|summarize|show)\b", re.IGNORECASE
)
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


@dataclass(frozen=True, kw_only=True)
class QueryResult:
    """Columns and rows of a query; ``truncated`` when the row cap cut it."""

    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    snapshot: str


class _Snapshot:
    """One opened snapshot file and how many queries use it (closed when retired and unused)."""

    __slots__ = ("conn", "name", "retired", "users")

    def __init__(self, name: str, conn: duckdb.DuckDBPyConnection) -> None:
        self.name = name
        self.conn = conn
        self.users = 0
        self.retired = False


class SnapshotReader:
    """Opens the current read snapshot and runs queries against it."""

    def __init__(self, snapshot_dir: Path) -> None:
        self._dir = snapshot_dir
        self._lock = threading.Lock()
        self._snap: _Snapshot | None = None

    def _acquire(self) -> tuple[_Snapshot, duckdb.DuckDBPyConnection]:
        try:
            name = (self._dir / "CURRENT").read_text().strip()
        except OSError as e:
            raise ServiceUnavailable("no analytics snapshot published yet") from e
        if not name or "/" in name or name.startswith("."):
            raise ServiceUnavailable("no analytics snapshot published yet")
        with self._lock:
            if self._snap is None or self._snap.name != name:
                try:
                    conn = duckdb.connect(
                        str(self._dir / name),
                        read_only=True,
                        config={"enable_external_access": False},
                    )
                except duckdb.Error as e:
                    raise ServiceUnavailable("analytics snapshot cannot be opened") from e
                old, self._snap = self._snap, _Snapshot(name, conn)
                if old is not None:
                    self._retire(old)
            snap = self._snap
            snap.users += 1
            return snap, snap.conn.cursor()

    def _release(self, snap: _Snapshot) -> None:
        with self._lock:
            snap.users -= 1
            if snap.retired and snap.users == 0:
                snap.conn.close()

    @staticmethod
    def _retire(snap: _Snapshot) -> None:
        # Closing a connection kills its cursors, so a replaced snapshot closes after its last query.
        snap.retired = True
        if snap.users == 0:
            snap.conn.close()

    def run(
        self, sql: str, params: Mapping[str, object] | None, *, row_cap: int, timeout_s: float
    ) -> QueryResult:
        """Run ``sql`` on the current snapshot (blocking; call through ``asyncio.to_thread``)."""
        snap, cur = self._acquire()
        timer = threading.Timer(timeout_s, cur.interrupt)
        timer.start()
        try:
            used = set(_PARAM.findall(sql))
            bound = {k: v for k, v in (params or {}).items() if k in used}
            rel = cur.execute(sql, bound) if bound else cur.execute(sql)
            columns = [d[0] for d in (rel.description or [])]
            rows = rel.fetchmany(row_cap + 1)
        except duckdb.InterruptException as e:
            raise BadRequest(f"query exceeded {timeout_s}s") from e
        except duckdb.Error as e:
            raise BadRequest(
                f"query failed: {type(e).__name__}: {str(e).splitlines()[0][:300]}"
            ) from e
        finally:
            timer.cancel()
            cur.close()
            self._release(snap)
        return QueryResult(
            columns=columns,
            rows=[[_jsonable(v) for v in r] for r in rows[:row_cap]],
            truncated=len(rows) > row_cap,
            snapshot=snap.name,
        )

    async def query(
        self, sql: str, params: Mapping[str, object] | None, *, row_cap: int, timeout_s: float
    ) -> QueryResult:
        """``run`` in a worker thread."""
        return await asyncio.to_thread(self.run, sql, params, row_cap=row_cap, timeout_s=timeout_s)

    def close(self) -> None:
        """Close the open snapshot (after its running queries)."""
        with self._lock:
            if self._snap is not None:
                self._retire(self._snap)
                self._snap = None


def check_read_only_sql(sql: str) -> str:
    """``sql`` if it is one read-only statement, else ``BadRequest`` (the snapshot is read-only too)."""
    text = _COMMENTS.sub(" ", sql).strip().rstrip(";").strip()
    if not text or ";" in text or not _SELECT.match(text):
        raise BadRequest("only a single SELECT statement is allowed")
    return text


def _jsonable(value: object) -> object:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
