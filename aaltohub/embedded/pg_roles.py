"""Least privilege in the embedded Postgres: SCRAM passwords and one login role per job.

``aaltohub up`` generates the passwords at first start (``<data>/secrets/postgres-users.json``,
0600 in a 0700 directory). The superuser ``postgres`` only bootstraps: it sets the passwords, turns
``pg_hba.conf`` from ``trust`` to ``scram-sha-256`` and creates the roles. No service role is a
superuser or bypasses RLS (docs/decisions/023-postgres-least-privilege.md):

- ``aaltohub_owner`` owns the database and every table but the projections: it runs the
  migrations. It is a member of ``aaltohub_projector``, so migrations still alter projection tables.
- ``aaltohub_projector`` owns the projection tables (a rebuild creates schemas and swaps tables,
  which only an owner may do) and nothing else: no sessions, entity cache, users or migrations
  (docs/decisions/038-projector-role.md).
- ``aaltohub_ingest`` reads and writes the Telegram sessions and the entity cache, nothing else.
- ``aaltohub_api`` reads the projections and ``users`` and writes ``users``; never the sessions.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlsplit, urlunsplit

import msgspec
import psycopg
from psycopg import sql

from aaltohub.nats_auth import secrets_dir, write_private
from projector.postgres.schema import SWAP_TABLES

PgRole = Literal["owner", "projector", "ingest", "api"]
ROLE_NAMES: Final[dict[PgRole, str]] = {
    "owner": "aaltohub_owner",
    "projector": "aaltohub_projector",
    "ingest": "aaltohub_ingest",
    "api": "aaltohub_api",
}
# What the projector owns: the tables a rebuild swaps, its checkpoints and its dead letters.
PROJECTOR_TABLES: Final = (*SWAP_TABLES, "projection_checkpoints", "failed_messages")
# Functions that act with the rights of whoever ran the migrations (compose: the administrator,
# who may alter Supabase's publication), so they are not handed to the owner.
_KEEP_WITH_MIGRATOR: Final = ("aaltohub_publish_messages",)
# Leftovers of a rebuild (projector.rebuild_postgres names them rebuild_<ts> and retired_<ts>).
_REBUILD_SCHEMAS: Final = r"^(rebuild|retired)_[0-9a-z_]+$"
INGEST_TABLES: Final = (
    "telegram_sessions",
    "telegram_session_keys_retired",
    "entity_cache",
    "telegram_update_state",
)
_TRUST: Final = re.compile(r"^(\s*(?:local|host)\S*\s.*\s)trust(\s*)$", re.M)


class PgPasswords(msgspec.Struct, frozen=True, kw_only=True):
    """Generated passwords of the superuser and the service roles."""

    superuser: str
    owner: str
    ingest: str
    api: str
    projector: str = ""  # empty in a data dir from before the role existed

    def password(self, role: PgRole) -> str:
        """The password of ``role``."""
        value: str = getattr(self, role)
        return value

    def __repr__(self) -> str:
        return "PgPasswords(<redacted>)"


def passwords_file(data_dir: Path) -> Path:
    """The generated Postgres passwords of ``data_dir`` (mode 0600)."""
    return secrets_dir(data_dir) / "postgres-users.json"


def load_passwords(data_dir: Path) -> PgPasswords | None:
    """The passwords of ``data_dir``, or None."""
    try:
        return msgspec.json.decode(passwords_file(data_dir).read_bytes(), type=PgPasswords)
    except (OSError, msgspec.DecodeError):
        return None


def load_or_create_passwords(data_dir: Path) -> PgPasswords:
    """The passwords of ``data_dir``, generated (256 random bits each) on first use; a role added
    since the file was written gets its password now, the others keep theirs."""
    existing = load_passwords(data_dir)
    names = ("superuser", *ROLE_NAMES)
    if existing is not None and all(getattr(existing, name) for name in names):
        return existing
    passwords = PgPasswords(
        **{
            name: (getattr(existing, name) if existing else "") or secrets.token_urlsafe(32)
            for name in names
        }
    )
    write_private(passwords_file(data_dir), msgspec.json.encode(passwords))
    return passwords


def url_as(url: str, user: str, password: str) -> str:
    """``url`` (a libpq URI, socket or TCP) logging in as ``user`` with ``password``."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


def role_url(url: str, passwords: PgPasswords, role: PgRole) -> str:
    """``url`` as the service role ``role``; the server must prove it knows the role's SCRAM secret
    (``require_auth``), so a foreign cluster in this stack's socket is refused on every
    (re)connect, before any query (docs/decisions/029-stack-identity.md)."""
    with_role = url_as(url, ROLE_NAMES[role], passwords.password(role))
    parts = urlsplit(with_role)
    if "require_auth=" in parts.query:
        return with_role
    query = (
        f"{parts.query}&require_auth=scram-sha-256" if parts.query else "require_auth=scram-sha-256"
    )
    return urlunsplit(parts._replace(query=query))


def require_passwords(hba_file: Path, superuser_url: str, password: str) -> bool:
    """Set the superuser's password and switch ``trust`` lines of ``hba_file`` to SCRAM, then reload;
    ``superuser_url`` is used while the server still trusts. Returns True if anything changed."""
    text = hba_file.read_text()
    if not _TRUST.search(text):
        return False
    with psycopg.connect(superuser_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute("SET password_encryption = 'scram-sha-256'")
        conn.execute(sql.SQL("ALTER ROLE postgres PASSWORD {}").format(sql.Literal(password)))
        hba_file.write_text(_TRUST.sub(r"\1scram-sha-256\2", text))
        conn.execute("SELECT pg_reload_conf()")
    return True


def ensure_roles(
    admin_url: str, database_url: str, *, database: str, passwords: PgPasswords
) -> None:
    """Create (or update) the service roles and give the database and its objects to the owner;
    ``admin_url`` and ``database_url`` are the superuser's, on the maintenance and the app database."""
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        _upsert_roles(conn, passwords)
        db = sql.Identifier(database)
        owner = sql.Identifier(ROLE_NAMES["owner"])
        conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(db, owner))
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                db, sql.SQL(", ").join(sql.Identifier(n) for n in ROLE_NAMES.values())
            )
        )
        _grant_projector_database(conn, db)
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(owner))
        conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        conn.execute(
            sql.SQL("GRANT USAGE ON SCHEMA public TO {}, {}").format(
                sql.Identifier(ROLE_NAMES["ingest"]), sql.Identifier(ROLE_NAMES["api"])
            )
        )
        _grant_projector_schema(conn)
        _give_public_objects_to_owner(conn, "postgres")  # what an earlier run made as superuser


def ensure_roles_on_shared_server(admin_url: str, *, passwords: PgPasswords) -> None:
    """The service roles on a server we do not own (compose's Supabase Postgres): create or update
    them and give the owner what it needs, without taking the database or the schema from the
    server's own roles. ``admin_url`` is the administrator's URL of the app database."""
    owner = sql.Identifier(ROLE_NAMES["owner"])
    services = sql.SQL(", ").join(sql.Identifier(ROLE_NAMES[r]) for r in ("ingest", "api"))
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        _upsert_roles(conn, passwords)
        row = conn.execute("SELECT current_database()").fetchone()
        assert row is not None
        db = sql.Identifier(str(row[0]))
        everyone = sql.SQL(", ").join(sql.Identifier(n) for n in ROLE_NAMES.values())
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db, everyone))
        # the projector's rebuild creates its schemas; the owner creates tables in public
        conn.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(db, owner))
        conn.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(owner))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(services))
        _grant_projector_database(conn, db)
        _grant_projector_schema(conn)
        # an administrator that is not a superuser may give objects only to roles it belongs to
        conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(owner))


def give_objects_to_owner(admin_url: str) -> None:
    """After the migrations ran as the administrator: what it created in public goes to the owner."""
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute("SELECT current_user").fetchone()
        assert row is not None
        _give_public_objects_to_owner(conn, str(row[0]))


def _upsert_roles(conn: psycopg.Connection, passwords: PgPasswords) -> None:
    conn.execute("SET password_encryption = 'scram-sha-256'")
    for role, name in ROLE_NAMES.items():
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(
            sql.SQL(
                verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS"
                " NOREPLICATION PASSWORD {}"
            ).format(sql.Identifier(name), sql.Literal(passwords.password(role)))
        )


def _grant_projector_database(conn: psycopg.Connection, db: sql.Identifier) -> None:
    """The projector may create a rebuild's schemas and its temporary stages; the owner acts for it
    (migrations alter its tables, ``grant_service_roles`` hands them over), never the reverse."""
    projector = sql.Identifier(ROLE_NAMES["projector"])
    conn.execute(sql.SQL("GRANT CREATE, TEMPORARY ON DATABASE {} TO {}").format(db, projector))
    conn.execute(sql.SQL("GRANT {} TO {}").format(projector, sql.Identifier(ROLE_NAMES["owner"])))


def _grant_projector_schema(conn: psycopg.Connection) -> None:
    """A rebuild moves its tables into public: the projector needs ``CREATE`` there."""
    conn.execute(
        sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(
            sql.Identifier(ROLE_NAMES["projector"])
        )
    )


def _give_public_objects_to_owner(conn: psycopg.Connection, from_role: str) -> None:
    owner = sql.Identifier(ROLE_NAMES["owner"])
    owned = conn.execute(
        "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')"
        " AND pg_get_userbyid(c.relowner) = %s"
        # a sequence owned by a column moves with its table
        " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')"
        " AND c.relkind = 'S')",
        (from_role,),
    ).fetchall()
    kinds = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE"}
    for name, kind in owned:
        conn.execute(
            sql.SQL("ALTER " + kinds[str(kind)] + " public.{} OWNER TO {}").format(
                sql.Identifier(str(name)), owner
            )
        )
    functions = conn.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) = %s"
        " AND NOT p.proname = ANY(%s)",
        (from_role, list(_KEEP_WITH_MIGRATOR)),
    ).fetchall()
    for (signature,) in functions:
        conn.execute(sql.SQL("ALTER FUNCTION " + str(signature) + " OWNER TO {}").format(owner))


def grant_service_roles(owner_url: str) -> None:
    """As the owner, after the migrations: what the projector, ingest and the API may touch, now
    and in the future.

    The projector receives its tables (and a crashed rebuild's schemas) and may record the stack
    identity. The API reads every table (rebuilt ones too: default privileges cover any schema the
    projector creates tables in) except the sessions and the entity cache, and writes ``users``.
    """
    ingest, api, projector = (sql.Identifier(ROLE_NAMES[r]) for r in ("ingest", "api", "projector"))
    with psycopg.connect(owner_url, autocommit=True, connect_timeout=5) as conn:
        _give_projector_its_tables(conn)
        conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(api))
        for creator in ("owner", "projector"):
            conn.execute(
                sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} GRANT SELECT ON TABLES TO {}").format(
                    sql.Identifier(ROLE_NAMES[creator]), api
                )
            )
        conn.execute(sql.SQL("GRANT INSERT, UPDATE ON public.users TO {}").format(api))
        # Every service checks the database's stack identity on connect (decision 029); the
        # projector records it when no `migrate` could.
        conn.execute(
            sql.SQL("GRANT EXECUTE ON FUNCTION public.aaltohub_stack_identity() TO {}").format(
                sql.SQL(", ").join((ingest, api, projector))
            )
        )
        conn.execute(
            sql.SQL("GRANT SELECT, INSERT, UPDATE ON public.stack_identity TO {}").format(projector)
        )
        for table in INGEST_TABLES:
            target = sql.SQL("public.{}").format(sql.Identifier(table))
            conn.execute(sql.SQL("REVOKE ALL ON {} FROM {}, {}").format(target, api, projector))
            conn.execute(
                sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(target, ingest)
            )
        # A rebuild swap re-applies Supabase's lock-down to the tables it swapped in.
        if conn.execute(
            "SELECT to_regprocedure('public.projector_supabase_setup()')"
        ).fetchone() != (None,):
            conn.execute(
                sql.SQL("GRANT EXECUTE ON FUNCTION public.projector_supabase_setup() TO {}").format(
                    projector
                )
            )
        # Under Supabase (RLS on every table) the service roles need their policies, which the
        # migrations could not create before the roles existed; the function is idempotent.
        if conn.execute(
            "SELECT to_regprocedure('public.projector_supabase_setup()')"
        ).fetchone() != (None,):
            conn.execute("SELECT public.projector_supabase_setup()")


def _give_projector_its_tables(conn: psycopg.Connection) -> None:
    """Hand the projection tables (the owner's after a migration created them) and the schemas of a
    rebuild that ended early to the projector; the owner keeps acting for it as a member."""
    projector = sql.Identifier(ROLE_NAMES["projector"])
    tables = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY(%s)"
        " AND tableowner <> %s",
        (list(PROJECTOR_TABLES), ROLE_NAMES["projector"]),
    ).fetchall()
    for (table,) in tables:
        conn.execute(
            sql.SQL("ALTER TABLE public.{} OWNER TO {}").format(
                sql.Identifier(str(table)), projector
            )
        )
    schemas = conn.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname ~ %s AND pg_get_userbyid(nspowner) <> %s"
        " AND pg_has_role(nspowner, 'USAGE')",
        (_REBUILD_SCHEMAS, ROLE_NAMES["projector"]),
    ).fetchall()
    for (schema,) in schemas:
        conn.execute(
            sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(sql.Identifier(str(schema)), projector)
        )
