"""Stack identity (docs/decisions/029): the stream's stack id, recorded in the database at migrate
time with the Postgres system identifier; services refuse a foreign log or database with one line."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from aaltohub.embedded.nats_server import NatsServer
from aaltohub.embedded.pg_roles import (
    PgPasswords,
    ensure_roles,
    grant_service_roles,
    load_or_create_passwords,
    role_url,
)
from aaltohub.embedded.postgres import PostgresServer
from aaltohub.identity import ForeignStack, record_identity, verify_database
from aaltohub.migrate import apply_migrations
from eventlog import EventLog, ForeignStream
from schemas.stream import StreamSpec
from tests.aaltohub.upproc import run_cli

pytestmark = pytest.mark.timeout(120)


@dataclass(frozen=True)
class Cluster:
    """A migrated cluster with `aaltohub up`'s roles, not yet recorded for any stack."""

    server: PostgresServer
    passwords: PgPasswords
    data: Path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Set up like `aaltohub up` sets up its Postgres (SCRAM, roles, migrations, grants)."""
    data = tmp_path_factory.mktemp("identity") / "var"
    passwords = load_or_create_passwords(data)
    server = PostgresServer(
        data_dir=data / "postgres" / "data", superuser_password=passwords.superuser
    )
    server.start()
    try:
        ensure_roles(server.admin_url, server.url, database=server.database, passwords=passwords)
        owner = role_url(server.url, passwords, "owner")
        apply_migrations(owner)
        grant_service_roles(owner)
        record_identity(owner, "stack-a")
        yield Cluster(server, passwords, data)
    finally:
        server.stop()


def test_migrate_records_the_stack_id_and_the_system_identifier(cluster: Cluster) -> None:
    owner = role_url(cluster.server.url, cluster.passwords, "owner")
    identity = record_identity(owner, "stack-a")  # again: idempotent
    with psycopg.connect(cluster.server.url) as conn:
        row = conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()
    assert row is not None
    assert (identity.stack_id, identity.postgres_system_id) == ("stack-a", str(row[0]))


def test_migrate_refuses_a_database_of_another_stack(cluster: Cluster) -> None:
    owner = role_url(cluster.server.url, cluster.passwords, "owner")
    with pytest.raises(ForeignStack, match="belongs to stack stack-a, the log to stack stack-b"):
        record_identity(owner, "stack-b")


@pytest.mark.parametrize("role", ["owner", "projector", "ingest", "api"])
def test_every_service_role_checks_the_identity(cluster: Cluster, role: str) -> None:
    url = role_url(cluster.server.url, cluster.passwords, role)  # type: ignore[arg-type]
    identity = verify_database(url, stack_id="stack-a")
    assert verify_database(url, stack_id="stack-a", postgres_system_id=identity.postgres_system_id)


def test_a_service_refuses_the_database_of_another_stack(cluster: Cluster) -> None:
    url = role_url(cluster.server.url, cluster.passwords, "api")
    with pytest.raises(ForeignStack) as refused:
        verify_database(url, stack_id="stack-b")
    message = str(refused.value)
    assert "belongs to stack stack-a, this stack is stack-b" in message
    assert "\n" not in message and cluster.passwords.api not in message


def test_a_service_refuses_a_database_on_another_server(cluster: Cluster) -> None:
    url = role_url(cluster.server.url, cluster.passwords, "ingest")
    with pytest.raises(ForeignStack, match=r"Postgres system \d+, this stack's is 42"):
        verify_database(url, stack_id="stack-a", postgres_system_id="42")


def test_an_unmigrated_database_is_refused(database_url: str) -> None:
    with pytest.raises(ForeignStack, match="has no stack identity"):
        verify_database(database_url, stack_id="stack-a")


def test_the_projector_claims_a_database_no_stack_recorded(migrated_db: str) -> None:
    verify_database(migrated_db, stack_id="stack-c", claim=True)
    with pytest.raises(ForeignStack, match="belongs to stack stack-c"):
        verify_database(migrated_db, stack_id="stack-d", claim=True)


def test_a_foreign_cluster_in_the_stacks_socket_is_refused_before_any_query(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A trusting cluster that took this stack's socket never gets a query: the role URL demands
    that the server prove it knows the role's SCRAM secret."""
    url = role_url(cluster.server.url, cluster.passwords, "owner")
    cluster.server.stop()
    foreign = PostgresServer(data_dir=tmp_path / "foreign", socket_dir=cluster.server.socket_dir)
    foreign.start()
    try:
        with psycopg.connect(foreign.admin_url, autocommit=True) as conn:
            conn.execute("CREATE ROLE aaltohub_owner LOGIN")  # trust: any password passes
        with pytest.raises(
            psycopg.OperationalError,
            match='authentication method requirement "scram-sha-256" failed',
        ):
            psycopg.connect(url, connect_timeout=5).close()
    finally:
        foreign.stop()
        cluster.server.start()


async def test_a_new_stream_gets_a_stack_id_that_updates_keep(event_log: EventLog) -> None:
    stack_id = await event_log.verify_stream()
    await event_log.ensure_stream()  # an update (e.g. `up` started again) keeps the metadata
    assert await event_log.verify_stream(stack_id) == stack_id and len(stack_id) == 32


async def test_a_stream_of_another_stack_is_refused(event_log: EventLog) -> None:
    with pytest.raises(ForeignStream, match=r"belongs to stack \w+, not to this stack \(other\)"):
        await event_log.verify_stream("other")


async def test_a_stream_with_other_subjects_is_refused(nats_server: NatsServer) -> None:
    url = nats_server.url
    async with await EventLog.connect(url, spec=StreamSpec(subjects=("other.>",))):
        pass
    async with await EventLog.connect(url, ensure=False) as ours:
        with pytest.raises(ForeignStream, match="subjects/storage/retention"):
            await ours.verify_stream()


async def test_aaltohub_migrate_records_the_logs_stack_id(
    event_log: EventLog, nats_server: NatsServer, database_url: str, tmp_path: Path
) -> None:
    stack_id = await event_log.verify_stream()
    done = await asyncio.to_thread(
        run_cli,
        tmp_path / "var",
        "migrate",
        timeout_s=120,
        NATS_URL=nats_server.url,
        DATABASE_URL=database_url,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"stack {stack_id} on Postgres system" in done.stdout
    assert verify_database(database_url, stack_id=stack_id).stack_id == stack_id
