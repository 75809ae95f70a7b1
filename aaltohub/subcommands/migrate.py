"""``aaltohub migrate``: apply the SQL migrations."""

from __future__ import annotations

import argparse

from aaltohub.migrate import MigrationError, apply_migrations
from aaltohub.runtime import StackNotRunning, resolve_database_url
from aaltohub.settings import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``migrate``."""
    parser = subparsers.add_parser(
        "migrate", help="apply schemas/supabase/migrations/*.sql (idempotent)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Apply pending migrations to DATABASE_URL or the running stack's database."""
    settings = load_settings()
    try:
        applied = apply_migrations(resolve_database_url(settings))
    except (StackNotRunning, MigrationError) as e:
        print(f"aaltohub migrate: {e}")
        return 1
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0
