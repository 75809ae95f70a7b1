"""Applying ``schemas/supabase/migrations/*.sql`` in order, recording what was applied."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import psycopg

_LOCK_KEY = 0x4141_4C54  # advisory lock id: one migrator at a time


class MigrationError(RuntimeError):
    """A migration failed or an applied file was changed afterwards."""


def migration_files() -> list[Path]:
    """The migration files, sorted by their timestamp prefix."""
    root = Path(str(resources.files("schemas") / "supabase" / "migrations"))
    return sorted(root.glob("*.sql"))


def apply_migrations(database_url: str) -> list[str]:
    """Apply pending migrations, each in its own transaction; returns the names applied now."""
    applied_now: list[str] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS public.schema_migrations ("
                " version text PRIMARY KEY, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            rows = conn.execute("SELECT version, checksum FROM public.schema_migrations").fetchall()
            done: dict[str, str] = dict(rows)
            for path in migration_files():
                sql = path.read_text()
                checksum = hashlib.sha256(sql.encode()).hexdigest()
                if path.name in done:
                    if done[path.name] != checksum:
                        raise MigrationError(f"{path.name} was changed after it was applied")
                    continue
                try:
                    with conn.transaction():
                        conn.execute(sql)
                        conn.execute(
                            "INSERT INTO public.schema_migrations (version, checksum) VALUES (%s, %s)",
                            (path.name, checksum),
                        )
                except psycopg.Error as e:
                    raise MigrationError(f"{path.name}: {e}") from e
                applied_now.append(path.name)
            if applied_now:
                # Tables a later migration created get Supabase's lock-down too (RLS, no anon grants).
                setup = conn.execute(
                    "SELECT to_regprocedure('public.projector_supabase_setup()')"
                ).fetchone()
                if setup is not None and setup[0] is not None:
                    conn.execute("SELECT public.projector_supabase_setup()")
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now
