"""The running stack of a data dir: ``aaltohub up`` writes where each server listens, others read it."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from aaltohub.embedded.pg_roles import PgRole, load_passwords
from aaltohub.embedded.pg_roles import role_url as pg_role_url
from aaltohub.identity import StackIdentity
from aaltohub.nats_auth import load_users, role_url, url_with_user
from aaltohub.settings import Settings
from eventlog.permissions import Role


def connect_host(listen_host: str) -> str:
    """The address a local client connects to for a server listening on ``listen_host``
    (the wildcard addresses mean loopback)."""
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(listen_host, listen_host)


class StackInfo(msgspec.Struct, kw_only=True):
    """Where the services of a running ``aaltohub up`` listen (written to ``<data>/run/stack.json``)."""

    pid: int
    nats_url: str
    database_url: str
    duckdb_path: str
    api_url: str | None = None
    nats_pid: int | None = None
    postgres_pid: int | None = None
    restarts: dict[str, int] = msgspec.field(default_factory=dict)  # by server / service name
    # Recorded at migrate time (docs/decisions/029); None from an `up` that predates them.
    stack_id: str | None = None
    postgres_system_id: str | None = None
    nats_nodes: dict[str, int] = msgspec.field(default_factory=dict)  # cluster node name: pid
    # Where each service's Prometheus metrics answer (``aaltohub health`` reads them here).
    metrics_urls: dict[str, str] = msgspec.field(default_factory=dict)

    @property
    def identity(self) -> StackIdentity | None:
        """The identity every service of this stack checks, when recorded."""
        if self.stack_id is None or self.postgres_system_id is None:
            return None
        return StackIdentity(stack_id=self.stack_id, postgres_system_id=self.postgres_system_id)


class StackNotRunning(RuntimeError):
    """No ``aaltohub up`` runs for this data dir and no URL is configured."""


def stack_file(data_dir: Path) -> Path:
    """Path of the stack file of ``data_dir``."""
    return data_dir / "run" / "stack.json"


def write_stack(data_dir: Path, info: StackInfo) -> None:
    """Atomically write the stack file (readable by the owner only: it holds connection URLs)."""
    path = stack_file(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.encode(info))
    tmp.chmod(0o600)
    os.replace(tmp, path)


def remove_stack(data_dir: Path) -> None:
    """Remove the stack file."""
    stack_file(data_dir).unlink(missing_ok=True)


def read_stack(data_dir: Path) -> StackInfo | None:
    """The stack of a live ``up`` for ``data_dir``, or None (a stale file of a dead process is ignored)."""
    path = stack_file(data_dir)
    try:
        info = msgspec.json.decode(path.read_bytes(), type=StackInfo)
    except (OSError, msgspec.DecodeError):
        return None
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return info


def resolve_nats_url(settings: Settings, *, role: Role) -> str:
    """NATS_URL if set, else the running stack's, authenticated: as NATS_USER/NATS_PASSWORD if set,
    else as the data dir's generated user for ``role``; raise ``StackNotRunning`` if nothing runs."""
    if settings.nats_url:
        url = settings.nats_url
    else:
        stack = read_stack(settings.data_path)
        if stack is None:
            raise StackNotRunning(
                f"no running `aaltohub up` for {settings.data_path} and NATS_URL is not set"
            )
        url = stack.nats_url
    if settings.nats_user is not None:
        password = settings.nats_password.get_secret_value() if settings.nats_password else ""
        return url_with_user(url, settings.nats_user, password)
    if "@" in url.partition("://")[2]:
        return url  # credentials given in the URL itself
    users = load_users(settings.data_path)
    return role_url(url, users, role) if users is not None else url


def expected_identity(settings: Settings) -> StackIdentity | None:
    """The running stack's identity when a subcommand attaches to it (neither NATS_URL nor
    DATABASE_URL set); None otherwise (the stream and the database are then checked in pairs)."""
    if settings.nats_url or settings.database_url is not None:
        return None
    stack = read_stack(settings.data_path)
    return stack.identity if stack is not None else None


def resolve_database_url(settings: Settings, *, role: PgRole = "owner") -> str:
    """DATABASE_URL if set, else the running stack's (as the embedded role ``role``: the stack file
    holds the owner's URL); raise ``StackNotRunning`` otherwise."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    stack = read_stack(settings.data_path)
    if stack is None:
        raise StackNotRunning(
            f"no running `aaltohub up` for {settings.data_path} and DATABASE_URL is not set"
        )
    passwords = load_passwords(settings.data_path)
    if role == "owner" or passwords is None:
        return stack.database_url
    return pg_role_url(stack.database_url, passwords, role)
