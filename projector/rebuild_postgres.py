"""The Postgres rebuild: fold the log into a fresh schema while the live tables keep serving, then swap
it into public and build the search index."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable

import psycopg
from psycopg import sql

from eventlog import EventLog
from projector.errors import ProjectionUnavailable, RebuildError
from projector.postgres.bulk import bulk_load
from projector.postgres.projection import TRANSIENT, PostgresProjection
from projector.postgres.schema import (
    create_schema,
    finish_schema,
    ready_for_batches,
    swap_into_public,
)
from projector.postgres.search_index import ensure_search_index
from projector.rebuild import RebuildResult, catch_up

log = logging.getLogger(__name__)

REBUILD_LOCK_KEY = 0x61616C746F687562  # advisory lock key of Postgres rebuilds ("aaltohub")
# The bulk load holds its prefix in one transaction and in temp stages (~300 B of Postgres temp space
# per event, sorted twice): past this many events the rest is replayed batch by batch.
BULK_MAX_EVENTS = 5_000_000
BULK_READ_BATCH = 20_000  # records per read of the bulk load


async def _connect(database_url: str) -> psycopg.AsyncConnection[tuple[object, ...]]:
    try:
        return await psycopg.AsyncConnection.connect(
            database_url, autocommit=True, connect_timeout=10
        )
    except psycopg.OperationalError as e:
        raise ProjectionUnavailable(f"postgres: {type(e).__name__}") from e


async def _drop_schema_quietly(database_url: str, schema: str) -> None:
    try:
        async with await _connect(database_url) as conn:
            await conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )
    except (psycopg.Error, ProjectionUnavailable) as e:
        log.warning("could not drop the unfinished rebuild schema %s: %s", schema, type(e).__name__)


async def rebuild_postgres(
    *,
    log_: EventLog,
    database_url: str,
    batch_size: int = 20_000,
    keep_old: bool = False,
    on_progress: Callable[[str], None] | None = None,
    outage_retry_s: float = 300.0,
    bulk_max_events: int = BULK_MAX_EVENTS,
) -> RebuildResult:
    """Fold the log into schema ``rebuild_<ts>`` (one bulk batch up to the head, at most ``bulk_max_events``;
    then batch by batch), build its indexes, catch up, swap it into public, then build the search index
    concurrently (search answers 503 until it is ready).

    The load goes into unlogged tables, which a Postgres crash empties: when the server goes away
    mid-rebuild, the rebuild starts over in a new schema once it is back (for up to ``outage_retry_s``)."""
    started = time.perf_counter()
    deadline = time.monotonic() + outage_retry_s
    backoff = 0.5
    while True:
        stamp = time.strftime("%Y%m%d%H%M%S")
        schema, retired = f"rebuild_{stamp}", f"retired_{stamp}"
        try:
            async with _rebuild_lock(database_url):
                result = await _rebuild_once(
                    log_,
                    database_url,
                    schema,
                    retired,
                    batch_size=batch_size,
                    keep_old=keep_old,
                    on_progress=on_progress,
                    started=started,
                    bulk_max_events=bulk_max_events,
                )
            break
        except (*TRANSIENT, ProjectionUnavailable) as e:
            await _drop_schema_quietly(database_url, schema)
            if time.monotonic() + backoff > deadline:
                raise RebuildError(f"postgres rebuild failed: {type(e).__name__}: {e}") from e
            log.warning("postgres went away mid-rebuild (%s); starting over", type(e).__name__)
            await asyncio.sleep(backoff)  # backoff while the server restarts
            backoff = min(backoff * 2, 10.0)
        except psycopg.Error as e:
            await _drop_schema_quietly(database_url, schema)
            raise RebuildError(f"postgres rebuild failed: {type(e).__name__}: {e}") from e
    if on_progress:
        on_progress(
            f"swapped in at seq {result.seq} after {result.total_s:.1f}s; building the search index "
            "concurrently (search answers 503 until it is ready)"
        )
    try:
        search_index_s = await ensure_search_index(database_url)
    except (ProjectionUnavailable, psycopg.Error) as e:
        raise RebuildError(
            f"rebuilt and swapped in at seq {result.seq}, but building the search index failed "
            f"({type(e).__name__}: {e}); the projector builds it when it starts"
        ) from e
    return dataclasses.replace(result, search_index_s=search_index_s)


@contextlib.asynccontextmanager
async def _rebuild_lock(database_url: str) -> AsyncIterator[None]:
    """One Postgres rebuild at a time (a session advisory lock, held while the block runs); build and
    stage schemas left by earlier rebuilds that died (process killed, server gone for good) are nobody's
    and are dropped (kept retired ones stay)."""
    async with await _connect(database_url) as conn:
        row = await (
            await conn.execute("SELECT pg_try_advisory_lock(%s)", (REBUILD_LOCK_KEY,))
        ).fetchone()
        if row is None or not row[0]:
            raise RebuildError("another Postgres rebuild is running")
        leftovers = await (
            await conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname ~ '^rebuild_[0-9]{14}(_stage)?$'"
            )
        ).fetchall()
        for (name,) in leftovers:
            await conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(str(name))))
            log.info("dropped %s, left by an earlier rebuild", name)
        yield


async def _rebuild_once(
    log_: EventLog,
    database_url: str,
    schema: str,
    retired: str,
    *,
    batch_size: int,
    keep_old: bool,
    on_progress: Callable[[str], None] | None,
    started: float,
    bulk_max_events: int,
) -> RebuildResult:
    async with await _connect(database_url) as conn:
        await create_schema(conn, schema)
    head = (await log_.info()).last_seq
    if head > 0:
        to_seq = min(head, bulk_max_events)
        await bulk_load(
            batches=log_.read_raw(1, to_seq=to_seq, batch_size=BULK_READ_BATCH),
            codec=log_.codec,
            database_url=database_url,
            schema=schema,
            name="postgres",
            to_seq=to_seq,
            # Up to the head the catch-up is short: the reader indexes are built with the keys.
            reader_indexes=to_seq == head,
        )  # leaves the tables ready for batches
    else:
        await ready_for_batches(database_url, schema, reader_indexes=True)
    projection = PostgresProjection(database_url=database_url, codec=log_.codec, schema=schema)
    try:
        seq = await catch_up(projection, log_, batch_size=batch_size, close_lag=batch_size)
        replay_s = time.perf_counter() - started
        if on_progress:
            on_progress(f"replayed to seq {seq} in {replay_s:.1f}s; building indexes")
        await finish_schema(database_url, schema)
        seq = await catch_up(projection, log_, batch_size=batch_size, close_lag=batch_size)
    finally:
        await projection.close()
    async with await _connect(
        database_url
    ) as conn:  # fresh: the server may have restarted meanwhile
        swapped_at = await swap_into_public(
            conn, schema=schema, retired=retired, checkpoint_name="postgres"
        )
        if not keep_old:
            await conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(retired))
            )
    total_s = time.perf_counter() - started
    return RebuildResult("postgres", swapped_at, seq, replay_s, total_s, "public")
