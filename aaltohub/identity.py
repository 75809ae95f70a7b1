"""Which stack a database and a log belong to, and refusing a foreign one (docs/decisions/029).

The stack id is born with the stream (its metadata, ``schemas.stream.STACK_ID_KEY``): the log is the
source of truth, so a database dropped and rebuilt from the log keeps the stack's identity. At
migrate time the stack id and the Postgres system identifier are recorded in the database
(``public.stack_identity``); ``aaltohub up`` also writes both to ``stack.json``. Every service checks,
on connect, that the stream is its stack's and that the database carries the same stack id and is
still on the server it was recorded on; otherwise it refuses with one ``ForeignStack`` line.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import parse_qs, urlsplit

import msgspec
import psycopg

from eventlog import EventLog, ForeignStream

log = logging.getLogger(__name__)


class ForeignStack(RuntimeError):
    """The database or the log reached is not this stack's; the message is one line saying why."""


class StackIdentity(msgspec.Struct, frozen=True, kw_only=True):
    """A stack's id and the system identifier of its Postgres cluster."""

    stack_id: str
    postgres_system_id: str


class _Recorded(msgspec.Struct, frozen=True, kw_only=True):
    stack_id: str | None
    recorded_system_id: str | None
    system_id: str


def describe_database(url: str) -> str:
    """Where ``url`` points, without credentials (host or socket directory, and database)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "localhost"])[0]
    return f"{host}/{parts.path.lstrip('/') or '?'}"


def _read(conn: psycopg.Connection[tuple[object, ...]], url: str) -> _Recorded:
    try:
        row = conn.execute(
            "SELECT stack_id, recorded_system_identifier, system_identifier"
            " FROM public.aaltohub_stack_identity()"
        ).fetchone()
    except psycopg.errors.UndefinedFunction as e:
        raise ForeignStack(
            f"refusing the database at {describe_database(url)}: it has no stack identity"
            " (not migrated by aaltohub)"
        ) from e
    assert row is not None
    return _Recorded(
        stack_id=None if row[0] is None else str(row[0]),
        recorded_system_id=None if row[1] is None else str(row[1]),
        system_id=str(row[2]),
    )


def record_identity(owner_url: str, stack_id: str) -> StackIdentity:
    """At migrate time: record ``stack_id`` and the server's system identifier in the database;
    ``ForeignStack`` if it already belongs to another stack. A database of this stack restored
    onto another server is adopted (its system identifier re-recorded, logged)."""
    with psycopg.connect(owner_url, autocommit=True, connect_timeout=10) as conn:
        found = _read(conn, owner_url)
        where = describe_database(owner_url)
        if found.stack_id is not None and found.stack_id != stack_id:
            raise ForeignStack(
                f"refusing the database at {where}: it belongs to stack {found.stack_id},"
                f" the log to stack {stack_id}"
            )
        if found.stack_id is None:
            conn.execute(
                "INSERT INTO public.stack_identity (stack_id, system_identifier) VALUES (%s, %s)",
                (stack_id, found.system_id),
            )
        elif found.recorded_system_id != found.system_id:
            log.warning(
                "database at %s moved from Postgres system %s to %s; recording the new one",
                where,
                found.recorded_system_id,
                found.system_id,
            )
            conn.execute(
                "UPDATE public.stack_identity SET system_identifier = %s, recorded_at = now()",
                (found.system_id,),
            )
    return StackIdentity(stack_id=stack_id, postgres_system_id=found.system_id)


def verify_database(
    url: str, *, stack_id: str, postgres_system_id: str | None = None, claim: bool = False
) -> StackIdentity:
    """On connect: ``ForeignStack`` unless the database at ``url`` belongs to ``stack_id`` and runs
    on the server it was recorded on (and on ``postgres_system_id`` when given). A database no
    stack recorded yet is claimed when ``claim`` (the projector, its one writer), else accepted
    with a warning."""
    where = describe_database(url)
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        found = _read(conn, url)
    if found.stack_id is None:
        if claim:
            log.warning("database at %s records no stack; recording stack %s", where, stack_id)
            return record_identity(url, stack_id)
        log.warning("database at %s records no stack yet (run aaltohub migrate)", where)
    elif found.stack_id != stack_id:
        raise ForeignStack(
            f"refusing the database at {where}: it belongs to stack {found.stack_id},"
            f" this stack is {stack_id}"
        )
    elif found.recorded_system_id != found.system_id:
        raise ForeignStack(
            f"refusing the database at {where}: recorded on Postgres system"
            f" {found.recorded_system_id}, reached on {found.system_id}"
            " (a copy? `aaltohub migrate` adopts it)"
        )
    if postgres_system_id is not None and found.system_id != postgres_system_id:
        raise ForeignStack(
            f"refusing the database at {where}: Postgres system {found.system_id},"
            f" this stack's is {postgres_system_id}"
        )
    return StackIdentity(stack_id=stack_id, postgres_system_id=found.system_id)


async def verify_stack(
    event_log: EventLog,
    database_url: str | None,
    *,
    expected: StackIdentity | None,
    claim: bool = False,
) -> StackIdentity | None:
    """The stream's and (when given) the database's identity, checked against each other and against
    ``expected``; ``ForeignStack`` with one line otherwise. None when there is no database to check."""
    try:
        stack_id = await event_log.verify_stream(expected.stack_id if expected else None)
    except ForeignStream as e:
        raise ForeignStack(str(e)) from e
    if database_url is None:
        return None
    return await asyncio.to_thread(
        verify_database,
        database_url,
        stack_id=stack_id,
        postgres_system_id=expected.postgres_system_id if expected else None,
        claim=claim,
    )
