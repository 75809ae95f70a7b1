"""A rebuild's first load: the whole log up to a seq folded into a fresh schema's empty tables as one batch.

The merge rules give the same tables whatever the batch boundaries (tests/projector/test_postgres_merge),
so the prefix ``1..to_seq`` may be a single batch, and into empty tables that batch needs no upserts:
stage every row, each message's first snapshot apart from its later ones; insert the messages with one
snapshot as they are (no sort), fold the others (a tenth of them in a typical log) with a few
set-based inserts (``BulkSql.bulk_*``), then the ordinary delete and group statements and the
checkpoint.

Both cores work (docs/decisions/042-parallel-bulk-rebuild.md): this process reads the log and hands
each partition of the chats to a helper process of its own, which decodes the records, builds their
rows and COPYs them into the partition's unlogged stage tables (``projector.postgres.bulk_stage``);
then each partition is folded on its own connection. Every rule of the fold is per message or per
chat, and a chat's rows are all in one partition; what crosses chats (deletes numbered per account,
counters, media, chat metadata and status, dead letters, the checkpoint) is applied once every
partition has committed and the tables are logged and keyed (``ready_for_batches``), in one
transaction, in the order of a batch (``PostgresProjection._write``). A bad event empties the tables
again; the caller then replays batch by batch, which bisects it into a dead letter. Connection errors
go to the caller, whose rebuild starts over once the server is back.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections import deque
from collections.abc import AsyncIterable, Sequence
from dataclasses import dataclass, field
from typing import Final

import psycopg
from psycopg import sql

from eventlog import RawRecord
from projector.deadletter import INSERT_DEAD_LETTER, dead_letter_params
from projector.errors import ProjectionUnavailable, RebuildError
from projector.loading import short_gil_slices
from projector.postgres.bulk_stage import (
    STAGES,
    Staged,
    StageFailed,
    StageProcess,
    SubjectPartitions,
    dead_letters,
    stage_table_ddl,
)
from projector.postgres.projection import DATA_ERRORS, TRANSIENT, apply_counters_media_and_ops
from projector.postgres.rows import GroupOp
from projector.postgres.schema import SWAP_TABLES, ready_for_batches
from projector.postgres.sql_bulk import BulkSql
from projector.records import DeadLetter
from schemas.codec import Codec

log = logging.getLogger(__name__)

PARTITIONS: Final = 2  # fold connections (and stage partitions): one per core of a small server
_IN_FLIGHT: Final = 2  # batches handed to the helpers ahead of the one they are staging
_DROP_LOCK_TIMEOUT: Final = "10s"

Conn = psycopg.AsyncConnection[tuple[object, ...]]


@dataclass
class _Rest:
    """What the fold applies on partition 0 after the stages, in seq order."""

    events: int = 0
    ops: list[GroupOp] = field(default_factory=list)
    counters: list[tuple[int | None, int | None, int | None, int, str, int, int]] = field(
        default_factory=list
    )
    media: list[tuple[str, str, int, str, int, int]] = field(default_factory=list)
    bad: list[DeadLetter] = field(default_factory=list)

    def add(self, batch: Sequence[RawRecord], parts: Sequence[Staged]) -> None:
        """One batch as its partitions' helpers staged it (each in seq order: merged by seq)."""
        self.events += sum(p.events for p in parts)
        self.ops.extend(heapq.merge(*(p.ops for p in parts), key=lambda op: op.seq))
        self.counters.extend(heapq.merge(*(p.counters for p in parts), key=_last))
        self.media.extend(heapq.merge(*(p.media for p in parts), key=_last))
        undecodable = sorted(u for p in parts for u in p.undecodable)
        if undecodable:
            self.bad.extend(dead_letters(batch, undecodable))


def _last(row: tuple[object, ...]) -> int:
    seq = row[-1]  # counters and media end with their event's seq
    assert isinstance(seq, int)
    return seq


async def bulk_load(
    *,
    batches: AsyncIterable[Sequence[RawRecord]],
    codec: Codec,
    database_url: str,
    schema: str,
    name: str,
    to_seq: int,
    partitions: int = PARTITIONS,
    reader_indexes: bool = False,
) -> int:
    """Fold ``batches`` (records ``1..to_seq`` of the log, in order) into the empty projection
    tables of ``schema`` and leave them ready for batches (``ready_for_batches``, with the reader
    indexes if ``reader_indexes``); returns the checkpoint afterwards (0 when the load rolled back,
    or whatever an earlier load left). Raises on connection errors."""
    q = BulkSql(schema=schema, checkpoint_schema=schema)
    stage = f"{schema}_stage"
    try:
        async with await _connect(database_url, autocommit=True) as admin:
            async with admin.transaction():
                await admin.execute(q.ensure_checkpoint, (name,))
                row = await (await admin.execute(q.select_checkpoint, (name,))).fetchone()
                if row is None or int(str(row[0])) != 0:
                    return 0 if row is None else int(str(row[0]))
                await admin.execute(_truncate(schema))
                await admin.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(stage))
                )
                await admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(stage)))
                for ddl in stage_table_ddl(stage, partitions):
                    await admin.execute(ddl)
            try:
                started = time.perf_counter()
                rest = await _stage(batches, codec, database_url, stage, partitions)
                staged = time.perf_counter()
                await _fold(database_url, stage, partitions, q)
                folded = time.perf_counter()
                await ready_for_batches(
                    database_url, schema, parallel=partitions, reader_indexes=reader_indexes
                )
                await _apply_rest(database_url, q, stage, rest, name, to_seq)
                log.info(
                    "bulk load: staged %d events in %.1fs, folded on %d connections in %.1fs, "
                    "ready and the rest applied in %.1fs",
                    rest.events,
                    staged - started,
                    partitions,
                    folded - staged,
                    time.perf_counter() - folded,
                )
            except (StageFailed, *DATA_ERRORS) as e:
                if isinstance(e, StageFailed) and e.kind != "data":
                    raise
                log.warning("bulk load of %s rolled back (%s); replaying batch by batch", schema, e)
                await admin.execute(_truncate(schema))  # partitions that committed
                await ready_for_batches(database_url, schema, parallel=partitions)
                return 0
            finally:
                await _drop_stage(admin, stage)
    except StageFailed as e:
        if e.kind == "unavailable":
            raise ProjectionUnavailable(f"postgres: {e}") from e
        raise RebuildError(f"bulk load failed: {e}") from e
    except TRANSIENT as e:
        raise ProjectionUnavailable(f"postgres: {type(e).__name__}: {e}") from e
    return to_seq


async def _connect(database_url: str, *, autocommit: bool) -> Conn:
    conn = await psycopg.AsyncConnection.connect(
        database_url, autocommit=autocommit, connect_timeout=10
    )
    try:
        await conn.execute("SET statement_timeout = 0")  # a fold of millions of rows takes minutes
        if not autocommit:
            await conn.commit()
    except BaseException:  # the server went away: close the connection, not the garbage collector
        await conn.close()
        raise
    return conn


def _truncate(schema: str) -> sql.Composed:
    return sql.SQL("TRUNCATE {}").format(
        sql.SQL(", ").join(sql.Identifier(schema, t) for t in SWAP_TABLES)
    )


async def _drop_stage(admin: Conn, stage: str) -> None:
    try:
        async with admin.transaction():
            await admin.execute(f"SET LOCAL lock_timeout = '{_DROP_LOCK_TIMEOUT}'")
            await admin.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(stage))
            )
    except psycopg.Error as e:  # the rebuild drops leftovers the next time it runs
        log.warning("could not drop the bulk stage %s: %s", stage, type(e).__name__)


async def _stage(
    batches: AsyncIterable[Sequence[RawRecord]],
    codec: Codec,
    database_url: str,
    stage: str,
    partitions: int,
) -> _Rest:
    """Hand every batch's partitions to their helpers (they stage one while this process reads the
    next) and collect what the fold applies after the stages."""
    rest = _Rest()
    router = SubjectPartitions(partitions)
    helpers = [
        StageProcess(codec=codec, database_url=database_url, stage_schema=stage, part=k)
        for k in range(partitions)
    ]
    in_flight: deque[tuple[Sequence[RawRecord], list[asyncio.Future[Staged]]]] = deque()

    async def collect() -> None:
        done, pending = in_flight.popleft()
        rest.add(done, [await helper.result(p) for helper, p in zip(helpers, pending, strict=True)])

    try:
        with short_gil_slices():  # the pipes to the helpers wait for the thread reading the log
            async for batch in batches:
                parts = router.split(batch)
                in_flight.append(
                    (
                        batch,
                        [helper.submit(part) for helper, part in zip(helpers, parts, strict=True)],
                    )
                )
                if len(in_flight) > _IN_FLIGHT:
                    await collect()
            while in_flight:
                await collect()
        for helper in helpers:
            await helper.finish()
    finally:
        for _, pending in in_flight:
            for p in pending:
                if not p.cancel() and not p.cancelled():
                    p.exception()  # retrieved: the first failure is the one raised
        await asyncio.gather(*(helper.close() for helper in helpers))
    return rest


async def _fold(database_url: str, stage: str, partitions: int, q: BulkSql) -> None:
    """Fold every partition's stages on a connection of its own, each committed (the rest and the
    checkpoint come after, in ``_apply_rest``: a crash before leaves checkpoint 0, and the rebuild
    starts over)."""
    conns: list[Conn] = []
    try:
        for _ in range(partitions):
            conns.append(await _connect(database_url, autocommit=False))
        outcomes = await asyncio.gather(
            *(_fold_committed(conns[k], q, stage, k) for k in range(partitions)),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
    finally:
        for conn in conns:
            await conn.close()


async def _fold_committed(conn: Conn, q: BulkSql, stage: str, k: int) -> None:
    async with conn.transaction():
        await _fold_partition(conn, q, stage, k)


async def _fold_partition(conn: Conn, q: BulkSql, stage: str, k: int) -> None:
    """The set-based fold of partition ``k``'s stages (seen under the stage names of ``BulkSql``)."""
    await conn.execute("SET LOCAL work_mem = '64MB'")
    analysing = time.perf_counter()
    for prefix, _ in STAGES:
        await conn.execute(
            sql.SQL("CREATE TEMP VIEW {} AS SELECT * FROM {}").format(
                sql.Identifier(f"stage_{prefix}"), sql.Identifier(stage, f"{prefix}_{k}")
            )
        )
    # Partition 0 staged every delete numbered per account: each partition's messages take theirs.
    await conn.execute(
        sql.SQL("CREATE TEMP VIEW stage_account_deletes AS SELECT * FROM {}").format(
            sql.Identifier(stage, "deletes_0")
        )
    )
    # The stages were never analysed (autovacuum is off for them): without statistics the planner
    # took nested loops for the joins below (a partition's fold ran 100 s instead of 3). A small
    # sample settles those choices (a tenth of the default's, 0.8 s less per partition at 1M events).
    await conn.execute("SET LOCAL default_statistics_target = 10")
    for prefix in ("firsts", "later"):
        await conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(stage, f"{prefix}_{k}")))
    started = time.perf_counter()
    log.debug("bulk %d stages analysed in %.1fs", k, started - analysing)
    # Messages with one snapshot as they are; the others folded from all their snapshots (versions
    # and edits first: the messages take their edit counts from the edits); each inserted with its
    # tombstone where a delete names it (what applying the deletes afterwards gives); then the
    # groups, the partition's channel deletes of messages it never saw, and the reactions.
    async with conn.cursor() as cur:
        for statement in (
            q.bulk_tombstones,
            q.bulk_single,
            q.bulk_single_edits,
            q.stage_several,
            q.count_readings,
            q.bulk_versions,
            q.bulk_edits,
            q.bulk_messages,
            q.bulk_groups,
            q.bulk_pending_chat_deletes,
            q.bulk_reactions,
        ):
            await cur.execute(statement.encode())
            log.debug(
                "bulk %d %.1fs %s",
                k,
                time.perf_counter() - started,
                " ".join(statement.split())[:60],
            )


async def _apply_rest(
    database_url: str, q: BulkSql, stage: str, rest: _Rest, name: str, to_seq: int
) -> None:
    """Once every partition's messages are in and keyed, in one transaction: deletes numbered per
    account (partition 0 staged them all; the folds tombstoned the messages they name, so this parks
    the others), counters and media in seq order, chat metadata and status, dead letters and the
    checkpoint."""
    started = time.perf_counter()
    async with await _connect(database_url, autocommit=False) as conn, conn.transaction():
        await conn.execute("SET LOCAL work_mem = '64MB'")
        await conn.execute(
            sql.SQL("CREATE TEMP VIEW stage_deletes AS SELECT * FROM {}").format(
                sql.Identifier(stage, "deletes_0")
            )
        )
        async with conn.cursor() as cur:
            await cur.execute(q.apply_account_deletes.encode())
            await apply_counters_media_and_ops(cur, q, rest.counters, rest.media, rest.ops)
            if rest.bad:
                await cur.executemany(
                    INSERT_DEAD_LETTER, [dead_letter_params(name, b) for b in rest.bad]
                )
                for b in rest.bad:
                    log.warning("dead letter %s seq %d: %s", name, b.seq, b.error)
            await cur.execute(q.update_checkpoint, (to_seq, rest.events, name))
    log.debug("bulk rest applied in %.1fs", time.perf_counter() - started)
