"""Connecting to the running stack of a data dir (or to the configured servers): the URLs with the
credentials of a role, and the identity every service checks."""

from __future__ import annotations

from aaltohub.embedded.pg_roles import PgRole, load_passwords
from aaltohub.embedded.pg_roles import role_url as pg_role_url
from aaltohub.identity import StackIdentity
from aaltohub.nats_auth import load_users, role_url, url_with_user
from aaltohub.settings import Settings
from aaltohub.stack_file import StackNotRunning, read_stack
from eventlog.permissions import Role


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
    if stack is None or stack.stack_id is None or stack.postgres_system_id is None:
        return None  # not running, or an `up` that predates recorded identities
    return StackIdentity(stack_id=stack.stack_id, postgres_system_id=stack.postgres_system_id)


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
