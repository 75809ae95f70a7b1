"""The compose configuration's Postgres settings (issue 15, item 2, under docker-compose).

No Docker engine here: a real Postgres with Supabase's roles stands in for the compose `postgres`
service, `aaltohub migrate --service-roles` runs as compose's `migrate` does (as the
administrator, passwords from the environment), and each service then connects with the user and
password of its DATABASE_URL in docker-compose.yml. Every service used to be the superuser.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import yaml

from aaltohub.embedded.pg_roles import ROLE_NAMES, url_as
from aaltohub.embedded.postgres import PostgresServer
from aaltohub.identity import ForeignStack, verify_database
from eventlog import EventLog
from projector.rebuild_postgres import rebuild_postgres
from tests.helpers import posted
from tests.security.test_supabase_grants import SUPABASE_ROLES, grants

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
ENV = {
    "POSTGRES_PASSWORD": "admin-secret-from-env",
    "POSTGRES_OWNER_PASSWORD": "owner-secret-from-env",
    "POSTGRES_PROJECTOR_PASSWORD": "projector-secret-from-env",
    "POSTGRES_INGEST_PASSWORD": "ingest-secret-from-env",
    "POSTGRES_API_PASSWORD": "api-secret-from-env",
}


def compose_database_url(service: str) -> str:
    """The service's DATABASE_URL from docker-compose.yml, with ``${VAR:?…}`` taken from ``ENV``."""
    template = str(COMPOSE["services"][service]["environment"]["DATABASE_URL"])
    return re.sub(r"\$\{(\w+):\?[^}]*\}", lambda m: ENV[m.group(1)], template)


def on_test_server(server: PostgresServer, service: str) -> str:
    """The service's compose user and password, on the test server."""
    parts = urlsplit(compose_database_url(service))
    assert parts.username and parts.password
    return url_as(server.url, parts.username, parts.password)


def migrate_with_service_roles(database_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``aaltohub migrate --service-roles`` as compose's migrate service runs it."""
    return subprocess.run(
        [sys.executable, "-m", "aaltohub", "migrate", "--service-roles"],
        env={
            **os.environ,
            "DATABASE_URL": database_url,
            "NATS_URL": "nats://127.0.0.1:1",  # no log here: the identity is recorded later
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def compose_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A Postgres with Supabase's roles, migrated with the service roles like compose's."""
    server = PostgresServer(
        data_dir=tmp_path_factory.mktemp("compose") / "pg" / "data",
        superuser_password=ENV["POSTGRES_PASSWORD"],
    )
    server.start()
    try:
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(SUPABASE_ROLES)
        passwords = {k: v for k, v in ENV.items() if k != "POSTGRES_PASSWORD"}
        done = migrate_with_service_roles(server.url, **passwords)
        assert done.returncode == 0, done.stdout + done.stderr
        yield server
    finally:
        server.stop()


def test_every_compose_service_connects_as_its_own_postgres_role() -> None:
    users = {
        name: urlsplit(compose_database_url(name)).username
        for name, spec in COMPOSE["services"].items()
        if "DATABASE_URL" in spec.get("environment", {})
    }
    assert users == {
        "migrate": "postgres",
        "projector": ROLE_NAMES["projector"],
        "ingest": ROLE_NAMES["ingest"],
        "api": ROLE_NAMES["api"],
    }


def test_service_roles_without_their_passwords_are_refused_in_one_line(
    compose_db: PostgresServer,
) -> None:
    done = migrate_with_service_roles(compose_db.url, POSTGRES_OWNER_PASSWORD="x")
    assert done.returncode == 1
    assert done.stdout.strip() == (
        "aaltohub migrate: --service-roles needs POSTGRES_PROJECTOR_PASSWORD,"
        " POSTGRES_INGEST_PASSWORD, POSTGRES_API_PASSWORD"
    )


def test_no_compose_service_role_is_superuser_or_bypasses_rls(compose_db: PostgresServer) -> None:
    with psycopg.connect(compose_db.url) as conn:
        rows = conn.execute(
            "SELECT rolname, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles"
            " WHERE rolname = ANY(%s)",
            (list(ROLE_NAMES.values()),),
        ).fetchall()
    assert sorted(rows) == sorted(
        (name, False, False, False, False) for name in ROLE_NAMES.values()
    )


@pytest.mark.parametrize(
    ("service", "statement"),
    [
        ("api", "SELECT * FROM public.telegram_sessions"),
        ("api", "INSERT INTO public.messages (chat_id, message_id) VALUES (1, 1)"),
        ("api", "COPY (SELECT 1) TO PROGRAM 'true'"),
        ("ingest", "INSERT INTO public.messages (chat_id, message_id) VALUES (1, 1)"),
        ("ingest", "UPDATE public.users SET role = 'admin'"),
        ("projector", "COPY (SELECT 1) TO PROGRAM 'true'"),
        ("projector", "SELECT * FROM public.telegram_sessions"),
        ("projector", "SELECT * FROM public.entity_cache"),
        ("projector", "UPDATE public.users SET role = 'admin'"),
    ],
)
def test_a_compose_service_cannot_touch_what_is_not_its_own(
    service: str, statement: str, compose_db: PostgresServer
) -> None:
    with psycopg.connect(on_test_server(compose_db, service), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement.encode())


def test_each_compose_service_does_its_job(compose_db: PostgresServer) -> None:
    with psycopg.connect(on_test_server(compose_db, "ingest"), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO public.telegram_sessions (account, ciphertext) VALUES ('main', 'x')"
            " ON CONFLICT (account) DO NOTHING"
        )
    with psycopg.connect(on_test_server(compose_db, "api"), autocommit=True) as conn:
        conn.execute("SELECT count(*) FROM public.messages")
        conn.execute("INSERT INTO public.users (id, role) VALUES (gen_random_uuid(), 'none')")


async def test_the_compose_api_reads_what_the_compose_projector_rebuilt(
    compose_db: PostgresServer, event_log: EventLog
) -> None:
    before = grants(compose_db.url)
    await event_log.append_many([posted(-1001, i) for i in range(1, 4)])
    await rebuild_postgres(log_=event_log, database_url=on_test_server(compose_db, "projector"))
    with psycopg.connect(on_test_server(compose_db, "api")) as conn:
        assert conn.execute("SELECT count(*) FROM public.messages").fetchone() == (3,)
    assert grants(compose_db.url) == before
    with psycopg.connect(compose_db.url) as conn:  # Realtime still publishes the new table
        published = conn.execute(
            "SELECT schemaname FROM pg_publication_tables WHERE pubname = 'supabase_realtime'"
            " AND tablename = 'messages'"
        ).fetchall()
    assert published == [("public",)]


def test_supabase_roles_still_hold_nothing_they_should_not(compose_db: PostgresServer) -> None:
    for table, (rls, held, _policies) in grants(compose_db.url).items():
        assert rls is True, table
        assert held["anon"] == [], table


def test_the_compose_projector_records_the_stack_when_migrate_could_not(
    compose_db: PostgresServer,
) -> None:
    url = on_test_server(compose_db, "projector")
    verify_database(url, stack_id="compose-stack", claim=True)
    with pytest.raises(ForeignStack, match="belongs to stack compose-stack"):
        verify_database(url, stack_id="another-stack")
