"""Fresh copies of the projection tables in another schema, and the atomic swap into ``public``.

A rebuilt table is a copy of the live one's definition read from the catalog (``CREATE TABLE ...
(LIKE public.<table>)`` plus its primary key, unique constraints and indexes), so whatever the
migrations made of the live tables, a rebuild makes the same; nothing parses the migration files.
Secondary indexes are created after the bulk load (cheaper than maintaining them row by row); the
GIN full-text index only after the swap, concurrently (``projector.postgres.search_index``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Final

import psycopg
from psycopg import sql

from projector.errors import RebuildError
from projector.postgres.search_index import SEARCH_INDEX

log = logging.getLogger(__name__)

Conn = psycopg.AsyncConnection[tuple[object, ...]]

# Tables a rebuild replaces; checkpoints and dead letters stay in public.
SWAP_TABLES: Final = (
    "telegram_groups",
    "messages",
    "message_versions",
    "pending_deletes",
    "crawler_status",
    "pending_chat_deletes",
    "message_edits",
)
_SCHEMA_NAME: Final = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Indexes only readers need, built after a rebuild's bulk load; the projector's own lookups
# (account + message id, for deletes without a chat id) must exist while it loads.
_DEFERRED_INDEXES: Final = ("messages_search_idx", "messages_chat_date_idx", "messages_reply_idx")


async def table_ddl(conn: Conn, schema: str, table: str, *, generated: bool = True) -> list[str]:
    """Statements creating an empty unlogged copy of ``public.<table>`` in ``schema``: columns,
    defaults, checks, primary key and unique constraints (no other index). Without ``generated``,
    generated columns become plain ones (left empty)."""
    if not _SCHEMA_NAME.match(schema):
        raise RebuildError(f"bad schema name {schema!r}")
    like = "INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY"
    if generated:
        like += " INCLUDING GENERATED"
    out = [f"CREATE UNLOGGED TABLE {schema}.{table} (LIKE public.{table} {like})"]
    keys = await (
        await conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('p', 'u') ORDER BY conname",
            (f"public.{table}",),
        )
    ).fetchall()
    out.extend(f"ALTER TABLE {schema}.{table} ADD CONSTRAINT {n} {d}" for n, d in keys)
    return out


async def index_ddl(conn: Conn, schema: str, table: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX on ``schema``) for each index of ``public.<table>`` that is not a
    constraint's, as the catalog defines it."""
    rows = await (
        await conn.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) "
            "ORDER BY c.relname",
            (f"public.{table}",),
        )
    ).fetchall()
    target = re.compile(rf" ON (?:public\.)?{table} ")
    return [(str(name), target.sub(f" ON {schema}.{table} ", str(d), count=1)) for name, d in rows]


async def create_schema(conn: Conn, schema: str) -> None:
    """Drop and create ``schema`` with empty projection tables for a bulk load.

    ``messages`` is created without its generated full-text column: computing ``to_tsvector`` row by
    row (and again on every update) is most of the merge cost, so ``finish_schema`` computes it
    once per final row, in parallel."""
    async with conn.transaction():
        await conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )
        await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        for table in (*SWAP_TABLES, "projection_checkpoints"):
            statements = await table_ddl(conn, schema, table, generated=table != "messages")
            for name, index in await index_ddl(conn, schema, table):
                if name not in _DEFERRED_INDEXES:
                    statements.append(index)
            for statement in statements:
                await conn.execute(statement.encode())


async def finish_schema(database_url: str, schema: str, *, parallel: int = 2) -> None:
    """Rebuild ``messages`` in its real shape (generated column included) from the loaded rows, and build
    every reader index but the search index (built after the swap), using ``parallel`` connections so
    both cores work."""
    ident = sql.Identifier(schema)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        async with conn.transaction():
            await conn.execute(
                sql.SQL("ALTER TABLE {}.messages RENAME TO messages_load").format(ident)
            )
            rows = await (
                await conn.execute(
                    "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass",
                    (f"{schema}.messages_load",),
                )
            ).fetchall()
            for (index_name,) in rows:  # free the names for the new table's indexes
                await conn.execute(
                    sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                        sql.SQL(str(index_name)),
                        sql.Identifier(f"load_{str(index_name).split('.')[-1]}"),
                    )
                )
            for statement in await table_ddl(conn, schema, "messages"):
                await conn.execute(statement.encode())
            indexes = [d for n, d in await index_ddl(conn, schema, "messages") if n != SEARCH_INDEX]
            cols = await (
                await conn.execute(
                    "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
                    "AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
                    (f"{schema}.messages",),
                )
            ).fetchall()
        names = sql.SQL(", ").join(sql.Identifier(str(c[0])) for c in cols)

        async def run_each(statements: list[sql.Composed | str]) -> None:
            async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as c:
                for statement in statements:
                    await c.execute(statement.encode() if isinstance(statement, str) else statement)

        async def spread(statements: list[sql.Composed | str]) -> None:
            await asyncio.gather(*(run_each(statements[k::parallel]) for k in range(parallel)))

        phases: dict[str, float] = {}
        last = time.perf_counter()

        def phase(name: str) -> None:
            nonlocal last
            now = time.perf_counter()
            phases[name], last = now - last, now

        await spread(
            [
                sql.SQL(
                    "INSERT INTO {}.messages ({}) SELECT {} FROM {}.messages_load WHERE abs(message_id) % {} = {}"
                ).format(ident, names, names, ident, sql.Literal(parallel), sql.Literal(part))
                for part in range(parallel)
            ]
        )
        await conn.execute(sql.SQL("DROP TABLE {}.messages_load").format(ident))
        phase("messages copy")
        # The load and the copy ran into unlogged tables (no WAL per row); make them durable, the checkpoint
        # last: a crash before that loses the checkpoint with the data, and the rebuild starts over.
        await spread(
            [
                sql.SQL("ALTER TABLE {}.{} SET LOGGED").format(ident, sql.Identifier(t))
                for t in SWAP_TABLES
            ]
        )
        await conn.execute(
            sql.SQL("ALTER TABLE {}.projection_checkpoints SET LOGGED").format(ident)
        )
        phase("set logged")
        await spread([*indexes])
        phase("indexes")
        await spread(
            [sql.SQL("ANALYZE {}.{}").format(ident, sql.Identifier(t)) for t in SWAP_TABLES]
        )
        phase("analyze")
        log.info("finished %s: %s", schema, ", ".join(f"{k} {v:.1f}s" for k, v in phases.items()))


async def swap_into_public(
    conn: psycopg.AsyncConnection[tuple[object, ...]],
    *,
    schema: str,
    retired: str,
    checkpoint_name: str,
    lock_timeout_s: float = 10.0,
) -> int:
    """In one transaction: move the live tables to ``retired``, move ``schema``'s tables into public and
    set the live checkpoint to the rebuilt one's; returns that seq. Readers see old or new, never half."""
    async with conn.transaction():
        timeout = sql.Literal(f"{int(lock_timeout_s * 1000)}ms")
        await conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(timeout))
        # Lock the live checkpoint first: a live projector waits here instead of writing mid-swap.
        await conn.execute(
            "SELECT seq FROM public.projection_checkpoints WHERE name = %s FOR UPDATE",
            (checkpoint_name,),
        )
        row = await (
            await conn.execute(
                sql.SQL("SELECT seq FROM {}.projection_checkpoints WHERE name = %s").format(
                    sql.Identifier(schema)
                ),
                (checkpoint_name,),
            )
        ).fetchone()
        if row is None:
            raise RebuildError(f"rebuild schema {schema} has no checkpoint")
        seq = int(str(row[0]))
        await conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(retired))
        )
        await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(retired)))
        in_pub = await (
            await conn.execute(
                "SELECT 1 FROM pg_publication_tables WHERE pubname = 'supabase_realtime' "
                "AND schemaname = 'public' AND tablename = 'messages'"
            )
        ).fetchone()
        if in_pub is not None:
            await conn.execute("ALTER PUBLICATION supabase_realtime DROP TABLE public.messages")
        for table in SWAP_TABLES:
            await conn.execute(
                sql.SQL("ALTER TABLE public.{} SET SCHEMA {}").format(
                    sql.Identifier(table), sql.Identifier(retired)
                )
            )
            await conn.execute(
                sql.SQL("ALTER TABLE {}.{} SET SCHEMA public").format(
                    sql.Identifier(schema), sql.Identifier(table)
                )
            )
        await conn.execute("SELECT public.projector_supabase_setup()")
        await conn.execute(
            "UPDATE public.projection_checkpoints SET seq = %s, updated_at = now() WHERE name = %s",
            (seq, checkpoint_name),
        )
        await conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    return seq
