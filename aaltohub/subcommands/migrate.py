"""``aaltohub migrate``: apply the SQL migrations and record the stack's identity."""

from __future__ import annotations

import argparse
import asyncio

from aaltohub.identity import ForeignStack, record_identity
from aaltohub.migrate import MigrationError, apply_migrations
from aaltohub.runtime import StackNotRunning, resolve_database_url
from aaltohub.settings import Settings, load_settings
from aaltohub.stream import open_event_log
from eventlog import EventLogError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``migrate``."""
    parser = subparsers.add_parser(
        "migrate", help="apply schemas/supabase/migrations/*.sql (idempotent)"
    )
    parser.set_defaults(func=run)


async def _stack_id(settings: Settings) -> str:
    async with await open_event_log(
        settings, name="aaltohub-migrate", role="projector"
    ) as event_log:
        return await event_log.verify_stream()


def run(args: argparse.Namespace) -> int:
    """Apply pending migrations to DATABASE_URL or the running stack's database; record the log's
    stack id in it when the log is reachable (else the projector records it at its first start)."""
    settings = load_settings()
    try:
        database_url = resolve_database_url(settings)
        applied = apply_migrations(database_url)
    except (StackNotRunning, MigrationError) as e:
        print(f"aaltohub migrate: {e}")
        return 1
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    try:
        stack_id = asyncio.run(_stack_id(settings))
    except (StackNotRunning, EventLogError) as e:
        print(f"stack id not recorded (the log is not reachable: {e}); the projector records it")
        return 0
    try:
        identity = record_identity(database_url, stack_id)
    except ForeignStack as e:
        print(f"aaltohub migrate: {e}")
        return 1
    print(f"stack {identity.stack_id} on Postgres system {identity.postgres_system_id}")
    return 0
