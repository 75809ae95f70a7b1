"""Supabase exposure: RLS on every table, no grants for anon, reads for known users only, the same
after a rebuild swap (issue 15, item 2). Against a Postgres with Supabase's roles simulated: `anon`,
`authenticated` and `service_role` (NOLOGIN; tests SET ROLE to them) and `auth.uid()` from the
request's JWT claim, as PostgREST sets it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import psycopg
import pytest

from aaltohub.embedded.postgres import PostgresServer
from aaltohub.migrate import apply_migrations
from eventlog import EventLog
from projector.rebuild_postgres import rebuild_postgres
from tests.helpers import posted

pytestmark = pytest.mark.timeout(120)

SUPABASE_ROLES = """
CREATE ROLE anon NOLOGIN;
CREATE ROLE authenticated NOLOGIN;
CREATE ROLE service_role NOLOGIN BYPASSRLS;
CREATE SCHEMA auth;
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS
  $$ SELECT nullif(current_setting('request.jwt.claim.sub', true), '')::uuid $$;
GRANT USAGE ON SCHEMA auth, public TO anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION auth.uid() TO anon, authenticated, service_role;
-- Supabase Realtime's authorization table and the topic of the joining client.
CREATE SCHEMA realtime;
CREATE TABLE realtime.messages (id bigserial PRIMARY KEY, topic text NOT NULL, extension text);
ALTER TABLE realtime.messages ENABLE ROW LEVEL SECURITY;
CREATE FUNCTION realtime.topic() RETURNS text LANGUAGE sql STABLE AS
  $$ SELECT nullif(current_setting('realtime.topic', true), '') $$;
GRANT USAGE ON SCHEMA realtime TO authenticated;
GRANT SELECT ON realtime.messages TO authenticated;
GRANT EXECUTE ON FUNCTION realtime.topic() TO authenticated;
-- Realtime's postgres_changes publication, which only its owner (the administrator) may alter.
CREATE PUBLICATION supabase_realtime;
-- Supabase's default privileges: everything a migration creates in public is open to all three.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
"""
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
READABLE = {"telegram_groups", "messages", "message_versions", "crawler_status"}


@pytest.fixture(scope="module")
def supabase_like(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Postgres with Supabase's roles, migrated: its database URL (superuser, like `postgres`)."""
    server = PostgresServer(data_dir=tmp_path_factory.mktemp("supa") / "pg" / "data")
    server.start()
    try:
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(SUPABASE_ROLES)
        apply_migrations(server.url)
        yield server.url
    finally:
        server.stop()


class TableAccess(NamedTuple):
    """RLS, the privileges each Supabase role holds, and the policies of one table."""

    rls: bool
    held: dict[str, list[str]]
    policies: list[str]


def grants(url: str) -> dict[str, TableAccess]:
    """Per table of public: RLS on?, each Supabase role's privileges, and the policies."""
    with psycopg.connect(url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        out: dict[str, TableAccess] = {}
        for table in tables:
            rls = conn.execute(
                "SELECT relrowsecurity FROM pg_class WHERE oid = %s::regclass", (f"public.{table}",)
            ).fetchone()
            held = {
                role: sorted(
                    p
                    for p in PRIVILEGES
                    if conn.execute(
                        "SELECT has_table_privilege(%s, %s, %s)", (role, f"public.{table}", p)
                    ).fetchone()
                    == (True,)
                )
                for role in ("anon", "authenticated", "service_role")
            }
            policies = sorted(
                r[0]
                for r in conn.execute(
                    "SELECT policyname || ':' || array_to_string(roles, ',') || ':' || coalesce(qual, '')"
                    " FROM pg_policies WHERE schemaname = 'public' AND tablename = %s",
                    (table,),
                )
            )
            out[table] = TableAccess(rls is not None and rls[0] is True, held, policies)
        return out


def test_every_table_has_rls_and_nothing_for_anon(supabase_like: str) -> None:
    found = grants(supabase_like)
    assert "schema_migrations" in found and "messages" in found
    for table, (rls, held, _policies) in found.items():
        assert rls is True, table
        assert held["anon"] == [], table
        assert held["authenticated"] == (["SELECT"] if table in READABLE else []), table
        assert held["service_role"] == sorted(PRIVILEGES), table


def test_anon_cannot_skip_a_migration_or_truncate(supabase_like: str) -> None:
    with psycopg.connect(supabase_like, autocommit=True) as conn:
        for role, statement in (
            ("anon", "INSERT INTO public.schema_migrations (version, checksum) VALUES ('x', 'y')"),
            ("anon", "TRUNCATE public.messages"),
            ("authenticated", "TRUNCATE public.messages"),
            ("authenticated", "UPDATE public.users SET role = 'admin'"),
            ("authenticated", "SELECT public.projector_supabase_setup()"),
        ):
            conn.execute(f"SET ROLE {role}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
            conn.execute("RESET ROLE")


def test_authenticated_reads_messages_only_as_a_known_reader(supabase_like: str) -> None:
    known, pending = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(supabase_like, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO public.users (id, role) VALUES (%s, 'user'), (%s, 'none')",
            (known, pending),
        )
        conn.execute(
            "INSERT INTO public.telegram_groups (chat_id, title) VALUES (-1009, 't')"
            " ON CONFLICT DO NOTHING"
        )
        seen = {}
        for who in (known, pending, None):
            conn.execute("SET ROLE authenticated")
            conn.execute("SELECT set_config('request.jwt.claim.sub', %s, false)", (str(who or ""),))
            seen[who] = conn.execute("SELECT count(*) FROM public.telegram_groups").fetchone()
            conn.execute("RESET ROLE")
    assert seen == {known: (1,), pending: (0,), None: (0,)}


async def test_a_rebuild_swap_keeps_the_same_grants(
    supabase_like: str, event_log: EventLog, tmp_path: Path
) -> None:
    before = grants(supabase_like)
    await event_log.append_many([posted(-1001, i) for i in range(1, 4)])
    result = await rebuild_postgres(log_=event_log, database_url=supabase_like)
    assert result is not None
    with psycopg.connect(supabase_like) as conn:
        assert conn.execute("SELECT count(*) FROM public.messages").fetchone() == (3,)
    assert grants(supabase_like) == before


def test_only_known_readers_receive_the_private_broadcast(supabase_like: str) -> None:
    known, pending = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(supabase_like, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO public.users (id, role) VALUES (%s, 'user'), (%s, 'none')",
            (known, pending),
        )
        conn.execute(
            "INSERT INTO realtime.messages (topic, extension) VALUES ('messages', 'broadcast')"
        )
        seen = {}
        for who in (known, pending):
            conn.execute("SET ROLE authenticated")
            conn.execute("SELECT set_config('request.jwt.claim.sub', %s, false)", (str(who),))
            conn.execute("SELECT set_config('realtime.topic', 'messages', false)")
            seen[who] = conn.execute("SELECT count(*) FROM realtime.messages").fetchone()
            conn.execute("RESET ROLE")
    assert seen == {known: (1,), pending: (0,)}
