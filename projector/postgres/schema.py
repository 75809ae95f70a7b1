"""Fresh copies of the projection tables in another schema, and the atomic swap into ``public``.

A rebuilt table is a copy of the live one's definition read from the catalog (``CREATE TABLE ...
(LIKE public.<table>)`` plus its primary key, unique constraints and indexes), so whatever the
migrations made of the live tables, a rebuild makes the same; nothing parses the migration files.
Secondary indexes are created after the bulk load (cheaper than maintaining them row by row), but for
the few the loader itself looks rows up by; the GIN full-text index only after the swap, concurrently
(``projector.postgres.search_index``).
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
from schemas.search import SEARCH_INDEX

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
# Indexes the loader looks rows up by (deletes numbered per account; the merge's superseded local
# dates while a rebuild catches up), present while it loads; every other index serves readers only
# and is built after the bulk load (the search index after the swap).
_LOAD_INDEXES: Final = frozenset({"messages_scope_msg_idx", "messages_local_dates_idx"})


async def table_ddl(conn: Conn, schema: str, table: str) -> list[str]:
    """Statements creating an empty unlogged copy of ``public.<table>`` in ``schema``: columns,
    defaults, generated columns, checks, primary key and unique constraints (no other index)."""
    if not _SCHEMA_NAME.match(schema):
        raise RebuildError(f"bad schema name {schema!r}")
    like = "INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY INCLUDING GENERATED"
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
    """Drop and create ``schema`` with empty unlogged projection tables for a bulk load, with their keys
    and the indexes the loader needs (``finish_schema`` builds the rest)."""
    async with conn.transaction():
        await conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )
        await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        for table in (*SWAP_TABLES, "projection_checkpoints"):
            statements = await table_ddl(conn, schema, table)
            for name, index in await index_ddl(conn, schema, table):
                if name in _LOAD_INDEXES:
                    statements.append(index)
            for statement in statements:
                await conn.execute(statement.encode())


async def finish_schema(database_url: str, schema: str, *, parallel: int = 2) -> None:
    """Make the loaded tables logged and build every reader index but the search index (built after the
    swap), using ``parallel`` connections so both cores work."""
    ident = sql.Identifier(schema)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        indexes: list[sql.Composed | str] = []
        for table in SWAP_TABLES:
            indexes.extend(
                d
                for n, d in await index_ddl(conn, schema, table)
                if n != SEARCH_INDEX and n not in _LOAD_INDEXES
            )

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

        # The load ran into unlogged tables (no WAL per row); make them durable, the checkpoint last: a
        # crash before that loses the checkpoint with the data, and the rebuild starts over.
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
        await spread(indexes)
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
        # Under Supabase the old messages table stays in the Realtime publication until its retired
        # schema is dropped (it no longer changes); projector_supabase_setup publishes the new one
        # (docs/decisions/038-projector-role.md).
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
