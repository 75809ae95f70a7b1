"""Analytics reads over the projector's published Parquet dataset (never the live writer file).

The projector writes immutable Parquet files and names a consistent set of them in a manifest;
``<dir>/CURRENT`` holds the current manifest's path (schemas/duckdb/dataset.py). For each manifest
we open an in-memory DuckDB with views over its files, allowed to read that directory and nothing
else, and reopen when CURRENT changes, so analytics never block the writer.

Bounds (docs/decisions/025-bounded-api-resources.md): queries run on the reader's own threads
(not the event loop's default pool, which the projector and ingest use), DuckDB gets its own memory
limit and thread count, the time limit covers fetching, converting and encoding the rows (a timer
interrupts DuckDB; conversion checks the clock), and an encoded result is capped in bytes.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import duckdb
import msgspec

from api.errors import BadRequest, ResultTooLarge, ServiceUnavailable
from schemas.duckdb.dataset import POINTER, decode_manifest, view_statements

_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_SELECT = re.compile(
    r"^\s*(\(\s*)*(select|with|from|values|table|describe|summarize|show)\b", re.IGNORECASE
)
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_encode: Final = msgspec.json.Encoder().encode


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
    """Opens the current published manifest's views and runs queries against them."""

    def __init__(
        self, snapshot_dir: Path, *, memory_limit: str = "512MB", threads: int = 2
    ) -> None:
        self._dir = snapshot_dir
        self._config: dict[str, str | bool | int | float | list[str]] = {
            "memory_limit": memory_limit,
            "threads": str(threads),
        }
        self._lock = threading.Lock()
        self._snap: _Snapshot | None = None
        # As many queries at once as DuckDB has threads; never the loop's shared default pool.
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="analytics")

    def _acquire(self) -> tuple[_Snapshot, duckdb.DuckDBPyConnection]:
        try:
            name = (self._dir / POINTER).read_text().strip()
        except OSError as e:
            raise ServiceUnavailable("no analytics snapshot published yet") from e
        if not name or name.startswith(("/", ".")) or ".." in name:
            raise ServiceUnavailable("no analytics snapshot published yet")
        with self._lock:
            if self._snap is None or self._snap.name != name:
                old, self._snap = self._snap, _Snapshot(name, self._open(name))
                if old is not None:
                    self._retire(old)
            snap = self._snap
            snap.users += 1
            return snap, snap.conn.cursor()

    def _open(self, name: str) -> duckdb.DuckDBPyConnection:
        """An in-memory database with the manifest's views, reading only the dataset directory."""
        try:
            manifest = decode_manifest((self._dir / name).read_bytes())
        except (OSError, msgspec.DecodeError, msgspec.ValidationError) as e:
            raise ServiceUnavailable("analytics snapshot cannot be read") from e
        root = str(self._dir.resolve())
        conn = duckdb.connect(config=self._config)
        try:
            conn.execute("SET allowed_directories = [$root]", {"root": root + "/"})
            conn.execute("SET enable_external_access = false")
            for statement in view_statements(root, manifest):
                conn.execute(statement)
            conn.execute("SET lock_configuration = true")
        except duckdb.Error as e:
            conn.close()
            raise ServiceUnavailable("analytics snapshot cannot be opened") from e
        return conn

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
        self,
        sql: str,
        params: Mapping[str, object] | None,
        *,
        row_cap: int,
        timeout_s: float,
        max_bytes: int | None = None,
    ) -> QueryResult:
        """Run ``sql`` on the current snapshot (blocking; ``query`` runs it on the reader's threads).

        Fetching and converting the rows must end within ``timeout_s`` (``BadRequest`` otherwise);
        with ``max_bytes`` the rows' JSON must fit it (``ResultTooLarge`` otherwise).
        """
        deadline = time.monotonic() + timeout_s
        snap, cur = self._acquire()
        timer = threading.Timer(timeout_s, cur.interrupt)
        timer.start()
        try:
            used = set(_PARAM.findall(sql))
            bound = {k: v for k, v in (params or {}).items() if k in used}
            rel = cur.execute(sql, bound) if bound else cur.execute(sql)
            columns = [d[0] for d in (rel.description or [])]
            fetched = rel.fetchmany(row_cap + 1)
            rows = _convert(fetched[:row_cap], deadline, timeout_s, max_bytes)
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
            columns=columns, rows=rows, truncated=len(fetched) > row_cap, snapshot=snap.name
        )

    async def query(
        self,
        sql: str,
        params: Mapping[str, object] | None,
        *,
        row_cap: int,
        timeout_s: float,
        max_bytes: int | None = None,
    ) -> QueryResult:
        """``run`` on the reader's own threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor,
            lambda: self.run(
                sql, params, row_cap=row_cap, timeout_s=timeout_s, max_bytes=max_bytes
            ),
        )

    async def query_json(
        self,
        name: str,
        sql: str,
        params: Mapping[str, object] | None,
        *,
        row_cap: int,
        timeout_s: float,
        max_bytes: int,
    ) -> bytes:
        """An ``AnalyticsResult`` as JSON, fetched, converted and encoded within ``timeout_s`` on
        the reader's threads; ``ResultTooLarge`` when it would exceed ``max_bytes``."""

        def run_and_encode() -> bytes:
            result = self.run(
                sql, params, row_cap=row_cap, timeout_s=timeout_s, max_bytes=max_bytes
            )
            return _encode(
                {
                    "name": name,
                    "columns": result.columns,
                    "rows": result.rows,
                    "truncated": result.truncated,
                    "snapshot": result.snapshot,
                }
            )

        return await asyncio.get_running_loop().run_in_executor(self._executor, run_and_encode)

    def close(self) -> None:
        """Close the open snapshot (after its running queries) and the reader's threads."""
        self._executor.shutdown(wait=False, cancel_futures=True)
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


def _convert(
    fetched: list[tuple[Any, ...]], deadline: float, timeout_s: float, max_bytes: int | None
) -> list[list[Any]]:
    """JSON-ready rows; ``BadRequest`` past ``deadline``, ``ResultTooLarge`` past ``max_bytes``."""
    rows: list[list[Any]] = []
    size = 0
    for raw in fetched:
        row = [_jsonable(v) for v in raw]
        if max_bytes is not None:
            size += len(_encode(row)) + 1
            if size > max_bytes:
                raise ResultTooLarge(
                    f"the result is larger than the {max_bytes}-byte response limit "
                    "(AALTOHUB_API_SQL_MAX_RESPONSE_BYTES); select fewer rows or columns"
                )
        rows.append(row)
        # After every row: rows are capped (AALTOHUB_API_SQL_ROW_CAP) but one row can hold a list
        # of millions of values, so counting rows between looks at the clock is not enough.
        if time.monotonic() > deadline:
            raise BadRequest(f"query exceeded {timeout_s}s")
    return rows


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
