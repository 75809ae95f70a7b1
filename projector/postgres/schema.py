"""Fresh copies of the projection tables in another schema, and the atomic swap into ``public``.

A rebuilt table is a copy of the live one's definition read from the catalog (``CREATE TABLE ...
(LIKE public.<table>)`` plus its primary key, unique constraints and indexes), so whatever the
migrations made of the live tables, a rebuild makes the same; nothing parses the migration files.
The bulk load fills unlogged tables; ``messages``, ``message_versions`` and ``message_edits`` (the
large ones) have no key and no index while it does. Then ``ready_for_batches`` makes every table
logged and builds their keys and the indexes the loader looks rows up by, on both connections; the
reader indexes come after the rebuild caught up (``finish_schema``), the GIN full-text index only
after the swap, concurrently (``projector.postgres.search_index``). Each index is one sort instead of
a tree kept up row by row, and ``SET LOGGED`` rewrites ``messages`` without rebuilding its indexes
one after the other (docs/decisions/046-keys-after-the-bulk-load.md).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
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
# Tables the bulk load fills without keys or indexes (ready_for_batches builds them afterwards; the
# keys of the two small ones while the other connection logs messages).
_KEYED_AFTER_LOAD: Final = frozenset({"messages", "message_versions", "message_edits"})


async def table_ddl(conn: Conn, schema: str, table: str, *, keys: bool = True) -> list[str]:
    """Statements creating an empty unlogged copy of ``public.<table>`` in ``schema``: columns,
    defaults, generated columns, checks and (``keys``) primary key and unique constraints (no other
    index)."""
    if not _SCHEMA_NAME.match(schema):
        raise RebuildError(f"bad schema name {schema!r}")
    like = "INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY INCLUDING GENERATED"
    out = [f"CREATE UNLOGGED TABLE {schema}.{table} (LIKE public.{table} {like})"]
    if keys:
        constraints = await (
            await conn.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass AND contype IN ('p', 'u') ORDER BY conname",
                (f"public.{table}",),
            )
        ).fetchall()
        out.extend(f"ALTER TABLE {schema}.{table} ADD CONSTRAINT {n} {d}" for n, d in constraints)
    return out


async def key_ddl(conn: Conn, schema: str, table: str) -> list[tuple[str, str, str]]:
    """(name, CREATE UNIQUE INDEX on ``schema``, ALTER TABLE ... USING INDEX) for each primary key and
    unique constraint of ``public.<table>``: the index can be built beside others, then named the key."""
    rows = await (
        await conn.execute(
            "SELECT conname, contype, pg_get_indexdef(conindid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('p', 'u') ORDER BY conname",
            (f"public.{table}",),
        )
    ).fetchall()
    return [
        (
            str(name),
            _index_on(schema, table, str(index)),
            f"ALTER TABLE {schema}.{table} ADD CONSTRAINT {name} "
            f"{'PRIMARY KEY' if kind == 'p' else 'UNIQUE'} USING INDEX {name}",
        )
        for name, kind, index in rows
    ]


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
    return [(str(name), _index_on(schema, table, str(d))) for name, d in rows]


def _index_on(schema: str, table: str, definition: str) -> str:
    """``definition`` (``pg_get_indexdef`` of an index on ``public.<table>``) on ``schema``'s copy."""
    return re.sub(rf" ON (?:public\.)?{table} ", f" ON {schema}.{table} ", definition, count=1)


async def create_schema(conn: Conn, schema: str) -> None:
    """Drop and create ``schema`` with empty unlogged projection tables for a bulk load: keys and the
    indexes the loader needs on every table but those in ``_KEYED_AFTER_LOAD``
    (``ready_for_batches`` builds those, ``finish_schema`` the rest)."""
    async with conn.transaction():
        await conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )
        await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        for table in (*SWAP_TABLES, "projection_checkpoints"):
            later = table in _KEYED_AFTER_LOAD
            statements = await table_ddl(conn, schema, table, keys=not later)
            if not later:
                for name, index in await index_ddl(conn, schema, table):
                    if name in _LOAD_INDEXES:
                        statements.append(index)
            for statement in statements:
                await conn.execute(statement.encode())


async def ready_for_batches(
    database_url: str, schema: str, *, parallel: int = 2, reader_indexes: bool = False
) -> None:
    """Make ``schema``'s tables logged and build what applying batches needs that is missing: the keys
    and load indexes of tables loaded without them, and with ``reader_indexes`` (the load reached the
    log's head, so the catch-up is short) every reader index but the search index too. A table's
    indexes start once it is logged, on whichever connection is free. Does nothing twice (a table
    already logged, an index already there)."""
    started = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        tables = await _largest_first(conn, schema, SWAP_TABLES)
        indexes: dict[str, list[sql.Composed | str]] = {}
        keys: list[str] = []
        for table in tables:
            present = await _index_names(conn, schema, table)
            todo: list[sql.Composed | str] = []
            if table in _KEYED_AFTER_LOAD:
                for name, index, key in await key_ddl(conn, schema, table):
                    if name not in present:
                        todo.append(index)
                        keys.append(key)
            todo.extend(
                d
                for n, d in await index_ddl(conn, schema, table)
                if n not in present and n != SEARCH_INDEX and (reader_indexes or n in _LOAD_INDEXES)
            )
            indexes[table] = todo
        # The loaded tables are unlogged (no WAL per row); they are durable before anything the
        # checkpoint counts is written to them.
        ident = sql.Identifier(schema)
        await _per_table(
            database_url,
            {
                t: sql.SQL("ALTER TABLE {}.{} SET LOGGED").format(ident, sql.Identifier(t))
                for t in (*tables, "projection_checkpoints")
            },
            indexes,
            parallel,
        )
        for key in keys:
            await conn.execute(key.encode())
    log.info(
        "%s ready for batches in %.1fs (tables logged, %d indexes built)",
        schema,
        time.perf_counter() - started,
        sum(len(v) for v in indexes.values()),
    )


async def finish_schema(database_url: str, schema: str, *, parallel: int = 2) -> None:
    """Build the reader indexes still missing but the search index (built after the swap) and analyse
    the tables, using ``parallel`` connections so both cores work; the tables are logged already
    (``ready_for_batches``)."""
    ident = sql.Identifier(schema)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        tables = await _largest_first(conn, schema, SWAP_TABLES)
        indexes: list[sql.Composed | str] = []
        for table in tables:
            present = await _index_names(conn, schema, table)
            indexes.extend(
                d
                for n, d in await index_ddl(conn, schema, table)
                if n != SEARCH_INDEX and n not in present
            )
    started = time.perf_counter()
    await _spread(database_url, indexes, parallel)
    indexed = time.perf_counter()
    await _spread(
        database_url,
        [sql.SQL("ANALYZE {}.{}").format(ident, sql.Identifier(t)) for t in tables],
        parallel,
    )
    log.info(
        "finished %s: %d indexes %.1fs, analyze %.1fs",
        schema,
        len(indexes),
        indexed - started,
        time.perf_counter() - indexed,
    )


Statement = sql.Composed | str


async def _spread(database_url: str, statements: list[Statement], parallel: int) -> None:
    """Run ``statements`` on ``parallel`` connections, each taking the next one when it is free (in
    the order given: the largest tables first), so one long statement leaves no share waiting."""
    await _per_table(database_url, {}, {"": statements}, parallel)


async def _per_table(
    database_url: str,
    first: dict[str, Statement],
    then: dict[str, list[Statement]],
    parallel: int,
) -> None:
    """Run each table's ``first`` statement, then its ``then`` statements (in any order among them;
    a table without a ``first`` has them runnable at once) on ``parallel`` connections: a free
    connection takes the next runnable statement, a table's ``then`` before any later table's
    ``first``, tables in the order of ``first``."""
    runnable: deque[Statement] = deque(s for t, ss in then.items() if t not in first for s in ss)
    waiting = deque(first)
    running = 0
    changed = asyncio.Condition()

    def something_to_do() -> bool:  # or nothing left that could make some
        return bool(runnable or waiting) or running == 0

    async def work() -> None:
        nonlocal running
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as c:
            while True:
                async with changed:
                    await changed.wait_for(something_to_do)
                    if not runnable and not waiting:
                        return
                    table = None if runnable else waiting.popleft()
                    statement = runnable.popleft() if table is None else first[table]
                    running += 1
                done = False
                began = time.perf_counter()
                try:
                    await c.execute(statement.encode() if isinstance(statement, str) else statement)
                    done = True
                    log.debug(
                        "%.1fs %s",
                        time.perf_counter() - began,
                        statement if isinstance(statement, str) else statement.as_string(),
                    )
                finally:
                    async with changed:
                        running -= 1
                        if done and table is not None:
                            runnable.extend(then.get(table, ()))
                        changed.notify_all()

    try:
        async with asyncio.TaskGroup() as group:  # a failure stops the other connections' work
            for _ in range(parallel):
                group.create_task(work())
    except BaseExceptionGroup as e:
        raise e.exceptions[0] from None  # what callers handle (psycopg errors), not a group


async def _index_names(conn: Conn, schema: str, table: str) -> set[str]:
    rows = await (
        await conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
            (schema, table),
        )
    ).fetchall()
    return {str(name) for (name,) in rows}


async def _largest_first(conn: Conn, schema: str, tables: tuple[str, ...]) -> list[str]:
    rows = await (
        await conn.execute(
            "SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c "
            "WHERE c.relnamespace = %s::regnamespace AND c.relkind = 'r'",
            (schema,),
        )
    ).fetchall()
    sizes = {str(name): int(str(size)) for name, size in rows}
    return sorted(tables, key=lambda t: -sizes.get(t, 0))


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
