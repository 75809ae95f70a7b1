"""Postgres takeover: this stack's Postgres dies and another cluster starts in its socket before
``up`` can restart it. The foreign cluster trusts every login and has this stack's roles and
tables, so only the identity checks stand between the services and it (a projector that reached
it would replay the log from seq 1 into it). Nothing of this stack may touch it; ``up`` cannot
restart its own server there and stops within its restart budget."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psutil
import psycopg
import pytest

from aaltohub.embedded.postgres import PostgresServer
from aaltohub.migrate import apply_migrations
from tests.aaltohub.upproc import UpProcess
from tests.helpers import wait_until

pytestmark = pytest.mark.slow


def foreign_cluster(root: Path) -> PostgresServer:
    """A migrated, trusting cluster with the stack's role names; stopped, ready to start anywhere."""
    server = PostgresServer(data_dir=root / "data", socket_dir=root / "socket")
    server.start()
    try:
        with psycopg.connect(server.url, autocommit=True) as conn:
            for role in ("aaltohub_owner", "aaltohub_ingest", "aaltohub_api"):
                conn.execute(f"CREATE ROLE {role} LOGIN SUPERUSER")
        apply_migrations(server.url)
    finally:
        server.stop()
    return server


def written(server: PostgresServer) -> dict[str, int]:
    """What a service of the stack would write first: checkpoints past 0, rows, an identity."""
    queries = {
        "checkpoint": "SELECT coalesce(max(seq), 0) FROM projection_checkpoints",
        "messages": "SELECT count(*) FROM messages",
        "groups": "SELECT count(*) FROM telegram_groups",
        "stack_identity": "SELECT count(*) FROM stack_identity",
    }
    with psycopg.connect(server.url, connect_timeout=5) as conn:
        return {k: int(conn.execute(q).fetchone()[0]) for k, q in queries.items()}  # type: ignore[index]


def take_over(prepared: PostgresServer, socket_dir: Path) -> PostgresServer:
    """Start ``prepared`` listening in ``socket_dir``."""
    # The dead postmaster's unreaped pid still holds the socket's lock file: the taker clears it.
    for leftover in socket_dir.glob(".s.PGSQL.*"):
        leftover.unlink()
    foreign = PostgresServer(data_dir=prepared.data_dir, socket_dir=socket_dir)
    foreign.start()
    return foreign


def messages(database_url: str) -> int:
    try:
        with psycopg.connect(database_url, connect_timeout=5) as conn:
            row = conn.execute("SELECT count(*) FROM messages").fetchone()
    except psycopg.OperationalError:
        return -1
    return int(row[0]) if row else 0


async def test_a_foreign_cluster_in_the_stacks_socket_is_never_touched(tmp_path: Path) -> None:
    prepared = await asyncio.to_thread(foreign_cluster, tmp_path / "foreign")
    up = UpProcess(tmp_path / "stack" / "var", AALTOHUB_DEMO_RATE="50")
    foreign: PostgresServer | None = None
    try:
        up.start()
        info = await up.wait_ready(timeout_s=120)
        await wait_until(lambda: messages(info.database_url) > 0, timeout=60)
        assert up.proc is not None and info.postgres_pid is not None
        socket_dir = Path(parse_qs(urlsplit(info.database_url).query)["host"][0])

        os.kill(up.proc.pid, signal.SIGSTOP)  # `up` must not restart its server before the takeover
        try:
            postmaster = psutil.Process(info.postgres_pid)
            postmaster.kill()
            await wait_until(lambda: postmaster.status() == psutil.STATUS_ZOMBIE, timeout=10)
            foreign = await asyncio.to_thread(take_over, prepared, socket_dir)
        finally:
            os.kill(up.proc.pid, signal.SIGCONT)

        # `up` cannot start its own Postgres in a socket another server holds: past its restart
        # budget it stops the stack (exit 1) rather than letting a service use the foreign one.
        proc = up.proc
        await wait_until(lambda: proc.poll() is not None, timeout=120)
        assert proc.returncode == 1, up.text()[-3000:]
        assert written(foreign) == {
            "checkpoint": 0,
            "messages": 0,
            "groups": 0,
            "stack_identity": 0,
        }
        assert 'authentication method requirement "scram-sha-256" failed' in up.text()
    finally:
        if foreign is not None:
            foreign.stop()
        up.stop()
