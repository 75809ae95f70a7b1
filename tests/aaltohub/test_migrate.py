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


def test_every_migration_has_its_own_timestamp_version() -> None:
    # The Supabase CLI takes the digits before the first "_" as the migration's version and refuses
    # two files with the same one; engineers adding migrations at the same time must not collide.
    versions = [p.name.split("_", 1)[0] for p in migration_files()]
    clashes = sorted({v for v in versions if versions.count(v) > 1})
    assert not clashes, f"migrations share a timestamp version, renumber one of each: {clashes}"
    assert all(v.isdigit() and len(v) == 14 for v in versions), versions
