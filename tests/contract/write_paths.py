"""Every way rows reach a projection table, behind one interface, and what the reference fold says
each of them must hold (as plain rows: dicts of column values, JSON columns decoded).

A write path projects the records of one example into a target that the test reuses across
examples (one Postgres database, one directory of DuckDB files), so each ``project`` starts from
empty tables.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

import duckdb
import msgspec
import psycopg

from eventlog import RawRecord
from projector.duckdb.projection import DuckDBProjection
from projector.postgres.bulk import bulk_load
from projector.postgres.projection import PostgresProjection
from projector.postgres.rows import JSON_COLUMNS, MESSAGE_STAGE_COLUMNS, message_row
from projector.postgres.schema import SWAP_TABLES
from projector.rules import Tables
from schemas import ids
from schemas.codec import Codec
from schemas.duckdb.tables import MESSAGE_COLUMNS
from schemas.events import date_rank

Row = dict[str, object]
TableRows = dict[str, list[Row]]

# Stage columns that are bookkeeping of the merge, not columns of ``messages``.
_STAGE_ONLY: Final = frozenset(
    {"seq", "first_seq", "first_source", "content_hash", "reactions", "counts"}
)
_CONTENT: Final = tuple(c for c, _ in MESSAGE_STAGE_COLUMNS if c not in _STAGE_ONLY)
_MERGED: Final = (
    "reactions",
    "source",
    "first_seq",
    "last_seq",
    "edit_count",
    "is_deleted",
    "deleted_at",
    "deleted_seq",
    "media_sha256",
    "media_path",
    "content_hash",
    "first_edit_date",
    "first_observed_at",
    "first_media",
)
PG_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "messages": (*_CONTENT, *_MERGED),
    "message_versions": (
        "chat_id",
        "id_scope",
        "message_id",
        "content_hash",
        "text",
        "media",
        "edit_date",
        "seq",
        "observed_at",
    ),
    "pending_chat_deletes": ("chat_id", "message_id", "deleted_at", "seq"),
    "pending_deletes": ("account", "message_id", "deleted_at", "seq"),
    "telegram_groups": (
        "chat_id",
        "kind",
        "title",
        "username",
        "member_count",
        "forum",
        "migrated_to_chat_id",
        "photo_id",
        "account",
        "is_active",
        "discovered_at",
        "left_at",
        "last_activity_at",
        "message_count",
        "last_seq",
    ),
    "crawler_status": (
        "chat_id",
        "account",
        "status",
        "backfill_fetched",
        "backfill_total",
        "backfill_completed_at",
        "last_message_at",
        "last_gapfill_at",
        "gapfill_new",
        "last_error",
        "last_error_at",
        "last_error_kind",
        "last_flood_wait_s",
        "last_flood_wait_at",
    ),
}
DUCKDB_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "messages": tuple(c for c, _, _ in MESSAGE_COLUMNS)
}


def _json(value: object) -> object:
    return json.loads(msgspec.json.encode(value))


def _sorted(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=repr)


def expected_postgres(tables: Tables) -> TableRows:
    """The Postgres tables the reference fold describes."""
    messages: list[Row] = []
    for (_, scope, _), m in tables.messages.items():
        stage = message_row(m.newest, m.last_seq, m.first_seq, m.source, scope=scope)._asdict()
        row: Row = {
            c: json.loads(str(stage[c])) if c in JSON_COLUMNS and stage[c] is not None else stage[c]
            for c in _CONTENT
        }
        row.update(
            reactions=_json(m.reactions),
            source=m.source,
            first_seq=m.first_seq,
            last_seq=m.last_seq,
            edit_count=m.edit_count,
            is_deleted=m.is_deleted,
            deleted_at=m.deleted_at,
            deleted_seq=m.deleted_seq,
            media_sha256=m.media_sha256,
            media_path=m.media_path,
            content_hash=ids.content_digest(m.first.message),
            first_edit_date=m.first.message.edit_date,
            first_observed_at=m.first.observed_at,
            first_media=None if m.first.message.media is None else _json(m.first.message.media),
            views=m.counters[0],
            forwards=m.counters[1],
            replies=m.counters[2],
        )
        messages.append(row)
    versions: list[Row] = [
        {
            "chat_id": v.chat_id,
            "id_scope": v.id_scope,
            "message_id": v.message_id,
            "content_hash": v.content_hash,
            "text": v.first.message.text,
            "media": None if v.first.message.media is None else _json(v.first.message.media),
            "edit_date": v.first.message.edit_date,
            "seq": v.seq,
            "observed_at": v.first.observed_at,
        }
        for v in tables.versions.values()
    ]
    chat_pending: list[Row] = [
        {"chat_id": p.scope, "message_id": p.message_id, "deleted_at": p.deleted_at, "seq": p.seq}
        for p in tables.pending_chat_deletes.values()
    ]
    account_pending: list[Row] = [
        {"account": p.scope, "message_id": p.message_id, "deleted_at": p.deleted_at, "seq": p.seq}
        for p in tables.pending_deletes.values()
    ]
    groups = [
        {c: getattr(g, c) for c in PG_COLUMNS["telegram_groups"]} for g in tables.groups.values()
    ]
    statuses = [
        {c: getattr(s, c) for c in PG_COLUMNS["crawler_status"]} for s in tables.statuses.values()
    ]
    return {
        "messages": _sorted(messages),
        "message_versions": _sorted(versions),
        "pending_chat_deletes": _sorted(chat_pending),
        "pending_deletes": _sorted(account_pending),
        "telegram_groups": _sorted(groups),
        "crawler_status": _sorted(statuses),
    }


def expected_duckdb(tables: Tables) -> TableRows:
    """The DuckDB tables the reference fold describes."""
    rows: list[Row] = []
    for (chat_id, scope, message_id), m in tables.messages.items():
        s = m.newest.message
        rows.append(
            {
                "chat_id": chat_id,
                "message_id": message_id,
                "account": m.newest.account,
                "sender_id": None if s.sender is None else s.sender.id,
                "date": s.date,
                "edit_date": s.edit_date,
                "text": s.text,
                "reply_to_message_id": None if s.reply_to is None else s.reply_to.message_id,
                "media_type": None if s.media is None else s.media.type,
                "is_service": s.action is not None,
                "views": m.counters[0],
                "forwards": m.counters[1],
                "replies": m.counters[2],
                "discussion_chat_id": s.discussion_chat_id,
                "edit_count": m.edit_count,
                "source": m.source,
                "first_seq": m.first_seq,
                "last_seq": m.last_seq,
                "observed_at": m.newest.observed_at,
                "is_deleted": m.is_deleted,
                "deleted_at": m.deleted_at,
                "id_scope": scope,
                "date_rank": date_rank(s),
            }
        )
    return {"messages": _sorted(rows)}


def differences(path: str, table: str, observed: list[Row], expected: list[Row]) -> str:
    """A readable account of how ``observed`` differs from ``expected`` (columns that differ per key)."""
    key_columns = (
        3
        if table == "message_versions"
        else 1
        if table in ("telegram_groups", "crawler_status")
        else 2
    )

    def key(row: Row) -> tuple[object, ...]:
        return tuple(row.values())[:key_columns]

    seen = {key(r): r for r in observed}
    wanted = {key(r): r for r in expected}
    lines = [f"{path}: table {table} differs from the reference fold"]
    for k in sorted(seen.keys() | wanted.keys(), key=repr):
        o, w = seen.get(k), wanted.get(k)
        if o is None or w is None:
            lines.append(f"  {k}: {'missing' if o is None else 'unexpected'}")
        elif o != w:
            cols = [c for c in w if o.get(c) != w[c]]
            lines.append(
                f"  {k}: " + ", ".join(f"{c}={o.get(c)!r} (reference {w[c]!r})" for c in cols)
            )
    return "\n".join(lines)


class WritePath(Protocol):
    """One way of writing the log into a sink."""

    @property
    def name(self) -> str:
        """How the test names this path."""
        ...

    async def project(self, records: list[RawRecord], *, cut: int) -> TableRows:
        """Project ``records`` into empty tables and return them (``cut``: where a path that
        switches modes mid-log switches)."""
        ...

    def expected(self, tables: Tables) -> TableRows:
        """What the tables must be according to the reference fold."""
        ...


def batches(records: Sequence[RawRecord], size: int) -> list[Sequence[RawRecord]]:
    """``records`` in consecutive batches of ``size``."""
    return [records[i : i + size] for i in range(0, len(records), size)]


async def _async(items: Sequence[Sequence[RawRecord]]) -> AsyncIterator[Sequence[RawRecord]]:
    for item in items:
        yield item


async def apply_batches(
    projection: PostgresProjection | DuckDBProjection, records: Sequence[RawRecord], size: int
) -> None:
    """Apply ``records`` the way the runner does (prepare, then apply; the last batch is caught up)."""
    chunks = batches(records, size)
    for i, batch in enumerate(chunks):
        prepared = projection.prepare(batch)
        await projection.apply(batch, caught_up=i == len(chunks) - 1, prepared=prepared)


@dataclass
class PostgresTarget:
    """One migrated database, emptied before each example."""

    url: str
    codec: Codec

    def reset(self) -> None:
        """Empty the projection tables and the checkpoints."""
        tables = ", ".join(f"public.{t}" for t in (*SWAP_TABLES, "failed_messages"))
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"TRUNCATE {tables}")
            conn.execute("UPDATE projection_checkpoints SET seq = 0, events_applied = 0")

    def tables(self) -> TableRows:
        """Every compared table, rows as dicts, sorted; dead letters must be none."""
        out: TableRows = {}
        with psycopg.connect(self.url) as conn:
            failed = conn.execute("SELECT seq, error FROM failed_messages").fetchall()
            assert failed == [], f"dead letters: {failed}"
            for table, columns in PG_COLUMNS.items():
                rows = conn.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
                out[table] = _sorted([dict(zip(columns, r, strict=True)) for r in rows])
        return out


@dataclass
class PostgresBatches:
    """The live Postgres projection, applying the log in batches of ``size``."""

    target: PostgresTarget
    size: int

    @property
    def name(self) -> str:
        return f"postgres-batch-{self.size}"

    async def project(self, records: list[RawRecord], *, cut: int) -> TableRows:
        self.target.reset()
        projection = PostgresProjection(database_url=self.target.url, codec=self.target.codec)
        await projection.open()
        try:
            await apply_batches(projection, records, self.size)
        finally:
            await projection.close()
        return self.target.tables()

    def expected(self, tables: Tables) -> TableRows:
        return expected_postgres(tables)


@dataclass
class PostgresBulk:
    """A rebuild's bulk load of the first ``cut`` records (all of them unless ``tail``), then the
    rest batch by batch as a rebuild catches up."""

    target: PostgresTarget
    tail: bool

    @property
    def name(self) -> str:
        return "postgres-bulk-then-batches" if self.tail else "postgres-bulk"

    async def project(self, records: list[RawRecord], *, cut: int) -> TableRows:
        self.target.reset()
        head = records[:cut] if self.tail else records

        async def read() -> AsyncIterator[Sequence[RawRecord]]:
            for batch in batches(head, 4):
                yield batch

        loaded = await bulk_load(
            batches=read(),
            codec=self.target.codec,
            database_url=self.target.url,
            schema="public",
            name="postgres",
            to_seq=len(head),
        )
        assert loaded == len(head), "the bulk load rolled back"
        if self.tail:
            projection = PostgresProjection(database_url=self.target.url, codec=self.target.codec)
            assert await projection.open() == cut
            try:
                await apply_batches(projection, records[cut:], 3)
            finally:
                await projection.close()
        return self.target.tables()

    def expected(self, tables: Tables) -> TableRows:
        return expected_postgres(tables)


@dataclass
class DuckDBPath:
    """The DuckDB projection, live (folding each batch) or as a rebuild (folding once at the end)."""

    directory: Path
    codec: Codec
    rebuild: bool
    _files: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def name(self) -> str:
        return "duckdb-rebuild" if self.rebuild else "duckdb-incremental"

    async def project(self, records: list[RawRecord], *, cut: int) -> TableRows:
        path = self.directory / f"contract-{next(self._files)}.duckdb"
        projection = DuckDBProjection(
            path=path,
            codec=self.codec,
            snapshot_interval_s=None,
            fold_interval_s=3600 if self.rebuild else 0,
            commit_rows=150_000 if self.rebuild else 0,
        )
        await projection.open()
        try:
            if self.rebuild:
                # As rebuild_duckdb: the head through load() (batches of 7 inserted 10+ rows at a
                # time, one fold at the end), the tail batch by batch (incremental folds).
                assert await projection.load(_async(batches(records[:cut], 7)), insert_rows=10) == (
                    records[cut - 1].seq if cut else 0
                )
                await apply_batches(projection, records[cut:], 3)
                await projection.finish()
            else:
                await apply_batches(projection, records, 3)
        finally:
            await projection.close()
        out: TableRows = {}
        with duckdb.connect(str(path), read_only=True) as con:
            for table, columns in DUCKDB_COLUMNS.items():
                rows = con.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
                out[table] = _sorted([dict(zip(columns, r, strict=True)) for r in rows])
        return out

    def expected(self, tables: Tables) -> TableRows:
        return expected_duckdb(tables)
