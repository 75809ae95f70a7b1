"""The Postgres / Supabase projection: COPY a batch into temp stages, merge set-based, checkpoint, commit.

Write path (docs/decisions/007-postgres-copy-and-set-based-merge.md): binary COPY into
``ON COMMIT DELETE ROWS`` temp stages plus a handful of set-based statements per batch (merge with
a version guard, versions, deletes, pending deletes), the dead letters and the checkpoint, all in
one transaction. A batch that fails
deterministically is bisected inside savepoints so only the offending events become dead letters.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import psycopg

from eventlog import RawRecord
from projector.deadletter import INSERT_DEAD_LETTER, dead_letter_params
from projector.errors import ApplyFailed, CheckpointMoved, ProjectionUnavailable
from projector.postgres.rows import (
    CONVERSION_ERRORS,
    DELETE_STAGE_COLUMNS,
    MESSAGE_STAGE_COLUMNS,
    GroupOp,
    PgRows,
    build_rows,
)
from projector.postgres.sql import PgSql
from projector.records import DeadLetter, Decoded, dead_letter_of, decode_batch
from schemas.codec import Codec

log = logging.getLogger(__name__)

# Deterministic failures of one event's data; anything else (connection, SQL bugs) is not dead-lettered.
DATA_ERRORS: Final = (psycopg.DataError, psycopg.IntegrityError, ApplyFailed)
TRANSIENT: Final = (psycopg.OperationalError, psycopg.InterfaceError)
MESSAGE_TYPES: Final = [t for _, t in MESSAGE_STAGE_COLUMNS]
DELETE_TYPES: Final = [t for _, t in DELETE_STAGE_COLUMNS]

Conn = psycopg.AsyncConnection[tuple[object, ...]]


async def copy_rows(
    cur: psycopg.AsyncCursor[tuple[object, ...]],
    statement: str,
    types: list[str],
    rows: Sequence[Sequence[object]],
) -> None:
    """Binary COPY of ``rows`` (columns of ``types``)."""
    async with cur.copy(statement) as copy:
        copy.set_types(types)
        for row in rows:
            await copy.write_row(row)


@dataclass(frozen=True)
class _Prepared:
    good: list[Decoded]
    bad: list[DeadLetter]
    rows: PgRows | None


async def apply_counters_media_and_ops(
    cur: psycopg.AsyncCursor[tuple[object, ...]],
    q: PgSql,
    counters: Sequence[tuple[object, ...]],
    media: Sequence[tuple[object, ...]],
    ops: Sequence[GroupOp],
) -> None:
    """View/forward/reply counters and stored media of messages, then chat metadata and status, each
    in seq order: the last steps of a batch (and of a bulk load, once its messages are in)."""
    if counters:
        await cur.executemany(q.update_counters, counters)
    if media:
        await cur.executemany(q.update_media, media)
    for op in ops:
        for statement in q.group_op(op.op):
            await cur.execute(statement.encode(), op.params)


async def merge_staged_messages(cur: psycopg.AsyncCursor[tuple[object, ...]], q: PgSql) -> None:
    """Merge ``stage_messages`` into the message tables: which snapshots count (rule "date
    readings") and the rows whose reading they replace, versions, the newest snapshot per message
    with its group's counts, last dates moved back, edits."""
    await cur.execute(q.count_readings.encode())
    await cur.execute(q.supersede_readings.encode())
    redated = sorted({int(str(r[0])) for r in await cur.fetchall()})
    # Versions first: the original version comes from the row as it was before the batch.
    await cur.execute(q.insert_versions.encode())
    await cur.execute(q.merge_messages.encode())
    if redated:  # a chat's last message may now be an earlier one
        await cur.execute(q.recount_last_dates.encode(), (redated,))
    await cur.execute(q.insert_edits.encode())


class PostgresProjection:
    """Projects the log into the Supabase tables of ``schema`` (``public`` live, another for a rebuild)."""

    subjects: Sequence[str] | None = None

    def __init__(
        self,
        *,
        database_url: str,
        codec: Codec,
        name: str = "postgres",
        schema: str = "public",
        checkpoint_schema: str | None = None,
        connect_timeout_s: float = 10.0,
        statement_timeout_s: float = 300.0,
    ) -> None:
        self.name = name
        self._url = database_url
        self._codec = codec
        self._sql = PgSql(schema=schema, checkpoint_schema=checkpoint_schema or schema)
        self._connect_timeout_s = connect_timeout_s
        self._statement_timeout_s = statement_timeout_s
        self._conn: Conn | None = None
        self._seq = 0
        self._lock = asyncio.Lock()

    @property
    def seq(self) -> int:
        """Last applied seq as this process knows it."""
        return self._seq

    async def open(self) -> int:
        """Connect, prepare stages, ensure the checkpoint row; returns its seq."""
        await self.close()
        try:
            conn = await psycopg.AsyncConnection.connect(
                self._url, connect_timeout=int(self._connect_timeout_s)
            )
            try:
                async with conn.transaction():
                    await conn.execute(
                        f"SET statement_timeout = {int(self._statement_timeout_s * 1000)}"
                    )
                    for ddl in self._sql.stage_ddl:
                        await conn.execute(ddl.encode())
                    await conn.execute(self._sql.ensure_checkpoint, (self.name,))
                    row = await (
                        await conn.execute(self._sql.select_checkpoint, (self.name,))
                    ).fetchone()
            except BaseException:  # failed or cancelled mid-setup: the connection is not kept
                await asyncio.shield(conn.close())
                raise
        except TRANSIENT as e:
            raise ProjectionUnavailable(f"postgres: {type(e).__name__}: {e}") from e
        self._conn = conn
        self._seq = int(str(row[0])) if row else 0
        return self._seq

    async def close(self) -> None:
        """Close the connection (an open transaction rolls back)."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            try:
                await asyncio.wait_for(conn.close(), timeout=5)
            except (TimeoutError, *TRANSIENT):
                pass

    def prepare(self, batch: Sequence[RawRecord]) -> object:
        """Decode the batch and build its rows (None if a record cannot be converted: bisect later)."""
        good, bad = decode_batch(self._codec, batch)
        try:
            rows: PgRows | None = build_rows([(r.seq, r.event) for r in good])
        except CONVERSION_ERRORS:
            rows = None
        return _Prepared(good, bad, rows)

    async def apply(
        self, batch: Sequence[RawRecord], *, caught_up: bool = False, prepared: object = None
    ) -> None:
        """Apply ``batch`` and advance the checkpoint in one transaction."""
        if not batch:
            return
        ready = prepared if isinstance(prepared, _Prepared) else self.prepare(batch)
        assert isinstance(ready, _Prepared)
        good, bad = ready.good, ready.bad
        async with self._lock:
            conn = self._require()
            try:
                async with conn.transaction():
                    row = await (
                        await conn.execute(self._sql.select_checkpoint, (self.name,))
                    ).fetchone()
                    stored = int(str(row[0])) if row else 0
                    if stored != self._seq:
                        raise CheckpointMoved(self.name, expected=self._seq, seq=stored)
                    fresh = [r for r in good if r.seq > stored]
                    bad = [b for b in bad if b.seq > stored]
                    rows = ready.rows if len(fresh) == len(good) else None
                    bad.extend(await self._write_bisecting(conn, fresh, rows))
                    if bad:
                        async with conn.cursor() as cur:
                            await cur.executemany(
                                INSERT_DEAD_LETTER, [dead_letter_params(self.name, b) for b in bad]
                            )
                    last = batch[-1].seq
                    await conn.execute(
                        self._sql.update_checkpoint, (last, len(fresh) + len(bad), self.name)
                    )
            except TRANSIENT as e:
                await self.close()
                raise ProjectionUnavailable(f"postgres: {type(e).__name__}: {e}") from e
            self._seq = last
        for b in bad:
            log.warning("dead letter %s seq %d: %s", self.name, b.seq, b.error)

    async def reapply(self, record: RawRecord) -> str | None:
        """Apply one dead-lettered record again (checkpoint untouched); None on success, else the error."""
        good, bad = decode_batch(self._codec, [record])
        if bad:
            return bad[0].error
        async with self._lock:
            conn = self._require()
            try:
                async with conn.transaction():
                    failed = await self._write_bisecting(conn, good)
            except TRANSIENT as e:
                await self.close()
                raise ProjectionUnavailable(f"postgres: {type(e).__name__}: {e}") from e
        return failed[0].error if failed else None

    def _require(self) -> Conn:
        if self._conn is None or self._conn.closed:
            raise ProjectionUnavailable("postgres: not connected")
        return self._conn

    async def _write_bisecting(
        self, conn: Conn, records: list[Decoded], rows: PgRows | None = None
    ) -> list[DeadLetter]:
        """Write records inside a savepoint; on a data error split until the bad events are isolated."""
        if not records:
            return []
        try:
            async with conn.transaction():
                await self._write(conn, records, rows)
            return []
        except DATA_ERRORS as e:
            if len(records) == 1:
                return [dead_letter_of(records[0], f"{type(e).__name__}: {e}")]
        mid = len(records) // 2
        return await self._write_bisecting(conn, records[:mid]) + await self._write_bisecting(
            conn, records[mid:]
        )

    async def _write(
        self, conn: Conn, records: list[Decoded], prebuilt: PgRows | None = None
    ) -> None:
        try:
            rows: PgRows = prebuilt or build_rows([(r.seq, r.event) for r in records])
        except CONVERSION_ERRORS as e:
            raise ApplyFailed(f"{type(e).__name__}: {e}", seq=records[0].seq) from e
        q = self._sql
        async with conn.cursor() as cur:
            if rows.messages:
                await copy_rows(cur, q.copy_messages, MESSAGE_TYPES, rows.messages)
                await merge_staged_messages(cur, q)
                for statement in q.resolve_pending:
                    await cur.execute(statement.encode())
            if rows.deletes:
                await copy_rows(cur, q.copy_deletes, DELETE_TYPES, rows.deletes)
                for statement in q.apply_deletes:
                    await cur.execute(statement.encode())
            if rows.reactions:
                await cur.executemany(
                    q.update_reactions, [(j, s, c, k, m, s, s) for j, s, c, k, m in rows.reactions]
                )
            await apply_counters_media_and_ops(cur, q, rows.counters, rows.media, rows.ops)
            if rows.messages or rows.deletes:
                # The temp stages are ON COMMIT DELETE ROWS; inside a savepoint we empty them ourselves.
                await cur.execute(b"TRUNCATE stage_messages, stage_deletes")
