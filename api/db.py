"""Postgres access for the API: a psycopg async pool and read helpers that translate errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, LiteralString

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from api.errors import BadRequest, ServiceUnavailable

log = logging.getLogger(__name__)

Row = dict[str, Any]


async def open_pool(
    conninfo: str, *, min_size: int, max_size: int, timeout_s: float
) -> AsyncConnectionPool:
    """Open a pool of autocommit connections returning dict rows; raise ``ServiceUnavailable`` if unreachable."""
    pool: AsyncConnectionPool = AsyncConnectionPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout_s,
        open=False,
        kwargs={"autocommit": True, "row_factory": dict_row},
        name="api",
    )
    try:
        await pool.open(wait=True, timeout=timeout_s)
    except (PoolTimeout, psycopg.Error) as e:
        await pool.close()
        raise ServiceUnavailable("database unreachable") from e
    return pool


async def close_pool(pool: AsyncConnectionPool, *, timeout_s: float) -> None:
    """Close ``pool`` within about ``timeout_s``, even when the server is gone or the machine is loaded.

    psycopg_pool waits for its workers and returning connections; a shutdown must not hang on them.
    """
    try:
        await asyncio.wait_for(pool.close(timeout=timeout_s / 2), timeout=timeout_s)
    except TimeoutError:
        log.warning("database pool did not close within %.1fs; leaving it", timeout_s)


class Database:
    """Read (and user-table write) helpers over a pool; every call has a deadline."""

    def __init__(self, pool: AsyncConnectionPool, *, timeout_s: float) -> None:
        self.pool = pool
        self._timeout_s = timeout_s

    async def fetch_all(
        self, sql: LiteralString, params: Sequence[Any] | dict[str, Any] = ()
    ) -> list[Row]:
        """All rows of a query."""
        try:
            async with asyncio.timeout(self._timeout_s), self.pool.connection() as conn:
                cur = await conn.execute(sql, params)
                rows: list[Row] = await cur.fetchall()  # type: ignore[assignment]  # dict_row factory
                return rows
        except psycopg.DataError as e:
            raise BadRequest("a parameter is out of range for the database") from e
        except (PoolTimeout, psycopg.OperationalError, TimeoutError) as e:
            raise ServiceUnavailable("database unavailable") from e

    async def fetch_one(
        self, sql: LiteralString, params: Sequence[Any] | dict[str, Any] = ()
    ) -> Row | None:
        """The first row of a query, or None."""
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def execute(self, sql: LiteralString, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """Run a statement; the number of rows it touched."""
        try:
            async with asyncio.timeout(self._timeout_s), self.pool.connection() as conn:
                cur = await conn.execute(sql, params)
                return cur.rowcount
        except psycopg.DataError as e:
            raise BadRequest("a parameter is out of range for the database") from e
        except (PoolTimeout, psycopg.OperationalError, TimeoutError) as e:
            raise ServiceUnavailable("database unavailable") from e

    async def checkpoints(self) -> dict[str, int]:
        """Last applied seq of every projection."""
        rows = await self.fetch_all("SELECT name, seq FROM projection_checkpoints")
        return {r["name"]: int(r["seq"]) for r in rows}

    async def checkpoint(self, projection: str) -> int | None:
        """Last applied seq of ``projection`` (None: it has not started)."""
        row = await self.fetch_one(
            "SELECT seq FROM projection_checkpoints WHERE name = %s", (projection,)
        )
        return None if row is None else int(row["seq"])
