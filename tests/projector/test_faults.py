"""Fault tests: poison events, kill -9 of the projector process, Postgres restarted mid-projection."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from aaltohub.embedded.nats_server import NatsServer
from aaltohub.embedded.postgres import PostgresServer
from aaltohub.migrate import apply_migrations
from eventlog import EventLog
from projector.deadletter import DeadLetterStore
from projector.duckdb.dataset import dataset_dir, read_current
from projector.postgres.projection import PostgresProjection
from projector.rebuild_postgres import rebuild_postgres
from projector.runner import ProjectionRunner
from projector.service import ProjectorService
from schemas.commands import RetryDeadLetters, projector_subject
from schemas.status import RetryOutcome
from tests.factories import CHAN, deleted, edited
from tests.helpers import posted, publish_raw, wait_until
from tests.projector.conftest import (
    assert_replay_equals_live,
    content_hash,
    project_to_end,
)

ROOT = Path(__file__).resolve().parents[2]


def checkpoint(url: str, name: str = "postgres") -> int:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            row = conn.execute(
                "SELECT seq FROM projection_checkpoints WHERE name = %s", (name,)
            ).fetchone()
    except psycopg.OperationalError:
        return -1
    return -1 if row is None else int(row[0])


def workload(n: int, seed: int = 3) -> list[object]:
    rng = random.Random(seed)
    events: list[object] = []
    for i in range(1, n + 1):
        chat = CHAN - rng.randrange(5)
        events.append(posted(chat, i, text=f"m{i}"))
        if rng.random() < 0.2:
            events.append(edited(chat, rng.randrange(1, i + 1), f"e{i}"))
        if rng.random() < 0.1:
            events.append(deleted(chat, rng.randrange(1, i + 3)))
        if rng.random() < 0.05:
            events.append(posted(-77, 100_000 + i, text="basic"))
            events.append(deleted(None, 100_000 + i - rng.randrange(3)))
    return events


async def test_poison_events_are_dead_lettered_and_retry_resolves_them(
    event_log: EventLog, migrated_url: str, nats_server: NatsServer
) -> None:
    with psycopg.connect(migrated_url) as conn:
        conn.execute("ALTER TABLE messages ADD CONSTRAINT no_poison CHECK (text <> 'poison')")
    await event_log.append_many([posted(CHAN, 1), posted(CHAN, 2, text="poison")])
    await publish_raw(nats_server.url, f"tg.msg.{CHAN}", b"\xff\x00 not an event")
    await event_log.append_many([posted(CHAN, 3), deleted(CHAN, 2)])
    store = DeadLetterStore(database_url=migrated_url)
    service = ProjectorService(
        log=event_log,
        projections=[PostgresProjection(database_url=migrated_url, codec=event_log.codec)],
        dead_letters=store,
        batch_size=100,
    )
    task = asyncio.create_task(service.run())
    try:
        await service.runners["postgres"].wait_for_seq(5, timeout_s=20)
        with psycopg.connect(migrated_url) as conn:
            letters = conn.execute(
                "SELECT seq, error LIKE '%%no_poison%%' FROM failed_messages "
                "WHERE projection = 'postgres' ORDER BY seq"
            ).fetchall()
            applied = conn.execute(
                "SELECT message_id, is_deleted FROM messages ORDER BY 1"
            ).fetchall()
            conn.execute("ALTER TABLE messages DROP CONSTRAINT no_poison")
        assert letters == [(2, True), (3, False)]
        assert applied == [(1, False), (3, False)]
        retry = RetryDeadLetters(all_unresolved=True)
        reply = await event_log.request(projector_subject(retry), retry, timeout_s=20)
        assert reply.retry == RetryOutcome(resolved=1, failed=1)
        with psycopg.connect(migrated_url) as conn:
            row = conn.execute(
                "SELECT text, is_deleted FROM messages WHERE message_id = 2"
            ).fetchone()
            resolved = conn.execute("SELECT seq FROM failed_messages WHERE resolved").fetchall()
        assert row == (
            "poison",
            True,
        )  # the delete that waited for it applies: as if it never failed
        assert resolved == [(2,)]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _spawn_projector(
    nats_url: str, database_url: str, duckdb_path: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "NATS_URL": nats_url,
        "DATABASE_URL": database_url,
        "AALTOHUB_DUCKDB_PATH": str(duckdb_path),
        "AALTOHUB_PROJECTIONS": "postgres,duckdb",
        "AALTOHUB_PROJECTOR_BATCH_SIZE": "300",
        "AALTOHUB_DUCKDB_FOLD_INTERVAL_S": "0.2",
        "AALTOHUB_DUCKDB_SNAPSHOT_INTERVAL_S": "1",
        "AALTOHUB_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "aaltohub", "project"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_kill_9_at_random_points_then_tables_equal_a_clean_replay(
    event_log: EventLog,
    nats_server: NatsServer,
    migrated_url: str,
    database_url: str,
    postgres_server: PostgresServer,
    tmp_path: Path,
) -> None:
    await event_log.append_many(workload(2500))  # type: ignore[arg-type]
    last = (await event_log.info()).last_seq
    duck = tmp_path / "kill.duckdb"
    rng = random.Random(11)
    for _ in range(3):
        target = checkpoint(migrated_url) + rng.randrange(200, 900)
        proc = _spawn_projector(nats_server.url, migrated_url, duck)
        try:
            await wait_until(lambda t=target: checkpoint(migrated_url) >= min(t, last), timeout=60)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
    proc = _spawn_projector(nats_server.url, migrated_url, duck)
    try:
        await wait_until(lambda: checkpoint(migrated_url) == last, timeout=60)
        # The DuckDB file belongs to the writer process; readers use its published dataset.
        await wait_until(
            lambda: (s := read_current(dataset_dir(duck))) is not None and s[1].seq == last,
            timeout=60,
        )
        await wait_until(
            lambda: checkpoint(migrated_url, "duckdb") == last, timeout=30
        )  # mirrored for readers
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    await assert_replay_equals_live(
        event_log,
        postgres_server=postgres_server,
        live_database_url=migrated_url,
        live_duckdb=duck,
        tmp_path=tmp_path,
    )


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[PostgresServer]:
    server = PostgresServer(data_dir=tmp_path / "pg" / "data")
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def migrate_and_load(event_log: EventLog, url: str) -> int:
    """Migrate ``url`` and append the fault workload; the log's last seq."""
    apply_migrations(url)
    await event_log.append_many(workload(3000))  # type: ignore[arg-type]
    return (await event_log.info()).last_seq


async def crash_and_restart(server: PostgresServer) -> None:
    """kill -9 the postmaster and its backends, then start it again on the same socket."""
    await asyncio.to_thread(server.kill)
    await asyncio.to_thread(server.start)


async def test_postgres_restart_mid_projection_loses_nothing(
    event_log: EventLog, private_postgres: PostgresServer, migrated_url: str
) -> None:
    url = private_postgres.url
    last = await migrate_and_load(event_log, url)
    projection = PostgresProjection(database_url=url, codec=event_log.codec)
    runner = ProjectionRunner(projection, log=event_log, batch_size=200)
    task = asyncio.create_task(runner.run())
    try:
        await wait_until(lambda: runner.seq > last // 3, timeout=60)
        await crash_and_restart(private_postgres)
        assert private_postgres.url == url
        await runner.wait_for_seq(last, timeout_s=60)
        assert runner.retries >= 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await projection.close()
    await project_to_end(event_log, migrated_url)
    assert content_hash(url) == content_hash(migrated_url)


async def test_postgres_crash_mid_rebuild_restarts_the_load_and_swaps_in_a_complete_copy(
    event_log: EventLog, private_postgres: PostgresServer, migrated_url: str
) -> None:
    url = private_postgres.url
    last = await migrate_and_load(event_log, url)

    def rebuild_seq() -> int:
        try:
            with psycopg.connect(url, connect_timeout=2) as conn:
                schema = conn.execute(
                    "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'rebuild_%'"
                ).fetchone()
                if schema is None:
                    return -1
                row = conn.execute(
                    f'SELECT seq FROM "{schema[0]}".projection_checkpoints'
                ).fetchone()
        except psycopg.Error:
            return -1
        return -1 if row is None else int(row[0])

    rebuild = asyncio.create_task(rebuild_postgres(log_=event_log, database_url=url, batch_size=50))
    try:
        await wait_until(lambda: rebuild_seq() > last // 3, timeout=60)
        await crash_and_restart(private_postgres)  # the unlogged load and its checkpoint are lost
        result = await asyncio.wait_for(rebuild, timeout=120)
    finally:
        rebuild.cancel()
        await asyncio.gather(rebuild, return_exceptions=True)
    assert result.seq == last
    await project_to_end(event_log, migrated_url)
    assert content_hash(url) == content_hash(migrated_url)
