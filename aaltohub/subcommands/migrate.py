"""``aaltohub migrate``: apply the SQL migrations and record the stack's identity."""

from __future__ import annotations

import argparse
import asyncio

import psycopg

from aaltohub.embedded.pg_roles import (
    ROLE_NAMES,
    PgPasswords,
    ensure_roles_on_shared_server,
    give_objects_to_owner,
    grant_service_roles,
    url_as,
)
from aaltohub.identity import ForeignStack, record_identity
from aaltohub.migrate import MigrationError, apply_migrations
from aaltohub.runtime import resolve_database_url
from aaltohub.settings import Settings, load_settings
from aaltohub.stack_file import StackNotRunning
from aaltohub.stream import open_event_log
from eventlog import EventLogError


async def _stack_id(settings: Settings) -> str:
    async with await open_event_log(
        settings, name="aaltohub-migrate", role="projector"
    ) as event_log:
        return await event_log.verify_stream()


class MissingPasswords(Exception):
    """``--service-roles`` without every role's password."""


def service_passwords(settings: Settings) -> PgPasswords:
    """The service roles' passwords from POSTGRES_{OWNER,PROJECTOR,INGEST,API}_PASSWORD (all
    required)."""
    given = {
        "owner": settings.postgres_owner_password,
        "projector": settings.postgres_projector_password,
        "ingest": settings.postgres_ingest_password,
        "api": settings.postgres_api_password,
    }
    missing = [f"POSTGRES_{role.upper()}_PASSWORD" for role, value in given.items() if not value]
    if missing:
        raise MissingPasswords(f"--service-roles needs {', '.join(missing)}")
    values = {role: value.get_secret_value() for role, value in given.items() if value}
    return PgPasswords(superuser="", **values)


def run(args: argparse.Namespace) -> int:
    """Apply pending migrations to DATABASE_URL or the running stack's database; record the log's
    stack id in it when the log is reachable (else the projector records it at its first start)."""
    settings = load_settings()
    try:
        database_url = resolve_database_url(settings)
        passwords = service_passwords(settings) if args.service_roles else None
        if passwords is not None:
            ensure_roles_on_shared_server(database_url, passwords=passwords)
        applied = apply_migrations(database_url)
        if passwords is not None:
            give_objects_to_owner(database_url)
            database_url = url_as(database_url, ROLE_NAMES["owner"], passwords.owner)
            grant_service_roles(database_url)
    except (StackNotRunning, MigrationError, MissingPasswords) as e:
        print(f"aaltohub migrate: {e}")
        return 1
    except psycopg.Error as e:
        print(f"aaltohub migrate: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
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
