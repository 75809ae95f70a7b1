"""A rebuild's first load: the whole log up to a seq folded into a fresh schema's empty tables as one batch.

The merge rules give the same tables whatever the batch boundaries (tests/projector/test_postgres_merge),
so the prefix ``1..to_seq`` may be a single batch, and into empty tables that batch needs no upserts:
COPY every row into the temp stages, then a few set-based inserts (``PgSql.bulk_*``), the ordinary
delete and group statements and the checkpoint, all in one transaction. One sort per table instead of
an upsert per batch is what makes it fast. A bad event rolls the whole load back; the caller then
replays batch by batch, which bisects it into a dead letter. Connection errors go to the caller, whose
rebuild starts over once the server is back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterable, Sequence
from typing import Final

import psycopg
from psycopg import sql

from eventlog import RawRecord
from projector.deadletter import INSERT_DEAD_LETTER, dead_letter_params
from projector.postgres.projection import DATA_ERRORS, DELETE_TYPES, MESSAGE_TYPES, copy_rows
from projector.postgres.rows import CONVERSION_ERRORS, REACTION_STAGE_COLUMNS, GroupOp, build_rows
from projector.postgres.schema import SWAP_TABLES
from projector.postgres.sql import PgSql
from projector.records import DeadLetter, decode_batch
from schemas.codec import Codec

log = logging.getLogger(__name__)

_REACTION_TYPES: Final = [t for _, t in REACTION_STAGE_COLUMNS]


async def bulk_load(
    *,
    batches: AsyncIterable[Sequence[RawRecord]],
    codec: Codec,
    database_url: str,
    schema: str,
    name: str,
    to_seq: int,
) -> int:
    """Fold ``batches`` (records ``1..to_seq`` of the log, in order) into the empty projection
    tables of ``schema``; returns the checkpoint afterwards (0 when the load rolled back, or whatever
    an earlier load left). Raises on connection errors."""
    q = PgSql(schema=schema, checkpoint_schema=schema)
    try:
        async with await psycopg.AsyncConnection.connect(database_url, connect_timeout=10) as conn:
            # Session settings before the temp stages exist: they hold the whole prefix.
            await conn.execute("SET temp_buffers = '256MB'")
            await conn.execute("SET work_mem = '64MB'")
            await conn.execute("SET statement_timeout = 0")
            async with conn.transaction():
                for ddl in [*q.stage_ddl, q.reaction_stage_ddl]:
                    await conn.execute(ddl.encode())
                await conn.execute(q.ensure_checkpoint, (name,))
                row = await (await conn.execute(q.select_checkpoint, (name,))).fetchone()
                if row is None or int(str(row[0])) != 0:
                    return 0 if row is None else int(str(row[0]))
                await conn.execute(
                    sql.SQL("TRUNCATE {}").format(
                        sql.SQL(", ").join(sql.Identifier(schema, t) for t in SWAP_TABLES)
                    )
                )
                count = await _load(conn, q, batches, codec, name)
                await conn.execute(q.update_checkpoint, (to_seq, count, name))
    except (*DATA_ERRORS, *CONVERSION_ERRORS) as e:
        log.warning(
            "bulk load of %s rolled back (%s); replaying batch by batch", schema, type(e).__name__
        )
        return 0
    return to_seq


async def _load(
    conn: psycopg.AsyncConnection[tuple[object, ...]],
    q: PgSql,
    batches: AsyncIterable[Sequence[RawRecord]],
    codec: Codec,
    name: str,
) -> int:
    """Stage every record, then fold; returns how many events were applied or dead-lettered."""
    ops: list[GroupOp] = []
    media: list[tuple[str, str, int, str, int, int]] = []
    counters: list[tuple[int | None, int | None, int | None, int, str, int, int]] = []
    bad: list[DeadLetter] = []
    count = 0
    started = time.perf_counter()
    async with conn.cursor() as cur:
        async for batch in batches:
            good, undecodable = decode_batch(codec, batch)
            bad.extend(undecodable)
            rows = build_rows([(r.seq, r.event) for r in good])
            await copy_rows(cur, q.copy_messages, MESSAGE_TYPES, rows.messages)
            await copy_rows(cur, q.copy_deletes, DELETE_TYPES, rows.deletes)
            await copy_rows(cur, q.copy_reactions, _REACTION_TYPES, rows.reactions)
            ops.extend(rows.ops)
            media.extend(rows.media)
            counters.extend(rows.counters)
            count += len(batch)
        staged = time.perf_counter()
        # Versions and edits first (the messages take their edit counts from the edits), then the rest in the order of a
        # batch (PostgresProjection._write); pending deletes are empty in empty tables.
        for statement in (
            q.count_readings,
            q.bulk_versions,
            q.bulk_edits,
            q.bulk_messages,
            q.bulk_groups,
            *q.apply_deletes,
            q.bulk_reactions,
        ):
            await cur.execute(statement.encode())
            log.debug(
                "bulk %.1fs %s", time.perf_counter() - staged, " ".join(statement.split())[:60]
            )
        if counters:  # in seq order, as a batch applies them (at most one a message a minute)
            await cur.executemany(q.update_counters, counters)
        if media:
            await cur.executemany(q.update_media, media)
        for op in ops:
            for statement in q.group_op(op.op):
                await cur.execute(statement.encode(), op.params)
        if bad:
            await cur.executemany(INSERT_DEAD_LETTER, [dead_letter_params(name, b) for b in bad])
            for b in bad:
                log.warning("dead letter %s seq %d: %s", name, b.seq, b.error)
    log.info(
        "bulk load: staged %d events in %.1fs, folded in %.1fs",
        count,
        staged - started,
        time.perf_counter() - staged,
    )
    return count
