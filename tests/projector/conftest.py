"""Fixtures of the projector tests: a migrated database and helpers to project and compare tables."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import duckdb
import psycopg
import pytest

from aaltohub.embedded.postgres import PostgresServer
from aaltohub.migrate import apply_migrations
from eventlog import EventLog
from projector.duckdb.dataset import connect_dataset, dataset_dir
from projector.duckdb.projection import DuckDBProjection
from projector.postgres.projection import PostgresProjection
from projector.runner import ProjectionRunner
from tests.helpers import fresh_database

# Columns that record wall-clock time of the write, not facts of the log.
_VOLATILE = {"updated_at"}
TABLES = (
    "messages",
    "telegram_groups",
    "message_versions",
    "pending_deletes",
    "pending_chat_deletes",
    "crawler_status",
)


@pytest.fixture
def migrated_url(migrated_db: str) -> str:
    """A fresh database with all migrations applied (a copy of the session's template)."""
    return migrated_db


async def project_to_end(
    event_log: EventLog, database_url: str, *, batch_size: int = 1000
) -> ProjectionRunner:
    """Run the Postgres projection until the current end of the log."""
    runner = ProjectionRunner(
        PostgresProjection(database_url=database_url, codec=event_log.codec),
        log=event_log,
        batch_size=batch_size,
    )
    try:
        await runner.run(until_end=True)
    finally:
        await runner.projection.close()
    return runner


def table_rows(database_url: str, table: str, schema: str = "public") -> list[tuple[object, ...]]:
    """All rows of a table without volatile columns, sorted."""
    with psycopg.connect(database_url) as conn:
        cols = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
                "ORDER BY column_name",
                (schema, table),
            ).fetchall()
            if r[0] not in _VOLATILE
        ]
        rows = conn.execute(f"SELECT {', '.join(cols)} FROM {schema}.{table}").fetchall()
    return sorted((tuple(r) for r in rows), key=repr)


def content_hash(database_url: str, schema: str = "public") -> str:
    """A hash over every projection table's content."""
    digest = hashlib.sha256()
    for table in TABLES:
        digest.update(table.encode())
        for row in table_rows(database_url, table, schema):
            digest.update(repr(row).encode())
    return digest.hexdigest()


async def run_to_end(
    event_log: EventLog, path: Path, *, batch_size: int = 1000
) -> DuckDBProjection:
    """Run the DuckDB projection at ``path`` until the current end of the log."""
    projection = DuckDBProjection(path=path, codec=event_log.codec, snapshot_interval_s=None)
    runner = ProjectionRunner(projection, log=event_log, batch_size=batch_size)
    try:
        await runner.run(until_end=True)
    finally:
        await projection.close()
    return projection


async def assert_replay_equals_live(
    event_log: EventLog,
    *,
    postgres_server: PostgresServer,
    live_database_url: str,
    live_duckdb: Path,
    tmp_path: Path,
) -> None:
    """Replaying the whole log into a clean database and a clean DuckDB file gives the tables the
    live projections built (the published analytics dataset of ``live_duckdb``)."""
    with fresh_database(postgres_server, "clean") as clean_url:
        await asyncio.to_thread(apply_migrations, clean_url)
        await project_to_end(event_log, clean_url, batch_size=5000)
        assert content_hash(live_database_url) == content_hash(clean_url)
    clean_duck = tmp_path / "clean.duckdb"
    await run_to_end(event_log, clean_duck, batch_size=5000)
    opened = connect_dataset(dataset_dir(live_duckdb))
    assert opened is not None
    for query in (
        "SELECT * FROM events ORDER BY seq",
        "SELECT * FROM messages ORDER BY chat_id, id_scope, message_id",
    ):
        with duckdb.connect(str(clean_duck), read_only=True) as fresh:
            assert opened[0].execute(query).fetchall() == fresh.execute(query).fetchall(), query
