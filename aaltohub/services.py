"""How ``aaltohub up`` (and the per-service subcommands) run a long-lived service.

A service is a ``ServiceSpec``: a name, a coroutine function that runs until cancelled, and a
stop order. On Ctrl-C/SIGTERM ``up`` cancels the services one by one in ascending ``stop_order``
(API first, then ingest so it drains its buffer to the log, then projectors), and each runner
shuts down in phases inside its ``CancelledError`` handling (stop intake, cancel background tasks,
drain, flush, close) before the servers are stopped.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aaltohub.embedded.pg_roles import PgPasswords, PgRole
from aaltohub.embedded.pg_roles import role_url as pg_role_url
from aaltohub.identity import StackIdentity
from aaltohub.nats_auth import NatsUsers, role_url
from aaltohub.settings import Settings
from eventlog.permissions import Role


@dataclass(frozen=True, kw_only=True)
class ServiceContext:
    """What a service needs to start: the settings and the resolved connection targets."""

    settings: Settings
    nats_url: str
    database_url: str
    duckdb_path: Path
    demo: bool = False
    # The API's listening socket, bound by ``up`` (None: bind the configured port).
    api_socket: socket.socket | None = None
    nats_users: NatsUsers | None = None  # the embedded server's users; None: nats_url as given
    database_passwords: PgPasswords | None = None  # embedded Postgres roles; None: database_url
    identity: StackIdentity | None = None  # what every service checks on connect (decision 029)

    def database_url_as(self, role: PgRole) -> str:
        """The database URL logged in as ``role`` (``database_url`` itself is the owner's)."""
        if self.database_passwords is None:
            return self.database_url
        return pg_role_url(self.database_url, self.database_passwords, role)

    def nats_url_as(self, role: Role) -> str:
        """The NATS URL authenticated as ``role`` (the URL as given when NATS is external)."""
        if self.nats_users is None:
            return self.nats_url
        return role_url(self.nats_url, self.nats_users, role)


ServiceRunner = Callable[[ServiceContext], Awaitable[None]]


@dataclass(frozen=True, kw_only=True)
class ServiceSpec:
    """A long-lived service run by ``aaltohub up``."""

    name: str
    run: ServiceRunner
    stop_order: int
    describe: Callable[[ServiceContext], str] | None = None  # one line for "listening on …" output
    # Returns once the service serves (e.g. the API answers HTTP); ``up`` says "ready" only then.
    ready: ServiceRunner | None = None


# Filled in as services are wired (see aaltohub/service_*.py); `up` runs them all.
SERVICES: tuple[ServiceSpec, ...] = ()
