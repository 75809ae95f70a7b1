"""The embedded Postgres: SCRAM for every connection, non-superuser roles per job (issue 15, item 2).

The review's attacks, replayed: a connection without the password (trust was open to every local
user), ``COPY … TO PROGRAM`` and reading ``telegram_sessions`` from the API's or the projector's
role, a forged message from ingest's, and the API's reads still working after a rebuild swap done
by the projector, whose role owns the projection tables and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import psycopg
import pytest

from aaltohub.embedded.pg_roles import (
    PROJECTOR_TABLES,
    ROLE_NAMES,
    PgPasswords,
    ensure_roles,
    grant_service_roles,
    load_or_create_passwords,
    passwords_file,
    role_url,
    url_as,
)
from aaltohub.embedded.postgres import PostgresServer
from aaltohub.migrate import apply_migrations
from eventlog import EventLog
from projector.rebuild_postgres import rebuild_postgres
from tests.helpers import posted

pytestmark = pytest.mark.timeout(120)


@dataclass(frozen=True)
class Cluster:
    """A migrated cluster set up like `aaltohub up`'s."""

    server: PostgresServer
    passwords: PgPasswords

    def url(self, role: str) -> str:
        """The app database as ``role`` (owner, projector, ingest, api)."""
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


def test_the_owner_owns_everything_but_the_projections(cluster: Cluster) -> None:
    with psycopg.connect(cluster.server.url) as conn:
        owners: dict[str, str] = {
            str(table): str(owner)
            for table, owner in conn.execute(
                "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'"
            )
        }
    assert owners["left_by_an_old_run"] == "aaltohub_owner"
    assert {t: o for t, o in owners.items() if o != "aaltohub_owner"} == {
        t: "aaltohub_projector" for t in PROJECTOR_TABLES
    }


@pytest.mark.parametrize("role", ["owner", "projector", "ingest", "api"])
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
        ("projector", "SELECT * FROM public.telegram_sessions"),
        ("projector", "SELECT * FROM public.telegram_session_keys_retired"),
        ("projector", "SELECT * FROM public.entity_cache"),
        ("projector", "SELECT * FROM public.telegram_update_state"),
        ("projector", "SELECT * FROM public.users"),
        ("projector", "UPDATE public.users SET role = 'admin'"),
        ("projector", "ALTER TABLE public.telegram_sessions OWNER TO aaltohub_projector"),
        ("projector", "DELETE FROM public.schema_migrations"),
        ("projector", "SET ROLE aaltohub_owner"),
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


def table_privileges(cluster: Cluster) -> dict[str, tuple[str, list[str]]]:
    """Per table of public: its owner and who holds which privileges on it."""
    with psycopg.connect(cluster.server.url) as conn:
        return {
            str(name): (str(owner), sorted(str(a) for a in acl or []))
            for name, owner, acl in conn.execute(
                "SELECT c.relname, pg_get_userbyid(c.relowner), c.relacl FROM pg_class c"
                " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'"
            )
        }


async def test_the_projector_rebuilds_and_the_grants_stay_the_same(
    cluster: Cluster, event_log: EventLog, tmp_path: Path
) -> None:
    before = table_privileges(cluster)
    await event_log.append_many([posted(-1001, i) for i in range(1, 4)])
    await rebuild_postgres(log_=event_log, database_url=cluster.url("projector"))
    with psycopg.connect(cluster.url("api")) as conn:
        assert conn.execute("SELECT count(*) FROM public.messages").fetchone() == (3,)
    assert table_privileges(cluster) == before


def test_a_migration_still_alters_the_projectors_tables(cluster: Cluster) -> None:
    with psycopg.connect(cluster.url("owner")) as conn:
        conn.execute("ALTER TABLE public.messages ADD COLUMN added_by_a_migration integer")
        conn.execute("CREATE INDEX ON public.messages (added_by_a_migration)")
        conn.rollback()  # the schema stays as it was for the other tests


def test_a_data_dir_from_before_the_projector_role_keeps_its_passwords(tmp_path: Path) -> None:
    old = {"superuser": "s" * 43, "owner": "o" * 43, "ingest": "i" * 43, "api": "a" * 43}
    passwords_file(tmp_path).parent.mkdir(parents=True)
    passwords_file(tmp_path).write_bytes(msgspec.json.encode(old))
    passwords = load_or_create_passwords(tmp_path)
    assert {k: passwords.password(k) for k in ("owner", "ingest", "api")} == {
        k: v for k, v in old.items() if k != "superuser"
    }
    assert passwords.superuser == old["superuser"]
    assert len(passwords.projector) >= 43
    assert load_or_create_passwords(tmp_path) == passwords


def test_a_rebuild_schema_the_owner_left_goes_to_the_projector(cluster: Cluster) -> None:
    """A data dir rebuilt before the projector had its role: its leftover schemas are the owner's;
    the next `up` hands them over (grant_service_roles runs at every start), so a rebuild can
    drop them."""
    with psycopg.connect(cluster.url("owner"), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA retired_20260101")
        conn.execute("CREATE TABLE retired_20260101.messages (LIKE public.messages)")
    grant_service_roles(cluster.url("owner"))
    with psycopg.connect(cluster.url("projector"), autocommit=True) as conn:
        conn.execute("DROP SCHEMA retired_20260101 CASCADE")
