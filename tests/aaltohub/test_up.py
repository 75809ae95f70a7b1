"""``aaltohub up`` as a real process: env and log from other processes, clean stop, data reuse, lock."""

from __future__ import annotations

import re
import shlex
import signal
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest

from aaltohub.nats_auth import load_users, role_url
from aaltohub.stack import redact_url
from aaltohub.stack_file import stack_file
from eventlog import EventLog
from tests.aaltohub.upproc import UpProcess, run_cli, says_ready
from tests.helpers import posted, wait_until


def as_ingest(data_dir: Path, url: str) -> str:
    """``url`` authenticated as the data dir's generated ingest user (every connection authenticates)."""
    users = load_users(data_dir)
    assert users is not None
    return role_url(url, users, "ingest")


def _alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data dir for the module: Postgres is initialised once and reused by each `up`."""
    return tmp_path_factory.mktemp("up") / "var"


@pytest.fixture(scope="module")
async def shared_up(data_dir: Path) -> AsyncIterator[UpProcess]:
    """One running `aaltohub up` shared by the tests that only look at it."""
    process = UpProcess(data_dir)
    process.start()
    try:
        await process.wait_ready()
        yield process
    finally:
        process.stop()


@pytest.fixture
async def up(data_dir: Path, shared_up: UpProcess) -> AsyncIterator[UpProcess]:
    """A running `aaltohub up` of its own (for tests that stop it); the shared one is stopped first."""
    shared_up.stop()
    process = UpProcess(data_dir)
    process.start()
    try:
        await process.wait_ready()
        yield process
    finally:
        process.stop()


async def test_up_prints_where_each_server_listens(shared_up: UpProcess) -> None:
    stack = await shared_up.wait_ready()
    text = shared_up.text()
    assert stack.nats_url in text
    assert redact_url(stack.database_url) in text  # the password is never printed
    assert stack.database_url not in text
    assert says_ready(text)


async def test_up_lists_only_the_projections_that_run(shared_up: UpProcess) -> None:
    await shared_up.wait_ready()
    projector = next(
        line for line in shared_up.text().splitlines() if line.startswith("  projector ")
    )
    # No Supabase configured: the broadcast projection is left out, and not announced.
    assert "postgres, duckdb (" in projector and "broadcast" not in projector


async def test_first_up_makes_a_private_admin_token_and_prints_the_console(
    shared_up: UpProcess,
) -> None:
    stack = await shared_up.wait_ready()
    token_path = shared_up.data_dir / "admin-token"
    assert stat.S_IMODE(token_path.stat().st_mode) == 0o600
    assert f"console   {stack.api_url}/ui/ (admin token: cat {token_path})" in shared_up.text()
    token = token_path.read_text().strip()
    assert token not in shared_up.text()
    async with httpx.AsyncClient(base_url=str(stack.api_url), timeout=10) as client:

        async def listening() -> bool:  # the stack file is written before uvicorn binds
            try:
                return (await client.get("/health")).status_code < 500
            except httpx.TransportError:
                return False

        await wait_until(listening, timeout=30)
        me = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["role"] == "admin"


async def test_env_prints_shell_exports_of_the_running_stack(shared_up: UpProcess) -> None:
    stack = await shared_up.wait_ready()
    result = run_cli(shared_up.data_dir, "env")
    assert result.returncode == 0, result.stderr
    exports = dict(
        shlex.split(line.removeprefix("export "))[0].split("=", 1)
        for line in result.stdout.splitlines()
        if line.startswith("export ")
    )
    assert exports["NATS_URL"] == stack.nats_url
    assert exports["DATABASE_URL"] == stack.database_url
    assert exports["AALTOHUB_DUCKDB_PATH"] == stack.duckdb_path


async def test_replay_attached_to_up_rebuilds_as_the_projector_role(
    shared_up: UpProcess,
) -> None:
    """`aaltohub replay` logs in as aaltohub_projector, which owns the projection tables only:
    the rebuild swaps them in, and the tables it swapped in are the projector's again."""
    stack = await shared_up.wait_ready()
    result = run_cli(shared_up.data_dir, "replay", "--projection", "postgres", timeout_s=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "postgres: rebuilt to seq" in result.stdout
    with psycopg.connect(stack.database_url) as conn:
        owner = conn.execute(
            "SELECT tableowner FROM pg_tables WHERE schemaname = 'public' AND tablename = 'messages'"
        ).fetchone()
    assert owner == ("aaltohub_projector",)


async def test_log_info_reads_the_stream_from_another_process(shared_up: UpProcess) -> None:
    stack = await shared_up.wait_ready()
    async with await EventLog.connect(
        as_ingest(shared_up.data_dir, stack.nats_url), ensure=False
    ) as log:
        before = (await log.info()).messages
        await log.append(posted(-1009999, before + 1))
    result = run_cli(shared_up.data_dir, "log", "info")
    assert result.returncode == 0, result.stderr
    # The demo source keeps appending while `up` runs, so the count only has a lower bound.
    shown = int(re.search(r"^messages\s+(\d+)$", result.stdout, re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert shown >= before + 1


async def test_second_up_on_the_same_data_dir_is_refused(shared_up: UpProcess) -> None:
    await shared_up.wait_ready()
    result = run_cli(shared_up.data_dir, "up")
    assert result.returncode == 1
    assert "already running" in result.stderr


async def test_sigint_stops_every_child_and_removes_the_stack_file(up: UpProcess) -> None:
    stack = await up.wait_ready()
    children = [pid for pid in (stack.nats_pid, stack.postgres_pid) if pid is not None]
    assert len(children) == 2
    assert up.interrupt() == 0
    assert not [pid for pid in children if _alive(pid)]
    assert not stack_file(up.data_dir).exists()


async def test_sigterm_stops_every_child_too(data_dir: Path, shared_up: UpProcess) -> None:
    shared_up.stop()
    process = UpProcess(data_dir)
    process.start()
    try:
        stack = await process.wait_ready()
        assert process.interrupt(sig=signal.SIGTERM) == 0
        assert not [
            pid for pid in (stack.nats_pid, stack.postgres_pid) if pid is not None and _alive(pid)
        ]
    finally:
        process.stop()


async def test_second_up_reuses_the_data(data_dir: Path, shared_up: UpProcess) -> None:
    shared_up.stop()
    first = UpProcess(data_dir)
    first.start()
    try:
        stack = await first.wait_ready()
        event = posted(-1004242, 4242, text="kept across restarts")
        async with await EventLog.connect(as_ingest(data_dir, stack.nats_url), ensure=False) as log:
            seq = (await log.append(event)).seq
        with psycopg.connect(stack.database_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS reuse_marker (note text)")
            conn.execute("INSERT INTO reuse_marker VALUES ('first run')")
    finally:
        first.stop()
    second = UpProcess(data_dir)
    second.start()
    try:
        stack = await second.wait_ready()
        async with await EventLog.connect(as_ingest(data_dir, stack.nats_url), ensure=False) as log:
            record = await log.get(seq)
        with psycopg.connect(stack.database_url) as conn:
            notes = conn.execute("SELECT note FROM reuse_marker").fetchall()
        assert getattr(record, "event", None) == event
        assert ("first run",) in notes
    finally:
        second.stop()


async def test_up_after_a_killed_up_stops_the_servers_it_left_behind(
    data_dir: Path, shared_up: UpProcess
) -> None:
    shared_up.stop()
    first = UpProcess(data_dir)
    first.start()
    try:
        stack = await first.wait_ready()
        assert first.proc is not None
        first.proc.kill()
        first.proc.wait(timeout=10)
        orphans = [pid for pid in (stack.nats_pid, stack.postgres_pid) if pid is not None]
        assert len(orphans) == 2 and all(_alive(pid) for pid in orphans)
        second = UpProcess(data_dir)
        second.start()
        try:
            await second.wait_ready()
            assert not [pid for pid in orphans if _alive(pid)]
        finally:
            second.stop()
    finally:
        first.stop()


def test_env_without_a_running_stack_fails_clearly(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "var", "env")
    assert result.returncode == 1
    assert "no running `aaltohub up`" in result.stderr
