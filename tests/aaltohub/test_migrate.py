"""Migrations apply in order and a second run changes nothing."""

from __future__ import annotations

import psycopg

from aaltohub.migrate import apply_migrations, migration_files


def test_migrations_apply_then_are_idempotent(database_url: str) -> None:
    first = apply_migrations(database_url)
    assert first == [p.name for p in migration_files()]
    assert apply_migrations(database_url) == []
    with psycopg.connect(database_url) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }
    assert {
        "messages",
        "telegram_groups",
        "message_versions",
        "crawler_status",
        "failed_messages",
        "projection_checkpoints",
        "telegram_sessions",
        "entity_cache",
        "users",
    } <= tables
