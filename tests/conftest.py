"""Fixtures: a real nats-server with JetStream and a real Postgres, started from their wheels."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from aaltohub.embedded.nats_server import NatsServer
from aaltohub.embedded.postgres import PostgresServer
from aaltohub.migrate import apply_migrations
from eventlog import EventLog
from schemas.stream import StreamSpec
from tests.helpers import fresh_database


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A private nats-server on a free port with a temporary JetStream store."""
    server = NatsServer(store_dir=tmp_path / "jetstream", sync_interval="2m")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def stream_spec(request: pytest.FixtureRequest) -> StreamSpec:
    """The production stream config (deny delete/purge included); a test may pass its own (indirect)."""
    spec: StreamSpec = getattr(request, "param", StreamSpec())
    return spec


@pytest.fixture
async def event_log(nats_server: NatsServer, stream_spec: StreamSpec) -> AsyncIterator[EventLog]:
    """An ``EventLog`` connected to the private server, stream ensured."""
    log = await EventLog.connect(
        nats_server.url, spec=stream_spec, ack_timeout_s=2.0, append_deadline_s=20.0
    )
    try:
        yield log
    finally:
        await log.close()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """One embedded Postgres for the whole test session."""
    server = PostgresServer(data_dir=tmp_path_factory.mktemp("pg") / "data")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def database_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for one test; dropped afterwards."""
    with fresh_database(postgres_server) as url:
        yield url


@pytest.fixture(scope="session")
def migrated_template(postgres_server: PostgresServer) -> str:
    """A database with the migrations applied once per session, copied by ``migrated_db``."""
    name = f"tmpl_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    apply_migrations(postgres_server.url_for(name))
    return name


@pytest.fixture
def migrated_db(postgres_server: PostgresServer, migrated_template: str) -> Iterator[str]:
    """A fresh migrated database for one test: a copy of the template (CREATE DATABASE ...
    TEMPLATE), much faster than migrating; dropped afterwards."""
    with fresh_database(postgres_server, template=migrated_template) as url:
        yield url
