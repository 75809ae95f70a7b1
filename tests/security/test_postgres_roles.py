"""The embedded Postgres: SCRAM for every connection, non-superuser roles per job (issue 15, item 2).

The review's attacks, replayed: a connection without the password (trust was open to every local
user), ``COPY … TO PROGRAM`` and reading ``telegram_sessions`` from the API's role, a forged
message from ingest's, and the API's reads still working after a rebuild swap done by the owner.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from aaltohub.embedded.pg_roles import (
    ROLE_NAMES,
    PgPasswords,
    ensure_roles,
    grant_service_roles,
    load_or_create_passwords,
    role_url,
    url_as,
)
from aaltohub.embedded.postgres import PostgresServer
from aaltohub.migrate import apply_migrations
from eventlog import EventLog
from projector.rebuild import rebuild_postgres
from tests.helpers import posted

pytestmark = pytest.mark.timeout(120)


@dataclass(frozen=True)
class Cluster:
    """A migrated cluster set up like `aaltohub up`'s."""

    server: PostgresServer
    passwords: PgPasswords

    def url(self, role: str) -> str:
        """The app database as ``role`` (owner, ingest, api)."""
        return role_url(self.server.url, self.passwords, role)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A cluster first started without passwords (an old data dir), then as `up` starts it now."""
    data = tmp_path_factory.mktemp("pgroles") / "var"
    old = PostgresServer(data_dir=data / "postgres" / "data")
    old.start()
    try:
        with psycopg.connect(old.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE public.left_by_an_old_run (note text)")
    finally:
        old.stop()
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
        yield Cluster(server, passwords)
    finally:
        server.stop()


def test_a_connection_without_the_password_is_refused(cluster: Cluster) -> None:
    for url in (
        url_as(cluster.server.url, "postgres", "wrong"),
        cluster.server.url.replace(f":{cluster.passwords.superuser}@", "@"),
        url_as(cluster.server.url, "aaltohub_api", "wrong"),
    ):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(url, connect_timeout=5).close()


def test_no_service_role_is_superuser_or_bypasses_rls(cluster: Cluster) -> None:
    with psycopg.connect(cluster.server.url) as conn:
        rows = conn.execute(
            "SELECT rolname, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles"
            " WHERE rolname = ANY(%s)",
            (list(ROLE_NAMES.values()),),
        ).fetchall()
    assert sorted(rows) == sorted(
        (name, False, False, False, False) for name in ROLE_NAMES.values()
    )


def test_the_owner_owns_everything_an_old_run_left(cluster: Cluster) -> None:
    with psycopg.connect(cluster.server.url) as conn:
        owners: dict[str, str] = {
            str(table): str(owner)
            for table, owner in conn.execute(
                "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'"
            )
        }
    assert owners["left_by_an_old_run"] == "aaltohub_owner"
    assert set(owners.values()) == {"aaltohub_owner"}


@pytest.mark.parametrize("role", ["owner", "ingest", "api"])
def test_no_role_runs_programs(role: str, cluster: Cluster) -> None:
    with psycopg.connect(cluster.url(role), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("COPY (SELECT 1) TO PROGRAM 'true'")


@pytest.mark.parametrize(
    ("role", "statement"),
    [
        ("api", "SELECT * FROM public.telegram_sessions"),
        ("api", "SELECT * FROM public.entity_cache"),
        ("api", "INSERT INTO public.messages (chat_id, message_id) VALUES (1, 1)"),
        ("api", "TRUNCATE public.messages"),
        ("ingest", "INSERT INTO public.messages (chat_id, message_id) VALUES (1, 1)"),
        ("ingest", "SELECT * FROM public.users"),
        ("ingest", "UPDATE public.users SET role = 'admin'"),
    ],
)
def test_a_service_cannot_touch_what_is_not_its_own(
    role: str, statement: str, cluster: Cluster
) -> None:
    with psycopg.connect(cluster.url(role), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement.encode())


def test_each_service_does_its_job(cluster: Cluster) -> None:
    with psycopg.connect(cluster.url("ingest"), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO public.telegram_sessions (account, ciphertext) VALUES ('main', 'x')"
            " ON CONFLICT (account) DO NOTHING"
        )
        assert conn.execute("SELECT count(*) FROM public.telegram_sessions").fetchone() == (1,)
    with psycopg.connect(cluster.url("api"), autocommit=True) as conn:
        conn.execute("SELECT count(*) FROM public.messages")
        conn.execute("INSERT INTO public.users (id, role) VALUES (gen_random_uuid(), 'none')")


async def test_the_api_reads_what_a_rebuild_swapped_in(
    cluster: Cluster, event_log: EventLog, tmp_path: Path
) -> None:
    await event_log.append_many([posted(-1001, i) for i in range(1, 4)])
    await rebuild_postgres(log_=event_log, database_url=cluster.url("owner"))
    with psycopg.connect(cluster.url("api")) as conn:
        assert conn.execute("SELECT count(*) FROM public.messages").fetchone() == (3,)
