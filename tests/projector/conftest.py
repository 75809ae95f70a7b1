"""Fixtures of the projector tests: a migrated database and helpers to project and compare tables."""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg
import pytest

from eventlog import EventLog
from projector.duckdb.projection import DuckDBProjection
from projector.postgres.projection import PostgresProjection
from projector.runner import ProjectionRunner

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
