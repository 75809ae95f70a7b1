"""Two ``aaltohub up`` on different data dirs side by side: each gets its own ports, its own
Postgres socket and its own stack id, both APIs answer, and killing one's Postgres leaves the
other untouched (its services cannot even name the dead one's database); the first `up` restarts
its Postgres and its services carry on. A service of the second stack pointed at the first's
database by hand is refused with one line and writes nothing there."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest

from aaltohub.embedded.process import free_port
from aaltohub.stack_file import StackInfo, read_stack
from tests.aaltohub.upproc import UpProcess, run_cli
from tests.helpers import wait_until

pytestmark = pytest.mark.slow


async def healthy(api_url: str) -> bool:
    async with httpx.AsyncClient(base_url=api_url, timeout=5) as client:
        try:
            response = await client.get("/health")
        except httpx.TransportError:
            return False
    return response.status_code == 200


def recorded_stack(database_url: str) -> list[tuple[object, ...]]:
    """The stack ids a database records."""
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        return conn.execute("SELECT stack_id FROM stack_identity").fetchall()


def row_count(database_url: str) -> int:
    """Messages projected so far; -1 while the server does not answer."""
    try:
        with psycopg.connect(database_url, connect_timeout=5) as conn:
            row = conn.execute("SELECT count(*) FROM messages").fetchone()
    except psycopg.OperationalError:
        return -1
    return int(row[0]) if row else 0


async def test_two_stacks_run_side_by_side_and_one_losing_postgres_leaves_the_other(
    tmp_path: Path,
) -> None:
    nats_port = str(free_port())  # both ask for it: the one that finds it taken picks a free one
    first = UpProcess(tmp_path / "a" / "var", AALTOHUB_NATS_PORT=nats_port)
    second = UpProcess(tmp_path / "b" / "var", AALTOHUB_NATS_PORT=nats_port)
    try:
        first.start()
        second.start()
        a: StackInfo = await first.wait_ready(timeout_s=120)
        b: StackInfo = await second.wait_ready(timeout_s=120)
        assert a.api_url and b.api_url and a.api_url != b.api_url
        assert a.nats_url != b.nats_url and a.database_url != b.database_url
        assert "@/" in a.database_url and "@/" in b.database_url  # Unix sockets, no TCP host
        await wait_until(lambda: healthy(a.api_url or ""), timeout=60)
        await wait_until(lambda: healthy(b.api_url or ""), timeout=60)
        env = await asyncio.to_thread(run_cli, second.data_dir, "env", timeout_s=120)
        assert env.returncode == 0 and b.api_url in env.stdout and b.nats_url in env.stdout

        assert a.postgres_pid is not None
        psutil.Process(a.postgres_pid).kill()  # the first stack's Postgres dies
        before = await asyncio.to_thread(row_count, b.database_url)
        await wait_until(lambda: row_count(b.database_url) > before, timeout=60)
        assert await healthy(b.api_url)

        def restarted() -> bool:
            info = read_stack(first.data_dir)
            return info is not None and info.restarts.get("postgres") == 1

        await wait_until(restarted, timeout=60)  # the first `up` restarted its own Postgres
        again = read_stack(first.data_dir)
        assert again is not None and again.database_url == a.database_url  # the same socket
        await wait_until(lambda: row_count(a.database_url) >= 0, timeout=60)
        resumed = await asyncio.to_thread(row_count, a.database_url)
        await wait_until(lambda: row_count(a.database_url) > resumed, timeout=60)

        # The second stack's projector, pointed at the first's database: refused before it writes.
        assert a.stack_id and b.stack_id and a.stack_id != b.stack_id
        assert a.postgres_system_id != b.postgres_system_id
        stopped = await asyncio.to_thread(
            run_cli, second.data_dir, "project", timeout_s=120, DATABASE_URL=a.database_url
        )
        assert stopped.returncode == 1, stopped.stdout + stopped.stderr
        assert f"belongs to stack {a.stack_id}" in stopped.stdout, stopped.stdout
        assert "@" not in stopped.stdout  # no credentials in the line
        assert await asyncio.to_thread(recorded_stack, a.database_url) == [(a.stack_id,)]
    finally:
        first.stop()
        second.stop()
